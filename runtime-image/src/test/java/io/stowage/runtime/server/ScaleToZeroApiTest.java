package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelPhase;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.scaling.Scaler;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * Scale to zero and hot swap through the OpenAI API in local mode, with two real models that do not fit this host
 * together: {@code big} (stories260K F32) starts serving, {@code small} (the Q8 file) starts idle, and each swaps the
 * other out when it is idle.
 */
@QuarkusTest
@TestProfile(ScaleToZeroApiTest.Swap.class)
class ScaleToZeroApiTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    /** Manifests in a temporary directory, on a budget that holds either model with its replica, not both. */
    public static class Swap implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            try {
                Path dir = Files.createTempDirectory("stowage-swap");
                String manifests = manifest("big", TestModels.f32()) + manifest("small", TestModels.q8());
                Files.writeString(dir.resolve("models.yaml"), manifests);
                MemoryModel memory = MemoryModel.withDefaults();
                List<MemoryBreakdown> b = new ArrayList<>();
                for (var m : ManifestReader.parse("models.yaml", dir, manifests).deployments()) {
                    var file = m.model().localFile();
                    b.add(PlannerInput.of(
                                    m,
                                    ModelDescription.from(GgufReader.readFile(file))
                                            .shape(),
                                    memory)
                            .memory());
                }
                long alone = b.stream()
                        .mapToLong(x -> x.weightBytes() + x.workspaceBytes() + x.kvBytesPerReplica())
                        .max()
                        .orElseThrow();
                long smaller = b.stream()
                        .mapToLong(x -> x.weightBytes() + x.kvBytesPerReplica())
                        .min()
                        .orElseThrow();
                long budget = b.getFirst().hostOverheadBytes() + alone + smaller / 2;
                return Map.of(
                        "stowage.local.dir",
                        dir.toString(),
                        "stowage.budget-bytes",
                        Long.toString(budget),
                        "stowage.scaling.activation-timeout",
                        "30s",
                        "stowage.retry-after-seconds",
                        "2",
                        // the burst (8) fits small's admission: 2 sequences running and the rest queued
                        "stowage.queue-per-replica",
                        "16");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private static String manifest(String name, Path file) {
            return """
                    ---
                    apiVersion: stowage.io/v1alpha1
                    kind: LlmDeployment
                    metadata:
                      name: %s
                    spec:
                      model:
                        uri: %s
                      context: {maxTokens: 128, maxSequences: 2}
                      placement: {device: cpu}
                      scaling: {minReplicas: 0, idleTimeout: 200ms}
                    """.formatted(name, file.toAbsolutePath());
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Inject
    HostService service;

    @Test
    void idleModelsSwapThroughTheApiHoldingEveryRequestAndRefusingWhenNothingIdleCanMakeRoom() throws Exception {
        Scaler scaler = service.scaler();
        assertThat(scaler.idleDeployments())
                .as("small does not fit beside big: it starts idle")
                .contains("default/small");
        assertThat(modelIds()).containsExactly("big", "small");

        // big has a request in flight: small's activation may not evict it, and is refused at once with Retry-After
        try (Scaler.Lease bigInFlight = scaler.acquire("big")) {
            await(() -> service.host().route("big") != null, "big serves");
            HttpResponse<String> refused = complete("small");
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
            assertThat(refused.headers().firstValue("Retry-After")).hasValue("2");
            JsonNode error = JSON.readTree(refused.body()).get("error");
            assertThat(error.get("code").asText()).isEqualTo("model_activation_failed");
            assertThat(error.get("message").asText())
                    .startsWith("cannot activate 'small': ")
                    .contains("no idle model is left to evict");
        }

        await(() -> scaler.idleDeployments().equals(Set.of("default/big", "default/small")), "big released");
        HostState idle = service.host().state();
        assertThat(idle.replicas()).isEmpty();
        assertThat(idle.models())
                .singleElement()
                .satisfies(m -> assertThat(m.phase()).isEqualTo(ModelPhase.LOADED));

        // a burst for small: its activation evicts big (idle), loads small from its file; every request is held,
        // then served
        List<CompletableFuture<HttpResponse<String>>> burst = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            burst.add(HTTP.sendAsync(request("small"), HttpResponse.BodyHandlers.ofString()));
        }
        List<String> texts = new ArrayList<>();
        for (CompletableFuture<HttpResponse<String>> f : burst) {
            HttpResponse<String> r = f.get(60, TimeUnit.SECONDS);
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            texts.add(JSON.readTree(r.body()).at("/choices/0/text").asText());
        }
        assertThat(texts).as("greedy: one answer").containsOnly(texts.getFirst());
        assertThat(texts.getFirst()).isNotBlank();
        assertThat(scaler.events())
                .filteredOn(e -> e.kind().equals("evicted"))
                .singleElement()
                .satisfies(e -> assertThat(e.detail()).contains("stories260K-f32.gguf"));

        // small idles in turn: its KV returns to the host, its weights stay; the next request finds them resident
        await(() -> scaler.idleDeployments().contains("default/small"), "small released");
        await(() -> service.host().state().replicas().isEmpty(), "small's replica gone");
        HostState released = service.host().state();
        long weights = released.models().stream()
                .mapToLong(m -> m.weightBytes() + m.workspaceBytes())
                .sum();
        await(() -> service.host().state().device().usedBytes() == weights, "small's KV freed");

        HttpResponse<String> again = complete("small");
        assertThat(again.statusCode()).as(again.body()).isEqualTo(200);
        assertThat(JSON.readTree(again.body()).at("/choices/0/text").asText()).isEqualTo(texts.getFirst());
        assertThat(scaler.events().stream()
                        .filter(e -> e.kind().equals("activated"))
                        .reduce((a, b) -> b)
                        .orElseThrow()
                        .detail())
                .contains("(weights resident)");

        HttpResponse<String> metrics = HTTP.send(
                HttpRequest.newBuilder(URI.create(base + "q/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(metrics.body())
                .contains("stowage_scaling_events_total{kind=\"evicted\"} 1.0")
                .contains("stowage_scaling_events_total{kind=\"activation-failed\"} 1.0")
                .containsPattern("stowage_scaling_idle_deployments [0-9.]+");
    }

    private List<String> modelIds() throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(base + "v1/models")).build(), HttpResponse.BodyHandlers.ofString());
        List<String> ids = new ArrayList<>();
        JSON.readTree(r.body()).get("data").forEach(m -> ids.add(m.get("id").asText()));
        return ids;
    }

    private HttpRequest request(String model) {
        return HttpRequest.newBuilder(URI.create(base + "v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"" + model
                        + "\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0}"))
                .build();
    }

    private HttpResponse<String> complete(String model) throws Exception {
        return HTTP.send(request(model), HttpResponse.BodyHandlers.ofString());
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(5);
        }
    }
}
