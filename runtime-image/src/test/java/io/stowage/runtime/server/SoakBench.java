package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.placement.manifest.ByteSize;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Soak benchmark of a runtime host (a main, not a test, not in the default build): minutes of mixed traffic against
 * the test model on 127.0.0.1 — streams read to the end, streams the client drops after a few tokens, chat requests,
 * bursts at a one-sequence replica that must answer 429, requests to a model whose file is not a GGUF (failed, 503)
 * beside the healthy ones, requests that are invalid (400), and a replica that the assignment adds and removes every
 * few seconds while requests reach it. It reports the host's RSS and KV in use at the start and at the end, the
 * requests completed and the outcomes by kind, and fails (exit 1) on an unexpected outcome (a 5xx other than the
 * documented 503s, a hung or broken stream, an I/O error) or on a leak: KV still in use, sequences still active or
 * queued, KV reservations not back to their starting size once traffic stops, or RSS grown by more than a quarter.
 *
 * <pre>
 * ./mvnw -B -ntp -q -pl runtime-image -am install -DskipTests &amp;&amp; ./mvnw -B -ntp -q -pl runtime-image test-compile
 * java -cp runtime-image/target/test-classes:runtime-image/target/classes:'runtime-image/target/lib/*' \
 *     io.stowage.runtime.server.SoakBench [--minutes 10 | --seconds S] [--clients 8] [--seed 1]
 *     [--api URL --admin URL]   (a host already running, token in STOWAGE_ADMIN_TOKEN; default: starts its own)
 * </pre>
 */
public final class SoakBench {
    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    private static final HttpClient HTTP = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    /** A request (or a stream's next event) slower than this counts as hung. */
    private static final Duration HANG = Duration.ofSeconds(60);

    private static final Path MODEL = Path.of("runtime-image/src/test/resources/models/stories260K-q8_0.gguf");
    private static final String MODEL_SHA = "a5eec7f42c2234ec2a615d92ad083abcec38788b2d415802bc089dffaba9a5a7";
    private static final Path QUARKUS_JAR = Path.of("runtime-image/target/quarkus-app/quarkus-run.jar");

    private final String api;
    private final String admin;
    private final String token;
    private final Map<String, LongAdder> outcomes = new ConcurrentSkipListMap<>();
    private final Map<String, LongAdder> unexpected = new ConcurrentSkipListMap<>();
    private final LongAdder tokens = new LongAdder();
    private final AtomicLong generation = new AtomicLong(1);
    private final ScheduledExecutorService watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "soak-watchdog");
        t.setDaemon(true);
        return t;
    });
    private ModelAssignment stories;
    private ModelAssignment broken;
    /** Loads and serves, but NaN in the embedding of one token: a request that feeds that token fails while running. */
    private ModelAssignment poisoned;

    /** The token whose embedding row is NaN in the poisoned model: "Once" in stories260K's vocabulary. */
    private static final int POISON_TOKEN = 403;

    private static final Path SOAK_DIR = Path.of("runtime-image/target/soak");

    private SoakBench(String api, String admin, String token) {
        this.api = api;
        this.admin = admin;
        this.token = token;
    }

    public static void main(String[] args) throws Exception {
        long seconds = 600;
        int clients = 8;
        long seed = 1;
        String api = null;
        String admin = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length && !a.equals("--help")) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            switch (a) {
                case "--minutes" -> seconds = Math.round(Double.parseDouble(args[++i]) * 60);
                case "--seconds" -> seconds = Long.parseLong(args[++i]);
                case "--clients" -> clients = Integer.parseInt(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                case "--api" -> api = args[++i];
                case "--admin" -> admin = args[++i];
                default ->
                    throw new IllegalArgumentException("unknown option " + a
                            + "; options: --minutes M | --seconds S, --clients N, --seed N, --api URL --admin URL");
            }
        }
        if (seconds < 10 || seconds > 24 * 3600 || clients < 2 || clients > 256) {
            throw new IllegalArgumentException("the soak runs 10 s to 24 h with 2 to 256 clients; got " + seconds
                    + " s and " + clients + " clients");
        }
        if ((api == null) != (admin == null)) {
            throw new IllegalArgumentException("--api and --admin go together (a running host), or neither");
        }
        if (!Files.isRegularFile(MODEL)) {
            throw new IllegalStateException(MODEL + " is missing: run the soak from the repository root");
        }
        Process host = null;
        Path hostLog = null;
        String token = System.getenv().getOrDefault(HostApi.TOKEN_ENV, "soak");
        if (api == null) {
            if (!Files.isRegularFile(QUARKUS_JAR)) {
                throw new IllegalStateException(QUARKUS_JAR + " is missing: build it first with ./mvnw -B -ntp -q -pl"
                        + " runtime-image -am install -DskipTests (and run from the repository root)");
            }
            int apiPort = freePort();
            int adminPort = freePort();
            Files.createDirectories(SOAK_DIR);
            hostLog = Path.of("runtime-image/target/soak/host.log");
            ProcessBuilder pb = new ProcessBuilder(
                            Path.of(System.getProperty("java.home"), "bin", "java")
                                    .toString(),
                            "--enable-native-access=ALL-UNNAMED",
                            // the whole heap committed and touched at start: RSS growth is then native memory
                            "-Xms192m",
                            "-Xmx192m",
                            "-XX:+AlwaysPreTouch",
                            "-Dstowage.queue-per-replica=4",
                            "-Dstowage.budget-bytes=" + (1L << 30),
                            "-Dquarkus.log.console.json.enabled=false",
                            "-jar",
                            QUARKUS_JAR.toString(),
                            HostApi.HOST_COMMAND,
                            "--host",
                            "127.0.0.1",
                            "--port",
                            Integer.toString(apiPort),
                            "--admin-port",
                            Integer.toString(adminPort))
                    .redirectErrorStream(true)
                    .redirectOutput(hostLog.toFile());
            pb.environment().put(HostApi.TOKEN_ENV, token);
            // the host reads model files only under its roots: the test model's folder and the broken model's
            pb.environment()
                    .put(
                            HostApi.MODEL_ROOTS_ENV,
                            MODEL.toAbsolutePath().getParent() + "," + SOAK_DIR.toAbsolutePath() + ","
                                    + System.getProperty("java.io.tmpdir"));
            host = pb.start();
            api = "http://127.0.0.1:" + apiPort;
            admin = "http://127.0.0.1:" + adminPort;
        }
        int rc;
        try {
            rc = new SoakBench(api, admin, token).run(seconds, clients, seed, hostLog);
        } finally {
            if (host != null) {
                host.destroy();
                if (!host.waitFor(30, TimeUnit.SECONDS)) {
                    host.destroyForcibly();
                }
            }
        }
        System.exit(rc);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private int run(long seconds, int clients, long seed, Path hostLog) throws Exception {
        awaitLive(hostLog);
        Path brokenFile = Files.createTempFile("stowage-soak-broken", ".gguf");
        brokenFile.toFile().deleteOnExit();
        Files.writeString(brokenFile, "this file is not a GGUF model: the host must fail this model and only it\n");
        stories = new ModelAssignment(
                "sha256:" + MODEL_SHA, MODEL.toAbsolutePath().toString(), MODEL_SHA, 0, 0);
        broken = new ModelAssignment("soak:broken", brokenFile.toString(), null, 0, 0);
        Path poisonedFile = io.stowage.runtime.engine.NanModels.nanToken(SOAK_DIR.toAbsolutePath(), POISON_TOKEN);
        poisoned = new ModelAssignment("soak:poisoned", poisonedFile.toString(), null, 0, 0);
        put(assignment(false, false));
        HostState ready = awaitState(
                s -> replicasReady(s, "stories", "tight") && phase(s, broken.digest()) == ModelPhase.FAILED,
                "stories and tight ready, broken FAILED");
        String brokenReason = ready.models().stream()
                .filter(m -> m.digest().equals(broken.digest()))
                .map(ModelState::reason)
                .findFirst()
                .orElse("?");
        System.out.printf(
                Locale.ROOT,
                "soak: %d s, %d clients, seed %d, host %s; model stories (2 replicas x 4 sequences), tight (1 sequence,"
                        + " queue 4), broken (%s), poisoned (NaN in the embedding of token %d: its requests fail while"
                        + " running, beside healthy ones; loaded afresh in every other 10 s window), churn (added and"
                        + " removed every 10 s)%n",
                seconds,
                clients,
                seed,
                api,
                brokenReason,
                POISON_TOKEN);
        // Warm-up with the same traffic (JIT, buffers, heap growth), so that the start figures are those of a host
        // in service, not of an idle one: a tenth of the run, 10 s to 60 s.
        long warmup = Math.max(10, Math.min(60, seconds / 10));
        traffic(warmup, clients, seed + 7919, false);
        put(assignment(false, false));
        HostState start = awaitState(SoakBench::quiet, "the warm-up's sequences to end");
        outcomes.clear();
        unexpected.clear();
        tokens.reset();
        double elapsed = traffic(seconds, clients, seed, true);

        // Quiet: every sequence finished or cancelled, then the starting assignment again.
        put(assignment(false, false));
        HostState end = awaitState(SoakBench::quiet, "no sequence active or queued and no KV in use");
        watchdog.shutdownNow();
        System.out.printf(
                Locale.ROOT,
                "poisoned model at the end: %s%n",
                end.models().stream()
                        .filter(m -> m.digest().equals(poisoned.digest()))
                        .map(m -> m.phase() + (m.reason() != null ? " (" + m.reason() + ")" : ""))
                        .findFirst()
                        .orElse("not assigned (it is present in every other 10 s window of the run)"));

        System.out.printf(
                Locale.ROOT,
                "%nrequests completed: %d in %.1f s (%.1f/s), %d tokens streamed or returned%n",
                total(outcomes) - count(outcomes, "assignment change"),
                elapsed,
                (total(outcomes) - count(outcomes, "assignment change")) / elapsed,
                tokens.sum());
        System.out.println("outcomes by kind:");
        outcomes.forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-44s %8d%n", k, v.sum()));
        System.out.println("unexpected:" + (unexpected.isEmpty() ? " none" : ""));
        unexpected.forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-44s %8d%n", k, v.sum()));
        System.out.printf(Locale.ROOT, "%-24s %14s %14s%n", "", "start", "end");
        row("process RSS", start.processRssBytes(), end.processRssBytes());
        row("KV in use", kvUsed(start), kvUsed(end));
        row("KV reserved", kvReserved(start), kvReserved(end));
        row("device used", start.device().usedBytes(), end.device().usedBytes());
        System.out.printf(Locale.ROOT, "%-24s %14d %14d%n", "active+queued sequences", active(start), active(end));

        List<String> leaks = new ArrayList<>();
        if (kvUsed(end) != 0) {
            leaks.add("KV still in use: " + kvUsed(end) + " bytes");
        }
        if (active(end) != 0) {
            leaks.add(active(end) + " sequences still active or queued");
        }
        if (kvReserved(end) != kvReserved(start)) {
            leaks.add("KV reserved " + kvReserved(start) + " -> " + kvReserved(end) + " bytes for the same assignment");
        }
        long rssGrowth = end.processRssBytes() - start.processRssBytes();
        if (rssGrowth > start.processRssBytes() / 4) {
            leaks.add("RSS grew by " + ByteSize.human(rssGrowth) + " (more than a quarter of "
                    + ByteSize.human(start.processRssBytes()) + ")");
        }
        if (hostLog != null) {
            long errors = Files.readAllLines(hostLog, StandardCharsets.UTF_8).stream()
                    .filter(l -> l.contains(" ERROR ") || l.contains("Uncaught exception"))
                    // the poisoned model reported failed after its requests kept failing: what it is there for
                    .filter(l -> !l.contains("model " + poisoned.digest() + " failed and serves no more requests"))
                    .count();
            if (errors > 0) {
                leaks.add(errors + " ERROR lines in the host log " + hostLog);
            }
        }
        if (leaks.isEmpty() && unexpected.isEmpty()) {
            System.out.println("verdict: PASS (no leak, no unexpected outcome)");
            return 0;
        }
        System.out.println("verdict: FAIL: " + String.join("; ", leaks)
                + (unexpected.isEmpty()
                        ? ""
                        : (leaks.isEmpty() ? "" : "; ") + total(unexpected) + " unexpected outcomes"));
        return 1;
    }

    /** Runs the clients and the assignment churn for this long; returns the seconds it took. */
    private double traffic(long seconds, int clients, long seed, boolean progress) throws Exception {
        long t0 = System.nanoTime();
        long deadline = t0 + TimeUnit.SECONDS.toNanos(seconds);
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            SplittableRandom random = new SplittableRandom(seed * 1000 + c);
            Thread t = new Thread(() -> client(random, deadline), "soak-client-" + c);
            t.start();
            threads.add(t);
        }
        Thread churn = new Thread(
                () -> {
                    boolean with = false;
                    while (!stop.get() && System.nanoTime() < deadline) {
                        sleep(Math.min(10_000, Math.max(0, (deadline - System.nanoTime()) / 1_000_000)));
                        if (System.nanoTime() >= deadline) {
                            break;
                        }
                        with = !with;
                        try {
                            put(assignment(with, !with)); // the poisoned model comes back fresh every other change
                            tally(outcomes, "assignment change");
                        } catch (Exception e) {
                            tally(unexpected, "assignment change failed: " + e.getMessage());
                        }
                    }
                },
                "soak-churn");
        churn.start();
        long lastReport = t0;
        while (threads.stream().anyMatch(Thread::isAlive)) {
            Thread.sleep(200);
            if (progress && System.nanoTime() - lastReport > TimeUnit.SECONDS.toNanos(60)) {
                lastReport = System.nanoTime();
                HostState s = state();
                System.out.printf(
                        Locale.ROOT,
                        "  %4.0f s: %d requests, %d tokens, RSS %s, KV in use %s%n",
                        (lastReport - t0) / 1e9,
                        total(outcomes),
                        tokens.sum(),
                        ByteSize.human(s.processRssBytes()),
                        ByteSize.human(kvUsed(s)));
            }
        }
        stop.set(true);
        churn.join();
        return (System.nanoTime() - t0) / 1e9;
    }

    private static boolean quiet(HostState s) {
        return active(s) == 0 && kvUsed(s) == 0 && replicasReady(s, "stories", "tight");
    }

    private static void row(String what, long start, long end) {
        System.out.printf(
                Locale.ROOT,
                "%-24s %14s %14s  (%+d bytes)%n",
                what,
                ByteSize.human(start),
                ByteSize.human(end),
                end - start);
    }

    private HostAssignment assignment(boolean withChurn, boolean withPoisoned) {
        List<ReplicaAssignment> replicas = new ArrayList<>(List.of(
                new ReplicaAssignment("soak/stories#0", "soak/stories", "stories", stories.digest(), 512, 4, "f16", 0),
                new ReplicaAssignment("soak/stories#1", "soak/stories", "stories", stories.digest(), 512, 4, "f16", 0),
                new ReplicaAssignment("soak/tight#0", "soak/tight", "tight", stories.digest(), 256, 1, "q8_0", 0),
                new ReplicaAssignment("soak/broken#0", "soak/broken", "broken", broken.digest(), 128, 1, "f16", 0)));
        List<ModelAssignment> models = new ArrayList<>(List.of(stories, broken));
        if (withPoisoned) {
            models.add(poisoned);
            replicas.add(new ReplicaAssignment(
                    "soak/poisoned#0", "soak/poisoned", "poisoned", poisoned.digest(), 256, 4, "f16", 0));
        }
        if (withChurn) {
            replicas.add(
                    new ReplicaAssignment("soak/churn#0", "soak/churn", "churn", stories.digest(), 256, 2, "f16", 0));
        }
        return new HostAssignment(generation.incrementAndGet(), 0, models, replicas);
    }

    /**
     * One client: picks a kind of request at random until the deadline. A full queue (429) is a fair answer to any
     * request for a served model: a dropped stream's sequence ends a moment after its client has moved on.
     */
    private void client(SplittableRandom random, long deadline) {
        while (System.nanoTime() < deadline) {
            int pick = random.nextInt(100);
            int maxTokens = 16 + random.nextInt(112);
            try {
                if (pick < 35) {
                    stream("stories", maxTokens, -1);
                } else if (pick < 50) {
                    stream("stories", 200, 1 + random.nextInt(5)); // the client drops the stream
                } else if (pick < 65) {
                    completion("stories", "chat", true, maxTokens, Set.of(200, 429));
                } else if (pick < 75) {
                    burst("tight", 8);
                } else if (pick < 78) {
                    completion("broken", "broken model", false, 8, Set.of(503));
                } else if (pick < 80) {
                    // feeds the poisoned token: fails while running (500), or 503 once the model is reported failed
                    completion("poisoned", "poisoned model, poisoned prompt", false, 8, Set.of(500, 503, 429, 404));
                } else if (pick < 82) {
                    // a healthy prompt; fails (500) only if the model generates the poisoned token
                    send(
                            "poisoned model, healthy prompt",
                            "/v1/completions",
                            "{\"model\": \"poisoned\", \"prompt\": \"The dog ran\", \"max_tokens\": " + maxTokens
                                    + ", \"temperature\": 0.8}",
                            Set.of(200, 500, 503, 429, 404));
                } else if (pick < 92) {
                    completion("churn", "churn", random.nextBoolean(), maxTokens, Set.of(200, 404, 429, 503));
                } else {
                    invalid(random.nextInt(3));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (Exception e) {
                tally(unexpected, "client error: " + e.getClass().getSimpleName());
            }
        }
    }

    private static String body(String model, boolean chat, boolean stream, int maxTokens) {
        String input = chat
                ? "\"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]"
                : "\"prompt\": \"Once upon a time\"";
        return "{\"model\": \"" + model + "\", " + input + ", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0.8, \"stream\": " + stream
                + (stream ? ", \"stream_options\": {\"include_usage\": true}" : "") + "}";
    }

    private HttpRequest request(String path, String body) {
        return HttpRequest.newBuilder(URI.create(api + path))
                .header("Content-Type", "application/json")
                .timeout(HANG)
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
    }

    private void classify(String what, int status, String body, Set<Integer> expected) {
        String code = "";
        if (status != 200) {
            try {
                JsonNode e = JSON.readTree(body).path("error");
                code = " "
                        + (e.path("code").isTextual()
                                ? e.path("code").asText()
                                : e.path("type").asText());
            } catch (IOException e) {
                code = " (not JSON)";
            }
        } else {
            try {
                tokens.add(JSON.readTree(body).at("/usage/completion_tokens").asLong());
            } catch (IOException e) {
                tally(unexpected, what + ": 200 with a body that is not JSON");
                return;
            }
        }
        String kind = what + ": " + status + code;
        tally(expected.contains(status) ? outcomes : unexpected, kind);
    }

    private void completion(String model, String what, boolean chat, int maxTokens, Set<Integer> expected)
            throws Exception {
        send(what, chat ? "/v1/chat/completions" : "/v1/completions", body(model, chat, false, maxTokens), expected);
    }

    private void send(String what, String path, String body, Set<Integer> expected) throws Exception {
        try {
            HttpResponse<String> r = HTTP.send(request(path, body), HttpResponse.BodyHandlers.ofString());
            classify(what, r.statusCode(), r.body(), expected);
        } catch (java.net.http.HttpTimeoutException e) {
            tally(unexpected, what + ": no answer within " + HANG.toSeconds() + " s (hung)");
        } catch (IOException e) {
            tally(unexpected, what + ": I/O error " + e.getClass().getSimpleName());
        }
    }

    /** Requests at once at a replica of one sequence and a queue of 4: the rest must be refused with 429. */
    private void burst(String model, int n) {
        List<CompletableFuture<HttpResponse<String>>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            fs.add(HTTP.sendAsync(
                    request("/v1/completions", body(model, false, false, 24)), HttpResponse.BodyHandlers.ofString()));
        }
        for (CompletableFuture<HttpResponse<String>> f : fs) {
            try {
                HttpResponse<String> r = f.get();
                if (r.statusCode() == 429
                        && r.headers().firstValue("Retry-After").isEmpty()) {
                    tally(unexpected, "burst: 429 without Retry-After");
                }
                classify("burst at " + model, r.statusCode(), r.body(), Set.of(200, 429));
            } catch (Exception e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                tally(unexpected, "burst: " + c.getClass().getSimpleName());
            }
        }
    }

    /** A streamed completion read to [DONE], or dropped by the client after {@code dropAfter} events. */
    private void stream(String model, int maxTokens, int dropAfter) throws Exception {
        String what = dropAfter > 0 ? "stream dropped by the client" : "stream";
        HttpResponse<InputStream> r;
        try {
            r = HTTP.send(
                    request("/v1/completions", body(model, false, true, maxTokens)),
                    HttpResponse.BodyHandlers.ofInputStream());
        } catch (java.net.http.HttpTimeoutException e) {
            tally(unexpected, what + ": no answer within " + HANG.toSeconds() + " s (hung)");
            return;
        } catch (IOException e) {
            tally(unexpected, what + ": I/O error " + e.getClass().getSimpleName());
            return;
        }
        InputStream in = r.body();
        if (r.statusCode() != 200) {
            classify(what, r.statusCode(), new String(in.readAllBytes(), StandardCharsets.UTF_8), Set.of(200, 429));
            return;
        }
        AtomicBoolean hung = new AtomicBoolean();
        int events = 0;
        boolean done = false;
        long usage = 0;
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            while (true) {
                // a stream that sends nothing for this long is hung: closing it ends the read below
                ScheduledFuture<?> timer = watchdog.schedule(
                        () -> {
                            hung.set(true);
                            try {
                                in.close();
                            } catch (IOException ignored) {
                                // the read fails either way
                            }
                        },
                        HANG.toMillis(),
                        TimeUnit.MILLISECONDS);
                String line = lines.readLine();
                timer.cancel(false);
                if (line == null) {
                    break;
                }
                if (!line.startsWith("data: ")) {
                    continue;
                }
                if (line.equals("data: [DONE]")) {
                    done = true;
                    continue;
                }
                events++;
                JsonNode event = JSON.readTree(line.substring(6));
                if (event.has("error")) {
                    tally(
                            unexpected,
                            what + ": error event " + event.at("/error/type").asText());
                    return;
                }
                if (event.path("usage").isObject()) {
                    usage = event.at("/usage/completion_tokens").asLong();
                }
                if (dropAfter > 0 && events >= dropAfter) {
                    tokens.add(events);
                    tally(outcomes, what + ": 200, dropped");
                    return; // closing the reader closes the connection: the host must cancel the sequence
                }
            }
        } catch (IOException e) {
            tally(
                    unexpected,
                    what
                            + (hung.get()
                                    ? ": no event within " + HANG.toSeconds() + " s (hung)"
                                    : ": I/O error " + e.getClass().getSimpleName()));
            return;
        }
        if (!done) {
            tally(unexpected, what + ": ended without [DONE]");
            return;
        }
        tokens.add(usage);
        tally(outcomes, what + ": 200, read to [DONE]");
    }

    private void invalid(int which) throws Exception {
        String body = switch (which) {
            case 0 -> "{\"model\": \"stories\", \"prompt\": ";
            case 1 -> "{\"model\": \"stories\", \"prompt\": \"x\", \"temperature\": 7}";
            default -> "{\"model\": \"stories\", \"prompt\": \"x\", \"max_tokens\": 100000}";
        };
        HttpResponse<String> r = HTTP.send(request("/v1/completions", body), HttpResponse.BodyHandlers.ofString());
        classify("invalid request", r.statusCode(), r.body(), Set.of(400));
    }

    private static void tally(Map<String, LongAdder> map, String kind) {
        map.computeIfAbsent(kind, k -> new LongAdder()).increment();
    }

    private static long count(Map<String, LongAdder> map, String kind) {
        LongAdder a = map.get(kind);
        return a == null ? 0 : a.sum();
    }

    private static long total(Map<String, LongAdder> map) {
        return map.values().stream().mapToLong(LongAdder::sum).sum();
    }

    private static long kvUsed(HostState s) {
        return s.replicas().stream().mapToLong(ReplicaState::kvUsedBytes).sum();
    }

    private static long kvReserved(HostState s) {
        return s.replicas().stream().mapToLong(ReplicaState::kvReservedBytes).sum();
    }

    private static long active(HostState s) {
        return s.replicas().stream()
                .mapToLong(r -> r.activeSequences() + r.queuedRequests())
                .sum();
    }

    private static boolean replicasReady(HostState s, String... served) {
        for (String name : served) {
            if (s.replicas().stream().noneMatch(r -> r.servedModelName().equals(name) && r.ready())) {
                return false;
            }
        }
        return true;
    }

    private static ModelPhase phase(HostState s, String digest) {
        return s.models().stream()
                .filter(m -> m.digest().equals(digest))
                .map(ModelState::phase)
                .findFirst()
                .orElse(null);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void awaitLive(Path hostLog) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline) {
            try {
                HttpResponse<String> r = HTTP.send(
                        HttpRequest.newBuilder(URI.create(api + HostApi.LIVE_PATH))
                                .timeout(Duration.ofSeconds(5))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException("the host at " + api + " is not live after 120 s"
                + (hostLog != null ? "; its log: " + hostLog.toAbsolutePath() : ""));
    }

    private HostState awaitState(java.util.function.Predicate<HostState> condition, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        HostState s = state();
        while (!condition.test(s)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("timed out after 60 s waiting for " + what + "; state: " + s);
            }
            Thread.sleep(50);
            s = state();
        }
        return s;
    }

    private void put(HostAssignment a) throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(admin + HostApi.ASSIGNMENT_PATH))
                        .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                        .header("Content-Type", "application/json")
                        .timeout(HANG)
                        .PUT(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(a)))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("PUT assignment: HTTP " + r.statusCode() + ": " + r.body());
        }
    }

    private HostState state() throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(admin + HostApi.STATE_PATH))
                        .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token)
                        .timeout(HANG)
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("GET state: HTTP " + r.statusCode() + ": " + r.body());
        }
        return JSON.readValue(r.body(), HostState.class);
    }
}
