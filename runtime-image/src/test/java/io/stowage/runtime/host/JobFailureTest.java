package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.runtime.engine.Generator;
import io.stowage.runtime.engine.NanModels;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A failing request fails alone: models whose tensor data holds NaNs beside a healthy one on one device. The failed
 * request gets its error and gives back its KV, the others go on, and a model whose steps keep failing is reported
 * FAILED instead of hanging.
 */
class JobFailureTest {
    /** In a "Once upon a time" continuation this is the 5th token; the "Lily" continuation never feeds it. */
    static final int POISON = 376;

    static final int[] ONCE = {1, 403, 407, 261, 378};
    static final int[] LILY = {1, 317};

    @TempDir
    Path dir;

    Host host;
    Path poisonModel;

    @BeforeEach
    void start() throws Exception {
        poisonModel = NanModels.nanToken(dir, POISON);
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 30, 64L << 20, dir, 1, 64, 8, 2),
                new ModelFetcher(dir, Map.of()));
        host.apply(new HostAssignment(
                1,
                0,
                List.of(
                        new ModelAssignment("good", TestModels.q8().toString(), null, 0, 0),
                        new ModelAssignment("nan", NanModels.nanWeights(dir).toString(), null, 0, 0),
                        new ModelAssignment("poison", poisonModel.toString(), null, 0, 0)),
                List.of(
                        new ReplicaAssignment("good#0", "good", "good", "good", 512, 2, "f16", 0),
                        new ReplicaAssignment("nan#0", "nan", "nan", "nan", 512, 2, "f16", 0),
                        new ReplicaAssignment("poison#0", "poison", "poison", "poison", 512, 2, "f16", 0))));
        await(host::allReady, "every replica ready");
    }

    @AfterEach
    void stop() {
        host.close();
    }

    /** Records one job's output. */
    static final class Record implements TokenSink {
        final List<Integer> ids = new java.util.concurrent.CopyOnWriteArrayList<>();
        final CompletableFuture<String> done = new CompletableFuture<>();
        volatile int status;
        volatile String type;
        volatile int completionTokens;
        final CountDownLatch firstPiece = new CountDownLatch(1);
        /** When set, the first piece holds the scheduler thread until it opens. */
        volatile CountDownLatch holdFirstPiece;

        @Override
        public void onPiece(Piece piece) {
            ids.add(piece.tokenId());
            firstPiece.countDown();
            CountDownLatch hold = holdFirstPiece;
            if (hold != null) {
                holdFirstPiece = null;
                try {
                    hold.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }

        @Override
        public void onFinish(String finishReason, int promptTokens, int completionTokens) {
            this.completionTokens = completionTokens;
            done.complete(finishReason);
        }

        @Override
        public void onError(int httpStatus, String type, String message) {
            this.status = httpStatus;
            this.type = type;
            done.completeExceptionally(new IllegalStateException(message));
        }

        String finish() throws Exception {
            return done.get(10, TimeUnit.SECONDS);
        }

        /** The error message; fails when the job finished instead. */
        String error() throws Exception {
            try {
                String reason = done.get(10, TimeUnit.SECONDS);
                throw new AssertionError("the job finished (" + reason + ") instead of failing");
            } catch (ExecutionException e) {
                return e.getCause().getMessage();
            }
        }
    }

    private Record submit(String served, int[] prompt, int maxNew) {
        Record r = new Record();
        host.device()
                .submit(replica(served), new GenerationRequest(prompt, maxNew, SamplerParams.greedy(), null, -1), r);
        return r;
    }

    private Replica replica(String served) {
        return host.replicas().stream()
                .filter(r -> r.servedModelName().equals(served))
                .findFirst()
                .orElseThrow();
    }

    private ModelState model(String digest) {
        return host.state().models().stream()
                .filter(m -> m.digest().equals(digest))
                .findFirst()
                .orElseThrow();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    private static int[] ints(List<Integer> ids) {
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] alone(Path model, int[] prompt, int n) {
        try (NativeModel m = NativeModel.open(model);
                Generator g = new Generator(m, 1)) {
            return g.generate(prompt, n, SamplerParams.greedy(), null, null).tokens();
        }
    }

    @Test
    void nanModelFailsItsRequestWhileTheHealthyModelAnswers() throws Exception {
        Record bad = submit("nan", ONCE, 40);
        Record good = submit("good", ONCE, 40);

        assertThat(bad.error()).contains("not finite").contains("NaN");
        assertThat(bad.status).isEqualTo(500);
        assertThat(bad.ids).isEmpty();
        assertThat(good.finish()).isEqualTo("length");
        assertThat(ints(good.ids))
                .containsExactly(TestModels.ints(
                        TestModels.golden("stories260K.golden.json").get("generated_token_ids")));

        Replica nan = replica("nan");
        await(() -> nan.activeSequences() == 0, "the failed sequence to leave the batch");
        assertThat(nan.kvUsedBytes()).isZero();
        // one failure is not a broken model
        assertThat(model("nan").phase()).isEqualTo(ModelPhase.LOADED);
        assertThat(host.route("nan")).isNotNull();
    }

    @Test
    void modelWhoseStepsKeepFailingIsReportedFailedAndRefusesRequests() throws Exception {
        Replica nan = replica("nan");
        for (int i = 0; i < DeviceScheduler.FAILED_STEPS_TO_FAIL_MODEL; i++) {
            assertThat(model("nan").phase()).isEqualTo(ModelPhase.LOADED);
            Record bad = submit("nan", ONCE, 40);
            assertThat(bad.error()).contains("not finite");
            assertThat(bad.status).isEqualTo(500);
        }
        await(() -> model("nan").phase() == ModelPhase.FAILED, "the model to be reported FAILED");
        assertThat(model("nan").reason())
                .contains(DeviceScheduler.FAILED_STEPS_TO_FAIL_MODEL + " consecutive steps failed")
                .contains("not finite");
        assertThat(host.route("nan")).isNull();
        assertThat(host.servedModelNames()).doesNotContain("nan").contains("good", "poison");
        assertThat(host.failedModelNames()).containsExactly("nan");
        assertThat(host.allReady()).isFalse();
        assertThat(host.state().replicas().stream()
                        .filter(r -> r.servedModelName().equals("nan"))
                        .findFirst()
                        .orElseThrow()
                        .ready())
                .isFalse();
        assertThat(host.replicaProblem("nan#0")).contains("failed");
        assertThat(nan.kvUsedBytes()).isZero();

        // a request that reached the replica before it was refused gets an answer too, not a hang
        Record late = new Record();
        host.device().submit(nan, new GenerationRequest(ONCE, 10, SamplerParams.greedy(), null, -1), late);
        assertThat(late.error()).contains("model nan failed");
        assertThat(late.status).isEqualTo(503);
        assertThat(late.type).isEqualTo("model_failed");
        await(() -> nan.queuedRequests() == 0, "the queue to drain");

        Record good = submit("good", ONCE, 10);
        assertThat(good.finish()).isEqualTo("length");
        assertThat(good.ids).hasSize(10);
    }

    @Test
    void poisonedSequenceFailsAloneInASharedBatch() throws Exception {
        int[] lilyAlone = alone(poisonModel, LILY, 40);
        assertThat(lilyAlone).doesNotContain(POISON);
        Replica r = replica("poison");

        // "Lily" decodes; its first piece holds the scheduler until "Once upon a time" is queued, so both share steps
        Record lily = new Record();
        CountDownLatch onceQueued = new CountDownLatch(1);
        lily.holdFirstPiece = onceQueued;
        host.device().submit(r, new GenerationRequest(LILY, 40, SamplerParams.greedy(), null, -1), lily);
        lily.firstPiece.await(10, TimeUnit.SECONDS);
        Record once = submit("poison", ONCE, 40);
        onceQueued.countDown();

        assertThat(once.error()).contains("not finite");
        assertThat(once.status).isEqualTo(500);
        // it produced the golden tokens up to the poisoned one, whose step gave NaN logits for this sequence only
        int[] golden =
                TestModels.ints(TestModels.golden("stories260K.golden.json").get("generated_token_ids"));
        int upTo = java.util.stream.IntStream.range(0, golden.length)
                .filter(i -> golden[i] == POISON)
                .findFirst()
                .orElseThrow();
        assertThat(ints(once.ids)).containsExactly(java.util.Arrays.copyOf(golden, upTo + 1));
        assertThat(lily.finish()).isEqualTo("length");
        assertThat(ints(lily.ids)).containsExactly(lilyAlone);

        await(() -> r.activeSequences() == 0, "both sequences to leave the batch");
        assertThat(r.kvUsedBytes()).isZero();
        assertThat(model("poison").phase()).isEqualTo(ModelPhase.LOADED);
    }

    @Test
    void stepTheEngineRefusesFailsOnlyTheRequestThatBrokeIt() throws Exception {
        Replica r = replica("good");
        Record once = new Record();
        CountDownLatch badQueued = new CountDownLatch(1);
        once.holdFirstPiece = badQueued;
        host.device().submit(r, new GenerationRequest(ONCE, 40, SamplerParams.greedy(), null, -1), once);
        once.firstPiece.await(10, TimeUnit.SECONDS);
        // id 600 is outside the 512-token vocabulary: the batched step that holds it is refused as a whole
        Record bad = submit("good", new int[] {1, 600}, 10);
        badQueued.countDown();

        assertThat(bad.error()).contains("600").contains("outside the vocabulary");
        assertThat(bad.status).isEqualTo(500);
        assertThat(once.finish()).isEqualTo("length");
        assertThat(ints(once.ids))
                .containsExactly(TestModels.ints(
                        TestModels.golden("stories260K.golden.json").get("generated_token_ids")));
        await(() -> r.activeSequences() == 0, "both sequences to leave the batch");
        assertThat(r.kvUsedBytes()).isZero();
        assertThat(model("good").phase()).isEqualTo(ModelPhase.LOADED);
    }
}
