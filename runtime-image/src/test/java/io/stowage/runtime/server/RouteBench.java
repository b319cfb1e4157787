package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark of the confidence cascade (a main, not a test): a mixed prompt set sent to a two-tier route (stories260K
 * q8_0, then f32) and to a one-tier route that sends everything to the large tier; prints each route's escalation
 * rate, tokens and cost per 1,000 successful requests (GPU-seconds: latency × costWeight), as the router's own totals
 * report them ({@code GET /v1/routes}). Each prompt goes once to each deployment first, outside the routes, as a
 * warm-up. Both test models are the same size, so {@code --large-weight} stands in for a larger tier's cost (e.g. 8
 * for a model that needs eight times the GPU time per second of serving).
 *
 * <pre>
 * ./stowage bench-route [--requests N] [--threshold P] [--large-weight W] [--max-tokens N]
 * </pre>
 *
 * It starts local mode ({@code serve -f}) on manifests it writes under runtime-image/target/route-bench, so run it
 * from the repository root after the package step.
 */
public final class RouteBench {
    private static final Path QUARKUS_JAR = Path.of("runtime-image/target/quarkus-app/quarkus-run.jar");
    private static final Path MODELS = Path.of("runtime-image/src/test/resources/models");
    private static final Path DIR = Path.of("runtime-image/target/route-bench");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    /** Routine story openings and harder, off-distribution text: the mix the cascade sorts. */
    static final List<String> PROMPTS = List.of(
            "Once upon a time",
            "One day, a little girl named Lily",
            "Tom and his mom went to the park",
            "The cat sat on the",
            "Once upon a time, there was a big dog",
            "Ben liked to play with his ball",
            "The sun was shining and the birds",
            "Sara had a red balloon",
            "Explain quantum chromodynamics in detail",
            "SELECT * FROM users WHERE id =",
            "xq zv kk pl",
            "The derivative of x squared is",
            "Translate to French: the meeting is postponed",
            "def fibonacci(n):",
            "Lily and Ben were best friends",
            "The little bird could not fly");

    private RouteBench() {}

    public static void main(String[] args) throws Exception {
        int requests = 64;
        double threshold = 0.5;
        double largeWeight = 1.0;
        int maxTokens = 24;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                System.out.println("usage: ./stowage bench-route [--requests N] [--threshold P] [--large-weight W]"
                        + " [--max-tokens N]");
                return;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            switch (a) {
                case "--requests" -> requests = Integer.parseInt(args[++i]);
                case "--threshold" -> threshold = Double.parseDouble(args[++i]);
                case "--large-weight" -> largeWeight = Double.parseDouble(args[++i]);
                case "--max-tokens" -> maxTokens = Integer.parseInt(args[++i]);
                default ->
                    throw new IllegalArgumentException("unknown option " + a
                            + "; options: --requests N, --threshold P, --large-weight W, --max-tokens N");
            }
        }
        if (requests < 1
                || requests > 100_000
                || !(threshold > 0 && threshold <= 1)
                || !(largeWeight >= 0)
                || maxTokens < 1
                || maxTokens > 256) {
            throw new IllegalArgumentException(
                    "need 1..100000 requests, a threshold in (0, 1], a large-weight >= 0" + " and 1..256 max tokens");
        }
        if (!Files.isRegularFile(QUARKUS_JAR)) {
            throw new IllegalStateException(QUARKUS_JAR + " is missing: build it first (./mvnw -B -ntp -q -pl"
                    + " runtime-image -am package -DskipTests) and run from the repository root");
        }
        Files.createDirectories(DIR);
        Files.writeString(DIR.resolve("route.yaml"), manifests(threshold, largeWeight));
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Path log = DIR.resolve("serve.log");
        Process serve = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "--enable-native-access=ALL-UNNAMED",
                        "-Dstowage.threads=1",
                        "-jar",
                        QUARKUS_JAR.toString(),
                        "serve",
                        "-f",
                        DIR.toString(),
                        "--port",
                        Integer.toString(port))
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        try {
            URI base = URI.create("http://127.0.0.1:" + port);
            awaitServing(base, serve, log);
            // warm-up, straight to the deployments (outside the routes' totals): the JIT and the first-use paths
            for (String prompt : PROMPTS) {
                send(base, "small", prompt, maxTokens);
                send(base, "large", prompt, maxTokens);
            }
            for (int i = 0; i < requests; i++) {
                String prompt = PROMPTS.get(i % PROMPTS.size());
                send(base, "cascade", prompt, maxTokens);
                send(base, "all-large", prompt, maxTokens);
            }
            report(base, requests, threshold, largeWeight);
        } finally {
            serve.destroy();
            if (!serve.waitFor(30, TimeUnit.SECONDS)) {
                serve.destroyForcibly();
            }
        }
    }

    static String manifests(double threshold, double largeWeight) {
        String small = MODELS.resolve("stories260K-q8_0.gguf").toAbsolutePath().toString();
        String large = MODELS.resolve("stories260K-f32.gguf").toAbsolutePath().toString();
        return """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: small}
                spec:
                  model: {uri: "%s"}
                  context: {maxTokens: 256, maxSequences: 2}
                  placement: {device: cpu}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: large}
                spec:
                  model: {uri: "%s"}
                  context: {maxTokens: 256, maxSequences: 2}
                  placement: {device: cpu}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: cascade}
                spec:
                  tiers:
                    - deployment: small
                      cascade: {confidence: mean, threshold: %s}
                    - deployment: large
                      costWeight: %s
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: all-large}
                spec:
                  tiers:
                    - deployment: large
                      costWeight: %s
                """.formatted(small, large, threshold, largeWeight, largeWeight);
    }

    private static void awaitServing(URI base, Process serve, Path log) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (System.nanoTime() < deadline) {
            if (!serve.isAlive()) {
                throw new IllegalStateException(
                        "serve ended with " + serve.exitValue() + "; its log: " + Files.readString(log));
            }
            try {
                HttpResponse<String> r = HTTP.send(
                        HttpRequest.newBuilder(base.resolve("/v1/routes")).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200 && r.body().contains("cascade")) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("serve did not start within 3 minutes; its log: " + log);
    }

    private static void send(URI base, String route, String prompt, int maxTokens) throws Exception {
        String body = JSON.createObjectNode()
                .put("model", route)
                .put("prompt", prompt)
                .put("temperature", 0)
                .put("max_tokens", maxTokens)
                .toString();
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(base.resolve("/v1/completions"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .timeout(Duration.ofMinutes(2))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException(route + " answered " + r.statusCode() + ": " + r.body());
        }
    }

    private static void report(URI base, int requests, double threshold, double largeWeight) throws Exception {
        JsonNode routes = JSON.readTree(HTTP.send(
                        HttpRequest.newBuilder(base.resolve("/v1/routes")).build(),
                        HttpResponse.BodyHandlers.ofString())
                .body());
        System.out.printf(
                Locale.ROOT,
                "Route benchmark: %d requests per route, %d distinct prompts, greedy; small = stories260K q8_0"
                        + " (costWeight 1), large = stories260K f32 (costWeight %s); cascade threshold %s (mean)%n%n",
                requests,
                Math.min(requests, PROMPTS.size()),
                largeWeight,
                threshold);
        System.out.printf(
                Locale.ROOT,
                "%-10s %-6s %9s %9s %10s %12s %12s %14s%n",
                "route",
                "tier",
                "answered",
                "escalated",
                "esc.rate",
                "compl.tokens",
                "cost (GPU-s)",
                "cost/1k succ.");
        java.util.Map<String, Double> perRoute = new java.util.HashMap<>();
        for (JsonNode r : routes.path("data")) {
            for (JsonNode t : r.path("tiers")) {
                System.out.printf(
                        Locale.ROOT,
                        "%-10s %-6s %9d %9d %10s %12d %12.4f %14s%n",
                        r.path("id").asText(),
                        t.path("deployment").asText(),
                        t.path("answered").asLong(),
                        t.path("escalated").asLong(),
                        t.path("escalationRate").isNull()
                                ? "-"
                                : String.format(
                                        Locale.ROOT,
                                        "%.1f%%",
                                        100 * t.path("escalationRate").asDouble()),
                        t.path("completionTokens").asLong(),
                        t.path("cost").asDouble(),
                        t.path("costPer1kSuccessful").isNull()
                                ? "-"
                                : String.format(
                                        Locale.ROOT,
                                        "%.3f",
                                        t.path("costPer1kSuccessful").asDouble()));
            }
            System.out.printf(
                    Locale.ROOT,
                    "%-10s %-6s %9d %9s %10s %12s %12.4f %14.3f%n",
                    r.path("id").asText(),
                    "(all)",
                    r.path("answered").asLong(),
                    "",
                    "",
                    "",
                    r.path("cost").asDouble(),
                    r.path("costPer1kSuccessful").asDouble());
            perRoute.put(r.path("id").asText(), r.path("costPer1kSuccessful").asDouble());
        }
        if (perRoute.getOrDefault("all-large", 0.0) > 0 && perRoute.containsKey("cascade")) {
            System.out.printf(
                    Locale.ROOT,
                    "%nThe cascade costs %.1f%% of sending everything to the large tier, per 1,000 successful"
                            + " requests.%n",
                    100 * perRoute.get("cascade") / perRoute.get("all-large"));
        }
    }
}
