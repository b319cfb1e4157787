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
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLException;

/**
 * The operator's client of a runtime host's admin API ({@link HostApi}): bearer token, timeouts, typed errors; over
 * https it trusts only what a {@link HostTrust} accepts.
 */
public final class HostAdminClient {
    public static final ObjectMapper JSON =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    /** More trusts than this (namespaces times CA rotations) and the cache starts over. */
    private static final int MAX_TLS_CLIENTS = 64;

    private final HttpClient http;
    private final Map<HostTrust, HttpClient> tlsClients = new ConcurrentHashMap<>();
    private final Duration timeout;

    public HostAdminClient(Duration timeout) {
        this.timeout = timeout;
        this.http = builder().build();
    }

    private HttpClient.Builder builder() {
        return HttpClient.newBuilder().connectTimeout(timeout).version(HttpClient.Version.HTTP_1_1);
    }

    /** {@code GET /admin/v1/state} over plain HTTP. */
    public HostState state(URI base, String token) throws HostUnavailableException {
        return state(base, token, null);
    }

    /**
     * {@code GET /admin/v1/state}.
     *
     * @param trust the host certificates to accept when {@code base} is https; null for plain HTTP
     */
    public HostState state(URI base, String token, HostTrust trust) throws HostUnavailableException {
        HttpRequest req = request(base.resolve(HostApi.STATE_PATH), token).GET().build();
        return send(client(base, trust), req, base);
    }

    /** {@code PUT /admin/v1/assignment} over plain HTTP. */
    public HostState assign(URI base, String token, HostAssignment assignment) throws HostUnavailableException {
        return assign(base, token, null, assignment);
    }

    /**
     * {@code PUT /admin/v1/assignment}: the whole desired state; answers the state after accepting.
     *
     * @param trust the host certificates to accept when {@code base} is https; null for plain HTTP
     */
    public HostState assign(URI base, String token, HostTrust trust, HostAssignment assignment)
            throws HostUnavailableException {
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
        return send(client(base, trust), req, base);
    }

    /** Plain HTTP without a trust, TLS with one; a token never goes in the clear to a host that has TLS. */
    private HttpClient client(URI base, HostTrust trust) throws HostUnavailableException {
        boolean https = "https".equalsIgnoreCase(base.getScheme());
        if (trust == null) {
            if (https) {
                throw new HostUnavailableException(
                        "HostTlsUnconfigured", base + " is https, but the operator has no CA to verify the host by");
            }
            return http;
        }
        if (!https) {
            throw new HostUnavailableException(
                    "HostInsecure",
                    "the admin API of the hosts named " + trust.serverName() + " speaks TLS; refusing to send the"
                            + " token in the clear to " + base);
        }
        if (tlsClients.size() > MAX_TLS_CLIENTS) {
            tlsClients.clear();
        }
        return tlsClients.computeIfAbsent(
                trust, t -> builder().sslContext(t.sslContext()).build());
    }

    private HttpRequest.Builder request(URI uri, String token) {
        return HttpRequest.newBuilder(uri)
                .timeout(timeout)
                .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                .header("Accept", "application/json");
    }

    private HostState send(HttpClient http, HttpRequest req, URI base) throws HostUnavailableException {
        HttpResponse<String> resp;
        try {
            resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (SSLException e) {
            throw new HostUnavailableException(
                    "HostUntrusted", req.method() + " " + req.uri() + ": TLS handshake failed: " + rootMessage(e));
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

    /** Why a handshake failed: the rejected certificate's reason sits a few causes deep. */
    private static String rootMessage(Throwable e) {
        for (Throwable t = e; t != null && t.getCause() != t; t = t.getCause()) {
            if (t instanceof java.security.cert.CertificateException && t.getMessage() != null) {
                return t.getMessage();
            }
        }
        return e.getMessage() == null ? e.toString() : e.getMessage();
    }
}
