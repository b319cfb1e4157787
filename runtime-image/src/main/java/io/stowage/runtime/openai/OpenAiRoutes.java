package io.stowage.runtime.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.quarkus.runtime.configuration.MemorySize;
import io.quarkus.runtime.configuration.MemorySizeConverter;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.runtime.chat.ChatTemplateException;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.Job;
import io.stowage.runtime.host.LoadedModel;
import io.stowage.runtime.host.QueueFullException;
import io.stowage.runtime.host.Replica;
import io.stowage.runtime.host.TokenSink;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.route.RouteRoutes;
import io.stowage.runtime.scaling.Scaler;
import io.stowage.runtime.tokenizer.Tokenizer;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;
import org.jboss.logging.Logger;

/**
 * The OpenAI-compatible API ({@code /v1/models}, {@code /v1/completions}, {@code /v1/chat/completions}) on Vert.x
 * routes, so that a streamed response writes each token as it comes and a closed connection cancels its sequence.
 *
 * <p>The POST routes take JSON bodies only (a form, an upload or {@code text/plain}, which a web page may send to
 * another origin without asking first, is answered 415 before its body is read) up to one size limit, the one
 * Quarkus enforces ({@value #MAX_BODY_PROPERTY}). Parsing, the chat template and the tokenizer run on a worker
 * thread: a long prompt never holds the event loop.
 */
public final class OpenAiRoutes {
    private static final Logger LOG = Logger.getLogger(OpenAiRoutes.class);

    /** The largest request body: Quarkus refuses longer ones on every route of the server, and so do these routes. */
    public static final String MAX_BODY_PROPERTY = "quarkus.http.limits.max-body-size";

    /** The longest prompt in characters (for chat, all message contents together); longer ones answer 400. */
    public static final String MAX_PROMPT_PROPERTY = "stowage.openai.max-prompt-chars";

    /** What Quarkus enforces when {@value #MAX_BODY_PROPERTY} is unset (application.properties sets 16M). */
    static final String QUARKUS_DEFAULT_MAX_BODY = "10240K";

    /** 4 Mi characters: about a million tokens, the longest context of current models. */
    static final int DEFAULT_MAX_PROMPT_CHARS = 4 << 20;

    /** Before Quarkus's own body-size check (order -2), so that a refusal comes in OpenAI's error shape. */
    static final int ADMISSION_ORDER = -3;

    /** Sees the thread that encodes each prompt; tests use it to check that no event loop does. */
    static volatile Consumer<Thread> encodingThreadObserver = t -> {};

    /** The size limits of these routes. */
    record Limits(long maxBodyBytes, int maxPromptChars) {
        Limits {
            if (maxBodyBytes < 1) {
                throw new IllegalArgumentException(MAX_BODY_PROPERTY + " must be at least 1 byte, got " + maxBodyBytes);
            }
            if (maxPromptChars < 1) {
                throw new IllegalArgumentException(MAX_PROMPT_PROPERTY + " must be at least 1, got " + maxPromptChars);
            }
        }

        /** The limits as configured (application.properties, system properties, the environment). */
        static Limits fromConfig() {
            Config config = ConfigProvider.getConfig();
            String body =
                    config.getOptionalValue(MAX_BODY_PROPERTY, String.class).orElse(QUARKUS_DEFAULT_MAX_BODY);
            MemorySize size;
            try {
                size = new MemorySizeConverter().convert(body);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(
                        MAX_BODY_PROPERTY + " must be a size such as 16M, got '" + body + "'", e);
            }
            return new Limits(
                    size.asLongValue(),
                    config.getOptionalValue(MAX_PROMPT_PROPERTY, Integer.class).orElse(DEFAULT_MAX_PROMPT_CHARS));
        }
    }

    private final Host host;
    private final HostMetrics metrics;
    private final ObjectMapper json;
    private final int retryAfterSeconds;
    private final Limits limits;
    private RouteRoutes routes;
    private Scaler scaler;
    private Duration activationTimeout = Duration.ZERO;

    public OpenAiRoutes(Host host, HostMetrics metrics, ObjectMapper json, int retryAfterSeconds) {
        this(host, metrics, json, retryAfterSeconds, Limits.fromConfig());
    }

    OpenAiRoutes(Host host, HostMetrics metrics, ObjectMapper json, int retryAfterSeconds, Limits limits) {
        this.host = host;
        this.metrics = metrics;
        this.json = json;
        this.retryAfterSeconds = retryAfterSeconds;
        this.limits = limits;
    }

    /**
     * Serves the routes of a router too: a request whose {@code model} names a route goes to it, and
     * {@code /v1/models} lists the route names beside the host's models.
     */
    public OpenAiRoutes withRoutes(RouteRoutes routes) {
        this.routes = routes;
        return this;
    }

    /**
     * Holds a request for a deployment scaled to zero while the scaler activates it, up to {@code activationTimeout};
     * past it the request is answered 503 with Retry-After. The wait holds no thread.
     */
    public OpenAiRoutes withScaler(Scaler scaler, Duration activationTimeout) {
        this.scaler = scaler;
        this.activationTimeout = activationTimeout;
        return this;
    }

    public void register(Router router) {
        router.get("/v1/models").handler(this::models);
        if (routes != null) {
            routes.register(router);
        }
        post(router, "/v1/completions", false);
        post(router, "/v1/chat/completions", true);
    }

    private void post(Router router, String path, boolean chat) {
        String endpoint = chat ? "chat.completions" : "completions";
        router.post(path).order(ADMISSION_ORDER).handler(rc -> admit(rc, endpoint));
        router.post(path)
                // no file uploads: nothing is ever written to disk (and admit() lets only JSON through)
                .handler(BodyHandler.create(false).setBodyLimit(limits.maxBodyBytes()))
                .handler(rc -> {
                    if (routes != null) {
                        routes.dispatch(rc, chat);
                    } else {
                        rc.next();
                    }
                })
                .handler(rc -> complete(rc, chat))
                .failureHandler(rc -> failed(rc, endpoint));
    }

    /** Refuses, before the body is read, a body that is not JSON or that says it is longer than the limit. */
    private void admit(RoutingContext rc, String endpoint) {
        String refusal = contentTypeRefusal(rc.request().getHeader(HttpHeaders.CONTENT_TYPE));
        if (refusal != null) {
            refuse(
                    rc,
                    endpoint,
                    new ApiException(415, "invalid_request_error", null, "unsupported_media_type", refusal),
                    true);
            return;
        }
        long bytes = declaredLength(rc.request());
        if (bytes > limits.maxBodyBytes()) {
            refuse(rc, endpoint, tooLarge("is " + bytes + " bytes"), true);
            return;
        }
        rc.next();
    }

    /**
     * Null for {@code application/json} (any case, with or without {@code charset=utf-8}); otherwise why not. A
     * missing Content-Type is refused too: a page's script can send a body without one to any origin.
     */
    static String contentTypeRefusal(String header) {
        if (header == null || header.isBlank()) {
            return "the request has no Content-Type; send the body as JSON with Content-Type: application/json";
        }
        String[] parts = header.split(";");
        if (!parts[0].strip().equalsIgnoreCase("application/json")) {
            return "Content-Type '" + CompletionRequest.shown(header.strip())
                    + "' is not accepted: this API takes application/json bodies only (no forms, uploads or"
                    + " text/plain)";
        }
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq < 0 || !parts[i].substring(0, eq).strip().equalsIgnoreCase("charset")) {
                continue;
            }
            String charset = parts[i].substring(eq + 1).strip().replace("\"", "");
            if (!charset.equalsIgnoreCase("utf-8") && !charset.equalsIgnoreCase("utf8")) {
                return "charset '" + CompletionRequest.shown(charset)
                        + "' is not accepted: JSON request bodies must be UTF-8";
            }
        }
        return null;
    }

    private ApiException tooLarge(String what) {
        return new ApiException(
                413,
                "invalid_request_error",
                null,
                "request_too_large",
                "this host takes request bodies of at most " + limits.maxBodyBytes() + " bytes ("
                        + ByteSize.human(limits.maxBodyBytes()) + "); this one " + what);
    }

    /**
     * Answers a request whose body is not (all) read: when it is unread and short (up to {@value #DRAIN_BYTES}
     * bytes) after reading it, so the connection stays usable; else at once, closing the connection so that the
     * rest is never read.
     */
    private void refuse(RoutingContext rc, String endpoint, ApiException e, boolean unread) {
        metrics.request(endpoint, null, e.status());
        HttpServerRequest request = rc.request();
        if (request.isEnded() || request.version() == HttpVersion.HTTP_2) {
            error(rc.response(), e);
            return;
        }
        long length = declaredLength(request);
        if (length == 0) {
            error(rc.response(), e); // nothing to drain (waiting for an empty body's end never finishes)
            return;
        }
        if (unread && length > 0 && length <= DRAIN_BYTES) {
            // The router holds the request paused until a body handler reads it: resume it, and answer anyway (closing)
            // if the promised body does not come within DRAIN_MILLIS.
            AtomicBoolean answered = new AtomicBoolean();
            long timer = rc.vertx().setTimer(DRAIN_MILLIS, t -> {
                if (answered.compareAndSet(false, true)) {
                    answerAndClose(rc, e);
                }
            });
            request.body().onComplete(ar -> {
                if (answered.compareAndSet(false, true)) {
                    rc.vertx().cancelTimer(timer);
                    error(rc.response(), e);
                }
            });
            request.resume();
            return;
        }
        answerAndClose(rc, e);
    }

    /** How long a short refused body may take to arrive before the answer goes out without it. */
    static final long DRAIN_MILLIS = 5_000;

    private void answerAndClose(RoutingContext rc, ApiException e) {
        if (rc.response().ended() || rc.response().closed()) {
            return;
        }
        // Vert.x keeps a connection open whatever the response says: close it once the answer is out
        HttpServerRequest request = rc.request();
        rc.response()
                .putHeader(HttpHeaders.CONNECTION, "close")
                .endHandler(v -> request.connection().close());
        error(rc.response(), e);
    }

    /** A refused body this short is read before the answer, so that the client sees the answer, not a reset. */
    static final int DRAIN_BYTES = 64 << 10;

    private static long declaredLength(HttpServerRequest request) {
        String length = request.getHeader(HttpHeaders.CONTENT_LENGTH);
        if (length == null) {
            return -1;
        }
        try {
            return Long.parseLong(length.strip());
        } catch (NumberFormatException e) {
            return -1; // Netty refuses a malformed Content-Length before any route sees it
        }
    }

    /** The body handler refused the body (longer than the limit, sent without a length) or a handler threw. */
    private void failed(RoutingContext rc, String endpoint) {
        if (rc.response().ended()) {
            return; // already answered: the refusal closed the connection, which fails the unread body
        }
        if (rc.response().closed() || rc.failure() instanceof HttpClosedException) {
            metrics.request(endpoint, null, HostMetrics.CLIENT_CLOSED); // gone before its body was in
            return;
        }
        if (rc.statusCode() == 413) {
            refuse(rc, endpoint, tooLarge("is longer"), false);
        } else if (rc.statusCode() >= 400 && rc.statusCode() < 500) {
            refuse(
                    rc,
                    endpoint,
                    new ApiException(
                            rc.statusCode(), "invalid_request_error", null, null, "cannot read the request body"),
                    false);
        } else {
            refuse(rc, endpoint, internal(rc.failure()), false);
        }
    }

    private static byte[] bodyOf(RoutingContext rc) {
        return rc.body() == null || rc.body().buffer() == null
                ? new byte[0]
                : rc.body().buffer().getBytes();
    }

    private void models(RoutingContext rc) {
        ObjectNode body = json.createObjectNode().put("object", "list");
        ArrayNode data = body.putArray("data");
        long created = System.currentTimeMillis() / 1000;
        java.util.Set<String> names = new java.util.TreeSet<>(host.servedModelNames());
        if (scaler != null) {
            names.addAll(scaler.idleServedNames()); // scaled to zero: a request activates them
        }
        for (String name : names) {
            data.addObject()
                    .put("id", name)
                    .put("object", "model")
                    .put("created", created)
                    .put("owned_by", "stowage");
        }
        if (routes != null) {
            for (String name : routes.names()) {
                data.addObject()
                        .put("id", name)
                        .put("object", "model")
                        .put("created", created)
                        .put("owned_by", "stowage-route");
            }
        }
        send(rc.response(), 200, body);
    }

    /**
     * A request made ready on a worker: the job to submit, or the refusal to answer. {@code model} is the name for
     * the metrics: set only once the host knows it (null counts as unknown).
     */
    private record Prepared(
            String model,
            CompletionRequest req,
            Replica replica,
            GenerationRequest generation,
            ApiException refusal,
            Scaler.Lease lease,
            boolean activating) {
        static Prepared refused(String model, ApiException e, Scaler.Lease lease) {
            return new Prepared(model, null, null, null, e, lease, false);
        }

        /** Closes the request's lease on its deployment, if it holds one (idempotent). */
        void release() {
            if (lease != null) {
                lease.close();
            }
        }
    }

    private void complete(RoutingContext rc, boolean chat) {
        long arrived = System.nanoTime();
        attempt(rc, chat, bodyOf(rc), arrived, null);
    }

    /**
     * Prepares the request on a worker and starts it; a request for a deployment that is activating waits (on a
     * future, holding no thread) until it serves, then is prepared again, or is answered 503 past the bound.
     */
    private void attempt(RoutingContext rc, boolean chat, byte[] raw, long arrived, Scaler.Lease held) {
        String endpoint = chat ? "chat.completions" : "completions";
        rc.vertx().executeBlocking(() -> prepare(raw, chat, held), false).onComplete(ar -> {
            if (ar.failed()) {
                if (held != null) {
                    held.close();
                }
                metrics.request(endpoint, null, 500);
                error(rc.response(), internal(ar.cause()));
            } else if (ar.result().activating()) {
                await(rc, chat, raw, arrived, ar.result());
            } else {
                try {
                    start(rc, ar.result(), chat, endpoint, arrived);
                } finally {
                    ar.result().release();
                }
            }
        });
    }

    /** Waits for an activating deployment, up to the bound counted from the request's arrival. */
    private void await(RoutingContext rc, boolean chat, byte[] raw, long arrived, Prepared p) {
        String endpoint = chat ? "chat.completions" : "completions";
        long left = arrived + activationTimeout.toNanos() - System.nanoTime();
        if (rc.response().closed()) {
            p.release();
            metrics.request(endpoint, p.model(), HostMetrics.CLIENT_CLOSED);
            return;
        }
        if (left <= 0) {
            p.release();
            metrics.request(endpoint, p.model(), 503);
            rc.response().putHeader("Retry-After", Integer.toString(retryAfterSeconds));
            error(
                    rc.response(),
                    new ApiException(
                            503,
                            "model_not_ready",
                            "model",
                            "model_activating",
                            "model '" + CompletionRequest.shown(p.model()) + "' was scaled to zero and is activating;"
                                    + " it did not serve within " + activationTimeout.toMillis() + " ms"
                                    + " (stowage.scaling.activation-timeout); retry after " + retryAfterSeconds
                                    + " s"));
            return;
        }
        Context context = Vertx.currentContext();
        java.util.concurrent.CompletableFuture<Void> ready = scaler.whenServing(p.model());
        AtomicBoolean done = new AtomicBoolean();
        long timer = rc.vertx().setTimer(Math.max(1, left / 1_000_000), t -> {
            if (done.compareAndSet(false, true)) {
                await(rc, chat, raw, arrived, p); // past the bound now: answers 503
            }
        });
        ready.whenComplete((v, failure) -> context.runOnContext(x -> {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            rc.vertx().cancelTimer(timer);
            if (failure != null) {
                p.release();
                metrics.request(endpoint, p.model(), 503);
                rc.response().putHeader("Retry-After", Integer.toString(retryAfterSeconds));
                Throwable cause =
                        failure instanceof java.util.concurrent.CompletionException ? failure.getCause() : failure;
                error(
                        rc.response(),
                        new ApiException(
                                503, "model_not_ready", "model", "model_activation_failed", cause.getMessage()));
            } else {
                attempt(rc, chat, raw, arrived, p.lease());
            }
        }));
    }

    /**
     * Parses, checks, routes and encodes a request (a worker thread: the template and the tokenizer take time). A
     * request for a deployment with {@code spec.scaling} takes a lease on it (or keeps {@code held}) first, which
     * activates it when it is scaled to zero.
     */
    private Prepared prepare(byte[] raw, boolean chat, Scaler.Lease held) {
        String model = null;
        Scaler.Lease lease = held;
        try {
            JsonNode body;
            try {
                body = json.readTree(raw);
            } catch (JsonProcessingException e) {
                throw ApiException.invalid(null, JsonErrors.describe(e, null));
            } catch (java.io.IOException e) {
                throw ApiException.invalid(null, "cannot read the request body as JSON");
            }
            if (body == null || body.isMissingNode()) {
                throw ApiException.invalid(null, "the request body is empty; it must be a JSON object");
            }
            CompletionRequest req = CompletionRequest.parse(body, chat);
            if (lease == null && scaler != null) {
                lease = scaler.acquire(req.model());
            }
            Replica replica = host.route(req.model());
            if (replica == null && lease != null) {
                return new Prepared(req.model(), req, null, null, null, lease, true);
            }
            if (replica == null) {
                if (host.assignedModelNames().contains(req.model())) {
                    model = req.model(); // a name of this host's: it may be a metrics tag
                }
                throw notServed(req.model(), model != null);
            }
            model = req.model();
            checkPromptLength(req);
            LoadedModel lm = replica.model();
            Tokenizer tokenizer = lm.tokenizer();
            int[] prompt;
            encodingThreadObserver.accept(Thread.currentThread());
            if (chat) {
                try {
                    prompt = lm.chatTemplate().encode(tokenizer, req.messages(), true);
                } catch (ChatTemplateException e) {
                    throw templateFailed(req.model(), e);
                }
            } else if (req.promptTokens() != null) {
                prompt = req.promptTokens();
                for (int id : prompt) {
                    if (id >= tokenizer.vocabSize()) {
                        throw ApiException.invalid(
                                "prompt",
                                "token id " + id + " is outside the model's vocabulary of " + tokenizer.vocabSize());
                    }
                }
            } else {
                prompt = tokenizer.encode(req.prompt(), tokenizer.addsBos());
            }
            if (prompt.length == 0) {
                throw ApiException.invalid("prompt", "the prompt encodes to no tokens and the model adds no BOS token");
            }
            int limit = replica.maxRequestTokens();
            int maxNew = req.maxTokens() != null ? req.maxTokens() : limit - prompt.length;
            if (maxNew < 1 || (long) prompt.length + maxNew > limit) {
                throw new ApiException(
                        400,
                        "invalid_request_error",
                        chat ? "messages" : "prompt",
                        "context_length_exceeded",
                        "this model's context is " + limit + " tokens per request, but the prompt has "
                                + prompt.length + " tokens and max_tokens asks for " + Math.max(maxNew, 0)
                                + " more (" + ((long) prompt.length + Math.max(maxNew, 0))
                                + "); shorten the prompt or lower max_tokens");
            }
            GenerationRequest gr = new GenerationRequest(prompt, maxNew, req.sampler(), req.stop(), req.topLogprobs());
            return new Prepared(model, req, replica, gr, null, lease, false);
        } catch (ApiException e) {
            return Prepared.refused(model, e, lease);
        } catch (RuntimeException | StackOverflowError e) {
            return Prepared.refused(model, internal(e), lease);
        }
    }

    private void checkPromptLength(CompletionRequest req) {
        long chars = 0;
        if (req.prompt() != null) {
            chars = req.prompt().length();
        } else if (req.messages() != null) {
            for (var m : req.messages()) {
                chars += m.content().length();
            }
        }
        if (chars > limits.maxPromptChars()) {
            throw new ApiException(
                    400,
                    "invalid_request_error",
                    req.chat() ? "messages" : "prompt",
                    "prompt_too_long",
                    (req.chat() ? "the messages have " : "the prompt has ") + chars
                            + " characters; this host takes at most " + limits.maxPromptChars()
                            + " per request (" + MAX_PROMPT_PROPERTY + ")");
        }
    }

    private ApiException notServed(String model, boolean assigned) {
        String name = CompletionRequest.shown(model);
        if (assigned) {
            return new ApiException(
                    503,
                    "model_not_ready",
                    "model",
                    "model_not_ready",
                    "model '" + name + "' is assigned to this host but not ready yet (loading, or failed: see"
                            + " /admin/v1/state)");
        }
        return new ApiException(
                404,
                "invalid_request_error",
                "model",
                "model_not_found",
                "model '" + name + "' does not exist on this host; served models: " + host.servedModelNames());
    }

    /**
     * A template that refused the messages (its own {@code raise_exception}, a prompt past its bound) is the
     * client's to fix: 400. A template that fails by itself is the model's fault: 500, with the reason in template
     * terms.
     */
    private static ApiException templateFailed(String model, ChatTemplateException e) {
        String message = "model '" + CompletionRequest.shown(model) + "': " + e.getMessage();
        if (e.causedByMessages()) {
            return ApiException.invalid("messages", message);
        }
        LOG.warnf(e, "the chat template of model %s failed", CompletionRequest.shown(model));
        return new ApiException(500, "server_error", null, "chat_template_error", message);
    }

    /** An unexpected failure: logged here in full, answered with a reference to the log and no Java text. */
    private static ApiException internal(Throwable t) {
        String ref = UUID.randomUUID().toString().substring(0, 8);
        LOG.errorf(t, "internal error %s in an OpenAI API request", ref);
        return new ApiException(
                500, "server_error", null, null, "internal error; the host's log has the details under " + ref);
    }

    /** Submits the prepared job and ties it to the connection (the event loop). */
    private void start(RoutingContext rc, Prepared p, boolean chat, String endpoint, long arrived) {
        if (p.refusal() != null) {
            metrics.request(endpoint, p.model(), p.refusal().status());
            error(rc.response(), p.refusal());
            return;
        }
        if (rc.response().closed()) {
            metrics.request(endpoint, p.model(), HostMetrics.CLIENT_CLOSED); // gone while its prompt was encoded
            return;
        }
        try {
            Output out = new Output(rc, p.req(), chat, endpoint, p.generation().prompt().length, arrived);
            Job job;
            try {
                job = host.device().submit(p.replica(), p.generation(), out);
            } catch (QueueFullException e) {
                rc.response().putHeader("Retry-After", Integer.toString(retryAfterSeconds));
                throw new ApiException(429, "rate_limit_exceeded", null, "queue_full", e.getMessage());
            } catch (IllegalStateException e) {
                throw new ApiException(503, "model_not_ready", "model", "replica_removed", e.getMessage());
            }
            rc.response().closeHandler(v -> job.cancel());
            rc.request().connection().closeHandler(v -> job.cancel());
        } catch (ApiException e) {
            metrics.request(endpoint, p.model(), e.status());
            error(rc.response(), e);
        } catch (RuntimeException e) {
            metrics.request(endpoint, p.model(), 500);
            error(rc.response(), internal(e));
        }
    }

    private void error(HttpServerResponse resp, ApiException e) {
        ObjectNode body = json.createObjectNode();
        ObjectNode err = body.putObject("error");
        err.put("message", e.getMessage()).put("type", e.type());
        err.put("param", e.param());
        err.put("code", e.code());
        send(resp, e.status(), body);
    }

    private void send(HttpServerResponse resp, int status, JsonNode body) {
        if (resp.ended() || resp.closed()) {
            return;
        }
        resp.setStatusCode(status).putHeader("Content-Type", "application/json").end(body.toString());
    }

    /** The response of one request: streamed as server-sent events, or gathered into one JSON body. */
    private final class Output implements TokenSink {
        private final RoutingContext rc;
        private final CompletionRequest req;
        private final boolean chat;
        private final String endpoint;
        private final int promptTokens;
        private final Context context;
        private final String id;
        private final long created = System.currentTimeMillis() / 1000;
        private final long arrived;
        private final StringBuilder text = new StringBuilder();
        private final List<Piece> pieces = new ArrayList<>();
        private long lastPiece;
        private boolean headerSent;
        private boolean roleSent;

        Output(
                RoutingContext rc,
                CompletionRequest req,
                boolean chat,
                String endpoint,
                int promptTokens,
                long arrived) {
            this.rc = rc;
            this.arrived = arrived;
            this.req = req;
            this.chat = chat;
            this.endpoint = endpoint;
            this.promptTokens = promptTokens;
            this.context = Vertx.currentContext();
            this.id = (chat ? "chatcmpl-" : "cmpl-")
                    + UUID.randomUUID().toString().replace("-", "");
            if (req.echo() && req.prompt() != null) {
                text.append(req.prompt());
            }
        }

        private void onLoop(Runnable r) {
            context.runOnContext(v -> r.run());
        }

        @Override
        public void onStart() {
            long now = System.nanoTime();
            metrics.timeToFirstToken(req.model(), now - arrived);
            lastPiece = now;
        }

        @Override
        public void onPiece(Piece piece) {
            long now = System.nanoTime();
            if (now != lastPiece && !pieces.isEmpty()) {
                metrics.interToken(req.model(), now - lastPiece);
            }
            lastPiece = now;
            if (!req.stream()) {
                pieces.add(piece);
                text.append(piece.text());
                return;
            }
            pieces.add(piece);
            if (piece.text().isEmpty() && req.topLogprobs() < 0) {
                return; // held back (partial UTF-8, or a possible stop string): nothing to send yet
            }
            ObjectNode chunk = chunk(piece, null);
            onLoop(() -> write(chunk));
        }

        @Override
        public void onFinish(String finishReason, int prompt, int completion) {
            metrics.tokens(req.model(), prompt, completion);
            if ("cancelled".equals(finishReason)) {
                // only a closed connection cancels a job
                metrics.request(endpoint, req.model(), HostMetrics.CLIENT_CLOSED);
                onLoop(() -> {
                    if (!rc.response().ended() && !rc.response().closed()) {
                        rc.response().end();
                    }
                });
                return;
            }
            metrics.request(endpoint, req.model(), 200);
            if (req.stream()) {
                ObjectNode last = chunk(null, finishReason);
                ObjectNode usage = req.includeUsage() ? usageChunk(prompt, completion) : null;
                onLoop(() -> {
                    write(last);
                    if (usage != null) {
                        write(usage);
                    }
                    if (!rc.response().ended() && !rc.response().closed()) {
                        rc.response().end("data: [DONE]\n\n");
                    }
                });
                return;
            }
            ObjectNode body = json.createObjectNode();
            body.put("id", id).put("object", chat ? "chat.completion" : "text_completion");
            body.put("created", created).put("model", req.model());
            ObjectNode choice = body.putArray("choices").addObject();
            choice.put("index", 0);
            if (chat) {
                ObjectNode message = choice.putObject("message");
                message.put("role", "assistant").put("content", text.toString());
                message.putNull("refusal");
            } else {
                choice.put("text", text.toString());
            }
            choice.set("logprobs", logprobs(pieces));
            choice.put("finish_reason", finishReason);
            body.set("usage", usage(prompt, completion));
            onLoop(() -> send(rc.response(), 200, body));
        }

        @Override
        public void onError(int httpStatus, String type, String message) {
            metrics.request(endpoint, req.model(), httpStatus);
            onLoop(() -> {
                if (headerSent) {
                    ObjectNode err = json.createObjectNode();
                    err.putObject("error").put("message", message).put("type", type);
                    write(err);
                    // the error event, then the stream's usual end, so clients stop reading either way
                    if (!rc.response().ended() && !rc.response().closed()) {
                        rc.response().end("data: [DONE]\n\n");
                    }
                } else {
                    error(rc.response(), new ApiException(httpStatus, type, null, null, message));
                }
            });
        }

        private void write(ObjectNode event) {
            HttpServerResponse resp = rc.response();
            if (resp.ended() || resp.closed()) {
                return;
            }
            if (!headerSent) {
                headerSent = true;
                resp.setStatusCode(200)
                        .setChunked(true)
                        .putHeader("Content-Type", "text/event-stream")
                        .putHeader("Cache-Control", "no-cache")
                        .putHeader("X-Accel-Buffering", "no");
            }
            resp.write("data: " + event + "\n\n");
        }

        private ObjectNode base(String object) {
            ObjectNode c = json.createObjectNode();
            c.put("id", id).put("object", object).put("created", created).put("model", req.model());
            return c;
        }

        private ObjectNode chunk(Piece piece, String finishReason) {
            ObjectNode c = base(chat ? "chat.completion.chunk" : "text_completion");
            ObjectNode choice = c.putArray("choices").addObject();
            choice.put("index", 0);
            if (chat) {
                ObjectNode delta = choice.putObject("delta");
                if (piece != null) {
                    if (!roleSent) {
                        roleSent = true;
                        delta.put("role", "assistant");
                    }
                    delta.put("content", piece.text());
                }
            } else {
                choice.put("text", piece == null ? "" : piece.text());
            }
            if (piece != null && req.topLogprobs() >= 0) {
                choice.set("logprobs", logprobs(List.of(piece)));
            } else {
                choice.putNull("logprobs");
            }
            if (finishReason == null) {
                choice.putNull("finish_reason");
            } else {
                choice.put("finish_reason", finishReason);
            }
            return c;
        }

        private ObjectNode usageChunk(int prompt, int completion) {
            ObjectNode c = base(chat ? "chat.completion.chunk" : "text_completion");
            c.putArray("choices");
            c.set("usage", usage(prompt, completion));
            return c;
        }

        private ObjectNode usage(int prompt, int completion) {
            ObjectNode u = json.createObjectNode();
            u.put("prompt_tokens", prompt)
                    .put("completion_tokens", completion)
                    .put("total_tokens", prompt + completion);
            return u;
        }

        private JsonNode logprobs(List<Piece> ps) {
            if (req.topLogprobs() < 0) {
                return json.nullNode();
            }
            ObjectNode lp = json.createObjectNode();
            if (chat) {
                ArrayNode content = lp.putArray("content");
                for (Piece p : ps) {
                    ObjectNode t = content.addObject();
                    t.put("token", p.tokenText()).put("logprob", p.logprob());
                    bytes(t.putArray("bytes"), p.tokenText());
                    ArrayNode top = t.putArray("top_logprobs");
                    for (TopLogprob a : p.top()) {
                        ObjectNode o = top.addObject().put("token", a.token()).put("logprob", a.logprob());
                        bytes(o.putArray("bytes"), a.token());
                    }
                }
                lp.putNull("refusal");
            } else {
                ArrayNode tokens = lp.putArray("tokens");
                ArrayNode tokenLogprobs = lp.putArray("token_logprobs");
                ArrayNode top = lp.putArray("top_logprobs");
                ArrayNode offsets = lp.putArray("text_offset");
                int offset = 0;
                for (Piece p : ps) {
                    tokens.add(p.tokenText());
                    tokenLogprobs.add(p.logprob());
                    ObjectNode alts = top.addObject();
                    for (TopLogprob a : p.top()) {
                        alts.put(a.token(), a.logprob());
                    }
                    offsets.add(offset);
                    offset += p.tokenText().length();
                }
            }
            return lp;
        }

        private void bytes(ArrayNode out, String s) {
            for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
                out.add(b & 0xff);
            }
        }
    }
}
