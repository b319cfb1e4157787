package io.stowage.operator.host;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.AdminError;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;

/** The operator's client of a runtime host's admin API ({@link HostApi}): bearer token, timeouts, typed errors. */
public final class HostAdminClient {
    public static final ObjectMapper JSON =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private final HttpClient http;
    private final Duration timeout;

    public HostAdminClient(Duration timeout) {
        this.timeout = timeout;
        this.http = HttpClient.newBuilder()
                .connectTimeout(timeout)
                .version(HttpClient.Version.HTTP_1_1)
                .build();
    }

    /** {@code GET /admin/v1/state}. */
    public HostState state(URI base, String token) throws HostUnavailableException {
        HttpRequest req = request(base.resolve(HostApi.STATE_PATH), token).GET().build();
        return send(req, base);
    }

    /** {@code PUT /admin/v1/assignment}: the whole desired state; answers the state after accepting. */
    public HostState assign(URI base, String token, HostAssignment assignment) throws HostUnavailableException {
        String body;
        try {
            body = JSON.writeValueAsString(assignment);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise a host assignment", e);
        }
        HttpRequest req = request(base.resolve(HostApi.ASSIGNMENT_PATH), token)
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString(body))
                .build();
        return send(req, base);
    }

    private HttpRequest.Builder request(URI uri, String token) {
        return HttpRequest.newBuilder(uri)
                .timeout(timeout)
                .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                .header("Accept", "application/json");
    }

    private HostState send(HttpRequest req, URI base) throws HostUnavailableException {
        HttpResponse<String> resp;
        try {
            resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (HttpTimeoutException e) {
            throw new HostUnavailableException(
                    "HostTimeout", req.method() + " " + req.uri() + " timed out after " + timeout.toMillis() + " ms");
        } catch (IOException e) {
            throw new HostUnavailableException("HostUnreachable", req.method() + " " + req.uri() + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HostUnavailableException("Interrupted", req.method() + " " + req.uri() + " was interrupted");
        }
        int code = resp.statusCode();
        if (code == 200) {
            try {
                HostState s = JSON.readValue(resp.body(), HostState.class);
                if (s == null) {
                    throw new HostUnavailableException("HostBadResponse", base + " answered an empty state");
                }
                return s;
            } catch (JsonProcessingException e) {
                throw new HostUnavailableException(
                        "HostBadResponse",
                        req.method() + " " + req.uri() + " answered unparseable JSON: " + e.getOriginalMessage());
            }
        }
        String detail = resp.body() == null ? "" : resp.body();
        try {
            AdminError err = JSON.readValue(detail, AdminError.class);
            if (err != null && err.message() != null) {
                detail = err.reason() + ": " + err.message();
            }
        } catch (JsonProcessingException ignored) {
            // not an AdminError body: keep the raw text, cut short below
        }
        if (detail.length() > 300) {
            detail = detail.substring(0, 300) + "...";
        }
        String reason = switch (code) {
            case 401 -> "HostUnauthorized";
            case 409 -> "HostRefused";
            case 400 -> "HostRejected";
            default -> "HostError";
        };
        throw new HostUnavailableException(reason, req.method() + " " + req.uri() + " answered " + code + " " + detail);
    }
}
