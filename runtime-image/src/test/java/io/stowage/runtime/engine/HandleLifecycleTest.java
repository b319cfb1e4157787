package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import io.stowage.placement.plan.DeviceKind;
import org.junit.jupiter.api.Test;

/** Native handles free exactly once, refuse calls after close, and report the bytes of the memory contract. */
class HandleLifecycleTest {

    private static void step(ComputeContext ctx, Sequence seq, int token) {
        ctx.decode(new int[] {token}, new Sequence[] {seq}, new boolean[] {false}, new float[0]);
    }

    @Test
    void closingTwiceIsANoOpAndCallsAfterCloseThrow() {
        NativeModel model = NativeModel.open(TestModels.f32());
        KvPool pool = model.newKvPool(KvCacheType.F16, model.kvBytesPerToken(KvCacheType.F16) * 32);
        Sequence seq = pool.newSequence(32);
        ComputeContext ctx = model.newContext(1, 8, 1);
        Sampler sampler = Sampler.create(SamplerParams.greedy(), model.vocabSize());

        seq.close();
        seq.close();
        assertThat(seq.isClosed()).isTrue();
        assertThatThrownBy(seq::length)
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThatThrownBy(() -> step(ctx, seq, 1))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("sequence");

        sampler.close();
        sampler.close();
        assertThatThrownBy(() -> sampler.sample(new float[model.vocabSize()], 0, new int[0], 0))
                .isInstanceOf(IllegalStateException.class);

        model.close();
        model.close();
        // Closing the model closed what depends on it first.
        assertThat(pool.isClosed()).isTrue();
        assertThat(ctx.isClosed()).isTrue();
        assertThatThrownBy(model::weightBytes).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> pool.newSequence(16)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(ctx::workspaceBytes).isInstanceOf(IllegalStateException.class);
        pool.close();
        ctx.close();
    }

    /** The engine allocates exactly what the placement memory model (io.stowage.placement.memory) estimates. */
    @Test
    void allocatedBytesEqualThePlacementMemoryModel() {
        MemoryModel memory = MemoryModel.withDefaults();
        try (NativeModel model = NativeModel.open(TestModels.f32())) {
            ModelShape shape = model.spec().shape();
            for (KvCacheType t : KvCacheType.values()) {
                assertThat(model.kvBytesPerToken(t))
                        .as("KV bytes per token, %s", t)
                        .isEqualTo(memory.kvBytesPerToken(shape, t));
            }
            // 5 layers × (K + V) × 4 KV heads × head dim 8 × 2 bytes.
            assertThat(model.kvBytesPerToken(KvCacheType.F16)).isEqualTo(5 * 2 * 4 * 8 * 2);
            MemoryBreakdown estimate = memory.estimate(shape, 100, 3, KvCacheType.F16, DeviceKind.CPU);
            try (ComputeContext ctx = model.newContext(
                    1,
                    memory.parameters().prefillChunkTokens(),
                    memory.parameters().logitRows())) {
                assertThat(ctx.workspaceBytes()).isEqualTo(estimate.workspaceBytes());
            }
            try (KvPool pool = model.newKvPool(KvCacheType.F16, estimate.kvBytesPerReplica())) {
                assertThat(pool.allocatedBytes()).isEqualTo(estimate.kvBytesPerReplica());
                assertThat(pool.usedBytes()).isZero();
            }
            assertThat(model.weightBytes())
                    .isEqualTo(estimate.weightBytes())
                    .isEqualTo(model.spec().weightBytes());
        }
    }

    @Test
    void sequencesTakeBlocksAsTheyGrowAndGiveThemBackOnClose() {
        try (NativeModel model = NativeModel.open(TestModels.f32());
                ComputeContext ctx = model.newContext(1, 8, 1)) {
            long perToken = model.kvBytesPerToken(KvCacheType.F16);
            long block = perToken * KvPool.BLOCK_TOKENS;
            try (KvPool pool = model.newKvPool(KvCacheType.F16, 2 * block)) {
                Sequence seq = pool.newSequence(64);
                for (int i = 0; i < 17; i++) {
                    step(ctx, seq, 1 + i);
                }
                assertThat(seq.length()).isEqualTo(17);
                assertThat(pool.usedBytes()).isEqualTo(2 * block);
                seq.truncate(16);
                assertThat(seq.length()).isEqualTo(16);
                seq.close();
                assertThat(pool.usedBytes()).isZero();
            }
        }
    }

    @Test
    void aSequenceBeyondThePoolBudgetIsRefusedWithBudgetExceeded() {
        try (NativeModel model = NativeModel.open(TestModels.f32());
                ComputeContext ctx = model.newContext(1, 8, 1);
                KvPool pool =
                        model.newKvPool(KvCacheType.F16, model.kvBytesPerToken(KvCacheType.F16) * KvPool.BLOCK_TOKENS);
                Sequence seq = pool.newSequence(64)) {
            for (int i = 0; i < KvPool.BLOCK_TOKENS; i++) {
                step(ctx, seq, 5);
            }
            assertThatThrownBy(() -> step(ctx, seq, 5))
                    .isInstanceOf(BudgetExceededException.class)
                    .satisfies(e ->
                            assertThat(((NativeEngineException) e).status()).isEqualTo(EngineStatus.BUDGET_EXCEEDED));
            // The failed step left the sequence usable at its old length.
            assertThat(seq.length()).isEqualTo(KvPool.BLOCK_TOKENS);
        }
    }

    @Test
    void decodeChecksItsArgumentsBeforeCallingNativeCode() {
        try (NativeModel model = NativeModel.open(TestModels.f32());
                ComputeContext ctx = model.newContext(1, 4, 1);
                KvPool pool = model.newKvPool(KvCacheType.F16, model.kvBytesPerToken(KvCacheType.F16) * 16);
                Sequence seq = pool.newSequence(16)) {
            assertThatThrownBy(() -> step(ctx, seq, 512))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("id 512")
                    .hasMessageContaining("0..511");
            assertThatThrownBy(() -> ctx.decode(new int[5], new Sequence[5], new boolean[5], new float[0]))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("1..4");
            assertThatThrownBy(
                            () -> ctx.decode(new int[] {1}, new Sequence[] {seq}, new boolean[] {true}, new float[3]))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("logitsOut holds 3 floats");
            assertThat(seq.length()).isZero();
        }
    }

    @Test
    void samplerIsSeededAndGreedyPicksTheLowestIdOnTies() {
        float[] logits = {0.5f, 2f, 2f, -1f};
        try (Sampler greedy = Sampler.create(SamplerParams.greedy(), 4)) {
            assertThat(greedy.sample(logits, 0, new int[0], 0)).isEqualTo(1);
        }
        float[] flat = new float[64];
        int[] a = new int[20];
        int[] b = new int[20];
        try (Sampler s1 = Sampler.create(new SamplerParams(1f, 0, 1f, 0f, 1f, 0, 99), 64);
                Sampler s2 = Sampler.create(new SamplerParams(1f, 0, 1f, 0f, 1f, 0, 99), 64)) {
            for (int i = 0; i < a.length; i++) {
                a[i] = s1.sample(flat, 0, new int[0], 0);
                b[i] = s2.sample(flat, 0, new int[0], 0);
            }
        }
        assertThat(a).containsExactly(b);
        assertThat(java.util.Arrays.stream(a).distinct().count()).isGreaterThan(5);
    }
}
