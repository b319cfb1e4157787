package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.HoldingSink;
import io.stowage.runtime.host.Job;
import jakarta.inject.Inject;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** The admin API of a running host: authentication, convergence, budget refusals, model sources, sharing. */
@QuarkusTest
class AdminApiTest {
    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    private int admin() {
        return service.adminPort();
    }

    private static ReplicaAssignment stories(int i) {
        return TestHost.replica("default/stories#" + i, "stories", TestHost.Q8_DIGEST, 512, 8);
    }

    private String complete(String model) throws Exception {
        HttpResponse<String> r = TestHost.post(
                base.toURI(),
                "/v1/completions",
                "{\"model\": \"" + model
                        + "\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return TestHost.json(r.body()).at("/choices/0/text").asText();
    }

    @Test
    void refusesCallsWithoutTheToken() throws Exception {
        HostAssignment a = TestHost.assignment(1, List.of(), List.of());
        assertThat(TestHost.put(admin(), a, null).statusCode()).isEqualTo(401);
        HttpResponse<String> wrong = TestHost.put(admin(), a, "not-the-token");
        assertThat(wrong.statusCode()).isEqualTo(401);
        assertThat(wrong.body()).contains("Unauthorized");
    }

    @Test
    void anOversizeAssignmentIs413InTheAdminApisShape() throws Exception {
        String big = "{\"generation\": 1, \"pad\": \"" + "x".repeat(9 << 20) + "\"}";
        HttpResponse<String> r = TestHost.put(admin(), big, TestHost.TOKEN);
        assertThat(r.statusCode()).isEqualTo(413);
        assertThat(TestHost.json(r.body()).get("reason").asText()).isEqualTo("TooLarge");
    }

    @Test
    void malformedAssignmentIs400() throws Exception {
        HttpResponse<String> truncated = TestHost.put(admin(), "{\"models\": [", TestHost.TOKEN);
        assertThat(truncated.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(truncated.body()).get("message").asText())
                .isEqualTo(
                        "request body is not valid JSON: Unexpected end-of-input: expected close marker for Array at line 1, column 13");
        HttpResponse<String> wrongType = TestHost.put(admin(), "{\"models\": 7}", TestHost.TOKEN);
        assertThat(wrongType.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(wrongType.body()).get("message").asText())
                .isEqualTo(
                        "request body is not a valid HostAssignment: field models: expected an array, not integer value"
                                + " at line 1, column 12");
        // JSON null is a body, not an assignment: answered, never left waiting
        HttpResponse<String> nothing = TestHost.put(admin(), "null", TestHost.TOKEN);
        assertThat(nothing.statusCode()).as(nothing.body()).isEqualTo(400);
        assertThat(TestHost.json(nothing.body()).get("message").asText()).contains("got null");
        // no silent coercion: a null, a string or a fraction where a number belongs, a number where a string does
        for (String coerced : List.of(
                "{\"generation\": null, \"models\": [], \"replicas\": []}",
                "{\"generation\": \"3\", \"models\": [], \"replicas\": []}",
                "{\"generation\": 1.5, \"models\": [], \"replicas\": []}",
                "{\"generation\": 1, \"budgetBytes\": 1024, \"models\": [{\"digest\": 7}], \"replicas\": []}")) {
            HttpResponse<String> c = TestHost.put(admin(), coerced, TestHost.TOKEN);
            assertThat(c.statusCode()).as("%s: %s", coerced, c.body()).isEqualTo(400);
        }
        HostAssignment dangling =
                TestHost.assignment(2, List.of(), List.of(TestHost.replica("x#0", "x", "sha256:missing", 64, 1)));
        HttpResponse<String> r = TestHost.put(admin(), dangling, TestHost.TOKEN);
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(r.body()).contains("sha256:missing");
    }

    @Test
    void sameAssignmentTwiceChangesNothing() throws Exception {
        HostAssignment a = TestHost.assignment(5, List.of(TestHost.q8Model()), List.of(stories(0), stories(1)));
        HostState first = TestHost.applyAndWait(admin(), a);
        String before = complete("stories");
        HostState second = TestHost.apply(admin(), a);
        // answered at once with everything still loaded and ready: nothing was reloaded or re-reserved
        assertThat(second.models()).extracting(ModelState::phase).containsExactly(ModelPhase.LOADED);
        assertThat(second.replicas()).allMatch(ReplicaState::ready);
        assertThat(second.device().usedBytes()).isEqualTo(first.device().usedBytes());
        assertThat(second.models()).isEqualTo(first.models());
        assertThat(complete("stories")).isEqualTo(before);
    }

    @Test
    void overBudgetAssignmentIsRefusedWithTheNumbersAndChangesNothing() throws Exception {
        HostAssignment ok = TestHost.assignment(7, List.of(TestHost.q8Model()), List.of(stories(0)));
        HostState before = TestHost.applyAndWait(admin(), ok);
        // 512 tokens x 1000 sequences of 640 bytes: 327 MB of KV against the test budget of 128 MiB
        HostAssignment big = TestHost.assignment(
                8,
                List.of(TestHost.q8Model()),
                List.of(stories(0), TestHost.replica("default/huge#0", "huge", TestHost.Q8_DIGEST, 512, 1000)));
        HttpResponse<String> r = TestHost.put(admin(), big, TestHost.TOKEN);
        assertThat(r.statusCode()).isEqualTo(409);
        var body = TestHost.json(r.body());
        assertThat(body.get("reason").asText()).isEqualTo("OverBudget");
        assertThat(body.get("message").asText()).contains("134217728").contains("needs");
        HostState after = TestHost.state(admin());
        assertThat(after.generation()).isEqualTo(before.generation());
        assertThat(after.replicas()).extracting(ReplicaState::id).containsExactly("default/stories#0");
    }

    @Test
    void kvBytesThatOverflowALongAreRefusedAndTheServingReplicaStillServes() throws Exception {
        HostState before = TestHost.applyAndWait(
                admin(), TestHost.assignment(70, List.of(TestHost.q8Model()), List.of(stories(0))));
        // two replicas of 2^62 KV bytes each: 2^63 in all, which an unchecked sum wraps to a negative total
        HostAssignment overflow = TestHost.assignment(
                71,
                List.of(TestHost.q8Model()),
                List.of(
                        new ReplicaAssignment(
                                "default/big#0", "default/big", "big", TestHost.Q8_DIGEST, 512, 8, "f16", 1L << 62),
                        new ReplicaAssignment(
                                "default/big#1", "default/big", "big", TestHost.Q8_DIGEST, 512, 8, "f16", 1L << 62)));
        HttpResponse<String> r = TestHost.put(admin(), overflow, TestHost.TOKEN);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        var body = TestHost.json(r.body());
        assertThat(body.get("reason").asText()).isEqualTo("Invalid");
        assertThat(body.get("message").asText())
                .isEqualTo("the replicas' KV bytes (up to default/big#1) add up to more than " + Long.MAX_VALUE
                        + " bytes; nothing was changed");
        assertUnchanged(before);
    }

    @Test
    void numbersOutOfRangeAreRefusedWithTheFieldAndTheValueAndChangeNothing() throws Exception {
        HostState before = TestHost.applyAndWait(
                admin(), TestHost.assignment(80, List.of(TestHost.q8Model()), List.of(stories(0))));
        String id = "default/stories#0";
        Map<HostAssignment, String> refused = new LinkedHashMap<>();
        refused.put(
                one(81, TestHost.replica(id, "stories", TestHost.Q8_DIGEST, 512, Integer.MAX_VALUE)),
                "replicas[" + id + "]: maxSequences must be in 1..4096, got 2147483647");
        refused.put(
                one(82, TestHost.replica(id, "stories", TestHost.Q8_DIGEST, Integer.MAX_VALUE, 8)),
                "replicas[" + id + "]: maxTokens must be in 1..16777216, got 2147483647");
        refused.put(
                one(83, TestHost.replica(id, "stories", TestHost.Q8_DIGEST, 0, 8)),
                "replicas[" + id + "]: maxTokens must be in 1..16777216, got 0");
        refused.put(
                one(84, TestHost.replica(id, "stories", TestHost.Q8_DIGEST, 512, -1)),
                "replicas[" + id + "]: maxSequences must be in 1..4096, got -1");
        refused.put(
                one(85, new ReplicaAssignment(id, "default/stories", "stories", TestHost.Q8_DIGEST, 512, 8, "f16", -1)),
                "replicas[" + id + "]: kvBytes must be >= 0, got -1");
        refused.put(
                one(86, TestHost.replica(id, "stories", TestHost.Q8_DIGEST, 1 << 24, 1)),
                "replicas[" + id + "]: maxTokens 16777216 exceeds the context length "
                        + service.host().models().get(0).model().contextLength() + " of model "
                        + TestHost.Q8_DIGEST);
        refused.put(
                new HostAssignment(87, -1, List.of(TestHost.q8Model()), List.of(stories(0))),
                "budgetBytes must be >= 0, got -1");
        refused.put(
                new HostAssignment(-1, 0, List.of(TestHost.q8Model()), List.of(stories(0))),
                "generation must be >= 0, got -1");
        refused.put(
                new HostAssignment(
                        88,
                        0,
                        List.of(new ModelAssignment(TestHost.Q8_DIGEST, TestHost.Q8.toString(), null, -5, 0)),
                        List.of(stories(0))),
                "models[" + TestHost.Q8_DIGEST + "]: weightBytes must be >= 0, got -5");
        refused.put(
                new HostAssignment(
                        89,
                        0,
                        List.of(new ModelAssignment(
                                TestHost.Q8_DIGEST, TestHost.Q8.toString(), null, Long.MAX_VALUE, Long.MAX_VALUE)),
                        List.of(stories(0))),
                "weights + workspace add up to more than " + Long.MAX_VALUE + " bytes; nothing was changed");
        for (var e : refused.entrySet()) {
            HttpResponse<String> r = TestHost.put(admin(), e.getKey(), TestHost.TOKEN);
            assertThat(r.statusCode()).as("%s: %s", e.getValue(), r.body()).isEqualTo(400);
            var body = TestHost.json(r.body());
            assertThat(body.get("reason").asText()).isEqualTo("Invalid");
            assertThat(body.get("message").asText()).isEqualTo(e.getValue());
        }
        assertUnchanged(before);
    }

    @Test
    void aReplicaLongerThanItsModelsContextFailsAloneOnceTheModelIsLoaded() throws Exception {
        // a model not loaded yet: its context length is known only once it is, so the assignment is accepted
        Path copy = Files.createTempFile("stories-context", ".gguf");
        Files.copy(TestHost.Q8, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try {
            ModelAssignment fresh = new ModelAssignment("context-check", copy.toString(), null, 0, 0);
            TestHost.apply(
                    admin(),
                    TestHost.assignment(
                            96,
                            List.of(fresh),
                            List.of(
                                    TestHost.replica("default/long#0", "long", "context-check", 1 << 24, 1),
                                    TestHost.replica("default/short#0", "short", "context-check", 128, 1))));
            HostState s = TestHost.await(
                    admin(),
                    st -> st.replicas().stream().anyMatch(ReplicaState::ready),
                    "the replica within the context to be ready");
            assertThat(s.replicas())
                    .filteredOn(ReplicaState::ready)
                    .extracting(ReplicaState::id)
                    .containsExactly("default/short#0");
            int context = service.host().models().get(0).model().contextLength();
            assertThat(service.host().replicaProblem("default/long#0"))
                    .isEqualTo("its maxTokens 16777216 exceeds the model's context length " + context);
            assertThat(complete("short")).isNotEmpty();
        } finally {
            TestHost.applyAndWait(admin(), TestHost.assignment(97, List.of(), List.of()));
            Files.deleteIfExists(copy);
        }
    }

    private static HostAssignment one(long generation, ReplicaAssignment replica) {
        return TestHost.assignment(generation, List.of(TestHost.q8Model()), List.of(replica));
    }

    /** The host still holds {@code before}'s assignment, its one replica ready and serving. */
    private void assertUnchanged(HostState before) throws Exception {
        HostState after = TestHost.state(admin());
        assertThat(after.generation()).isEqualTo(before.generation());
        assertThat(after.replicas()).extracting(ReplicaState::id).containsExactly("default/stories#0");
        assertThat(after.replicas()).allMatch(ReplicaState::ready);
        assertThat(after.device().usedBytes()).isEqualTo(before.device().usedBytes());
        assertThat(complete("stories")).isNotEmpty();
    }

    @Test
    void sourcesThatAreNotModelsFailWithoutTellingWhatTheyHold() throws Exception {
        // the host's own API over plain http (allowed in the test profile, refused by default), a file outside the
        // model roots, and a file that does not exist
        String ownPort = "http://127.0.0.1:" + base.getPort() + "/v1/models";
        HostAssignment a = TestHost.assignment(
                95,
                List.of(
                        new ModelAssignment("own-port", ownPort, null, 0, 0),
                        new ModelAssignment("passwd", "file:///etc/passwd", null, 0, 0),
                        new ModelAssignment("nothing", "file:///etc/stowage-no-such-file", null, 0, 0)),
                List.of(
                        TestHost.replica("default/o#0", "o", "own-port", 64, 1),
                        TestHost.replica("default/p#0", "p", "passwd", 64, 1),
                        TestHost.replica("default/n#0", "n", "nothing", 64, 1)));
        TestHost.apply(admin(), a);
        HostState s = TestHost.await(
                admin(),
                st -> st.models().stream().allMatch(m -> m.phase() == ModelPhase.FAILED),
                "the three models to fail");
        assertThat(reason(s, "own-port"))
                .contains("is not a GGUF file")
                .doesNotContain("object")
                .doesNotContain("data");
        String key = java.util.HexFormat.of()
                .formatHex(java.security.MessageDigest.getInstance("SHA-256")
                        .digest(ownPort.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        assertThat(Path.of("target/test-model-cache", key + ".gguf")).doesNotExist();
        assertThat(Path.of("target/test-model-cache", key + ".part")).doesNotExist();
        assertThat(reason(s, "passwd").replace("/etc/passwd", "PATH"))
                .isEqualTo(reason(s, "nothing").replace("/etc/stowage-no-such-file", "PATH"))
                .contains("does not exist under the host's model roots")
                .doesNotContain("root:");
        // nor their sizes
        assertThat(s.models()).filteredOn(m -> !m.digest().equals("own-port")).allMatch(m -> m.totalBytes() == -1);
    }

    @Test
    void badUriAndShaMismatchFailTheirModelWhileOthersServe() throws Exception {
        Path copy = Files.createTempFile("stories-copy", ".gguf");
        Files.copy(TestHost.Q8, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        String wrongSha = "0".repeat(64);
        HostAssignment a = TestHost.assignment(
                9,
                List.of(
                        TestHost.q8Model(),
                        new ModelAssignment("bad-uri", "ftp://example.invalid/model.gguf", null, 0, 0),
                        new ModelAssignment("missing", "file:///nonexistent/stowage/model.gguf", null, 0, 0),
                        new ModelAssignment("sha:" + wrongSha, copy.toString(), wrongSha, 0, 0)),
                List.of(
                        stories(0),
                        TestHost.replica("default/a#0", "a", "bad-uri", 64, 1),
                        TestHost.replica("default/b#0", "b", "missing", 64, 1),
                        TestHost.replica("default/c#0", "c", "sha:" + wrongSha, 64, 1)));
        TestHost.apply(admin(), a);
        HostState s = TestHost.await(
                admin(),
                st -> st.models().stream()
                                        .filter(m -> m.phase() == ModelPhase.FAILED)
                                        .count()
                                == 3
                        && st.replicas().stream().anyMatch(ReplicaState::ready),
                "three failed models and one ready replica");
        assertThat(reason(s, "bad-uri")).contains("unsupported scheme");
        assertThat(reason(s, "missing")).contains("does not exist");
        assertThat(reason(s, "sha:" + wrongSha)).contains("sha256 mismatch").contains(TestHost.Q8_SHA);
        assertThat(complete("stories")).isNotEmpty();
        HttpResponse<String> failed = TestHost.post(
                base.toURI(), "/v1/completions", "{\"model\": \"c\", \"prompt\": \"x\", \"max_tokens\": 1}");
        assertThat(failed.statusCode()).isEqualTo(503);
        Files.deleteIfExists(copy);
    }

    private static String reason(HostState s, String digest) {
        return s.models().stream()
                .filter(m -> m.digest().equals(digest))
                .findFirst()
                .orElseThrow()
                .reason();
    }

    @Test
    void httpModelIsDownloadedOnceVerifiedAndServed() throws Exception {
        byte[] model = Files.readAllBytes(TestHost.Q8);
        int[] downloads = {0};
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/stories.gguf", ex -> {
            synchronized (downloads) {
                downloads[0]++;
            }
            ex.sendResponseHeaders(200, model.length);
            ex.getResponseBody().write(model);
            ex.close();
        });
        server.start();
        try {
            String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/stories.gguf";
            // a distinct digest so that this model is a new load, not the file-path one
            ModelAssignment http = new ModelAssignment("http-stories", url, TestHost.Q8_SHA, 0, 0);
            HostAssignment a = TestHost.assignment(
                    11, List.of(http), List.of(TestHost.replica("default/h#0", "h", "http-stories", 128, 2)));
            HostState s = TestHost.applyAndWait(admin(), a);
            assertThat(s.models().get(0).downloadedBytes()).isEqualTo(model.length);
            assertThat(s.models().get(0).totalBytes()).isEqualTo(model.length);
            assertThat(complete("h")).isNotEmpty();
            assertThat(Path.of("target/test-model-cache", TestHost.Q8_SHA + ".gguf"))
                    .exists();
            int after = downloads[0];
            // unload, then load again: the verified cache file is reused
            TestHost.applyAndWait(admin(), TestHost.assignment(12, List.of(), List.of()));
            TestHost.applyAndWait(admin(), a);
            assertThat(downloads[0]).isEqualTo(after);

            ModelAssignment mismatch = new ModelAssignment("http-bad", url, "1".repeat(64), 0, 0);
            TestHost.apply(
                    admin(),
                    TestHost.assignment(
                            13,
                            List.of(mismatch),
                            List.of(TestHost.replica("default/hb#0", "hb", "http-bad", 128, 1))));
            HostState bad = TestHost.await(
                    admin(), st -> st.models().get(0).phase() == ModelPhase.FAILED, "the mismatched download to fail");
            assertThat(bad.models().get(0).reason()).contains("sha256 mismatch");
        } finally {
            server.stop(0);
        }
    }

    @Test
    void replicasAndDeploymentsOfOneModelShareItsWeights() throws Exception {
        HostState one = TestHost.applyAndWait(
                admin(), TestHost.assignment(20, List.of(TestHost.q8Model()), List.of(stories(0))));
        complete("stories");
        long rssOne = TestHost.state(admin()).processRssBytes();
        HostAssignment three = TestHost.assignment(
                21,
                List.of(TestHost.q8Model()),
                List.of(stories(0), stories(1), TestHost.replica("team/batch#0", "batch", TestHost.Q8_DIGEST, 256, 4)));
        HostState s = TestHost.applyAndWait(admin(), three);
        complete("stories");
        complete("batch");
        HostState after = TestHost.state(admin());
        assertThat(s.models()).hasSize(1);
        ModelState m = s.models().get(0);
        assertThat(m.weightBytes()).isEqualTo(one.models().get(0).weightBytes()).isPositive();
        long kv = s.replicas().stream().mapToLong(ReplicaState::kvReservedBytes).sum();
        long kvAdded = kv - one.replicas().get(0).kvReservedBytes();
        // weights and workspace once, plus each replica's KV
        assertThat(s.device().usedBytes()).isEqualTo(m.weightBytes() + m.workspaceBytes() + kv);
        // 512 x 8 x 640 bytes for stories#1, 256 x 4 x 640 for batch#0 (f16 KV of stories260K: 640 bytes a token)
        assertThat(kvAdded).isEqualTo(512L * 8 * 640 + 256L * 4 * 640);
        // measured by the backend next to the planner's figures: one weight buffer (the CPU's mapped span, at least
        // W_m), every pool as planned, and one workspace of the model's A_m
        assertThat(m.deviceBytes()).isGreaterThanOrEqualTo(m.weightBytes());
        assertThat(s.replicas()).allSatisfy(r -> assertThat(r.kvReservedBytes()).isEqualTo(r.kvPlannedBytes()));
        assertThat(s.device().backend().kind()).isEqualTo("cpu");
        assertThat(s.device().backend().workspaceBytes()).isEqualTo(m.workspaceBytes());
        assertThat(s.device().backend().allocatedBytes()).isEqualTo(m.workspaceBytes() + kv);
        assertThat(s.device().backend().freeBytes()).isPositive();

        // removing one replica keeps the others serving
        HostState two = TestHost.applyAndWait(
                admin(),
                TestHost.assignment(
                        22,
                        List.of(TestHost.q8Model()),
                        List.of(stories(1), TestHost.replica("team/batch#0", "batch", TestHost.Q8_DIGEST, 256, 4))));
        assertThat(two.replicas()).extracting(ReplicaState::id).containsExactly("default/stories#1", "team/batch#0");
        assertThat(complete("stories")).isNotEmpty();
        assertThat(complete("batch")).isNotEmpty();
    }

    @Test
    void aSecondReplicaOfALargeModelAddsItsKvToTheProcessNotAnotherCopyOfTheWeights() throws Exception {
        Path file = TestHost.largeModel();
        ModelAssignment big = new ModelAssignment("synthetic-large", file.toString(), null, 0, 0);
        long rssNone = TestHost.applyAndWait(admin(), TestHost.assignment(59, List.of(), List.of()))
                .processRssBytes();
        HostState one = TestHost.applyAndWait(
                admin(),
                TestHost.assignment(
                        60,
                        List.of(big),
                        List.of(TestHost.replica("default/large#0", "large", "synthetic-large", 256, 2))));
        // a request runs the forward pass over every weight, so all of its pages are resident before measuring
        complete("large");
        long rssOne = TestHost.state(admin()).processRssBytes();
        HostState two = TestHost.applyAndWait(
                admin(),
                TestHost.assignment(
                        61,
                        List.of(big),
                        List.of(
                                TestHost.replica("default/large#0", "large", "synthetic-large", 256, 2),
                                TestHost.replica("team/large#0", "large-too", "synthetic-large", 256, 2))));
        complete("large-too");
        complete("large");
        long rssTwo = TestHost.state(admin()).processRssBytes();
        long weights = two.models().get(0).weightBytes();
        long kvAdded =
                two.replicas().stream().mapToLong(ReplicaState::kvReservedBytes).sum()
                        - one.replicas().get(0).kvReservedBytes();
        long tolerance = 20L << 20;
        // the model is ~66 MB of F32 weights: a second copy of them (a second load, or a second mapping of the
        // file touched by the second replica's request) would grow the RSS by weights > kvAdded + tolerance
        assertThat(weights).isGreaterThan(kvAdded + 3 * tolerance);
        assertThat(two.models()).hasSize(1);
        assertThat(weights).isEqualTo(one.models().get(0).weightBytes());
        // the measurement sees the weights: loading the model and running it once made them resident
        assertThat(rssOne - rssNone).as("RSS %d -> %d", rssNone, rssOne).isGreaterThan(weights - tolerance);
        assertThat(rssTwo - rssOne)
                .as("RSS %d -> %d with %d bytes of weights and %d bytes of KV added", rssOne, rssTwo, weights, kvAdded)
                .isLessThan(kvAdded + tolerance);
    }

    @Test
    void clientThatDisconnectsCancelsItsSequenceAndFreesItsKv() throws Exception {
        TestHost.applyAndWait(
                admin(),
                TestHost.assignment(
                        40,
                        List.of(TestHost.q8Model()),
                        List.of(
                                TestHost.replica("default/gone#0", "gone", TestHost.Q8_DIGEST, 512, 1),
                                TestHost.replica("default/hold#0", "hold", TestHost.Q8_DIGEST, 512, 1))));
        // a sequence of the same model shares every step with the streamed one and lets a step end only when the
        // test hands it a permit: the streamed request can make at most as many tokens as there were permits
        HoldingSink holder = new HoldingSink();
        Job held = service.host()
                .device()
                .submit(
                        service.host().route("hold"),
                        new GenerationRequest(new int[] {1}, 500, SamplerParams.greedy(), null, -1),
                        holder);
        int maxTokens = 400;
        int permits = 0;
        String body = "{\"model\": \"gone\", \"prompt\": \"Once\", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0, \"stream\": true}";
        try {
            try (java.net.Socket socket = new java.net.Socket(base.getHost(), base.getPort())) {
                socket.getOutputStream()
                        .write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                        + "Content-Length: " + body.length() + "\r\n\r\n" + body)
                                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
                var in = new java.io.BufferedReader(new java.io.InputStreamReader(socket.getInputStream()));
                CompletableFuture<String> firstEvent = CompletableFuture.supplyAsync(() -> {
                    try {
                        for (String line; (line = in.readLine()) != null; ) {
                            if (line.startsWith("data: ")) {
                                return line; // after the headers, the first token's event
                            }
                        }
                        return null;
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
                // one step at a time until the first token is out (admission, prefill, first decode)
                while (!firstEvent.isDone()) {
                    assertThat(permits).as("steps before the first token").isLessThan(50);
                    holder.permits.release();
                    permits++;
                    try {
                        firstEvent.get(100, java.util.concurrent.TimeUnit.MILLISECONDS);
                    } catch (java.util.concurrent.TimeoutException e) {
                        // not yet: one more step
                    }
                }
                assertThat(firstEvent.get()).isNotNull();
            } // closed after the first token
            // still one step per permit, and never enough of them for the 400 tokens: the sequence can only
            // leave (and free its KV) by being cancelled
            long deadline = System.nanoTime() + java.time.Duration.ofSeconds(10).toNanos();
            HostState s = TestHost.state(admin());
            while (!(gone(s).activeSequences() == 0 && gone(s).kvUsedBytes() == 0)) {
                assertThat(System.nanoTime())
                        .as("the cancelled sequence to leave; last state: %s", s)
                        .isLessThan(deadline);
                if (permits < maxTokens - 100) {
                    holder.permits.release();
                    permits++;
                }
                Thread.sleep(10);
                s = TestHost.state(admin());
            }
            assertThat(gone(s).kvReservedBytes()).isPositive();
        } finally {
            holder.free();
            held.cancel();
        }
        String metrics = TestHost.HTTP
                .send(
                        java.net.http.HttpRequest.newBuilder(base.toURI().resolve("/q/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
        var m = java.util.regex.Pattern.compile("stowage_generated_tokens_total\\{model=\"gone\"} ([0-9.]+)")
                .matcher(metrics);
        assertThat(m.find()).as(metrics).isTrue();
        assertThat(Double.parseDouble(m.group(1))).isLessThanOrEqualTo(permits).isLessThan(maxTokens);
    }

    private static ReplicaState gone(HostState s) {
        return s.replicas().stream()
                .filter(r -> r.id().equals("default/gone#0"))
                .findFirst()
                .orElseThrow();
    }

    @Test
    void fullQueueAnswers429WithRetryAfterAndTheServerKeepsServing() throws Exception {
        TestHost.applyAndWait(
                admin(),
                TestHost.assignment(
                        30,
                        List.of(TestHost.q8Model()),
                        List.of(TestHost.replica("default/narrow#0", "narrow", TestHost.Q8_DIGEST, 512, 1))));
        // a job that takes the replica's only sequence slot and holds the scheduler at its first token, so
        // nothing leaves the queue until the test says so: the 429 follows from counts, not from speed
        HoldingSink holder = new HoldingSink();
        Job held = service.host()
                .device()
                .submit(
                        service.host().route("narrow"),
                        new GenerationRequest(new int[] {1}, 4, SamplerParams.greedy(), null, -1),
                        holder);
        URI b = base.toURI();
        List<CompletableFuture<HttpResponse<String>>> queued = new ArrayList<>();
        try {
            assertThat(holder.entered.await(10, java.util.concurrent.TimeUnit.SECONDS))
                    .isTrue();
            // the test configuration gives each replica a queue of 4
            for (int i = 0; i < 4; i++) {
                queued.add(TestHost.HTTP.sendAsync(
                        java.net.http.HttpRequest.newBuilder(b.resolve("/v1/completions"))
                                .POST(
                                        java.net.http.HttpRequest.BodyPublishers.ofString(
                                                "{\"model\": \"narrow\", \"prompt\": \"Once\", \"max_tokens\": 4, \"temperature\": 0}"))
                                .header("Content-Type", "application/json")
                                .build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            TestHost.await(admin(), st -> st.replicas().get(0).queuedRequests() == 4, "four queued requests");
            HttpResponse<String> r = TestHost.post(
                    b, "/v1/completions", "{\"model\": \"narrow\", \"prompt\": \"Once\", \"max_tokens\": 4}");
            assertThat(r.statusCode()).as(r.body()).isEqualTo(429);
            assertThat(r.headers().firstValue("Retry-After")).isPresent();
            assertThat(TestHost.json(r.body()).at("/error/message").asText()).contains("queued");
            assertThat(TestHost.json(r.body()).at("/error/type").asText()).isNotEmpty();
        } finally {
            holder.free();
        }
        assertThat(holder.finished.get(10, java.util.concurrent.TimeUnit.SECONDS))
                .isEqualTo("length");
        for (var c : queued) {
            HttpResponse<String> r = c.get(10, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        }
        assertThat(complete("narrow")).isNotEmpty();
    }
}
