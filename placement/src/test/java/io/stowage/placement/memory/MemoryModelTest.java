package io.stowage.placement.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MemoryModelTest {

    private static final long GIB = 1L << 30;
    private static final long MIB = 1L << 20;

    /** Meta-Llama-3.1-8B config.json: 32 layers, 32 heads, 8 KV heads, head dim 128, n_ff 14336. */
    static final ModelShape LLAMA_31_8B =
            new ModelShape("llama", 32, 4096, 14336, 32, 8, 128, 128, 128256, 131072, 16_068_890_624L);

    /** Qwen2.5-14B-Instruct config.json: 48 layers, 40 heads, 8 KV heads, head dim 128, n_ff 13824. */
    static final ModelShape QWEN_25_14B =
            new ModelShape("qwen2", 48, 5120, 13824, 40, 8, 128, 128, 152064, 32768, 8_988_110_976L);

    private final MemoryModel model = MemoryModel.withDefaults();

    @Test
    void llama8bAtF16Needs128KibPerTokenAndOneGibFor8192Tokens() {
        MemoryBreakdown b = model.estimate(LLAMA_31_8B, 8192, 1, KvCacheType.F16, DeviceKind.GPU);

        // per token: 32 layers · (K row 8·128·2 B + V row 8·128·2 B) = 32 · 4096 = 131,072
        assertThat(b.kvBytesPerToken()).isEqualTo(131_072L);
        // 131,072 · 8192 tokens · 1 sequence = 1 GiB
        assertThat(b.kvBytesPerReplica()).isEqualTo(GIB);
        // widths = 2·4096 + 32·128 + 32·128 + 8·(128+128) + 2·14336 = 47,104
        // 4·512·47,104 = 96,468,992; logits 4·64·128,256 = 32,833,536;
        // quantized 512 · ceil(14,336/32)·36 = 512 · 16,128 = 8,257,536
        assertThat(b.workspaceBytes()).isEqualTo(96_468_992L + 32_833_536L + 8_257_536L);
        assertThat(b.hostOverheadBytes()).isEqualTo(512 * MIB);
        assertThat(b.weightBytes()).isEqualTo(16_068_890_624L);
        assertThat(b.totalForOneReplica()).isEqualTo(16_068_890_624L + GIB + 137_560_064L + 512 * MIB);
    }

    @Test
    void qwen14bAtF16WithTwoSequencesNeedsThreeGib() {
        MemoryBreakdown b = model.estimate(QWEN_25_14B, 8192, 2, KvCacheType.F16, DeviceKind.GPU);

        // per token: 48 · (8·128·2 + 8·128·2) = 48 · 4096 = 196,608
        assertThat(b.kvBytesPerToken()).isEqualTo(196_608L);
        // 196,608 · 8192 · 2 = 3,221,225,472 = 3 GiB
        assertThat(b.kvBytesPerReplica()).isEqualTo(3 * GIB);
        // widths = 2·5120 + 40·128 + 40·128 + 8·256 + 2·13824 = 50,176
        // 4·512·50,176 = 102,760,448; logits 4·64·152,064 = 38,928,384;
        // quantized 512 · ceil(13,824/32)·36 = 512 · 15,552 = 7,962,624
        assertThat(b.workspaceBytes()).isEqualTo(102_760_448L + 38_928_384L + 7_962_624L);
    }

    @Test
    void q8_0KvStores34BytesPer32Values() {
        // K row 1024 values = 32 blocks · 34 B = 1088; per token 32 · (1088 + 1088) = 69,632
        MemoryBreakdown llama = model.estimate(LLAMA_31_8B, 8192, 1, KvCacheType.Q8_0, DeviceKind.GPU);
        assertThat(llama.kvBytesPerToken()).isEqualTo(69_632L);
        assertThat(llama.kvBytesPerReplica()).isEqualTo(69_632L * 8192);
        // Qwen: 48 · 2176 = 104,448
        MemoryBreakdown qwen = model.estimate(QWEN_25_14B, 4096, 3, KvCacheType.Q8_0, DeviceKind.GPU);
        assertThat(qwen.kvBytesPerToken()).isEqualTo(104_448L);
        assertThat(qwen.kvBytesPerReplica()).isEqualTo(104_448L * 4096 * 3);
    }

    @Test
    void f32KvIsTwiceF16() {
        // 32 · (1024·4 + 1024·4) = 262,144 per token
        MemoryBreakdown b = model.estimate(LLAMA_31_8B, 2048, 1, KvCacheType.F32, DeviceKind.GPU);
        assertThat(b.kvBytesPerToken()).isEqualTo(262_144L);
        assertThat(b.kvBytesPerReplica()).isEqualTo(512 * MIB);
    }

    @Test
    void maxTokensIsRoundedUpToWholeBlocksOf16() {
        // ceil(1000/16) = 63 blocks = 1008 slots; 131,072 · 1008 · 2 sequences
        MemoryBreakdown b = model.estimate(LLAMA_31_8B, 1000, 2, KvCacheType.F16, DeviceKind.GPU);
        assertThat(b.kvBytesPerReplica()).isEqualTo(131_072L * 1008 * 2);
        // exactly one block stays one block
        assertThat(model.estimate(LLAMA_31_8B, 16, 1, KvCacheType.F16, DeviceKind.GPU)
                        .kvBytesPerReplica())
                .isEqualTo(131_072L * 16);
        assertThat(model.estimate(LLAMA_31_8B, 17, 1, KvCacheType.F16, DeviceKind.GPU)
                        .kvBytesPerReplica())
                .isEqualTo(131_072L * 32);
    }

    @Test
    void cpuDevicesPayTheCpuOverhead() {
        MemoryBreakdown b = model.estimate(LLAMA_31_8B, 4096, 1, KvCacheType.F16, DeviceKind.CPU);
        assertThat(b.hostOverheadBytes()).isEqualTo(MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES);
    }

    @Test
    void q8_0IsRefusedForARowWidthThatIsNotAMultipleOf32() {
        ModelShape odd = new ModelShape("llama", 2, 96, 256, 2, 1, 48, 48, 1000, 2048, 1000);
        assertThatThrownBy(() -> model.estimate(odd, 512, 1, KvCacheType.Q8_0, DeviceKind.GPU))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage(
                        "KV cache type q8_0 needs a row width that is a multiple of 32, got 48; use f16 for this model");
        // f16 works for the same shape: 2 · (48·2 + 48·2) = 384 per token
        assertThat(model.estimate(odd, 512, 1, KvCacheType.F16, DeviceKind.GPU).kvBytesPerToken())
                .isEqualTo(384);
    }

    @Test
    void maxTokensBeyondTheModelContextIsRefused() {
        assertThatThrownBy(() -> model.estimate(QWEN_25_14B, 65536, 1, KvCacheType.F16, DeviceKind.GPU))
                .hasMessage("maxTokens 65536 exceeds the model's context length 32768 (qwen2)");
        assertThatThrownBy(() -> model.estimate(QWEN_25_14B, 0, 1, KvCacheType.F16, DeviceKind.GPU))
                .hasMessage("maxTokens must be > 0, got 0");
        assertThatThrownBy(() -> model.estimate(QWEN_25_14B, 10, 0, KvCacheType.F16, DeviceKind.GPU))
                .hasMessage("maxSequences must be > 0, got 0");
    }

    @Test
    void allocatorSlackInflatesKvAndWorkspaceOnly() {
        MemoryParameters p = new MemoryParameters(100, 10, 512, 64, 16, 0.5);
        MemoryBreakdown b = new MemoryModel(p).estimate(LLAMA_31_8B, 8192, 1, KvCacheType.F16, DeviceKind.GPU);
        assertThat(b.kvBytesPerReplica()).isEqualTo(GIB + GIB / 2);
        assertThat(b.workspaceBytes()).isEqualTo(137_560_064L + 68_780_032L);
        assertThat(b.hostOverheadBytes()).isEqualTo(100);
        assertThat(b.weightBytes()).isEqualTo(LLAMA_31_8B.weightBytes());
    }

    @Test
    void kvCacheTypesParseFromTheirManifestSpelling() {
        assertThat(KvCacheType.parse("f16")).isEqualTo(KvCacheType.F16);
        assertThat(KvCacheType.parse("Q8_0")).isEqualTo(KvCacheType.Q8_0);
        assertThat(KvCacheType.parse("f32")).isEqualTo(KvCacheType.F32);
        assertThatThrownBy(() -> KvCacheType.parse("q4_0"))
                .hasMessage("unknown KV cache type \"q4_0\"; expected one of f16, q8_0, f32");
    }

    @Test
    void deploymentHelperCarriesTheBreakdownIntoThePlanRecords() {
        MemoryBreakdown b = model.estimate(LLAMA_31_8B, 8192, 1, KvCacheType.F16, DeviceKind.GPU);
        Deployment d = MemoryModel.deployment(
                "ns/chat", "sha256:ab", b, 3, 5, Map.of("zone", "a"), List.of(), 2, DeviceRequest.GPU, 0.25);
        assertThat(d.model().digest()).isEqualTo("sha256:ab");
        assertThat(d.model().weightBytes()).isEqualTo(b.weightBytes());
        assertThat(d.model().workspaceBytes()).isEqualTo(b.workspaceBytes());
        assertThat(d.kvBytesPerReplica()).isEqualTo(GIB);
        assertThat(d.replicas()).isEqualTo(3);
        assertThat(d.priority()).isEqualTo(5);
        assertThat(d.maxReplicasPerNode()).isEqualTo(2);
    }
}
