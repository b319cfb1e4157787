package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The reader against real GGUF files, checked against the facts their provenance README states. */
class GgufRealFilesTest {

    /** The 48 tensors of stories260K in file order, with their ne shapes (from the testdata README). */
    static Map<String, long[]> stories260KShapes() {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("token_embd.weight", new long[] {64, 512});
        m.put("output_norm.weight", new long[] {64});
        m.put("output.weight", new long[] {64, 512});
        for (int n = 0; n < 5; n++) {
            m.put("blk." + n + ".attn_q.weight", new long[] {64, 64});
            m.put("blk." + n + ".attn_k.weight", new long[] {64, 32});
            m.put("blk." + n + ".attn_v.weight", new long[] {64, 32});
            m.put("blk." + n + ".attn_output.weight", new long[] {64, 64});
            m.put("blk." + n + ".attn_norm.weight", new long[] {64});
            m.put("blk." + n + ".ffn_gate.weight", new long[] {64, 172});
            m.put("blk." + n + ".ffn_down.weight", new long[] {172, 64});
            m.put("blk." + n + ".ffn_up.weight", new long[] {64, 172});
            m.put("blk." + n + ".ffn_norm.weight", new long[] {64});
        }
        return m;
    }

    private static long elements(long[] shape) {
        return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    }

    /** README rule for the Q8_0 file: 2-D tensors with ne0 % 32 == 0 are Q8_0, the rest F32. */
    private static boolean isQ8(long[] shape) {
        return shape.length == 2 && shape[0] % 32 == 0;
    }

    @Test
    void f32FileHasTheDocumentedMetadataAndFortyEightF32Tensors() throws IOException {
        GgufFile f = GgufReader.readFile(TestFiles.path(TestFiles.F32));

        assertThat(f.version()).isEqualTo(3);
        assertThat(f.fileSize()).isEqualTo(1_185_472L);
        assertThat(f.alignment()).isEqualTo(32);
        assertThat(f.dataOffset() % 32).isZero();
        assertThat(f.getString("general.architecture")).isEqualTo("llama");
        assertThat(f.getString("general.name")).isEqualTo("stories260K");
        assertThat(f.getLong("general.file_type")).isZero();
        assertThat(f.getLong("llama.vocab_size")).isEqualTo(512);
        assertThat(f.getLong("llama.context_length")).isEqualTo(512);
        assertThat(f.getLong("llama.embedding_length")).isEqualTo(64);
        assertThat(f.getLong("llama.block_count")).isEqualTo(5);
        assertThat(f.getLong("llama.feed_forward_length")).isEqualTo(172);
        assertThat(f.getLong("llama.attention.head_count")).isEqualTo(8);
        assertThat(f.getLong("llama.attention.head_count_kv")).isEqualTo(4);
        assertThat(f.getLong("llama.rope.dimension_count")).isEqualTo(8);
        assertThat(f.getDouble("llama.rope.freq_base")).isEqualTo(10000.0);
        assertThat(f.getDouble("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
        assertThat(f.getString("tokenizer.ggml.model")).isEqualTo("llama");
        assertThat(f.getLong("tokenizer.ggml.unknown_token_id")).isZero();
        assertThat(f.getLong("tokenizer.ggml.bos_token_id")).isEqualTo(1);
        assertThat(f.getLong("tokenizer.ggml.eos_token_id")).isEqualTo(2);
        assertThat(f.getBoolean("tokenizer.ggml.add_bos_token")).isTrue();
        assertThat(f.getBoolean("tokenizer.ggml.add_eos_token")).isFalse();

        String[] tokens = f.getArray("tokenizer.ggml.tokens").strings();
        long[] types = f.getArray("tokenizer.ggml.token_type").longs();
        assertThat(tokens).hasSize(512);
        assertThat(f.getArray("tokenizer.ggml.scores").floats()).hasSize(512);
        assertThat(tokens[0]).isEqualTo("<unk>");
        assertThat(tokens[1]).isEqualTo("<s>");
        assertThat(tokens[2]).isEqualTo("</s>");
        assertThat(tokens[3]).isEqualTo("<0x00>");
        assertThat(tokens[258]).isEqualTo("<0xFF>");
        assertThat(types[0]).isEqualTo(2);
        assertThat(types[1]).isEqualTo(3);
        assertThat(types[3]).isEqualTo(6);
        assertThat(types[300]).isEqualTo(1);

        Map<String, long[]> expected = stories260KShapes();
        assertThat(f.tensors()).extracting(GgufTensorInfo::name).containsExactlyElementsOf(expected.keySet());
        for (GgufTensorInfo t : f.tensors()) {
            assertThat(t.dims()).as(t.name()).containsExactly(expected.get(t.name()));
            assertThat(t.type()).as(t.name()).isEqualTo(GgufType.F32);
            assertThat(t.byteSize()).as(t.name()).isEqualTo(4 * elements(expected.get(t.name())));
            assertThat(t.absoluteOffset()).isEqualTo(f.dataOffset() + t.relativeOffset());
        }
        long expectedBytes =
                expected.values().stream().mapToLong(s -> 4 * elements(s)).sum();
        assertThat(ModelDescription.from(f).weightBytes()).isEqualTo(expectedBytes);
        assertThat(f.tensors().get(f.tensors().size() - 1).absoluteEnd()).isLessThanOrEqualTo(f.fileSize());
    }

    @Test
    void q8FileSplitsQ8_0AndF32AsDocumentedAndWeightBytesMatchTheShapes() throws IOException {
        GgufFile f = GgufReader.readFile(TestFiles.path(TestFiles.Q8_0));
        Map<String, long[]> expected = stories260KShapes();

        assertThat(f.getLong("general.file_type")).isEqualTo(7);
        assertThat(f.getLong("general.quantization_version")).isEqualTo(2);
        long expectedBytes = 0;
        int q8 = 0;
        for (GgufTensorInfo t : f.tensors()) {
            long[] shape = expected.get(t.name());
            assertThat(t.dims()).as(t.name()).containsExactly(shape);
            GgufType want = isQ8(shape) ? GgufType.Q8_0 : GgufType.F32;
            assertThat(t.type()).as(t.name()).isEqualTo(want);
            long bytes = want == GgufType.Q8_0 ? elements(shape) / 32 * 34 : elements(shape) * 4;
            assertThat(t.byteSize()).as(t.name()).isEqualTo(bytes);
            expectedBytes += bytes;
            q8 += want == GgufType.Q8_0 ? 1 : 0;
        }
        assertThat(f.tensors()).hasSize(48);
        assertThat(q8).isEqualTo(32);
        assertThat(f.tensor("blk.2.ffn_down.weight").orElseThrow().type()).isEqualTo(GgufType.F32);

        ModelDescription d = ModelDescription.from(f);
        assertThat(d.weightBytes()).isEqualTo(expectedBytes);
        assertThat(d.quantization()).isEqualTo("Q8_0");
        assertThat(d.bytesByType().keySet()).containsExactly(GgufType.F32, GgufType.Q8_0);
        assertThat(d.bytesByType().get(GgufType.F32) + d.bytesByType().get(GgufType.Q8_0))
                .isEqualTo(expectedBytes);
        assertThat(d.parameterCount())
                .isEqualTo(expected.values().stream()
                        .mapToLong(GgufRealFilesTest::elements)
                        .sum());
    }

    @Test
    void stories260KDescribesItsOwnShape() throws IOException {
        ModelDescription d = ModelDescription.from(GgufReader.readFile(TestFiles.path(TestFiles.F32)));

        assertThat(d.architecture()).isEqualTo("llama");
        assertThat(d.name()).isEqualTo("stories260K");
        assertThat(d.blockCount()).isEqualTo(5);
        assertThat(d.embeddingLength()).isEqualTo(64);
        assertThat(d.feedForwardLength()).isEqualTo(172);
        assertThat(d.headCount()).isEqualTo(8);
        assertThat(d.headCountKv()).isEqualTo(4);
        assertThat(d.keyLength()).isEqualTo(8);
        assertThat(d.valueLength()).isEqualTo(8);
        assertThat(d.contextLength()).isEqualTo(512);
        assertThat(d.vocabSize()).isEqualTo(512);
        assertThat(d.ropeDimensionCount()).isEqualTo(8);
        assertThat(d.rmsEpsilon()).isEqualTo(1e-5f);
        assertThat(d.quantization()).isEqualTo("F32");
        assertThat(d.shape().weightBytes()).isEqualTo(d.weightBytes());
        assertThat(d.shape().headCountKv()).isEqualTo(4);
    }

    @Test
    void ggmlOrgFileFallsBackWhereKeysAreMissing() throws IOException {
        GgufFile f = GgufReader.readFile(TestFiles.path(TestFiles.GGML_ORG));
        ModelDescription d = ModelDescription.from(f);

        assertThat(f.has("llama.vocab_size")).isFalse();
        assertThat(f.has("general.file_type")).isFalse();
        assertThat(f.getLong("llama.context_length")).isEqualTo(2048);
        // The README: both ids are 4294967295 ("none"), stored as uint32.
        assertThat(f.get("tokenizer.ggml.seperator_token_id").type()).isEqualTo(GgufValueType.UINT32);
        assertThat(f.getLong("tokenizer.ggml.padding_token_id")).isEqualTo(4_294_967_295L);
        assertThat(d.name()).isEqualTo("llama");
        assertThat(d.vocabSize()).isEqualTo(512); // from tokenizer.ggml.tokens
        assertThat(d.ropeFreqBase()).isEqualTo(10000.0); // default
        assertThat(d.quantization()).isEqualTo("F32"); // dominant type
        assertThat(f.tensors()).hasSize(48);
    }

    @Test
    void tensorOffsetsPointAtTheRightBytes() throws IOException {
        byte[] f32Bytes = TestFiles.bytes(TestFiles.F32);
        byte[] orgBytes = TestFiles.bytes(TestFiles.GGML_ORG);
        GgufFile f32 = GgufReader.readBytes(f32Bytes);
        GgufFile org = GgufReader.readBytes(orgBytes);

        // output.weight is a copy of token_embd.weight (the checkpoint shares them).
        assertThat(slice(f32Bytes, f32.tensor("output.weight").orElseThrow()))
                .isEqualTo(slice(f32Bytes, f32.tensor("token_embd.weight").orElseThrow()));
        // The F32 conversion's tensor data is byte-identical to ggml-org's, though headers differ.
        assertThat(f32.dataOffset()).isNotEqualTo(org.dataOffset());
        for (GgufTensorInfo t : f32.tensors()) {
            assertThat(slice(f32Bytes, t))
                    .as(t.name())
                    .isEqualTo(slice(orgBytes, org.tensor(t.name()).orElseThrow()));
        }
    }

    @Test
    void q8FileIsExactlyWhatOurReferenceQ8_0QuantizerMakesOfTheF32Weights() throws IOException {
        byte[] f32Bytes = TestFiles.bytes(TestFiles.F32);
        byte[] q8Bytes = TestFiles.bytes(TestFiles.Q8_0);
        GgufFile f32 = GgufReader.readBytes(f32Bytes);
        GgufFile q8 = GgufReader.readBytes(q8Bytes);
        List<String> checked = new ArrayList<>();
        for (GgufTensorInfo t : q8.tensors()) {
            if (t.type() != GgufType.Q8_0) {
                continue;
            }
            byte[] raw = slice(f32Bytes, f32.tensor(t.name()).orElseThrow());
            float[] values = new float[raw.length / 4];
            ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            assertThat(GgufQuantizer.quantize(GgufType.Q8_0, values))
                    .as(t.name())
                    .isEqualTo(slice(q8Bytes, t));
            checked.add(t.name());
        }
        assertThat(checked).hasSize(32);
    }

    @Test
    void qwen3VocabularyHeaderReadsAllHundredFiftyThousandTokens() throws IOException {
        GgufFile f = GgufReader.readFile(TestFiles.path(TestFiles.QWEN3_VOCAB));

        assertThat(f.version()).isEqualTo(3);
        assertThat(f.tensors()).isEmpty();
        assertThat(f.headerSize()).isEqualTo(5_932_252L); // the file ends right after the key/value data
        assertThat(f.metadata().keySet())
                .startsWith("general.architecture", "general.type", "general.name", "tokenizer.ggml.model");
        assertThat(f.getString("general.architecture")).isEqualTo("qwen3");
        assertThat(f.getString("tokenizer.ggml.pre")).isEqualTo("qwen2");
        String[] tokens = f.getArray("tokenizer.ggml.tokens").strings();
        long[] types = f.getArray("tokenizer.ggml.token_type").longs();
        assertThat(tokens).hasSize(151_936);
        assertThat(f.getArray("tokenizer.ggml.token_type").elementType()).isEqualTo(GgufValueType.INT32);
        assertThat(f.getArray("tokenizer.ggml.merges").size()).isEqualTo(151_387);
        assertThat(tokens[151_644]).isEqualTo("<|im_start|>");
        assertThat(tokens[151_667]).isEqualTo("<think>");
        assertThat(tokens[151_935]).isEqualTo("[PAD151935]");
        assertThat(types[151_935]).isEqualTo(5);
        assertThat(types[151_667]).isEqualTo(4);
        assertThat(Arrays.stream(types).filter(t -> t == 1).count()).isEqualTo(151_643);
        assertThat(f.getLong("tokenizer.ggml.eos_token_id")).isEqualTo(151_645);
        assertThat(f.getLong("tokenizer.ggml.bos_token_id")).isEqualTo(151_643);
        assertThat(f.getBoolean("tokenizer.ggml.add_bos_token")).isFalse();
        assertThat(f.getString("tokenizer.chat_template")).contains("<|im_start|>");

        // A vocabulary alone is no model: the description names the first key it lacks.
        assertThatThrownBy(() -> ModelDescription.from(f))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("'qwen3.block_count' is missing");
    }

    static byte[] slice(byte[] file, GgufTensorInfo t) {
        return Arrays.copyOfRange(file, (int) t.absoluteOffset(), (int) t.absoluteEnd());
    }
}
