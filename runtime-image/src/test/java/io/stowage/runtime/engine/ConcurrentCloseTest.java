package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.placement.memory.KvCacheType;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Closing a model while other threads decode on it waits for their calls and then refuses new ones: no crash. */
class ConcurrentCloseTest {

    @Test
    void closingTheModelUnderRunningDecodesEndsThemWithIllegalState() throws Exception {
        NativeModel model = NativeModel.open(TestModels.f32());
        KvPool pool = model.newKvPool(KvCacheType.F16, model.kvBytesPerToken(KvCacheType.F16) * 512 * 4);
        ExecutorService threads = Executors.newFixedThreadPool(3);
        CountDownLatch running = new CountDownLatch(3);
        try {
            Future<?>[] workers = new Future<?>[3];
            for (int w = 0; w < workers.length; w++) {
                workers[w] = threads.submit(() -> {
                    // Each worker has its own context and sequence, and decodes until the model goes away.
                    try (ComputeContext ctx = model.newContext(1, 4, 1)) {
                        float[] logits = new float[model.vocabSize()];
                        int steps = 0;
                        while (true) {
                            try (Sequence seq = pool.newSequence(400)) {
                                for (int i = 0; i < 400; i++) {
                                    ctx.decode(
                                            new int[] {1 + i % 500},
                                            new Sequence[] {seq},
                                            new boolean[] {true},
                                            logits);
                                    if (++steps == 20) {
                                        running.countDown();
                                    }
                                }
                            }
                        }
                    }
                });
            }
            assertThat(running.await(30, TimeUnit.SECONDS)).isTrue();
            model.close();
            for (Future<?> f : workers) {
                Throwable thrown = null;
                try {
                    f.get(30, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    thrown = e.getCause();
                }
                assertThat(thrown).isInstanceOf(IllegalStateException.class).hasMessageContaining("is closed");
            }
            assertThat(pool.isClosed()).isTrue();
        } finally {
            threads.shutdownNow();
            model.close();
        }
        // The engine is intact: a fresh model still gives the golden first token.
        try (NativeModel again = NativeModel.open(TestModels.f32());
                Generator g = new Generator(again, 1, 8, KvCacheType.F32)) {
            int[] first = g.generate(new int[] {1, 403, 407, 261, 378}, 1, SamplerParams.greedy(), null, null)
                    .tokens();
            assertThat(first).containsExactly(432);
        }
    }
}
