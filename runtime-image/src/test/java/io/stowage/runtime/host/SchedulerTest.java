package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device scheduler on a host without HTTP: chunked prefill beside decoding sequences gives the engine's
 * single-sequence output; a cancelled job (client gone) leaves the batch before its next step and returns its KV.
 */
class SchedulerTest {
    @TempDir
    Path cache;

    Host host;
    Replica replica;

    @BeforeEach
    void start() throws Exception {
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 30, 64L << 20, cache, 1, 64, 8, 2),
                new ModelFetcher(cache, Map.of()));
        host.apply(new HostAssignment(
                1,
                0,
                List.of(new ModelAssignment("m", TestModels.q8().toString(), null, 0, 0)),
                List.of(new ReplicaAssignment("r#0", "r", "r", "m", 512, 2, "f16", 0))));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((replica = host.route("r")) == null) {
            assertThat(host.state().models().get(0).phase()).isNotEqualTo(ModelPhase.FAILED);
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(5);
        }
    }

    @AfterEach
    void stop() {
        host.close();
    }

    @Test
    void cancelledSequenceFreesItsKvAndStopsGenerating() throws Exception {
        CompletableFuture<int[]> finished = new CompletableFuture<>();
        AtomicReference<String> reason = new AtomicReference<>();
        CompletableFuture<Job> job = new CompletableFuture<>();
        int[] pieces = {0};
        TokenSink sink = new TokenSink() {
            @Override
            public void onPiece(Piece piece) {
                if (++pieces[0] == 3) {
                    job.join().cancel(); // the scheduler thread waits for submit to return
                }
            }

            @Override
            public void onFinish(String finishReason, int promptTokens, int completionTokens) {
                reason.set(finishReason);
                finished.complete(new int[] {promptTokens, completionTokens});
            }

            @Override
            public void onError(int httpStatus, String type, String message) {
                finished.completeExceptionally(new AssertionError(message));
            }
        };
        int[] prompt = {1, 403, 407, 261, 378};
        job.complete(host.device()
                .submit(replica, new GenerationRequest(prompt, 500, SamplerParams.greedy(), null, -1), sink));
        int[] counts = finished.get(10, TimeUnit.SECONDS);
        assertThat(reason.get()).isEqualTo("cancelled");
        // it stopped right after the cancel, far short of its 500 tokens
        assertThat(counts[1]).isBetween(3, 4);
        assertThat(replica.kvUsedBytes()).isZero();
        assertThat(replica.activeSequences()).isZero();
    }

    /** Collects one job's tokens. */
    static final class Collect implements TokenSink {
        final List<Integer> ids = new java.util.ArrayList<>();
        final CompletableFuture<String> done = new CompletableFuture<>();

        @Override
        public void onPiece(Piece piece) {
            ids.add(piece.tokenId());
        }

        @Override
        public void onFinish(String finishReason, int promptTokens, int completionTokens) {
            done.complete(finishReason);
        }

        @Override
        public void onError(int httpStatus, String type, String message) {
            done.completeExceptionally(new AssertionError(message));
        }
    }

    @Test
    void chunkedPrefillBesideDecodersGivesTheSingleSequenceOutput() throws Exception {
        // a 300-token prompt: five chunks of the 64-token steps of this host, while another sequence decodes
        int[] golden =
                TestModels.ints(TestModels.golden("stories260K.golden.json").get("generated_token_ids"));
        int[] prompt = new int[300];
        prompt[0] = 1;
        for (int i = 1; i < prompt.length; i++) {
            prompt[i] = golden[i % golden.length];
        }
        int[] expected;
        try (io.stowage.runtime.engine.NativeModel m = io.stowage.runtime.engine.NativeModel.open(TestModels.q8());
                io.stowage.runtime.engine.Generator g = new io.stowage.runtime.engine.Generator(m, 1)) {
            expected =
                    g.generate(prompt, 30, SamplerParams.greedy(), null, null).tokens();
        }
        Collect decoder = new Collect();
        Collect chunked = new Collect();
        host.device()
                .submit(
                        replica,
                        new GenerationRequest(new int[] {1, 403}, 100, SamplerParams.greedy(), null, -1),
                        decoder);
        host.device().submit(replica, new GenerationRequest(prompt, 30, SamplerParams.greedy(), null, -1), chunked);
        chunked.done.get(10, TimeUnit.SECONDS);
        decoder.done.get(10, TimeUnit.SECONDS);
        assertThat(chunked.ids.stream().mapToInt(Integer::intValue).toArray()).isEqualTo(expected);
        assertThat(decoder.ids).hasSize(100);
    }

    @Test
    void twoModelsOnOneDeviceTakeTurns() throws Exception {
        host.apply(new HostAssignment(
                2,
                0,
                List.of(
                        new ModelAssignment("m", TestModels.q8().toString(), null, 0, 0),
                        new ModelAssignment("f", TestModels.f32().toString(), null, 0, 0)),
                List.of(
                        new ReplicaAssignment("r#0", "r", "r", "m", 512, 2, "f16", 0),
                        new ReplicaAssignment("f#0", "f", "f", "f", 512, 2, "f16", 0))));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Replica f;
        while ((f = host.route("f")) == null) {
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(5);
        }
        // the scheduler thread calls the sinks in step order: one label per step of that model
        StringBuffer order = new StringBuffer();
        List<CompletableFuture<String>> done = new java.util.ArrayList<>();
        // the first job's first piece holds the scheduler thread until the second job is queued, so both
        // have work from then on however the machine schedules this thread (no timing in the assertion)
        java.util.concurrent.CountDownLatch bothQueued = new java.util.concurrent.CountDownLatch(1);
        for (var target : List.of(replica, f)) {
            String label = target == replica ? "a" : "b";
            CompletableFuture<String> d = new CompletableFuture<>();
            done.add(d);
            host.device()
                    .submit(
                            target,
                            new GenerationRequest(new int[] {1}, 60, SamplerParams.greedy(), null, -1),
                            new TokenSink() {
                                @Override
                                public void onPiece(Piece piece) {
                                    if (label.equals("a") && order.indexOf("a") < 0) {
                                        awaitQuietly(bothQueued);
                                    }
                                    order.append(label);
                                }

                                @Override
                                public void onFinish(String finishReason, int promptTokens, int completionTokens) {
                                    d.complete(finishReason);
                                }

                                @Override
                                public void onError(int httpStatus, String type, String message) {
                                    d.completeExceptionally(new AssertionError(message));
                                }
                            });
        }
        bothQueued.countDown();
        for (var d : done) {
            d.get(10, TimeUnit.SECONDS);
        }
        String o = order.toString();
        // while both models have work they alternate step by step: no model runs two steps in a row
        String both =
                o.substring(Math.max(o.indexOf('a'), o.indexOf('b')), Math.min(o.lastIndexOf('a'), o.lastIndexOf('b')));
        assertThat(both.length()).isGreaterThan(40);
        assertThat(both).doesNotContain("aa").doesNotContain("bb");
    }

    @Test
    void stopStringIsCutAndHeldBackText() throws Exception {
        StringBuilder text = new StringBuilder();
        CompletableFuture<String> done = new CompletableFuture<>();
        TokenSink sink = new TokenSink() {
            @Override
            public void onPiece(Piece piece) {
                text.append(piece.text());
            }

            @Override
            public void onFinish(String finishReason, int promptTokens, int completionTokens) {
                done.complete(finishReason);
            }

            @Override
            public void onError(int httpStatus, String type, String message) {
                done.completeExceptionally(new AssertionError(message));
            }
        };
        int[] prompt = {1, 403, 407, 261, 378};
        host.device()
                .submit(
                        replica,
                        new GenerationRequest(prompt, 40, SamplerParams.greedy(), List.of("girl named"), -1),
                        sink);
        assertThat(done.get(10, TimeUnit.SECONDS)).isEqualTo("stop");
        String golden = TestModels.golden("stories260K.golden.json")
                .get("generated_text")
                .asText();
        assertThat(text.toString()).isEqualTo(golden.substring(0, golden.indexOf("girl named")));
    }

    @Test
    void generationStopsAtTheBosThatStartsTheNextStory() throws Exception {
        int[] prompt = {1, 403, 407, 261, 378};
        // the shipped model's own continuation, with no stop token: it ends the story and starts the next with BOS
        int[] free;
        try (io.stowage.runtime.engine.NativeModel m = io.stowage.runtime.engine.NativeModel.open(TestModels.q8());
                io.stowage.runtime.engine.Generator g = new io.stowage.runtime.engine.Generator(m, 1)) {
            free = g.generate(prompt, 450, SamplerParams.greedy(), null, null).tokens();
        }
        int bos = replica.model().tokenizer().bosId();
        int end = java.util.stream.IntStream.range(0, free.length)
                .filter(i -> free[i] == bos)
                .findFirst()
                .orElseThrow(() -> new AssertionError("the model generated no BOS in 450 tokens"));

        StringBuilder text = new StringBuilder();
        List<Integer> ids = new java.util.ArrayList<>();
        CompletableFuture<String> done = new CompletableFuture<>();
        int[] completion = {-1};
        host.device()
                .submit(replica, new GenerationRequest(prompt, 450, SamplerParams.greedy(), null, -1), new TokenSink() {
                    @Override
                    public void onPiece(Piece piece) {
                        ids.add(piece.tokenId());
                        text.append(piece.text());
                    }

                    @Override
                    public void onFinish(String finishReason, int promptTokens, int completionTokens) {
                        completion[0] = completionTokens;
                        done.complete(finishReason);
                    }

                    @Override
                    public void onError(int httpStatus, String type, String message) {
                        done.completeExceptionally(new AssertionError(message));
                    }
                });
        assertThat(done.get(10, TimeUnit.SECONDS)).isEqualTo("stop");
        // the story up to the BOS, which counts as a generated token but adds no text
        assertThat(ids.stream().mapToInt(Integer::intValue).toArray())
                .containsExactly(java.util.Arrays.copyOf(free, end));
        assertThat(completion[0]).isEqualTo(end + 1);
        assertThat(text.toString())
                .isEqualTo(replica.model().tokenizer().decodeContinuation(java.util.Arrays.copyOf(free, end)))
                .doesNotContain("Once upon a time");
    }

    private static void awaitQuietly(java.util.concurrent.CountDownLatch latch) {
        try {
            latch.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
