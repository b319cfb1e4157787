package io.stowage.runtime.admin;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.type.LogicalType;
import io.stowage.hostapi.AdminError;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.runtime.host.AssignmentException;
import io.stowage.runtime.host.Host;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.function.Function;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The host's admin API (host-api {@link HostApi}): {@code PUT /admin/v1/assignment} and {@code GET /admin/v1/state}
 * behind a bearer token, served on its own port.
 */
public final class AdminRoutes {
    private static final Logger LOG = Logger.getLogger(AdminRoutes.class);

    private final Function<HostAssignment, HostState> apply;
    private final Supplier<HostState> state;
    private final ObjectMapper json;
    /** Reads assignments strictly: no null for a number, no number for a string, no string for a number. */
    private final ObjectReader assignmentReader;

    private final Supplier<String> token;

    /** @param token the bearer token; null or empty refuses every call (the admin API is then closed) */
    public AdminRoutes(Host host, ObjectMapper json, String token) {
        this(host, json, () -> token);
    }

    /**
     * @param token the current bearer token, asked on every call so that a rotated token applies at once; null or
     *     empty refuses every call
     */
    public AdminRoutes(Host host, ObjectMapper json, Supplier<String> token) {
        this(a -> host.apply(a), () -> host.state(), json, token);
    }

    /**
     * @param apply applies an assignment (the host's, or in a host pod the scaler's: policies and dormant deployments
     *     with it), throwing {@link AssignmentException} to refuse it
     * @param state the state {@code GET /admin/v1/state} answers
     */
    public AdminRoutes(
            Function<HostAssignment, HostState> apply,
            Supplier<HostState> state,
            ObjectMapper json,
            Supplier<String> token) {
        this.apply = apply;
        this.state = state;
        this.json = json;
        this.assignmentReader = strict(json).readerFor(HostAssignment.class);
        this.token = token;
    }

    public void register(Router router) {
        router.route("/admin/*").handler(this::authorize);
        router.put(HostApi.ASSIGNMENT_PATH)
                .handler(BodyHandler.create(false)
                        .setBodyLimit(MAX_BODY_BYTES)) // no uploads: nothing is ever written to disk
                .handler(this::assign)
                .failureHandler(this::bodyRefused);
        router.get(HostApi.STATE_PATH).handler(rc -> send(rc.response(), 200, state.get()));
        io.stowage.runtime.openapi.OpenApiDocument.admin().register(router);
    }

    private void authorize(RoutingContext rc) {
        String current = token.get();
        if (current == null || current.isEmpty()) {
            send(
                    rc.response(),
                    401,
                    new AdminError(
                            "Unauthorized",
                            "the admin API has no token configured (" + HostApi.TOKEN_ENV + " and "
                                    + HostApi.TOKEN_FILE_ENV + " are unset), so it refuses every call"));
            return;
        }
        String given = bearerToken(rc.request().getHeader(HostApi.AUTHORIZATION_HEADER));
        if (given == null) {
            send(
                    rc.response(),
                    401,
                    new AdminError(
                            "Unauthorized", "missing " + HostApi.AUTHORIZATION_HEADER + ": Bearer <token> header"));
            return;
        }
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), current.getBytes(StandardCharsets.UTF_8))) {
            send(rc.response(), 401, new AdminError("Unauthorized", "wrong bearer token"));
            return;
        }
        rc.next();
    }

    /**
     * The credentials of an {@code Authorization} header of the Bearer scheme, whose name is case-insensitive
     * (RFC 7235 section 2.1), or null when the header is absent, of another scheme or empty.
     */
    static String bearerToken(String header) {
        if (header == null) {
            return null;
        }
        String h = header.strip();
        int space = h.indexOf(' ');
        if (space < 0 || !h.substring(0, space).equalsIgnoreCase(HostApi.BEARER_SCHEME)) {
            return null;
        }
        String credentials = h.substring(space + 1).strip();
        return credentials.isEmpty() ? null : credentials;
    }

    /** The body handler refused the body (over the limit) or a handler threw: answered in the admin API's shape. */
    private void bodyRefused(RoutingContext rc) {
        if (rc.response().ended() || rc.response().closed()) {
            return;
        }
        if (rc.statusCode() == 413) {
            send(
                    rc.response(),
                    413,
                    new AdminError("TooLarge", "an assignment body is at most " + MAX_BODY_BYTES + " bytes"));
        } else {
            LOG.errorf(rc.failure(), "admin request failed");
            send(rc.response(), 500, new AdminError("Internal", "the request failed; the host's log has the details"));
        }
    }

    /** The largest assignment body taken (8 MiB: thousands of replicas). */
    static final long MAX_BODY_BYTES = 8L << 20;

    private void assign(RoutingContext rc) {
        HostAssignment a;
        try {
            String body = rc.body() == null ? null : rc.body().asString();
            if (body == null || body.isBlank()) {
                send(rc.response(), 400, new AdminError("Invalid", "the body must be a HostAssignment JSON object"));
                return;
            }
            a = assignmentReader.readValue(body);
            if (a == null) {
                send(
                        rc.response(),
                        400,
                        new AdminError("Invalid", "the body must be a HostAssignment JSON object, got null"));
                return;
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            send(
                    rc.response(),
                    400,
                    new AdminError("Invalid", io.stowage.runtime.openai.JsonErrors.describe(e, "HostAssignment")));
            return;
        } catch (Exception e) {
            send(rc.response(), 400, new AdminError("Invalid", "the body is not a valid HostAssignment"));
            LOG.debugf(e, "assignment body refused");
            return;
        }
        // Converging may allocate KV pools: off the event loop.
        rc.vertx()
                .executeBlocking(() -> apply.apply(a))
                .onSuccess(state -> send(rc.response(), 200, state))
                .onFailure(e -> {
                    // A refusal never leaves the request without an answer, whatever went wrong.
                    if (e instanceof AssignmentException ae) {
                        LOG.infof("assignment generation %d refused: %s", a.generation(), ae.getMessage());
                        send(rc.response(), ae.httpStatus(), new AdminError(ae.reason(), ae.getMessage()));
                    } else {
                        LOG.errorf(e, "assignment generation %d failed", a.generation());
                        send(
                                rc.response(),
                                500,
                                new AdminError("Internal", "the assignment failed; the host's log has the details"));
                    }
                });
    }

    private static ObjectMapper strict(ObjectMapper json) {
        ObjectMapper m = json.copy();
        m.configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);
        m.configure(DeserializationFeature.ACCEPT_FLOAT_AS_INT, false);
        m.coercionConfigFor(LogicalType.Textual)
                .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        for (LogicalType t : new LogicalType[] {LogicalType.Integer, LogicalType.Float, LogicalType.Boolean}) {
            m.coercionConfigFor(t)
                    .setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail);
        }
        return m;
    }

    private void send(HttpServerResponse resp, int status, Object body) {
        try {
            resp.setStatusCode(status)
                    .putHeader("Content-Type", "application/json")
                    .end(json.writeValueAsString(body));
        } catch (Exception e) {
            LOG.errorf(e, "cannot write an admin response");
            resp.setStatusCode(500).end("{\"reason\":\"Internal\",\"message\":\"cannot write the response\"}");
        }
    }
}
