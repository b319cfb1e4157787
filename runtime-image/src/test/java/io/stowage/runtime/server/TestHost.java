package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.runtime.engine.TestModels;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Predicate;

/** Test helpers that drive a running host through its admin and OpenAI HTTP APIs. */
final class TestHost {
    static final String TOKEN = "test-token";
    static final ObjectMapper JSON = new ObjectMapper()
            .configure(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    static final Path Q8 = TestModels.q8();
    static final String Q8_SHA = "a5eec7f42c2234ec2a615d92ad083abcec38788b2d415802bc089dffaba9a5a7";
    static final String Q8_DIGEST = "sha256:" + Q8_SHA;

    private TestHost() {}

    static ModelAssignment q8Model() {
        return new ModelAssignment(Q8_DIGEST, Q8.toString(), Q8_SHA, 0, 0);
    }

    static ReplicaAssignment replica(String id, String served, String digest, int maxTokens, int maxSequences) {
        String deployment = id.contains("#") ? id.substring(0, id.indexOf('#')) : id;
        return new ReplicaAssignment(id, deployment, served, digest, maxTokens, maxSequences, "f16", 0);
    }

    static HttpResponse<String> put(int adminPort, Object body, String token) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(
                        URI.create("http://localhost:" + adminPort + HostApi.ASSIGNMENT_PATH))
                .PUT(HttpRequest.BodyPublishers.ofString(body instanceof String s ? s : JSON.writeValueAsString(body)))
                .header("Content-Type", "application/json");
        if (token != null) {
            b.header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + token);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HostState apply(int adminPort, HostAssignment a) throws IOException, InterruptedException {
        HttpResponse<String> r = put(adminPort, a, TOKEN);
        if (r.statusCode() != 200) {
            throw new AssertionError("PUT assignment answered " + r.statusCode() + ": " + r.body());
        }
        return JSON.readValue(r.body(), HostState.class);
    }

    static HostState state(int adminPort) throws IOException, InterruptedException {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create("http://localhost:" + adminPort + HostApi.STATE_PATH))
                        .header(HostApi.AUTHORIZATION_HEADER, HostApi.BEARER_PREFIX + TOKEN)
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new AssertionError("GET state answered " + r.statusCode() + ": " + r.body());
        }
        return JSON.readValue(r.body(), HostState.class);
    }

    /** Polls the state until the condition holds (10 s at most). */
    static HostState await(int adminPort, Predicate<HostState> condition, String what)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        HostState s = state(adminPort);
        while (!condition.test(s)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + "; last state: " + s);
            }
            Thread.sleep(10);
            s = state(adminPort);
        }
        return s;
    }

    static HostState applyAndWait(int adminPort, HostAssignment a) throws IOException, InterruptedException {
        apply(adminPort, a);
        return await(
                adminPort,
                s -> s.replicas().stream().allMatch(r -> r.ready())
                        && s.models().stream().allMatch(m -> m.phase() == ModelPhase.LOADED)
                        && s.replicas().size() == a.replicas().size(),
                "every replica ready");
    }

    static HostAssignment assignment(long generation, List<ModelAssignment> models, List<ReplicaAssignment> replicas) {
        return new HostAssignment(generation, 0, models, replicas);
    }

    static HttpResponse<String> post(URI base, String path, String body) throws IOException, InterruptedException {
        return HTTP.send(
                HttpRequest.newBuilder(base.resolve(path))
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .header("Content-Type", "application/json")
                        .timeout(Duration.ofSeconds(30))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A Llama-shaped model with stories260K's tokenizer and ~66 MB of random F32 weights (one layer, 1024 wide, a
     * 4096 feed-forward), written once per test run: large enough that a second copy of its weights shows in the
     * process RSS far above the noise of the JVM.
     */
    static synchronized Path largeModel() throws IOException {
        if (largeModel != null) {
            return largeModel;
        }
        Path file = Files.createTempFile("stowage-large", ".gguf");
        file.toFile().deleteOnExit();
        TestModels.writeLlamaShapedF32(Q8, file, 1);
        largeModel = file;
        return file;
    }

    private static Path largeModel;

    static JsonNode json(String s) throws IOException {
        return JSON.readTree(s);
    }
}
