package io.stowage.runtime.route;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.stowage.placement.manifest.LlmRouteManifest.Cascade;
import io.stowage.placement.manifest.LlmRouteManifest.Match;
import io.stowage.runtime.route.RouteDecision.Attempt;
import io.stowage.runtime.route.RouteDecision.Outcome;
import io.stowage.runtime.route.RouteTable.Backend;
import io.stowage.runtime.route.RouteTable.Route;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The confidence cascade: sends a request for a route to its first tier whose match rules hold, asks that tier for
 * its tokens' log-probabilities, and lets the answer stand when the tier's confidence reaches its threshold, else
 * tries the next tier; every decision goes to the audit log and the metrics.
 *
 * <p>Streamed requests are routed by the match rules alone, to the first matching tier, and never cascaded: a token
 * sent to the client cannot be taken back, and buffering the stream until the decision would make it a slower
 * non-streamed answer (the client asked for streaming to see the first token early). A client that wants the
 * cascade's check sends {@code stream: false}. A tier that fails before its stream starts is still passed over.
 *
 * <p>Calls block (the Java HTTP client): run them on virtual threads, never on an event loop.
 */
public final class LlmRouter {
    /** The response header naming the deployment that answered. */
    public static final String TIER_HEADER = "X-Stowage-Route-Tier";

    /** The response header with the decision's id in the audit log. */
    public static final String DECISION_HEADER = "X-Stowage-Route-Decision";

    /** Request headers passed on to a tier (its API may sit behind the same gateway credentials). */
    static final List<String> FORWARDED_HEADERS = List.of("Authorization");

    private final HttpClient http;
    private final ObjectMapper json;
    private final RouteAudit audit;
    private final RouteMetrics metrics;
    private final Supplier<URI> self;
    private final Duration tryTimeout;
    private final AtomicLong ids = new AtomicLong();
    private volatile RouteTable table = RouteTable.empty();

    /**
     * @param self this process's OpenAI API, for tiers whose backend has no base URI (local mode), read per request
     *     because a server started on port 0 learns its port late
     * @param tryTimeout how long one tier may take to answer
     */
    public LlmRouter(
            HttpClient http,
            ObjectMapper json,
            RouteAudit audit,
            RouteMetrics metrics,
            Supplier<URI> self,
            Duration tryTimeout) {
        this.http = http;
        this.json = json;
        this.audit = audit;
        this.metrics = metrics;
        this.self = self;
        this.tryTimeout = tryTimeout;
    }

    public void routes(RouteTable t) {
        table = t;
    }

    public RouteTable routes() {
        return table;
    }

    public RouteAudit audit() {
        return audit;
    }

    public RouteMetrics metrics() {
        return metrics;
    }

    /** A routed request's answer: the status and body the client gets, and which tier gave it. */
    public record Answer(int status, byte[] body, String tier, long decision) {}

    /** The request facts the match rules look at. */
    record Facts(int promptChars, String lastUserMessage, Function<String, String> headers) {}

    /**
     * Answers a non-streamed request for route (blocking).
     *
     * @param body the client's request, whose {@code model} names the route
     * @param headers the client's request headers by name (case-insensitive)
     */
    public Answer complete(Route route, boolean chat, ObjectNode body, Function<String, String> headers) {
        long start = System.nanoTime();
        long id = ids.incrementAndGet();
        Facts facts = facts(chat, body, headers);
        List<Attempt> attempts = new ArrayList<>();
        List<Backend> eligible = eligible(route, facts, attempts);
        if (eligible.isEmpty()) {
            return finish(id, start, route, chat, false, attempts, null, noTier(route, attempts));
        }
        boolean clientLogprobs = wantsLogprobs(chat, body);
        Answer last = null;
        for (int i = 0; i < eligible.size(); i++) {
            Backend b = eligible.get(i);
            boolean judged = b.tier().cascade() != null && i < eligible.size() - 1;
            ObjectNode forward = body.deepCopy();
            forward.put("model", b.model());
            if (judged && !clientLogprobs) {
                if (chat) {
                    forward.put("logprobs", true);
                } else {
                    forward.put("logprobs", 0);
                }
            }
            long t0 = System.nanoTime();
            Reply reply = send(b, chat, forward, headers);
            double millis = (System.nanoTime() - t0) / 1e6;
            double cost = millis / 1000 * b.tier().costWeight();
            if (reply.status / 100 != 2 || reply.json == null) {
                attempts.add(new Attempt(
                        b.deployment(), Outcome.FAILED, reply.reason(), null, null, reply.status, 0, 0, millis, cost));
                last = new Answer(reply.status, reply.raw, b.deployment(), id);
                continue;
            }
            int promptTokens = reply.json.path("usage").path("prompt_tokens").asInt(0);
            int completionTokens =
                    reply.json.path("usage").path("completion_tokens").asInt(0);
            Cascade c = b.tier().cascade();
            // judged tiers were asked for logprobs; an unjudged one has them only when the client asked
            Double confidence = c == null || !(judged || clientLogprobs)
                    ? null
                    : c.confidence().of(logprobs(chat, reply.json));
            if (judged && confidence < c.threshold()) {
                attempts.add(new Attempt(
                        b.deployment(),
                        Outcome.ESCALATED,
                        String.format(
                                "confidence %.4f below threshold %s (%s)",
                                confidence, c.threshold(), c.confidence().text()),
                        confidence,
                        c.threshold(),
                        reply.status,
                        promptTokens,
                        completionTokens,
                        millis,
                        cost));
                continue;
            }
            attempts.add(new Attempt(
                    b.deployment(),
                    Outcome.ANSWERED,
                    null,
                    confidence,
                    judged ? c.threshold() : null,
                    reply.status,
                    promptTokens,
                    completionTokens,
                    millis,
                    cost));
            ObjectNode answer = (ObjectNode) reply.json;
            answer.put("model", route.name());
            if (judged && !clientLogprobs) {
                for (JsonNode choice : answer.path("choices")) {
                    if (choice instanceof ObjectNode o) {
                        o.putNull("logprobs");
                    }
                }
            }
            return finish(
                    id,
                    start,
                    route,
                    chat,
                    false,
                    attempts,
                    b.deployment(),
                    new Answer(reply.status, bytes(answer), b.deployment(), id));
        }
        // every tier tried failed: the client gets the last failure as it was
        return finish(id, start, route, chat, false, attempts, null, last);
    }

    /** Where a streamed answer goes: the status first, then the body's bytes as they come. */
    public interface StreamSink {
        /** The answer starts; tier is null for an error the router makes itself. */
        void start(int status, String contentType, String tier, long decision);

        void write(byte[] chunk);

        void end();

        /** The client has gone: the router stops reading the tier, which then cancels the sequence. */
        boolean closed();
    }

    /** Streams a request for route from the first matching tier that answers (blocking until the stream ends). */
    public void stream(Route route, boolean chat, ObjectNode body, Function<String, String> headers, StreamSink sink) {
        long start = System.nanoTime();
        long id = ids.incrementAndGet();
        Facts facts = facts(chat, body, headers);
        List<Attempt> attempts = new ArrayList<>();
        List<Backend> eligible = eligible(route, facts, attempts);
        if (eligible.isEmpty()) {
            Answer a = finish(id, start, route, chat, true, attempts, null, noTier(route, attempts));
            sink.start(a.status(), "application/json", null, id);
            sink.write(a.body());
            sink.end();
            return;
        }
        Answer failure = null;
        for (Backend b : eligible) {
            ObjectNode forward = body.deepCopy();
            forward.put("model", b.model());
            long t0 = System.nanoTime();
            HttpResponse<InputStream> r;
            try {
                r = http.send(request(b, chat, forward, headers), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                double millis = (System.nanoTime() - t0) / 1e6;
                String reason = "no answer from " + base(b) + ": " + e;
                attempts.add(failed(b, reason, 502, millis));
                failure = new Answer(502, error(502, "tier_unavailable", reason), b.deployment(), id);
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (r.statusCode() / 100 != 2) {
                byte[] raw = readAll(r.body());
                double millis = (System.nanoTime() - t0) / 1e6;
                attempts.add(failed(b, "answered " + r.statusCode(), r.statusCode(), millis));
                failure = new Answer(r.statusCode(), raw, b.deployment(), id);
                continue;
            }
            sink.start(
                    r.statusCode(),
                    r.headers().firstValue("Content-Type").orElse("text/event-stream"),
                    b.deployment(),
                    id);
            int[] usage = pipe(r.body(), sink);
            double millis = (System.nanoTime() - t0) / 1e6;
            attempts.add(new Attempt(
                    b.deployment(),
                    Outcome.ANSWERED,
                    null,
                    null,
                    null,
                    r.statusCode(),
                    usage[0],
                    usage[1],
                    millis,
                    millis / 1000 * b.tier().costWeight()));
            finish(id, start, route, chat, true, attempts, b.deployment(), new Answer(r.statusCode(), null, null, id));
            sink.end();
            return;
        }
        finish(id, start, route, chat, true, attempts, null, failure);
        sink.start(failure.status(), "application/json", failure.tier(), id);
        sink.write(failure.body());
        sink.end();
    }

    /** Copies the SSE stream to the sink; returns the usage the stream reported (stream_options.include_usage). */
    private int[] pipe(InputStream in, StreamSink sink) {
        int[] usage = {0, 0};
        StringBuilder line = new StringBuilder();
        try (in) {
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                if (sink.closed()) {
                    return usage; // closing the stream closes the connection to the tier, which cancels the sequence
                }
                byte[] chunk = java.util.Arrays.copyOf(buf, n);
                sink.write(chunk);
                String text = new String(chunk, StandardCharsets.UTF_8);
                for (int i = 0; i < text.length(); i++) {
                    char ch = text.charAt(i);
                    if (ch == '\n') {
                        usageOf(line.toString(), usage);
                        line.setLength(0);
                    } else if (line.length() < (1 << 20)) {
                        line.append(ch);
                    }
                }
            }
        } catch (IOException e) {
            // the tier or the client went away mid-stream; what was sent stays sent
        }
        return usage;
    }

    private void usageOf(String line, int[] usage) {
        if (!line.startsWith("data: {") || !line.contains("\"usage\"")) {
            return;
        }
        try {
            JsonNode u = json.readTree(line.substring(6)).path("usage");
            if (u.isObject()) {
                usage[0] = u.path("prompt_tokens").asInt(0);
                usage[1] = u.path("completion_tokens").asInt(0);
            }
        } catch (IOException e) {
            // not JSON: not a usage chunk
        }
    }

    private static Attempt failed(Backend b, String reason, int status, double millis) {
        return new Attempt(
                b.deployment(),
                Outcome.FAILED,
                reason,
                null,
                null,
                status,
                0,
                0,
                millis,
                millis / 1000 * b.tier().costWeight());
    }

    private Answer finish(
            long id,
            long start,
            Route route,
            boolean chat,
            boolean streamed,
            List<Attempt> attempts,
            String answeredBy,
            Answer answer) {
        RouteDecision d = new RouteDecision(
                id,
                System.currentTimeMillis(),
                route.name(),
                chat ? "chat.completions" : "completions",
                streamed,
                attempts,
                answeredBy,
                answer.status(),
                (System.nanoTime() - start) / 1e6);
        audit.record(d);
        metrics.record(d);
        return answer;
    }

    private Answer noTier(Route route, List<Attempt> attempts) {
        StringBuilder why = new StringBuilder();
        for (Attempt a : attempts) {
            why.append(why.isEmpty() ? "" : "; ")
                    .append(a.deployment())
                    .append(": ")
                    .append(a.reason());
        }
        String message = "route '" + route.name() + "': no tier matches this request (" + why + ")";
        return new Answer(404, error(404, "no_matching_tier", message), null, 0);
    }

    private byte[] error(int status, String code, String message) {
        ObjectNode e = json.createObjectNode();
        e.putObject("error")
                .put("message", message)
                .put("type", status == 404 ? "invalid_request_error" : "api_error")
                .put("param", "model")
                .put("code", code);
        return bytes(e);
    }

    /** The tiers whose match rules hold, in order; the others are recorded as skipped with the rule that failed. */
    List<Backend> eligible(Route route, Facts facts, List<Attempt> attempts) {
        List<Backend> out = new ArrayList<>();
        for (Backend b : route.tiers()) {
            String why = mismatch(b.tier().match(), facts, metrics.tier(route.name(), b.deployment()));
            if (why == null) {
                out.add(b);
            } else {
                attempts.add(Attempt.skipped(b.deployment(), why));
            }
        }
        return out;
    }

    /** Why a tier's match rules do not hold for a request, or null when they do. */
    static String mismatch(Match m, Facts f, RouteMetrics.TierStats stats) {
        if (m == null) {
            return null;
        }
        if (m.minPromptChars() != null && f.promptChars() < m.minPromptChars()) {
            return "prompt has " + f.promptChars() + " characters, below minPromptChars " + m.minPromptChars();
        }
        if (m.maxPromptChars() != null && f.promptChars() > m.maxPromptChars()) {
            return "prompt has " + f.promptChars() + " characters, above maxPromptChars " + m.maxPromptChars();
        }
        for (Map.Entry<String, String> h : m.header().entrySet()) {
            String v = f.headers().apply(h.getKey());
            if (!h.getValue().equals(v)) {
                return "header " + h.getKey() + " is " + (v == null ? "absent" : "\"" + v + "\"") + ", not \""
                        + h.getValue() + "\"";
            }
        }
        if (m.lastUserMessage() != null
                && !m.lastUserMessage().matcher(f.lastUserMessage()).find()) {
            return "the last user message does not match /"
                    + m.lastUserMessage().pattern() + "/";
        }
        if (m.latencyTargetMillis() != null) {
            double ewma = stats.latencyEwmaMillis();
            if (!Double.isNaN(ewma) && ewma > m.latencyTargetMillis()) {
                return String.format(
                        "mean latency %.0f ms is above latencyTargetMillis %d", ewma, m.latencyTargetMillis());
            }
        }
        return null;
    }

    /** The prompt's length and its last user message (for completions: the prompt). */
    static Facts facts(boolean chat, JsonNode body, Function<String, String> headers) {
        if (chat) {
            int chars = 0;
            String lastUser = "";
            for (JsonNode m : body.path("messages")) {
                String text = text(m.path("content"));
                chars += text.length();
                if ("user".equals(m.path("role").asText())) {
                    lastUser = text;
                }
            }
            return new Facts(chars, lastUser, headers);
        }
        String prompt = text(body.path("prompt"));
        return new Facts(prompt.length(), prompt, headers);
    }

    /** The text of a content or prompt: a string, or the strings (and text parts) of an array. */
    private static String text(JsonNode n) {
        if (n.isTextual()) {
            return n.asText();
        }
        if (!n.isArray()) {
            return "";
        }
        StringBuilder sb = new StringBuilder();
        for (JsonNode part : n) {
            if (part.isTextual()) {
                sb.append(part.asText());
            } else if (part.path("text").isTextual()) {
                sb.append(part.path("text").asText());
            }
        }
        return sb.toString();
    }

    private static boolean wantsLogprobs(boolean chat, JsonNode body) {
        JsonNode lp = body.get("logprobs");
        if (lp == null || lp.isNull()) {
            return false;
        }
        return chat ? lp.asBoolean(false) : lp.isIntegralNumber();
    }

    /** The generated tokens' log-probabilities of the first choice. */
    static double[] logprobs(boolean chat, JsonNode answer) {
        JsonNode lp = answer.path("choices").path(0).path("logprobs");
        JsonNode values = chat ? lp.path("content") : lp.path("token_logprobs");
        if (!values.isArray()) {
            return new double[0];
        }
        double[] out = new double[values.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = values.get(i);
            out[i] = chat ? v.path("logprob").asDouble(Double.NaN) : (v.isNumber() ? v.asDouble() : Double.NaN);
        }
        return out;
    }

    private record Reply(int status, JsonNode json, byte[] raw, String reason) {}

    private Reply send(Backend b, boolean chat, ObjectNode forward, Function<String, String> headers) {
        HttpResponse<byte[]> r;
        try {
            r = http.send(request(b, chat, forward, headers), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            String reason = "no answer from " + base(b) + ": " + e;
            return new Reply(502, null, error(502, "tier_unavailable", reason), reason);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            String reason = "interrupted while waiting for " + base(b);
            return new Reply(503, null, error(503, "tier_unavailable", reason), reason);
        }
        if (r.statusCode() / 100 != 2) {
            return new Reply(r.statusCode(), null, r.body(), "answered " + r.statusCode());
        }
        try {
            JsonNode n = json.readTree(r.body());
            if (!(n instanceof ObjectNode) || !(n.path("choices") instanceof ArrayNode)) {
                throw new IOException("not an OpenAI completion");
            }
            return new Reply(r.statusCode(), n, r.body(), null);
        } catch (IOException e) {
            String reason = base(b) + " answered " + r.statusCode() + " with a body that is not a completion";
            return new Reply(502, null, error(502, "tier_bad_answer", reason), reason);
        }
    }

    private HttpRequest request(Backend b, boolean chat, ObjectNode forward, Function<String, String> headers) {
        HttpRequest.Builder req = HttpRequest.newBuilder(
                        base(b).resolve(chat ? "/v1/chat/completions" : "/v1/completions"))
                .timeout(tryTimeout)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(bytes(forward)));
        for (String h : FORWARDED_HEADERS) {
            String v = headers.apply(h);
            if (v != null) {
                req.header(h, v);
            }
        }
        return req.build();
    }

    private URI base(Backend b) {
        return b.baseUri() != null ? b.baseUri() : self.get();
    }

    private byte[] bytes(JsonNode n) {
        try {
            return json.writeValueAsBytes(n);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
        }
    }

    private static byte[] readAll(InputStream in) {
        try (in) {
            return in.readNBytes(1 << 20);
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
