package io.stowage.runtime.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.stowage.runtime.chat.ChatTemplateException;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.Job;
import io.stowage.runtime.host.LoadedModel;
import io.stowage.runtime.host.QueueFullException;
import io.stowage.runtime.host.Replica;
import io.stowage.runtime.host.TokenSink;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.tokenizer.Tokenizer;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The OpenAI-compatible API ({@code /v1/models}, {@code /v1/completions}, {@code /v1/chat/completions}) on Vert.x
 * routes, so that a streamed response writes each token as it comes and a closed connection cancels its sequence.
 */
public final class OpenAiRoutes {
    /** Request bodies above this answer 413 (a prompt of this size is far past any context anyway). */
    static final long MAX_BODY_BYTES = 16L << 20;

    private final Host host;
    private final HostMetrics metrics;
    private final ObjectMapper json;
    private final int retryAfterSeconds;

    public OpenAiRoutes(Host host, HostMetrics metrics, ObjectMapper json, int retryAfterSeconds) {
        this.host = host;
        this.metrics = metrics;
        this.json = json;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public void register(Router router) {
        router.get("/v1/models").handler(this::models);
        router.post("/v1/completions")
                .handler(BodyHandler.create().setBodyLimit(MAX_BODY_BYTES))
                .handler(rc -> complete(rc, bodyOf(rc), false));
        router.post("/v1/chat/completions")
                .handler(BodyHandler.create().setBodyLimit(MAX_BODY_BYTES))
                .handler(rc -> complete(rc, bodyOf(rc), true));
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
        for (String name : host.servedModelNames()) {
            data.addObject()
                    .put("id", name)
                    .put("object", "model")
                    .put("created", created)
                    .put("owned_by", "stowage");
        }
        send(rc.response(), 200, body);
    }

    private void complete(RoutingContext rc, byte[] raw, boolean chat) {
        String endpoint = chat ? "chat.completions" : "completions";
        String model = null;
        try {
            JsonNode body;
            try {
                body = json.readTree(raw);
            } catch (JsonProcessingException e) {
                throw ApiException.invalid(null, JsonErrors.describe(e, null));
            } catch (java.io.IOException e) {
                throw ApiException.invalid(null, "cannot read the request body: " + e.getMessage());
            }
            if (body == null || body.isMissingNode()) {
                throw ApiException.invalid(null, "the request body is empty; it must be a JSON object");
            }
            CompletionRequest req = CompletionRequest.parse(body, chat);
            model = req.model();
            Replica replica = host.route(req.model());
            if (replica == null) {
                if (host.assignedModelNames().contains(req.model())) {
                    throw new ApiException(
                            503,
                            "model_not_ready",
                            "model",
                            "model_not_ready",
                            "model '" + req.model()
                                    + "' is assigned to this host but not ready yet (loading, or failed: see"
                                    + " /admin/v1/state)");
                }
                throw new ApiException(
                        404,
                        "invalid_request_error",
                        "model",
                        "model_not_found",
                        "model '" + req.model() + "' does not exist on this host; served models: "
                                + host.servedModelNames());
            }
            LoadedModel lm = replica.model();
            Tokenizer tokenizer = lm.tokenizer();
            int[] prompt;
            if (chat) {
                try {
                    prompt = lm.chatTemplate().encode(tokenizer, req.messages(), true);
                } catch (ChatTemplateException e) {
                    throw ApiException.invalid(
                            "messages", "the model's chat template refused the messages: " + e.getMessage());
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
            Output out = new Output(rc, req, chat, endpoint, prompt.length, tokenizer);
            Job job;
            try {
                job = host.device().submit(replica, gr, out);
            } catch (QueueFullException e) {
                rc.response().putHeader("Retry-After", Integer.toString(retryAfterSeconds));
                throw new ApiException(429, "rate_limit_exceeded", null, "queue_full", e.getMessage());
            } catch (IllegalStateException e) {
                throw new ApiException(503, "model_not_ready", "model", "replica_removed", e.getMessage());
            }
            Job j = job;
            rc.response().closeHandler(v -> j.cancel());
            rc.request().connection().closeHandler(v -> j.cancel());
        } catch (ApiException e) {
            metrics.request(endpoint, model, e.status());
            error(rc.response(), e);
        } catch (RuntimeException e) {
            metrics.request(endpoint, model, 500);
            error(rc.response(), new ApiException(500, "server_error", null, null, "internal error: " + e));
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
        private final long arrived = System.nanoTime();
        private final StringBuilder text = new StringBuilder();
        private final List<Piece> pieces = new ArrayList<>();
        private long lastPiece;
        private boolean headerSent;
        private boolean roleSent;

        Output(RoutingContext rc, CompletionRequest req, boolean chat, String endpoint, int promptTokens, Tokenizer t) {
            this.rc = rc;
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
            metrics.request(endpoint, req.model(), 200);
            if ("cancelled".equals(finishReason)) {
                onLoop(() -> {
                    if (!rc.response().ended() && !rc.response().closed()) {
                        rc.response().end();
                    }
                });
                return;
            }
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
                    rc.response().end();
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
