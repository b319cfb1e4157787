package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaState;
import io.stowage.runtime.engine.NanModels;
import io.stowage.runtime.engine.TestModels;
import jakarta.inject.Inject;
import java.io.IOException;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Models whose tensor data holds NaNs, served beside a healthy one by the same host: their requests get a clear
 * error (HTTP 500, or an SSE error event and the end of the stream), the healthy model still answers, KV in use
 * returns to 0, and a model whose steps keep failing is reported FAILED in the admin state, metrics and readiness.
 */
@QuarkusTest
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FailingModelApiTest {
    /** The 5th token of the "Once upon a time" continuation: the poisoned model fails after streaming four. */
    static final int POISON = 376;

    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    Path dir;
    Path nanWeights;
    Path nanToken;

    @BeforeAll
    void models() throws IOException {
        dir = Files.createTempDirectory("stowage-nan-models");
        nanWeights = NanModels.nanWeights(dir);
        nanToken = NanModels.nanToken(dir, POISON);
    }

    @AfterAll
    void removeModels() throws Exception {
        TestHost.apply(service.adminPort(), TestHost.assignment(1, List.of(), List.of()));
        TestHost.await(service.adminPort(), s -> s.models().isEmpty(), "no models");
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    /** A fresh host state each time: the failure count and a FAILED phase start over. */
    @BeforeEach
    void assign() throws Exception {
        int admin = service.adminPort();
        TestHost.apply(admin, TestHost.assignment(1, List.of(), List.of()));
        TestHost.await(admin, s -> s.models().isEmpty(), "no models");
        TestHost.applyAndWait(
                admin,
                TestHost.assignment(
                        2,
                        List.of(
                                TestHost.q8Model(),
                                new ModelAssignment("nan-weights", nanWeights.toString(), null, 0, 0),
                                new ModelAssignment("nan-token", nanToken.toString(), null, 0, 0)),
                        List.of(
                                TestHost.replica("default/stories#0", "stories", TestHost.Q8_DIGEST, 512, 2),
                                TestHost.replica("default/broken#0", "broken", "nan-weights", 512, 2),
                                TestHost.replica("default/poison#0", "poison", "nan-token", 512, 2))));
    }

    private HttpResponse<String> complete(String model, int maxTokens, boolean stream)
            throws IOException, InterruptedException {
        return TestHost.post(
                URI.create(base.toString()),
                "/v1/completions",
                "{\"model\": \"" + model + "\", \"prompt\": \"Once upon a time\", \"max_tokens\": " + maxTokens
                        + ", \"temperature\": 0, \"stream\": " + stream + "}");
    }

    private String get(String path) throws Exception {
        return TestHost.HTTP
                .send(HttpRequest.newBuilder(base.toURI().resolve(path)).build(), HttpResponse.BodyHandlers.ofString())
                .body();
    }

    private static ModelState model(HostState s, String digest) {
        return s.models().stream()
                .filter(m -> m.digest().equals(digest))
                .findFirst()
                .orElseThrow();
    }

    private static ReplicaState replica(HostState s, String id) {
        return s.replicas().stream().filter(r -> r.id().equals(id)).findFirst().orElseThrow();
    }

    private void assertHealthyModelAnswers() throws Exception {
        HttpResponse<String> ok = complete("stories", 40, false);
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        assertThat(TestHost.json(ok.body()).at("/choices/0/text").asText())
                .isEqualTo(TestModels.golden("stories260K.golden.json")
                        .get("generated_text")
                        .asText());
    }

    @Test
    void nanModelAnswers500WithTheReasonAndTheHealthyModelStillAnswers() throws Exception {
        HttpResponse<String> plain = complete("broken", 20, false);
        assertThat(plain.statusCode()).as(plain.body()).isEqualTo(500);
        JsonNode error = TestHost.json(plain.body()).get("error");
        assertThat(error.get("message").asText()).contains("not finite").contains("NaN");
        assertThat(error.get("type").asText()).isEqualTo("engine_error");

        // streamed: it fails before its first token, so the answer is still a plain HTTP error
        HttpResponse<String> streamed = complete("broken", 20, true);
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(500);
        assertThat(TestHost.json(streamed.body()).at("/error/message").asText()).contains("not finite");

        assertHealthyModelAnswers();
        HostState s = TestHost.state(service.adminPort());
        assertThat(replica(s, "default/broken#0").kvUsedBytes()).isZero();
        assertThat(replica(s, "default/broken#0").activeSequences()).isZero();
        // two failures are not yet a broken model
        assertThat(model(s, "nan-weights").phase()).isEqualTo(ModelPhase.LOADED);
    }

    @Test
    void streamThatFailsMidwayEndsWithAnErrorEventAndDone() throws Exception {
        HttpResponse<String> r = complete("poison", 40, true);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        List<String> events = r.body()
                .lines()
                .filter(l -> l.startsWith("data: "))
                .map(l -> l.substring(6))
                .toList();
        assertThat(events).hasSizeGreaterThan(2);
        assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
        JsonNode error = TestHost.json(events.get(events.size() - 2)).get("error");
        assertThat(error.get("message").asText()).contains("not finite");
        StringBuilder text = new StringBuilder();
        for (String e : events.subList(0, events.size() - 2)) {
            JsonNode chunk = TestHost.json(e);
            assertThat(chunk.has("error")).isFalse();
            text.append(chunk.at("/choices/0/text").asText());
        }
        // the text before the poisoned token came through: the golden continuation's start
        assertThat(TestModels.golden("stories260K.golden.json")
                        .get("generated_text")
                        .asText())
                .startsWith(text.toString());
        assertThat(text.toString()).isNotEmpty();

        assertHealthyModelAnswers();
        HostState s = TestHost.state(service.adminPort());
        assertThat(replica(s, "default/poison#0").kvUsedBytes()).isZero();
        assertThat(model(s, "nan-token").phase()).isEqualTo(ModelPhase.LOADED);
    }

    @Test
    void modelWhoseStepsKeepFailingIsReportedFailed() throws Exception {
        int admin = service.adminPort();
        for (int i = 0; i < 3; i++) {
            HttpResponse<String> r = complete("broken", 20, i % 2 == 1);
            assertThat(r.statusCode()).as(r.body()).isEqualTo(500);
        }
        HostState s = TestHost.await(
                admin, st -> model(st, "nan-weights").phase() == ModelPhase.FAILED, "the NaN model to be FAILED");
        assertThat(model(s, "nan-weights").reason())
                .contains("consecutive steps failed")
                .contains("not finite");
        assertThat(replica(s, "default/broken#0").ready()).isFalse();
        assertThat(replica(s, "default/broken#0").kvUsedBytes()).isZero();
        assertThat(replica(s, "default/stories#0").ready()).isTrue();

        HttpResponse<String> refused = complete("broken", 20, false);
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(TestHost.json(refused.body()).at("/error/code").asText()).isEqualTo("model_not_ready");

        assertThat(get("/q/metrics")).containsPattern("(?m)^stowage_failed_models 1(\\.0)?$");
        HttpResponse<String> ready = TestHost.HTTP.send(
                HttpRequest.newBuilder(base.toURI().resolve("/q/health/ready")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(ready.statusCode()).isEqualTo(503);
        JsonNode replicas = null;
        for (JsonNode check : TestHost.json(ready.body()).get("checks")) {
            if (check.get("name").asText().equals("replicas")) {
                replicas = check;
            }
        }
        assertThat(replicas).as(ready.body()).isNotNull();
        assertThat(replicas.at("/data/failed").asText()).isEqualTo("broken");
        assertThat(replicas.at("/data/served").asText()).contains("stories").doesNotContain("broken");

        assertHealthyModelAnswers();
    }
}
