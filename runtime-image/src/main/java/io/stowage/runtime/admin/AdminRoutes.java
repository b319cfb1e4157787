package io.stowage.runtime.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.AdminError;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.runtime.host.AssignmentException;
import io.stowage.runtime.host.Host;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import org.jboss.logging.Logger;

/**
 * The host's admin API (host-api {@link HostApi}): {@code PUT /admin/v1/assignment} and {@code GET /admin/v1/state}
 * behind a bearer token, served on its own port.
 */
public final class AdminRoutes {
    private static final Logger LOG = Logger.getLogger(AdminRoutes.class);

    private final Host host;
    private final ObjectMapper json;
    private final byte[] token;

    /** @param token the bearer token; null or empty refuses every call (the admin API is then closed) */
    public AdminRoutes(Host host, ObjectMapper json, String token) {
        this.host = host;
        this.json = json;
        this.token = token == null || token.isEmpty() ? null : token.getBytes(StandardCharsets.UTF_8);
    }

    public void register(Router router) {
        router.route("/admin/*").handler(this::authorize);
        router.put(HostApi.ASSIGNMENT_PATH)
                .handler(BodyHandler.create().setBodyLimit(8L << 20))
                .handler(this::assign);
        router.get(HostApi.STATE_PATH).handler(rc -> send(rc.response(), 200, host.state()));
        io.stowage.runtime.openapi.OpenApiDocument.admin().register(router);
    }

    private void authorize(RoutingContext rc) {
        String header = rc.request().getHeader(HostApi.AUTHORIZATION_HEADER);
        if (token == null) {
            send(
                    rc.response(),
                    401,
                    new AdminError(
                            "Unauthorized",
                            "the admin API has no token configured (" + HostApi.TOKEN_ENV
                                    + " is unset), so it refuses every call"));
            return;
        }
        if (header == null || !header.startsWith(HostApi.BEARER_PREFIX)) {
            send(
                    rc.response(),
                    401,
                    new AdminError(
                            "Unauthorized", "missing " + HostApi.AUTHORIZATION_HEADER + ": Bearer <token> header"));
            return;
        }
        byte[] given = header.substring(HostApi.BEARER_PREFIX.length()).trim().getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(given, token)) {
            send(rc.response(), 401, new AdminError("Unauthorized", "wrong bearer token"));
            return;
        }
        rc.next();
    }

    private void assign(RoutingContext rc) {
        HostAssignment a;
        try {
            String body = rc.body() == null ? null : rc.body().asString();
            if (body == null || body.isBlank()) {
                send(rc.response(), 400, new AdminError("Invalid", "the body must be a HostAssignment JSON object"));
                return;
            }
            a = json.readValue(body, HostAssignment.class);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            send(
                    rc.response(),
                    400,
                    new AdminError("Invalid", io.stowage.runtime.openai.JsonErrors.describe(e, "HostAssignment")));
            return;
        } catch (Exception e) {
            send(
                    rc.response(),
                    400,
                    new AdminError("Invalid", "the body is not a valid HostAssignment: " + e.getMessage()));
            return;
        }
        // Converging may allocate KV pools: off the event loop.
        rc.vertx()
                .executeBlocking(() -> host.apply(a))
                .onSuccess(state -> send(rc.response(), 200, state))
                .onFailure(e -> {
                    if (e instanceof AssignmentException ae) {
                        LOG.infof("assignment generation %d refused: %s", a.generation(), ae.getMessage());
                        send(rc.response(), ae.httpStatus(), new AdminError(ae.reason(), ae.getMessage()));
                    } else {
                        LOG.errorf(e, "assignment generation %d failed", a.generation());
                        send(rc.response(), 500, new AdminError("Internal", e.toString()));
                    }
                });
    }

    private void send(HttpServerResponse resp, int status, Object body) {
        try {
            resp.setStatusCode(status)
                    .putHeader("Content-Type", "application/json")
                    .end(json.writeValueAsString(body));
        } catch (Exception e) {
            resp.setStatusCode(500).end(e.toString());
        }
    }
}
