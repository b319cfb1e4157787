package io.stowage.runtime.route;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.stowage.runtime.route.RouteTable.Backend;
import io.stowage.runtime.route.RouteTable.Route;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The router on the OpenAI API's Vert.x routes: a POST whose {@code model} names a route goes to {@link LlmRouter}
 * (on a virtual thread), any other goes on to the host's own handler; {@code GET /v1/routes} lists the routes with
 * their tiers' totals and {@code GET /v1/routes/audit} reads the audit log.
 */
public final class RouteRoutes {
    private static final Logger LOG = Logger.getLogger(RouteRoutes.class);

    /** The most decisions one audit read returns. */
    static final int MAX_AUDIT_READ = 1000;

    private final LlmRouter router;
    private final ObjectMapper json;
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();

    public RouteRoutes(LlmRouter router, ObjectMapper json) {
        this.router = router;
        this.json = json;
    }

    public void register(Router web) {
        web.get("/v1/routes").handler(this::list);
        web.get("/v1/routes/audit").handler(this::auditRead);
    }

    /**
     * Takes a POST whose body (already read) names a route, else passes it on with {@code rc.next()}. The body is
     * parsed on a virtual thread, as the host parses its own requests off the event loop.
     */
    public void dispatch(RoutingContext rc, boolean chat) {
        if (router.routes().isEmpty()) {
            rc.next();
            return;
        }
        Context context = Vertx.currentContext();
        byte[] raw = rc.body() == null || rc.body().buffer() == null
                ? new byte[0]
                : rc.body().buffer().getBytes();
        threads.execute(() -> {
            Route route = null;
            ObjectNode body = null;
            try {
                JsonNode n = json.readTree(raw);
                if (n instanceof ObjectNode o && o.path("model").isTextual()) {
                    route = router.routes().get(o.path("model").asText());
                    body = o;
                }
            } catch (IOException | RuntimeException e) {
                // not JSON: the host's handler answers with its own error
            }
            if (route == null) {
                context.runOnContext(v -> rc.next());
                return;
            }
            try {
                serve(rc, context, route, chat, body);
            } catch (RuntimeException e) {
                LOG.errorf(e, "route %s failed", route.name());
                context.runOnContext(v -> {
                    if (!rc.response().headWritten()) {
                        rc.response()
                                .setStatusCode(500)
                                .putHeader("Content-Type", "application/json")
                                .end("{\"error\":{\"message\":\"the router failed: "
                                        + e.getClass().getSimpleName() + "\",\"type\":\"api_error\"}}");
                    } else {
                        rc.response().reset();
                    }
                });
            }
        });
    }

    private void serve(RoutingContext rc, Context context, Route route, boolean chat, ObjectNode body) {
        HttpServerResponse resp = rc.response();
        if (!body.path("stream").asBoolean(false)) {
            LlmRouter.Answer a = router.complete(route, chat, body, rc.request()::getHeader);
            context.runOnContext(v -> {
                if (resp.closed()) {
                    return;
                }
                resp.setStatusCode(a.status()).putHeader("Content-Type", "application/json");
                resp.putHeader(LlmRouter.DECISION_HEADER, Long.toString(a.decision()));
                if (a.tier() != null) {
                    resp.putHeader(LlmRouter.TIER_HEADER, a.tier());
                }
                resp.end(Buffer.buffer(a.body()));
            });
            return;
        }
        AtomicBoolean gone = new AtomicBoolean();
        context.runOnContext(v -> resp.closeHandler(x -> gone.set(true)));
        router.stream(route, chat, body, rc.request()::getHeader, new LlmRouter.StreamSink() {
            @Override
            public void start(int status, String contentType, String tier, long decision) {
                context.runOnContext(v -> {
                    if (resp.closed()) {
                        return;
                    }
                    resp.setStatusCode(status)
                            .putHeader("Content-Type", contentType)
                            .setChunked(true);
                    resp.putHeader(LlmRouter.DECISION_HEADER, Long.toString(decision));
                    if (tier != null) {
                        resp.putHeader(LlmRouter.TIER_HEADER, tier);
                    }
                });
            }

            @Override
            public void write(byte[] chunk) {
                context.runOnContext(v -> {
                    if (!resp.closed()) {
                        resp.write(Buffer.buffer(chunk));
                    }
                });
            }

            @Override
            public void end() {
                context.runOnContext(v -> {
                    if (!resp.closed() && !resp.ended()) {
                        resp.end();
                    }
                });
            }

            @Override
            public boolean closed() {
                return gone.get();
            }
        });
    }

    private void list(RoutingContext rc) {
        ObjectNode out = json.createObjectNode().put("object", "list");
        ArrayNode data = out.putArray("data");
        for (Route r : router.routes().routes()) {
            ObjectNode o = data.addObject().put("id", r.name()).put("object", "route");
            o.put("llmRoute", r.manifest().id());
            Map<String, RouteMetrics.TierStats> stats = router.metrics().tiers(r.name());
            ArrayNode tiers = o.putArray("tiers");
            long answered = 0;
            double cost = 0;
            for (Backend b : r.tiers()) {
                RouteMetrics.TierStats s = stats.getOrDefault(b.deployment(), new RouteMetrics.TierStats());
                answered += s.answered();
                cost += s.cost();
                ObjectNode t = tiers.addObject()
                        .put("deployment", b.deployment())
                        .put("model", b.model())
                        .put("costWeight", b.tier().costWeight())
                        .put("answered", s.answered())
                        .put("escalated", s.escalated())
                        .put("failed", s.failed())
                        .put("promptTokens", s.promptTokens())
                        .put("completionTokens", s.completionTokens())
                        .put("cost", s.cost());
                number(t, "escalationRate", s.escalationRate());
                number(t, "costPer1kSuccessful", s.costPer1kSuccessful());
                if (b.tier().cascade() != null) {
                    t.put("confidence", b.tier().cascade().confidence().text())
                            .put("threshold", b.tier().cascade().threshold());
                }
            }
            o.put("answered", answered).put("cost", cost);
            number(o, "costPer1kSuccessful", answered == 0 ? Double.NaN : 1000 * cost / answered);
        }
        send(rc, 200, out);
    }

    private void auditRead(RoutingContext rc) {
        int limit = 100;
        List<String> l = rc.queryParam("limit");
        if (!l.isEmpty()) {
            try {
                limit = Integer.parseInt(l.getFirst());
            } catch (NumberFormatException e) {
                limit = -1;
            }
            if (limit < 1 || limit > MAX_AUDIT_READ) {
                ObjectNode e = json.createObjectNode();
                e.putObject("error")
                        .put(
                                "message",
                                "limit must be an integer in 1.." + MAX_AUDIT_READ + ", got '" + l.getFirst() + "'")
                        .put("type", "invalid_request_error")
                        .put("param", "limit");
                send(rc, 400, e);
                return;
            }
        }
        List<String> route = rc.queryParam("route");
        ObjectNode out = json.createObjectNode().put("object", "list");
        out.put("capacity", router.audit().capacity())
                .put("dropped", router.audit().dropped());
        out.set("data", json.valueToTree(router.audit().recent(route.isEmpty() ? null : route.getFirst(), limit)));
        send(rc, 200, out);
    }

    private static void number(ObjectNode o, String field, double v) {
        if (Double.isNaN(v)) {
            o.putNull(field);
        } else {
            o.put(field, v);
        }
    }

    private void send(RoutingContext rc, int status, JsonNode body) {
        try {
            rc.response()
                    .setStatusCode(status)
                    .putHeader("Content-Type", "application/json")
                    .end(Buffer.buffer(json.writeValueAsBytes(body)));
        } catch (IOException e) {
            rc.fail(e);
        }
    }

    /** The route names, for {@code /v1/models}. */
    public List<String> names() {
        return router.routes().routes().stream().map(Route::name).toList();
    }
}
