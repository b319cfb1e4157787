package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufArray;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.GgufWriter;
import io.stowage.placement.memory.ModelShape;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A Llama-shaped model of about 1.1 billion parameters with random weights (TinyLlama-1.1B's shape), written once
 * with GgufWriter for the engine benchmark and cached. A kind is a GGUF weight type name (every matrix in that type)
 * or {@code Q4_K_M}: llama.cpp's Q4_K_M recipe, Q4_K with Q6_K for the output head and for attn_v and ffn_down of the
 * layers llama.cpp gives more bits.
 */
final class SyntheticModel {
    // TinyLlama-1.1B: 22 layers, n_embd 2048, n_ff 5632, 32 query heads, 4 KV heads (head dim 64), vocab 32000.
    static final int LAYERS = 22;
    static final int EMBD = 2048;
    static final int FF = 5632;
    static final int HEADS = 32;
    static final int HEADS_KV = 4;
    static final int VOCAB = 32000;
    static final int CONTEXT = 2048;

    /** The mixed kind: Q4_K matrices, Q6_K where llama.cpp's Q4_K_M puts them. */
    static final String Q4_K_M = "Q4_K_M";

    private SyntheticModel() {}

    /** The kinds {@code --1b} benchmarks, in order. */
    static final List<String> KINDS = List.of("Q8_0", "Q4_0", Q4_K_M);

    /** The kind's main weight type ({@code Q4_K} for {@code Q4_K_M}); an unknown kind is a usage error. */
    static GgufType mainType(String kind) {
        if (kind.equals(Q4_K_M)) {
            return GgufType.Q4_K;
        }
        if (kind.equals("Q8_0") || kind.equals("Q4_0") || kind.equals("Q4_K") || kind.equals("Q6_K")) {
            return GgufType.valueOf(kind);
        }
        throw new UsageException("bench-engine: unknown synthetic model kind '" + kind
                + "' (expected Q8_0, Q4_0, Q4_K, Q6_K or Q4_K_M)");
    }

    /**
     * The type of one matrix of the kind. For Q4_K_M it follows llama.cpp's {@code use_more_bits}: layer i of n gets
     * Q6_K attn_v and ffn_down when i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2; the output head is Q6_K.
     */
    static GgufType matrixType(String kind, String tensor, int layer) {
        GgufType main = mainType(kind);
        if (!kind.equals(Q4_K_M)) {
            return main;
        }
        if (tensor.equals("output.weight")) {
            return GgufType.Q6_K;
        }
        boolean moreBits = layer < LAYERS / 8 || layer >= 7 * LAYERS / 8 || (layer - LAYERS / 8) % 3 == 2;
        if (moreBits && (tensor.endsWith(".attn_v.weight") || tensor.endsWith(".ffn_down.weight"))) {
            return GgufType.Q6_K;
        }
        return main;
    }

    /** GGUF {@code general.file_type} of the kind (llama_ftype). */
    static int fileType(String kind) {
        return switch (kind) {
            case "Q8_0" -> 7;
            case "Q4_0" -> 2;
            case "Q4_K" -> 14; // Q4_K_S: every matrix Q4_K
            case Q4_K_M -> 15;
            case "Q6_K" -> 18;
            default -> 0;
        };
    }

    /** Where the model of this weight type is cached. */
    static Path file(Path cacheDir, String typeName) {
        // v2: with byte tokens in the vocabulary (v1 files made llama.cpp throw); bump when the contents change.
        return cacheDir.resolve("llama-1.1b-random-v2-" + typeName.toLowerCase(Locale.ROOT) + ".gguf");
    }

    /** One tensor of the model: F32 ones for the norms, {@code type} random weights for the rest; dims = {in, out}. */
    record TensorSpec(String name, GgufType type, long[] dims) {}

    /** The tensors in file order (the order the random weights are drawn in), every matrix in {@code type}. */
    static List<TensorSpec> tensors(GgufType type) {
        return tensors(type.name());
    }

    /** The tensors of a kind in file order (the order the random weights are drawn in). */
    static List<TensorSpec> tensors(String kind) {
        List<TensorSpec> t = new ArrayList<>();
        t.add(new TensorSpec("token_embd.weight", matrixType(kind, "token_embd.weight", -1), new long[] {EMBD, VOCAB}));
        t.add(new TensorSpec("output_norm.weight", GgufType.F32, new long[] {EMBD}));
        t.add(new TensorSpec("output.weight", matrixType(kind, "output.weight", -1), new long[] {EMBD, VOCAB}));
        int kv = EMBD / HEADS * HEADS_KV;
        for (int l = 0; l < LAYERS; l++) {
            String b = "blk." + l + ".";
            t.add(new TensorSpec(b + "attn_norm.weight", GgufType.F32, new long[] {EMBD}));
            t.add(matrix(kind, b + "attn_q.weight", l, EMBD, EMBD));
            t.add(matrix(kind, b + "attn_k.weight", l, EMBD, kv));
            t.add(matrix(kind, b + "attn_v.weight", l, EMBD, kv));
            t.add(matrix(kind, b + "attn_output.weight", l, EMBD, EMBD));
            t.add(new TensorSpec(b + "ffn_norm.weight", GgufType.F32, new long[] {EMBD}));
            t.add(matrix(kind, b + "ffn_gate.weight", l, EMBD, FF));
            t.add(matrix(kind, b + "ffn_up.weight", l, EMBD, FF));
            t.add(matrix(kind, b + "ffn_down.weight", l, FF, EMBD));
        }
        return t;
    }

    private static TensorSpec matrix(String kind, String name, int layer, long in, long out) {
        return new TensorSpec(name, matrixType(kind, name, layer), new long[] {in, out});
    }

    /**
     * The model's shape for the memory model, without writing it: weight bytes are the exact tensor bytes as stored
     * (the file adds the metadata, about a megabyte, mostly the vocabulary).
     */
    static ModelShape shape(GgufType type) {
        return shape(type.name());
    }

    /** {@link #shape(GgufType)} for a kind. */
    static ModelShape shape(String kind) {
        long bytes = 0;
        for (TensorSpec t : tensors(kind)) {
            bytes += t.type().byteSize(t.name(), t.dims());
        }
        return new ModelShape(
                "llama", LAYERS, EMBD, FF, HEADS, HEADS_KV, EMBD / HEADS, EMBD / HEADS, VOCAB, CONTEXT, bytes);
    }

    /** The float buffers writing the model needs: one per distinct size of its quantized tensors. */
    static long floatBufferBytes() {
        Set<Long> sizes = new HashSet<>();
        for (TensorSpec t : tensors(GgufType.Q8_0)) {
            if (t.type() != GgufType.F32) {
                sizes.add(t.dims()[0] * t.dims()[1]);
            }
        }
        return 4 * sizes.stream().mapToLong(Long::longValue).sum();
    }

    /** The cached file for this weight type, written first when missing or unreadable. */
    static Path ensure(Path cacheDir, String typeName, PrintStream err) throws IOException {
        mainType(typeName);
        Path file = file(cacheDir, typeName);
        if (Files.isRegularFile(file)) {
            try {
                GgufFile f = GgufReader.readFile(file);
                if (f.tensors().size() == 3 + 9 * LAYERS) {
                    return file;
                }
            } catch (RuntimeException | IOException e) {
                err.println(
                        "bench-engine: cached " + file + " is unreadable (" + e.getMessage() + "); writing it again");
            }
        }
        Files.createDirectories(cacheDir);
        err.printf(
                Locale.ROOT,
                "bench-engine: writing a random-weight 1.1B Llama-shaped model (%s) to %s "
                        + "(once; the cache directory is gitignored)%n",
                typeName,
                file);
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", "llama");
        w.putString("general.name", "stowage-bench-1.1b-random");
        w.putUInt32("general.file_type", fileType(typeName));
        w.putUInt32("llama.context_length", CONTEXT);
        w.putUInt32("llama.embedding_length", EMBD);
        w.putUInt32("llama.block_count", LAYERS);
        w.putUInt32("llama.feed_forward_length", FF);
        w.putUInt32("llama.attention.head_count", HEADS);
        w.putUInt32("llama.attention.head_count_kv", HEADS_KV);
        w.putUInt32("llama.rope.dimension_count", EMBD / HEADS);
        w.putFloat32("llama.rope.freq_base", 10000f);
        w.putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.putUInt32("llama.vocab_size", VOCAB);
        // A SentencePiece-shaped vocabulary so llama.cpp accepts the file: <unk>, <s>, </s>, the 256 byte tokens
        // (llama.cpp looks up <0x0A> for the newline), then placeholder pieces.
        String[] tokens = new String[VOCAB];
        float[] scores = new float[VOCAB];
        long[] types = new long[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            if (i < 3) {
                tokens[i] = i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>";
                types[i] = i == 0 ? 2 : 3;
            } else if (i < 3 + 256) {
                tokens[i] = String.format(Locale.ROOT, "<0x%02X>", i - 3);
                types[i] = 6;
            } else {
                tokens[i] = "▁t" + i;
                types[i] = 1;
            }
            scores[i] = -i;
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(tokens));
        w.putArray("tokenizer.ggml.scores", GgufArray.ofFloat32(scores));
        w.putArray(
                "tokenizer.ggml.token_type",
                GgufArray.ofIntegers(io.stowage.placement.gguf.GgufValueType.INT32, types));
        w.putUInt32("tokenizer.ggml.bos_token_id", 1);
        w.putUInt32("tokenizer.ggml.eos_token_id", 2);
        SplittableRandom random = new SplittableRandom(20261123);
        long t0 = System.nanoTime();
        int layersDone = 0;
        // One float buffer per tensor size, refilled for each tensor of that size: the writer keeps only the quantized
        // bytes, so the heap holds the model as stored plus these (~330 MB), not a stream of garbage float arrays.
        Map<Integer, float[]> buffers = new HashMap<>();
        for (TensorSpec t : tensors(typeName)) {
            if (t.type() == GgufType.F32) {
                w.addTensor(t.name(), GgufType.F32, t.dims(), ones((int) t.dims()[0]));
            } else {
                w.addTensor(
                        t.name(),
                        t.type(),
                        t.dims(),
                        random(
                                random,
                                (int) t.dims()[0],
                                buffers.computeIfAbsent((int) (t.dims()[0] * t.dims()[1]), float[]::new)));
            }
            if (t.name().endsWith(".ffn_down.weight")) {
                err.printf(
                        Locale.ROOT,
                        "bench-engine:   layer %d/%d quantized (%.0f s)%n",
                        ++layersDone,
                        LAYERS,
                        (System.nanoTime() - t0) / 1e9);
            }
        }
        Path tmp = Files.createTempFile(cacheDir, "writing-", ".gguf");
        try {
            w.write(tmp);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
        err.printf(
                Locale.ROOT,
                "bench-engine: wrote %s (%s) in %.0f s%n",
                file,
                Bytes.human(Files.size(file)),
                (System.nanoTime() - t0) / 1e9);
        return file;
    }

    /** Uniform weights scaled by 1/sqrt(in), so activations keep their size through the layers. */
    private static float[] random(SplittableRandom random, int in, float[] v) {
        float scale = (float) (Math.sqrt(3.0 / in));
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (random.nextDouble() * 2 - 1) * scale;
        }
        return v;
    }

    private static float[] ones(int n) {
        float[] v = new float[n];
        Arrays.fill(v, 1f);
        return v;
    }
}
