package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.DeviceKind;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Benchmark of a running host (a main, not a test): aggregate tokens/s and time to first token at 1, 4 and 16
 * concurrent streams; time from an assignment that adds a replica of a loaded model to that replica's first token;
 * KV bytes the replica reserved against the planner's estimate, and the process's RSS growth.
 *
 * <pre>
 * STOWAGE_ADMIN_TOKEN=bench java -Dstowage.threads=1 -jar runtime-image/target/quarkus-app/quarkus-run.jar &amp;
 * java -cp runtime-image/target/test-classes:runtime-image/target/classes:'runtime-image/target/lib/*' \
 *     io.stowage.runtime.server.ServerBench [--model FILE.gguf] [--tokens N] [--api URL] [--admin URL]
 * </pre>
 */
public final class ServerBench {
    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    private static final HttpClient HTTP =
            HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    private ServerBench() {}

    record Run(long ttftNanos, int tokens) {}

    public static void main(String[] args) throws Exception {
        Path model = Path.of("runtime-image/src/test/resources/models/stories260K-q8_0.gguf");
        int tokens = 128;
        String api = "http://localhost:8080";
        String admin = "http://localhost:8081";
        String token = System.getenv().getOrDefault(HostApi.TOKEN_ENV, "bench");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = Path.of(args[++i]);
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--api" -> api = args[++i];
                case "--admin" -> admin = args[++i];
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        ModelDescription d = ModelDescription.from(GgufReader.readFile(model));
        String digest = "bench:" + model.toAbsolutePath();
        ModelAssignment m = new ModelAssignment(digest, model.toAbsolutePath().toString(), null, 0, 0);
        int ctx = (int) Math.min(d.contextLength(), 512);
        ReplicaAssignment r0 = new ReplicaAssignment("bench/a#0", "bench/a", "a", digest, ctx, 16, "f16", 0);
        put(admin, token, new HostAssignment(1, 0, List.of(m), List.of(r0)));
        awaitReady(admin, token, "a");
        System.out.printf(
                Locale.ROOT,
                "model %s (%s %s), %d tokens per stream, greedy%n",
                model.getFileName(),
                d.architecture(),
                d.quantization(),
                tokens);
        stream(api, "a", 8, 1); // warm-up
        for (int streams : new int[] {1, 4, 16}) {
            long t0 = System.nanoTime();
            List<Run> runs = parallel(api, "a", tokens, streams);
            double secs = (System.nanoTime() - t0) / 1e9;
            long total = runs.stream().mapToLong(Run::tokens).sum();
            long[] ttft = runs.stream().mapToLong(Run::ttftNanos).sorted().toArray();
            System.out.printf(
                    Locale.ROOT,
                    "streams %2d: %7.1f tok/s aggregate, TTFT p50 %7.2f ms, p99 %7.2f ms (%d tokens in %.2f s)%n",
                    streams,
                    total / secs,
                    pct(ttft, 50) / 1e6,
                    pct(ttft, 99) / 1e6,
                    total,
                    secs);
        }

        HostState before = state(admin, token);
        ReplicaAssignment r1 = new ReplicaAssignment("bench/b#0", "bench/b", "b", digest, ctx, 16, "f16", 0);
        long t0 = System.nanoTime();
        put(admin, token, new HostAssignment(2, 0, List.of(m), List.of(r0, r1)));
        Run first = stream(api, "b", 1, 1);
        long addToFirst = System.nanoTime() - t0;
        System.out.printf(
                Locale.ROOT,
                "add replica of a loaded model -> its first token: %.1f ms (request TTFT %.1f ms)%n",
                addToFirst / 1e6,
                first.ttftNanos() / 1e6);
        parallel(api, "b", tokens, 16); // touch the new replica's KV
        HostState after = state(admin, token);
        long kv = after.replicas().stream()
                .filter(r -> r.id().equals("bench/b#0"))
                .mapToLong(ReplicaState::kvReservedBytes)
                .sum();
        long planned = MemoryModel.withDefaults()
                .estimate(d.shape(), ctx, 16, KvCacheType.F16, DeviceKind.CPU)
                .kvBytesPerReplica();
        System.out.printf(
                Locale.ROOT,
                "bytes added per replica: KV reserved %d, planner estimate %d (error %+.3f%%); device used %d -> %d"
                        + " (+%d); process RSS %d -> %d (+%d), weights counted %d time(s)%n",
                kv,
                planned,
                100.0 * (kv - planned) / planned,
                before.device().usedBytes(),
                after.device().usedBytes(),
                after.device().usedBytes() - before.device().usedBytes(),
                before.processRssBytes(),
                after.processRssBytes(),
                after.processRssBytes() - before.processRssBytes(),
                after.models().size());
        put(admin, token, new HostAssignment(3, 0, List.of(), List.of()));
    }

    private static long pct(long[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    private static List<Run> parallel(String api, String model, int tokens, int streams) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(streams);
        try {
            List<Future<Run>> fs = new ArrayList<>();
            for (int i = 0; i < streams; i++) {
                fs.add(pool.submit(() -> stream(api, model, tokens, 1)));
            }
            List<Run> out = new ArrayList<>();
            for (Future<Run> f : fs) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** One streamed completion; counts content chunks (one per token) and the time to the first. */
    private static Run stream(String api, String model, int tokens, int attempt) throws Exception {
        String body = "{\"model\":\"" + model + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":" + tokens
                + ",\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
        long t0 = System.nanoTime();
        HttpResponse<java.io.InputStream> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(api + "/v1/completions"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) {
            throw new IllegalStateException(
                    "HTTP " + r.statusCode() + ": " + new String(r.body().readAllBytes(), StandardCharsets.UTF_8));
        }
        long ttft = -1;
        int generated = 0;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                    continue;
                }
                if (ttft < 0) {
                    ttft = System.nanoTime() - t0;
                }
                JsonNode usage = JSON.readTree(line.substring(6)).get("usage");
                if (usage != null && !usage.isNull()) {
                    generated = usage.get("completion_tokens").asInt();
                }
            }
        }
        return new Run(ttft, generated);
    }

    private static void put(String admin, String token, HostAssignment a) throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(admin + HostApi.ASSIGNMENT_PATH))
                        .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                        .header("Content-Type", "application/json")
                        .PUT(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(a)))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("PUT assignment: HTTP " + r.statusCode() + ": " + r.body());
        }
    }

    private static HostState state(String admin, String token) throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(admin + HostApi.STATE_PATH))
                        .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return JSON.readValue(r.body(), HostState.class);
    }

    private static void awaitReady(String admin, String token, String served) throws Exception {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (System.nanoTime() < deadline) {
            HostState s = state(admin, token);
            if (s.replicas().stream().anyMatch(r -> r.servedModelName().equals(served) && r.ready())) {
                return;
            }
            if (s.models().stream().anyMatch(m -> m.reason() != null)) {
                throw new IllegalStateException(
                        "model failed: " + Arrays.toString(s.models().toArray()));
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("replica of " + served + " not ready after 120 s");
    }
}
