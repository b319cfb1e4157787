package io.stowage.runtime.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.GgufWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.SplittableRandom;

/** The stories260K test models and golden vectors from src/test/resources/models. */
public final class TestModels {
    private TestModels() {}

    public static Path path(String name) {
        try {
            return Path.of(Objects.requireNonNull(TestModels.class.getResource("/models/" + name), name)
                    .toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path f32() {
        return path("stories260K-f32.gguf");
    }

    public static Path q8() {
        return path("stories260K-q8_0.gguf");
    }

    public static JsonNode golden(String name) {
        try (InputStream in = TestModels.class.getResourceAsStream("/models/" + name)) {
            return new ObjectMapper().readTree(Objects.requireNonNull(in, name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = array.get(i).asInt();
        }
        return r;
    }

    /**
     * Writes a Llama-shaped model of random F32 weights (seed 7) with the tokenizer of {@code tokenizerFrom}: 1024
     * wide, a 4096 feed-forward, {@code layers} blocks; written beside {@code file} and moved into place.
     */
    public static void writeLlamaShapedF32(Path tokenizerFrom, Path file, int layers) throws IOException {
        GgufFile stories = GgufReader.readFile(tokenizerFrom);
        int embd = 1024;
        int ff = 4096;
        int heads = 8;
        int headsKv = 4;
        int vocab = (int) stories.tensor("token_embd.weight").orElseThrow().dim(1);
        GgufWriter w = new GgufWriter();
        stories.metadata().forEach((k, v) -> {
            if (!k.startsWith("llama.") && !k.equals("general.alignment")) {
                w.put(k, v);
            }
        });
        w.putUInt32("llama.context_length", 512);
        w.putUInt32("llama.embedding_length", embd);
        w.putUInt32("llama.block_count", layers);
        w.putUInt32("llama.feed_forward_length", ff);
        w.putUInt32("llama.attention.head_count", heads);
        w.putUInt32("llama.attention.head_count_kv", headsKv);
        w.putUInt32("llama.vocab_size", vocab);
        w.putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.putFloat32("llama.rope.freq_base", 10000f);
        SplittableRandom r = new SplittableRandom(7);
        int kv = headsKv * (embd / heads);
        w.addTensor("token_embd.weight", GgufType.F32, new long[] {embd, vocab}, random(r, embd * vocab, 1f));
        w.addTensor("output_norm.weight", GgufType.F32, new long[] {embd}, ones(embd));
        w.addTensor("output.weight", GgufType.F32, new long[] {embd, vocab}, random(r, embd * vocab, 0.03f));
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            w.addTensor(b + "attn_norm.weight", GgufType.F32, new long[] {embd}, ones(embd));
            w.addTensor(b + "attn_q.weight", GgufType.F32, new long[] {embd, embd}, random(r, embd * embd, 0.03f));
            w.addTensor(b + "attn_k.weight", GgufType.F32, new long[] {embd, kv}, random(r, embd * kv, 0.03f));
            w.addTensor(b + "attn_v.weight", GgufType.F32, new long[] {embd, kv}, random(r, embd * kv, 0.03f));
            w.addTensor(b + "attn_output.weight", GgufType.F32, new long[] {embd, embd}, random(r, embd * embd, 0.03f));
            w.addTensor(b + "ffn_norm.weight", GgufType.F32, new long[] {embd}, ones(embd));
            w.addTensor(b + "ffn_gate.weight", GgufType.F32, new long[] {embd, ff}, random(r, embd * ff, 0.03f));
            w.addTensor(b + "ffn_up.weight", GgufType.F32, new long[] {embd, ff}, random(r, embd * ff, 0.03f));
            w.addTensor(b + "ffn_down.weight", GgufType.F32, new long[] {ff, embd}, random(r, embd * ff, 0.015f));
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        w.write(tmp);
        java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    private static float[] random(SplittableRandom r, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1) * scale;
        }
        return v;
    }

    private static float[] ones(int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1f);
        return v;
    }
}
