package io.stowage.runtime.engine;

import io.stowage.placement.gguf.GgufQuantizer;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.GgufWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * A small Llama-shaped GGUF with seeded random weights, built for tests: every 2-D weight in one type, norms in
 * F32, and hooks to drop, reshape or retype a tensor to make hostile files.
 */
public final class SyntheticGguf {
    String arch = "llama";
    int layers = 1;
    int embd = 32;
    int ff = 64;
    int heads = 4;
    int headsKv = 2;
    int vocab = 32;
    int context = 64;
    long seed = 1;
    GgufType weightType = GgufType.F32;
    /** Tensors to leave out. */
    final List<String> omit = new ArrayList<>();
    /** Tensors with other dims than the hparams imply. */
    final Map<String, long[]> reshape = new LinkedHashMap<>();
    /** Tensors stored in another type (given raw random bytes of the right size). */
    final Map<String, GgufType> retype = new LinkedHashMap<>();
    /** RoPE scaling written as {@code <arch>.rope.scaling.type} and {@code .factor}, when set. */
    public String ropeScalingType;

    public float ropeScalingFactor = 1f;

    /** The random weights, name → values, in file order (the same for a given seed and shape). */
    Map<String, float[]> weights() {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        int dk = embd / heads;
        w.put("token_embd.weight", random(r, embd, vocab, 1f));
        w.put("output_norm.weight", norm(r, embd));
        w.put("output.weight", random(r, embd, vocab, 1f / (float) Math.sqrt(embd)));
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            w.put(b + "attn_norm.weight", norm(r, embd));
            w.put(b + "attn_q.weight", random(r, embd, heads * dk, 1f / (float) Math.sqrt(embd)));
            w.put(b + "attn_k.weight", random(r, embd, headsKv * dk, 1f / (float) Math.sqrt(embd)));
            w.put(b + "attn_v.weight", random(r, embd, headsKv * dk, 1f / (float) Math.sqrt(embd)));
            w.put(b + "attn_output.weight", random(r, heads * dk, embd, 1f / (float) Math.sqrt(embd)));
            w.put(b + "ffn_norm.weight", norm(r, embd));
            w.put(b + "ffn_gate.weight", random(r, embd, ff, 1f / (float) Math.sqrt(embd)));
            w.put(b + "ffn_up.weight", random(r, embd, ff, 1f / (float) Math.sqrt(embd)));
            w.put(b + "ffn_down.weight", random(r, ff, embd, 1f / (float) Math.sqrt(ff)));
        }
        return w;
    }

    /** The file with every 2-D weight quantized to weightType, each tensor passed through values first. */
    byte[] build(UnaryOperator<float[]> values) {
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", arch);
        w.putString("general.name", "synthetic");
        w.putUInt32(arch + ".context_length", context);
        w.putUInt32(arch + ".embedding_length", embd);
        w.putUInt32(arch + ".block_count", layers);
        w.putUInt32(arch + ".feed_forward_length", ff);
        w.putUInt32(arch + ".attention.head_count", heads);
        w.putUInt32(arch + ".attention.head_count_kv", headsKv);
        w.putUInt32(arch + ".vocab_size", vocab);
        w.putFloat32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
        w.putFloat32(arch + ".rope.freq_base", 10000f);
        if (ropeScalingType != null) {
            w.putString(arch + ".rope.scaling.type", ropeScalingType);
            w.putFloat32(arch + ".rope.scaling.factor", ropeScalingFactor);
        }
        SplittableRandom bytes = new SplittableRandom(seed + 1);
        for (Map.Entry<String, float[]> e : weights().entrySet()) {
            String name = e.getKey();
            if (omit.contains(name)) {
                continue;
            }
            boolean matrix = !name.endsWith("norm.weight");
            long[] dims = dims(name, e.getValue().length);
            if (reshape.containsKey(name)) {
                dims = reshape.get(name);
                w.addTensor(
                        name,
                        GgufType.F32,
                        dims,
                        new float[(int) Arrays.stream(dims).reduce(1, (a, b) -> a * b)]);
            } else if (retype.containsKey(name)) {
                GgufType t = retype.get(name);
                byte[] raw = new byte[(int) t.byteSize(name, dims)];
                bytes.nextBytes(raw);
                w.addTensor(name, t, dims, raw);
            } else if (matrix) {
                w.addTensor(name, weightType, dims, values.apply(e.getValue()));
            } else {
                w.addTensor(name, GgufType.F32, dims, e.getValue());
            }
        }
        return w.toBytes();
    }

    public byte[] build() {
        return build(v -> v);
    }

    private long[] dims(String name, int n) {
        if (name.endsWith("norm.weight")) {
            return new long[] {n};
        }
        long in = name.contains("ffn_down") ? ff : name.contains("attn_output") ? (long) heads * (embd / heads) : embd;
        return new long[] {in, n / in};
    }

    /** Weights in the way the engine sees them after the writer quantized them: dequantize(quantize(v)). */
    static float[] roundTrip(GgufType type, float[] v) {
        return GgufQuantizer.dequantize(type, GgufQuantizer.quantize(type, v));
    }

    private static float[] random(SplittableRandom r, int in, int out, float scale) {
        float[] v = new float[in * out];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1) * scale * 1.7f;
        }
        return v;
    }

    private static float[] norm(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = 0.5f + (float) r.nextDouble();
        }
        return v;
    }
}
