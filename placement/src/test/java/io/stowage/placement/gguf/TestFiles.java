package io.stowage.placement.gguf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the GGUF files under src/test/resources/gguf and builds small valid GGUFs for the tests. */
final class TestFiles {

    static final String F32 = "stories260K-f32.gguf";
    static final String Q8_0 = "stories260K-q8_0.gguf";
    static final String GGML_ORG = "stories260K-ggml-org.gguf";
    static final String QWEN3_VOCAB = "qwen3-vocab.gguf";

    private TestFiles() {}

    static Path path(String name) {
        URL url = TestFiles.class.getResource("/gguf/" + name);
        if (url == null) {
            throw new IllegalStateException("test resource /gguf/" + name + " is missing");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] bytes(String name) {
        try {
            return Files.readAllBytes(path(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A small valid model-like GGUF: a few keys of several types and three tensors. */
    static GgufWriter smallModel() {
        return new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.name", "tiny")
                .putUInt32("llama.block_count", 1)
                .putUInt32("llama.embedding_length", 32)
                .putUInt32("llama.feed_forward_length", 64)
                .putUInt32("llama.attention.head_count", 4)
                .putUInt32("llama.context_length", 128)
                .putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings("<unk>", "a", "b", "c"))
                .putArray("tokenizer.ggml.scores", GgufArray.ofFloat32(0f, -1f, -2f, -3f))
                .addTensor("token_embd.weight", GgufType.F32, new long[] {32, 4}, new byte[32 * 4 * 4])
                .addTensor("blk.0.attn_q.weight", GgufType.Q8_0, new long[] {32, 32}, new byte[32 * 34])
                .addTensor("output_norm.weight", GgufType.F16, new long[] {32}, new byte[64]);
    }
}
