package io.stowage.runtime.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.gguf.GgufWriter;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.HoldingSink;
import io.stowage.runtime.host.Job;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.server.HostService;
import io.vertx.core.Context;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What a client that reaches the OpenAI port cannot do: write files, send bodies past the limit, grow the metrics,
 * hold the event loop, or get Java or Jinjava internals back.
 */
@QuarkusTest
class OpenAiHardeningTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    static final Path Q8 = TestModels.q8();
    static final String TEMPLATE =
            "{% if messages[0]['content'] == 'raise' %}{{ raise_exception('Roles must alternate') }}{% endif %}"
                    + "{{ messages[0]['content'].bar() }}";

    @Inject
    HostService service;

    @Inject
    MeterRegistry registry;

    @TestHTTPResource("/")
    URL base;

    static Path templated;

    @BeforeEach
    void assign() throws Exception {
        ModelAssignment q8 = new ModelAssignment("sha256:stories-q8", Q8.toString(), null, 0, 0);
        ModelAssignment broken =
                new ModelAssignment("sha256:broken-template", templatedModel().toString(), null, 0, 0);
        service.host()
                .apply(new HostAssignment(
                        1,
                        0,
                        List.of(q8, broken),
                        List.of(
                                replica("default/stories#0", "stories", q8, 512, 4),
                                replica("default/narrow#0", "narrow", q8, 512, 2),
                                replica("default/templated#0", "templated", broken, 256, 1))));
        awaitTrue(() -> service.host().allReady(), "every model loaded");
    }

    @AfterEach
    void stopObserving() {
        OpenAiRoutes.encodingThreadObserver = t -> {};
    }

    private static ReplicaAssignment replica(String id, String served, ModelAssignment m, int tokens, int seqs) {
        return new ReplicaAssignment(id, id.substring(0, id.indexOf('#')), served, m.digest(), tokens, seqs, "f16", 0);
    }

    /** stories260K (Q8_0) with a chat template that raises for 'raise' and otherwise calls a method str lacks. */
    static synchronized Path templatedModel() throws IOException {
        if (templated != null) {
            return templated;
        }
        GgufFile stories = GgufReader.readFile(Q8);
        GgufWriter w = new GgufWriter();
        stories.metadata().forEach((k, v) -> {
            if (!k.equals("general.alignment") && !k.equals("tokenizer.chat_template")) {
                w.put(k, v);
            }
        });
        w.putString("tokenizer.chat_template", TEMPLATE);
        try (FileChannel in = FileChannel.open(Q8, StandardOpenOption.READ)) {
            for (GgufTensorInfo t : stories.tensors()) {
                ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(t.byteSize()));
                in.read(data, t.absoluteOffset());
                w.addTensor(t.name(), t.type(), t.dims(), data.array());
            }
        }
        Path file = Files.createTempFile("stowage-templated", ".gguf");
        file.toFile().deleteOnExit();
        w.write(file);
        templated = file;
        return file;
    }

    private HttpResponse<String> post(String path, String contentType, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.toURI().resolve(path))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .timeout(Duration.ofSeconds(60));
        if (contentType != null) {
            b.header("Content-Type", contentType);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> postJson(String path, String body) throws Exception {
        return post(path, "application/json", body);
    }

    private static JsonNode error(HttpResponse<String> r) throws IOException {
        return JSON.readTree(r.body()).path("error");
    }

    @Test
    void formsUploadsAndTextAreRefusedWithoutWritingAFile() throws Exception {
        Path uploads = Path.of("file-uploads");
        List<String> before = list(uploads);
        String json = "{\"model\": \"stories\", \"prompt\": \"Once\", \"max_tokens\": 2}";
        String multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\n" + "A".repeat(10_000) + "\r\n--XyZ--\r\n";
        for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
            for (String[] c : List.of(
                    new String[] {"multipart/form-data; boundary=XyZ", multipart},
                    new String[] {"text/plain", json},
                    new String[] {"text/plain;charset=UTF-8", json},
                    new String[] {"application/x-www-form-urlencoded", "model=stories&prompt=Once"},
                    new String[] {"application/json; charset=iso-8859-1", json},
                    new String[] {null, json},
                    new String[] {null, ""})) { // an empty body (Content-Length: 0) is answered, not waited for
                HttpResponse<String> r = post(path, c[0], c[1]);
                assertThat(r.statusCode()).as("%s %s: %s", path, c[0], r.body()).isEqualTo(415);
                JsonNode e = error(r);
                assertThat(e.path("code").asText()).isEqualTo("unsupported_media_type");
                assertThat(e.path("message").asText()).doesNotContain("\n").isNotEmpty();
                if (c[0] != null && c[0].startsWith("text/plain")) {
                    assertThat(e.path("message").asText()).contains("application/json");
                }
            }
        }
        // a long upload is answered before it is sent, and the connection closed (readAllBytes ends)
        RawResponse upload =
                raw("multipart/form-data; boundary=XyZ", "Content-Length: " + (8 << 20) + "\r\n", out -> {});
        assertThat(upload.status()).as(upload.body()).isEqualTo(415);
        assertThat(list(uploads)).as("files under %s", uploads.toAbsolutePath()).isEqualTo(before);

        // JSON in any spelling the standard allows
        for (String type :
                List.of("application/json", "Application/JSON; charset=utf-8", "application/json;charset=\"UTF-8\"")) {
            HttpResponse<String> ok = post("/v1/completions", type, json);
            assertThat(ok.statusCode()).as("%s: %s", type, ok.body()).isEqualTo(200);
        }
    }

    private static List<String> list(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(dir)) {
            return s.map(Path::toString).sorted().toList();
        }
    }

    @Test
    void theBodyLimitInForceIsTheConfiguredOne() throws Exception {
        long limit = OpenAiRoutes.Limits.fromConfig().maxBodyBytes();
        assertThat(ConfigProvider.getConfig().getValue(OpenAiRoutes.MAX_BODY_PROPERTY, String.class))
                .isEqualTo("16M");
        assertThat(limit).isEqualTo(16L << 20);

        // above Quarkus's default of 10 MiB and below ours: served
        String padded = "{\"model\": \"stories\", \"prompt\": \"Once\", \"max_tokens\": 2, \"user\": \""
                + "x".repeat(11 << 20) + "\"}";
        HttpResponse<String> big = postJson("/v1/completions", padded);
        assertThat(big.statusCode()).as(big.body()).isEqualTo(200);

        // a declared length past the limit is refused before its body is read
        RawResponse declared = raw("Content-Length: " + (limit + 1) + "\r\n", out -> {});
        assertThat(declared.status()).as(declared.body()).isEqualTo(413);
        assertThat(JSON.readTree(declared.body()).at("/error/code").asText()).isEqualTo("request_too_large");
        assertThat(JSON.readTree(declared.body()).at("/error/message").asText()).contains(Long.toString(limit));

        // and so is a chunked body once it passes the limit
        RawResponse chunked = raw("Transfer-Encoding: chunked\r\n", out -> {
            byte[] chunk = new byte[1 << 20];
            java.util.Arrays.fill(chunk, (byte) ' ');
            long sent = 0;
            while (sent <= limit) {
                int n = (int) Math.min(chunk.length, limit + 1 - sent);
                out.write((Integer.toHexString(n) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(chunk, 0, n);
                sent += n;
                if (sent <= limit) {
                    out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                } // else stop within the chunk that passes the limit: every byte sent is read before the answer
            }
            out.flush();
        });
        assertThat(chunked.status()).as(chunked.body()).isEqualTo(413);
        assertThat(JSON.readTree(chunked.body()).at("/error/code").asText()).isEqualTo("request_too_large");
    }

    private interface BodyWriter {
        void write(OutputStream out) throws IOException;
    }

    private record RawResponse(int status, String body) {}

    /** A POST of a JSON body over a plain socket, for bodies an HTTP client would not send; reads until close. */
    private RawResponse raw(String headers, BodyWriter body) throws IOException {
        return raw("application/json", headers, body);
    }

    private RawResponse raw(String contentType, String headers, BodyWriter body) throws IOException {
        try (Socket s = new Socket("127.0.0.1", base.getPort())) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: " + contentType + "\r\n"
                            + headers + "\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            body.write(out);
            out.flush();
            InputStream in = s.getInputStream();
            String response = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            int status = Integer.parseInt(response.substring(9, 12));
            int start = response.indexOf("\r\n\r\n");
            return new RawResponse(status, start < 0 ? "" : response.substring(start + 4));
        }
    }

    @Test
    void otherOriginsGetNoCorsHeaders() throws Exception {
        HttpResponse<String> post = HTTP.send(
                HttpRequest.newBuilder(base.toURI().resolve("/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"model\": \"stories\", \"prompt\": \"Once\", \"max_tokens\": 1}"))
                        .header("Content-Type", "application/json")
                        .header("Origin", "http://attacker.example")
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(post.headers().firstValue("Access-Control-Allow-Origin")).isEmpty();
        HttpResponse<String> preflight = HTTP.send(
                HttpRequest.newBuilder(base.toURI().resolve("/v1/chat/completions"))
                        .method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                        .header("Origin", "http://attacker.example")
                        .header("Access-Control-Request-Method", "POST")
                        .header("Access-Control-Request-Headers", "content-type")
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(preflight.headers().firstValue("Access-Control-Allow-Origin"))
                .as("preflight answered %d", preflight.statusCode())
                .isEmpty();
    }

    @Test
    void unknownModelNamesShareOneSeriesAndNoNulReachesTheMetrics() throws Exception {
        Set<String> served = Set.of("stories", "narrow", "templated", HostMetrics.UNKNOWN_MODEL);
        double before = count("completions", HostMetrics.UNKNOWN_MODEL, "404");
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            names.add("no-such-model-" + i);
        }
        names.add("nul\u0000in\u0000the\u0000name");
        names.add("line\nbreak");
        names.add("y".repeat(1 << 20));
        for (String name : names) {
            HttpResponse<String> r = postJson(
                    "/v1/completions",
                    JSON.createObjectNode()
                            .put("model", name)
                            .put("prompt", "Once")
                            .toString());
            assertThat(r.statusCode()).isEqualTo(404);
            // the answer names the model, cut short
            assertThat(r.body().length()).isLessThan(2_000);
        }
        assertThat(count("completions", HostMetrics.UNKNOWN_MODEL, "404") - before)
                .isEqualTo(names.size());
        for (Meter m : registry.find("stowage_requests").meters()) {
            assertThat(m.getId().getTag("model")).isIn(served);
        }
        String scrape = HTTP.send(
                        HttpRequest.newBuilder(base.toURI().resolve("/q/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
        assertThat(scrape)
                .doesNotContain("\u0000")
                .doesNotContain("no-such-model")
                .contains("model=\"unknown\"");
    }

    private double count(String endpoint, String model, String status) {
        Counter c = registry.find("stowage_requests")
                .tag("endpoint", endpoint)
                .tag("model", model)
                .tag("status", status)
                .counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void topPThatIsZeroAsAFloatIsRefusedAndATinyTemperatureIsGreedy() throws Exception {
        HttpResponse<String> r = postJson(
                "/v1/completions",
                "{\"model\": \"stories\", \"prompt\": \"Once\", \"top_p\": 5e-324, \"max_tokens\": 2}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        assertThat(error(r).path("param").asText()).isEqualTo("top_p");
        assertThat(error(r).path("message").asText())
                .contains("(0.0, 1.0]")
                .contains("32-bit float")
                .doesNotContain("java")
                .doesNotContain("Exception");

        String greedy = completionText("\"temperature\": 0");
        assertThat(completionText("\"temperature\": 1e-45, \"seed\": 3")).isEqualTo(greedy);
        assertThat(completionText("\"temperature\": 0.5, \"top_p\": 1e-45, \"seed\": 3"))
                .as("top_p of the smallest float keeps only the most likely token")
                .isEqualTo(greedy);
    }

    private String completionText(String params) throws Exception {
        HttpResponse<String> r = postJson(
                "/v1/completions",
                "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, " + params + "}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body()).at("/choices/0/text").asText();
    }

    @Test
    void chatTemplateFailuresAreOneCleanLine() throws Exception {
        HttpResponse<String> refused = postJson(
                "/v1/chat/completions",
                "{\"model\": \"templated\", \"messages\": [{\"role\": \"user\", \"content\": \"raise\"}]}");
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(400);
        assertThat(error(refused).path("param").asText()).isEqualTo("messages");
        assertThat(error(refused).path("message").asText()).contains("the template raised: Roles must alternate");

        HttpResponse<String> broken = postJson(
                "/v1/chat/completions",
                "{\"model\": \"templated\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
        assertThat(broken.statusCode()).as(broken.body()).isEqualTo(500);
        assertThat(error(broken).path("code").asText()).isEqualTo("chat_template_error");
        assertThat(error(broken).path("message").asText())
                .contains("model 'templated'")
                .contains("line 1")
                .contains("method bar")
                .contains("type str")
                .doesNotContain("java")
                .doesNotContain("hubspot")
                .doesNotContain("Exception")
                .doesNotContain("\n");
    }

    @Test
    void aClientThatLeavesIsCountedAsClosedNot200() throws Exception {
        double closedBefore = count("completions", "narrow", "499");
        double okBefore = count("completions", "narrow", "200");
        // a job of the same model that holds the scheduler in each step until the test hands it a permit: the
        // request below makes at most one token per permit, never enough to end by itself
        HoldingSink holder = new HoldingSink();
        Job held = service.host()
                .device()
                .submit(
                        service.host().route("narrow"),
                        new GenerationRequest(new int[] {1}, 500, SamplerParams.greedy(), null, -1),
                        holder);
        int maxTokens = 400;
        int permits = 0;
        try {
            assertThat(holder.entered.await(10, TimeUnit.SECONDS)).isTrue();
            String body = "{\"model\": \"narrow\", \"prompt\": \"Once\", \"max_tokens\": " + maxTokens
                    + ", \"temperature\": 0, \"stream\": true}";
            try (Socket s = new Socket("127.0.0.1", base.getPort())) {
                s.getOutputStream()
                        .write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                        + "Content-Length: " + body.length() + "\r\n\r\n" + body)
                                .getBytes(StandardCharsets.UTF_8));
                s.getOutputStream().flush();
                awaitTrue(() -> narrow().queuedRequests() == 1, "the request to be queued");
                holder.permits.release(); // the step ends; the next one admits the request
                permits++;
                awaitTrue(() -> narrow().activeSequences() == 2, "the request to run beside the held job");
            } // the client leaves mid-generation
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (count("completions", "narrow", "499") == closedBefore) {
                assertThat(System.nanoTime())
                        .as("the request to be counted as closed")
                        .isLessThan(deadline);
                if (permits < maxTokens - 100) {
                    holder.permits.release(); // one step; cancelled work leaves between steps
                    permits++;
                }
                Thread.sleep(10);
            }
        } finally {
            holder.free();
            held.cancel();
        }
        assertThat(count("completions", "narrow", "499")).isEqualTo(closedBefore + 1);
        assertThat(count("completions", "narrow", "200")).isEqualTo(okBefore);
    }

    private ReplicaState narrow() {
        return service.host().state().replicas().stream()
                .filter(r -> r.id().equals("default/narrow#0"))
                .findFirst()
                .orElseThrow();
    }

    @Test
    void promptsAreEncodedOnAWorkerAndTooLongOnesRefusedUnread() throws Exception {
        List<String> threads = Collections.synchronizedList(new ArrayList<>());
        List<Boolean> onEventLoop = Collections.synchronizedList(new ArrayList<>());
        OpenAiRoutes.encodingThreadObserver = t -> {
            threads.add(t.getName());
            onEventLoop.add(Context.isOnEventLoopThread());
        };
        String longPrompt = "Once upon a time there was a little girl. ".repeat(5_000);
        HttpResponse<String> r = postJson(
                "/v1/completions",
                JSON.createObjectNode()
                        .put("model", "stories")
                        .put("prompt", longPrompt)
                        .toString());
        // encoded (to far more than the 512 tokens of the context), on a thread that is not an event loop
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        assertThat(error(r).path("code").asText()).isEqualTo("context_length_exceeded");
        assertThat(threads).hasSize(1);
        assertThat(onEventLoop).as("encoded on %s", threads).containsExactly(false);
        HttpResponse<String> chat = postJson(
                "/v1/chat/completions",
                JSON.createObjectNode()
                        .put("model", "stories")
                        .set(
                                "messages",
                                JSON.createArrayNode()
                                        .add(JSON.createObjectNode()
                                                .put("role", "user")
                                                .put("content", longPrompt)))
                        .toString());
        assertThat(chat.statusCode()).as(chat.body()).isEqualTo(400);
        assertThat(onEventLoop).as("encoded on %s", threads).containsExactly(false, false);

        int max = OpenAiRoutes.Limits.fromConfig().maxPromptChars();
        assertThat(max).isEqualTo(OpenAiRoutes.DEFAULT_MAX_PROMPT_CHARS);
        HttpResponse<String> tooLong = postJson(
                "/v1/completions",
                JSON.createObjectNode()
                        .put("model", "stories")
                        .put("prompt", "x".repeat(max + 1))
                        .toString());
        assertThat(tooLong.statusCode()).as(tooLong.body()).isEqualTo(400);
        assertThat(error(tooLong).path("code").asText()).isEqualTo("prompt_too_long");
        assertThat(error(tooLong).path("message").asText())
                .contains(Integer.toString(max + 1))
                .contains(Integer.toString(max));
        assertThat(threads).as("a prompt over the limit is never encoded").hasSize(2);
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }
}
