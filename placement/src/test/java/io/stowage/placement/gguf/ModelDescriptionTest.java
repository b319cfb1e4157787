package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.ModelShape;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The model description from synthetic headers carrying the hyperparameters of real models (values from their
 * config.json as llama.cpp's converter writes them), for each supported architecture.
 */
class ModelDescriptionTest {

    /** A header in llama.cpp's key layout for {@code arch}; -1 leaves a key out. */
    private static GgufWriter header(
            String arch, int layers, int embd, int ff, int heads, int headsKv, long ctx, int vocab, int fileType) {
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", arch)
                .putString("general.name", arch + "-test")
                .putUInt32(arch + ".block_count", layers)
                .putUInt32(arch + ".embedding_length", embd)
                .putUInt32(arch + ".feed_forward_length", ff)
                .putUInt32(arch + ".attention.head_count", heads)
                .putUInt32(arch + ".context_length", ctx);
        if (headsKv >= 0) w.putUInt32(arch + ".attention.head_count_kv", headsKv);
        if (vocab >= 0) w.putUInt32(arch + ".vocab_size", vocab);
        if (fileType >= 0) w.putUInt32("general.file_type", fileType);
        return w;
    }

    private static ModelDescription describe(GgufWriter w) {
        return ModelDescription.from(GgufReader.readBytes(w.toBytes()));
    }

    @Test
    void mistralStyleLlamaWithGroupedQueryAttention() {
        ModelDescription d = describe(header("llama", 32, 4096, 14336, 32, 8, 32768, 32000, 15)
                .putFloat32("llama.rope.freq_base", 1_000_000f)
                .putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .putUInt32("llama.rope.dimension_count", 128));

        assertThat(d.shape()).isEqualTo(new ModelShape("llama", 32, 4096, 14336, 32, 8, 128, 128, 32000, 32768, 0));
        assertThat(d.quantization()).isEqualTo("Q4_K_M");
        assertThat(d.ropeFreqBase()).isEqualTo(1_000_000.0);
        assertThat(d.ropeDimensionCount()).isEqualTo(128);
        assertThat(d.name()).isEqualTo("llama-test");
    }

    @Test
    void qwen2TakesHeadDimFromEmbeddingOverHeads() {
        ModelDescription d = describe(header("qwen2", 28, 3584, 18944, 28, 4, 32768, 152064, 7)
                .putFloat32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f));

        assertThat(d.shape()).isEqualTo(new ModelShape("qwen2", 28, 3584, 18944, 28, 4, 128, 128, 152064, 32768, 0));
        assertThat(d.rmsEpsilon()).isEqualTo(1e-6f);
        assertThat(d.quantization()).isEqualTo("Q8_0");
    }

    @Test
    void qwen3ExplicitKeyLengthWinsOverEmbeddingOverHeads() {
        // Qwen3-0.6B: 1024 / 16 would be 64, but its heads are 128 wide.
        ModelDescription d = describe(header("qwen3", 28, 1024, 3072, 16, 8, 40960, 151936, 1)
                .putUInt32("qwen3.attention.key_length", 128)
                .putUInt32("qwen3.attention.value_length", 128));

        assertThat(d.keyLength()).isEqualTo(128);
        assertThat(d.valueLength()).isEqualTo(128);
        assertThat(d.headCountKv()).isEqualTo(8);
        assertThat(d.quantization()).isEqualTo("F16");
    }

    @Test
    void phi3WithoutHeadCountKvDefaultsToHeadCount() {
        ModelDescription d = describe(
                header("phi3", 32, 3072, 8192, 32, -1, 4096, 32064, 18).putUInt32("phi3.rope.dimension_count", 96));

        assertThat(d.headCountKv()).isEqualTo(32);
        assertThat(d.keyLength()).isEqualTo(96);
        assertThat(d.ropeDimensionCount()).isEqualTo(96);
        assertThat(d.quantization()).isEqualTo("Q6_K");
        assertThat(d.shape().vocabSize()).isEqualTo(32064);
    }

    @Test
    void gemma2UsesItsExplicit256WideHeads() {
        // Gemma-2-9B: 3584 / 16 = 224, but key_length and value_length are 256.
        ModelDescription d = describe(header("gemma2", 42, 3584, 14336, 16, 8, 8192, 256000, 32)
                .putUInt32("gemma2.attention.key_length", 256)
                .putUInt32("gemma2.attention.value_length", 256)
                .putFloat32("gemma2.attention.layer_norm_rms_epsilon", 1e-6f));

        assertThat(d.shape()).isEqualTo(new ModelShape("gemma2", 42, 3584, 14336, 16, 8, 256, 256, 256000, 8192, 0));
        assertThat(d.quantization()).isEqualTo("BF16");
    }

    @Test
    void perLayerFeedForwardLengthTakesTheLargest() {
        ModelDescription d = describe(new GgufWriter()
                .putString("general.architecture", "openelm")
                .putUInt32("openelm.block_count", 3)
                .putUInt32("openelm.embedding_length", 64)
                .putArray("openelm.feed_forward_length", GgufArray.ofIntegers(GgufValueType.INT32, 128, 384, 256))
                .putArray("openelm.attention.head_count", GgufArray.ofIntegers(GgufValueType.INT32, 2, 4, 4))
                .putUInt32("openelm.context_length", 2048)
                .putUInt32("openelm.vocab_size", 100));

        assertThat(d.feedForwardLength()).isEqualTo(384);
        assertThat(d.headCount()).isEqualTo(4);
        assertThat(d.keyLength()).isEqualTo(16);
    }

    @Test
    void weightsParametersAndTypeBreakdownComeFromTheTensors() {
        GgufWriter w = header("llama", 1, 256, 512, 2, 1, 128, -1, -1)
                .addTensor("token_embd.weight", GgufType.Q4_K, new long[] {256, 10}, new byte[10 * 144])
                .addTensor("output_norm.weight", GgufType.F32, new long[] {256}, new byte[1024])
                .addTensor("output.weight", GgufType.Q6_K, new long[] {256, 10}, new byte[10 * 210]);

        ModelDescription d = describe(w);

        assertThat(d.vocabSize()).isEqualTo(10); // no vocab_size, no tokens: the embedding's rows
        assertThat(d.parameterCount()).isEqualTo(2560 + 256 + 2560);
        assertThat(d.bytesByType())
                .containsExactly(
                        Map.entry(GgufType.F32, 1024L),
                        Map.entry(GgufType.Q4_K, 1440L),
                        Map.entry(GgufType.Q6_K, 2100L));
        assertThat(d.weightBytes()).isEqualTo(1024 + 1440 + 2100);
        assertThat(d.shape().weightBytes()).isEqualTo(4564);
        assertThat(d.quantization()).isEqualTo("Q6_K"); // no file_type: the type holding the most bytes
    }

    @Test
    void guessedFileTypeFlagIsIgnoredAndUnknownFileTypesFallBackToTheTensors() {
        assertThat(describe(header("llama", 1, 64, 64, 2, 2, 16, 8, 1024 + 15)).quantization())
                .isEqualTo("Q4_K_M");
        ModelDescription unknown = describe(header("llama", 1, 64, 64, 2, 2, 16, 8, 99)
                .addTensor("w", GgufType.Q8_0, new long[] {64}, new byte[68]));
        assertThat(unknown.quantization()).isEqualTo("Q8_0");
        assertThat(ModelDescription.fileTypeName(10)).isEqualTo("Q2_K");
        assertThat(ModelDescription.fileTypeName(38)).isEqualTo("MXFP4_MOE");
        assertThat(ModelDescription.fileTypeName(4)).isNull();
    }

    @Test
    void missingOrBadHyperparametersAreNamed() {
        assertThatThrownBy(() -> describe(new GgufWriter().putString("general.architecture", "llama")))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageStartingWith("metadata key 'llama.block_count' is missing");
        assertThatThrownBy(() -> describe(new GgufWriter()))
                .hasMessageStartingWith("metadata key 'general.architecture' is missing");
        assertThatThrownBy(() -> describe(header("llama", 1, 64, 64, 0, 1, 16, 8, -1)))
                .hasMessage("metadata key 'llama.attention.head_count' is 0, must be > 0");
        // Found by the fuzz test: a zero n_ff reached ModelShape's constructor as an IllegalArgumentException.
        assertThatThrownBy(() -> describe(header("llama", 1, 64, 0, 2, 1, 16, 8, -1)))
                .isInstanceOf(GgufFormatException.class)
                .hasMessage("metadata key 'llama.feed_forward_length' is 0, must be > 0");
        assertThatThrownBy(() -> describe(header("llama", 1, 100, 64, 3, 1, 16, 8, -1)))
                .hasMessageContaining("embedding_length 100 is not a multiple of llama.attention.head_count 3");
        assertThatThrownBy(() -> describe(header("llama", 1, 64, 64, 2, 1, 16, -1, -1)))
                .hasMessageContaining("cannot tell the vocabulary size");
        assertThatThrownBy(() -> describe(new GgufWriter()
                        .putString("general.architecture", "llama")
                        .putString("llama.block_count", "32")))
                .hasMessage("metadata key 'llama.block_count' has type string, expected integer");
    }
}
