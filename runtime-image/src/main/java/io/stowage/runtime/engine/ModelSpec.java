package io.stowage.runtime.engine;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.ModelShape;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the engine needs from a GGUF header: its hyperparameters and tensor descriptors, checked in Java (required
 * tensors present, shapes consistent with the hyperparameters, supported types) before the core re-checks them
 * against the mapped file.
 */
public final class ModelSpec {
    /** The tensor types the CPU kernels implement. */
    public static final Set<GgufType> SUPPORTED_TYPES = EnumSet.of(
            GgufType.F32, GgufType.F16, GgufType.BF16, GgufType.Q8_0, GgufType.Q4_0, GgufType.Q4_K, GgufType.Q6_K);

    private final Path path;
    private final GgufFile file;
    private final ModelHparams hparams;

    private ModelSpec(Path path, GgufFile file, ModelHparams hparams) {
        this.path = path;
        this.file = file;
        this.hparams = hparams;
    }

    /** Why a file could not be read, in words rather than a Java exception name. */
    static String ioReason(IOException e) {
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such file";
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return "cannot read: " + f.getReason();
        }
        return "cannot read: "
                + (e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName());
    }

    /** Reads and checks the header of the GGUF at path. */
    public static ModelSpec read(Path path) {
        GgufFile file;
        try {
            file = GgufReader.readFile(path);
        } catch (GgufFormatException e) {
            throw new ModelFormatException("model " + path + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new NativeEngineException(EngineStatus.IO, "model " + path + ": " + ioReason(e), e);
        } catch (UncheckedIOException e) {
            throw new NativeEngineException(EngineStatus.IO, "model " + path + ": " + ioReason(e.getCause()), e);
        }
        return of(path, file);
    }

    /** Checks an already parsed header of the file at path. */
    public static ModelSpec of(Path path, GgufFile file) {
        try {
            ModelHparams hp = hparams(path, file);
            check(path, file, hp);
            return new ModelSpec(path, file, hp);
        } catch (GgufFormatException e) {
            throw new ModelFormatException("model " + path + ": " + e.getMessage(), e);
        }
    }

    public Path path() {
        return path;
    }

    public GgufFile file() {
        return file;
    }

    public ModelHparams hparams() {
        return hparams;
    }

    /** The placement library's reading of the header. */
    public ModelDescription description() {
        return ModelDescription.from(file);
    }

    /** The shape the placement memory model takes (its estimates must equal what the engine allocates). */
    public ModelShape shape() {
        return description().shape();
    }

    /** Exact bytes of all tensors as stored (W_m of the memory model). */
    public long weightBytes() {
        long sum = 0;
        for (GgufTensorInfo t : file.tensors()) {
            sum += t.byteSize();
        }
        return sum;
    }

    private static ModelHparams hparams(Path path, GgufFile f) {
        String arch = f.getString("general.architecture");
        int archId;
        int ropeType;
        switch (arch) {
            case "llama", "mistral" -> {
                archId = ModelHparams.ARCH_LLAMA;
                ropeType = ModelHparams.ROPE_ADJACENT;
            }
            case "qwen2" -> {
                archId = ModelHparams.ARCH_QWEN2;
                ropeType = ModelHparams.ROPE_NEOX;
            }
            default ->
                throw new UnsupportedModelException("model " + path + ": architecture '" + arch
                        + "' is not supported by the engine (supported: llama, mistral, qwen2)");
        }
        // RoPE scaling (linear, YaRN, longrope) moves positions in ways the engine does not apply yet: refuse the
        // file rather than generate wrong text from it. A factor of 1 (or none) changes nothing.
        String scaling = f.findString(arch + ".rope.scaling.type").orElse("none");
        double factor = f.findDouble(arch + ".rope.scaling.factor").orElse(1.0);
        if (!scaling.equals("none") && factor != 1.0 && factor != 0.0) {
            throw new UnsupportedModelException("model " + path + ": " + arch + ".rope.scaling.type '" + scaling
                    + "' with factor " + factor + " is not supported by the engine (only unscaled RoPE, and llama 3's"
                    + " rope_freqs.weight)");
        }
        // The placement library's reading of the header (the same defaults the memory model uses).
        ModelDescription d = ModelDescription.from(f);
        int layers = positive(path, arch + ".block_count", d.blockCount());
        int embd = positive(path, arch + ".embedding_length", d.embeddingLength());
        int ff = positive(path, arch + ".feed_forward_length", d.feedForwardLength());
        int heads = positive(path, arch + ".attention.head_count", d.headCount());
        int headsKv = positive(path, arch + ".attention.head_count_kv", d.headCountKv());
        if (heads % headsKv != 0) {
            throw new ModelFormatException("model " + path + ": " + arch + ".attention.head_count " + heads
                    + " is not a multiple of head_count_kv " + headsKv);
        }
        int dk = positive(path, arch + ".attention.key_length", d.keyLength());
        int dv = positive(path, arch + ".attention.value_length", d.valueLength());
        int nVocab = positive(path, arch + ".vocab_size", d.vocabSize());
        int ctx = (int) Math.min(Integer.MAX_VALUE, d.contextLength());
        int ropeDim = positive(path, arch + ".rope.dimension_count", d.ropeDimensionCount());
        if (ropeDim > dk || ropeDim % 2 != 0) {
            throw new ModelFormatException("model " + path + ": " + arch + ".rope.dimension_count " + ropeDim
                    + " must be even and at most the head dimension " + dk);
        }
        float freqBase = (float) d.ropeFreqBase();
        float eps = (float) d.rmsEpsilon();
        if (!(freqBase > 0) || !(eps > 0) || Float.isInfinite(freqBase)) {
            throw new ModelFormatException("model " + path + ": rope.freq_base " + freqBase + " and rms epsilon " + eps
                    + " must be finite and > 0");
        }
        return new ModelHparams(
                archId, layers, embd, ff, heads, headsKv, dk, dv, nVocab, ctx, ropeDim, ropeType, freqBase, eps);
    }

    private static int positive(Path path, String key, long value) {
        // 1 << 24 bounds every width: far above real models, and keeps products of two widths inside a long.
        if (value <= 0 || value > (1 << 24)) {
            throw new ModelFormatException(
                    "model " + path + ": " + key + " = " + value + " is outside the accepted range 1.." + (1 << 24));
        }
        return (int) value;
    }

    private static void check(Path path, GgufFile f, ModelHparams hp) {
        Map<String, GgufTensorInfo> byName = new HashMap<>();
        for (GgufTensorInfo t : f.tensors()) {
            byName.put(t.name(), t);
            if (!SUPPORTED_TYPES.contains(t.type())) {
                throw new UnsupportedModelException("model " + path + ": tensor '" + t.name() + "' has type " + t.type()
                        + " (ggml id " + t.type().id() + "), which the engine does not implement (supported: "
                        + SUPPORTED_TYPES + ")");
            }
        }
        long e = hp.embeddingLength();
        long qw = (long) hp.headCount() * hp.keyLength();
        long kw = (long) hp.headCountKv() * hp.keyLength();
        long vw = (long) hp.headCountKv() * hp.valueLength();
        long ow = (long) hp.headCount() * hp.valueLength();
        String why = hp.architectureName() + " with n_embd " + e + ", n_ff " + hp.feedForwardLength() + ", n_head "
                + hp.headCount() + ", n_head_kv " + hp.headCountKv() + ", head dims " + hp.keyLength() + "/"
                + hp.valueLength() + ", n_vocab " + hp.vocabSize();
        expect(path, byName, "token_embd.weight", why, e, hp.vocabSize());
        expect(path, byName, "output_norm.weight", why, e);
        if (byName.containsKey("output.weight")) {
            expect(path, byName, "output.weight", why, e, hp.vocabSize());
        }
        for (int l = 0; l < hp.layers(); l++) {
            String b = "blk." + l + ".";
            expect(path, byName, b + "attn_norm.weight", why, e);
            expect(path, byName, b + "attn_q.weight", why, e, qw);
            expect(path, byName, b + "attn_k.weight", why, e, kw);
            expect(path, byName, b + "attn_v.weight", why, e, vw);
            expect(path, byName, b + "attn_output.weight", why, ow, e);
            expect(path, byName, b + "ffn_norm.weight", why, e);
            expect(path, byName, b + "ffn_gate.weight", why, e, hp.feedForwardLength());
            expect(path, byName, b + "ffn_up.weight", why, e, hp.feedForwardLength());
            expect(path, byName, b + "ffn_down.weight", why, hp.feedForwardLength(), e);
            if (hp.arch() == ModelHparams.ARCH_QWEN2) {
                expect(path, byName, b + "attn_q.bias", why, qw);
                expect(path, byName, b + "attn_k.bias", why, kw);
                expect(path, byName, b + "attn_v.bias", why, vw);
            }
        }
    }

    private static void expect(Path path, Map<String, GgufTensorInfo> byName, String name, String why, long... shape) {
        GgufTensorInfo t = byName.get(name);
        if (t == null) {
            throw new ModelFormatException(
                    "model " + path + ": tensor '" + name + "' is missing (required by " + why + ")");
        }
        long[] dims = t.dims();
        long[] padded = Arrays.copyOf(dims, Math.max(dims.length, shape.length));
        for (int i = dims.length; i < padded.length; i++) {
            padded[i] = 1;
        }
        boolean ok = dims.length <= 4;
        for (int i = 0; ok && i < padded.length; i++) {
            ok = padded[i] == (i < shape.length ? shape[i] : 1);
        }
        if (!ok) {
            throw new ModelFormatException("model " + path + ": tensor '" + name + "' has shape "
                    + Arrays.toString(dims) + " but " + why + " needs " + Arrays.toString(shape));
        }
    }

    /** The descriptor arrays NativeEngine.modelInit takes. */
    record Descriptors(byte[] names, int[] ints, long[] longs) {}

    Descriptors descriptors() {
        List<GgufTensorInfo> tensors = file.tensors();
        ByteArrayOutputStream names = new ByteArrayOutputStream();
        int[] ints = new int[tensors.size() * NativeEngine.TENSOR_INTS];
        long[] longs = new long[tensors.size() * NativeEngine.TENSOR_LONGS];
        for (int i = 0; i < tensors.size(); i++) {
            GgufTensorInfo t = tensors.get(i);
            if (t.name().indexOf('\0') >= 0) {
                // Names cross to C as NUL-terminated strings; an embedded NUL would shift every later name.
                throw new ModelFormatException("model " + path + ": tensor " + i + " has a name with a NUL character");
            }
            names.writeBytes(t.name().getBytes(StandardCharsets.UTF_8));
            names.write(0);
            ints[i * NativeEngine.TENSOR_INTS] = t.type().id();
            ints[i * NativeEngine.TENSOR_INTS + 1] = t.rank();
            for (int d = 0; d < 4; d++) {
                longs[i * NativeEngine.TENSOR_LONGS + d] = t.dim(d);
            }
            longs[i * NativeEngine.TENSOR_LONGS + 4] = t.absoluteOffset();
            longs[i * NativeEngine.TENSOR_LONGS + 5] = t.byteSize();
        }
        return new Descriptors(names.toByteArray(), ints, longs);
    }
}
