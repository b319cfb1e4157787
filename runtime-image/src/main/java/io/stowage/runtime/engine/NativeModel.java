package io.stowage.runtime.engine;

import io.stowage.placement.memory.KvCacheType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A GGUF model loaded into the native core: its weights memory-mapped read-only, shared by every KV pool and
 * compute context made from it.
 *
 * <p>Thread-safety: the model is immutable once open; any number of threads may use it and make pools and
 * contexts from it at once. {@link #close()} first closes those pools (with their sequences) and contexts, waiting
 * for calls in flight on them.
 */
public final class NativeModel extends NativeHandle {
    private final Path path;
    private final ModelSpec spec;
    private final ModelHparams hparams;

    private NativeModel(long pointer, Path path, ModelSpec spec, ModelHparams hparams) {
        super(pointer, null);
        this.path = path;
        this.spec = spec;
        this.hparams = hparams;
    }

    /**
     * Opens a model: the header is parsed and checked in Java (placement library), then the core maps the file and
     * re-checks every descriptor against it.
     *
     * @throws ModelFormatException a malformed file (names the tensor or key, the value and the limit)
     * @throws UnsupportedModelException an architecture or tensor type the engine does not run
     */
    public static NativeModel open(Path path) {
        ModelSpec spec = ModelSpec.read(path);
        return open(spec);
    }

    /** Opens a model from a header already read and checked. */
    public static NativeModel open(ModelSpec spec) {
        NativeLibrary.load();
        ModelHparams hp = spec.hparams();
        ModelSpec.Descriptors d = spec.descriptors();
        long pointer =
                NativeEngine.modelInit(pathBytes(spec.path()), hp.ints(), hp.floats(), d.names(), d.ints(), d.longs());
        return new NativeModel(pointer, spec.path(), spec, hp);
    }

    /** Opens a model with the core's own GGUF parser only (no Java-side checks): for tests and tools. */
    public static NativeModel openWithNativeParser(Path path) {
        NativeLibrary.load();
        long pointer = NativeEngine.modelInitFile(pathBytes(path));
        int[] ints = new int[NativeEngine.HPARAM_INTS];
        float[] floats = new float[NativeEngine.HPARAM_FLOATS];
        try {
            NativeEngine.modelHparams(pointer, ints, floats);
        } catch (RuntimeException e) {
            NativeEngine.modelFree(pointer);
            throw e;
        }
        return new NativeModel(pointer, path, null, ModelHparams.of(ints, floats));
    }

    private static byte[] pathBytes(Path path) {
        return path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8);
    }

    @Override
    void free(long pointer) {
        NativeEngine.modelFree(pointer);
    }

    @Override
    String describe() {
        return "model " + path.getFileName();
    }

    public Path path() {
        return path;
    }

    /** The Java-side header, or null when opened with {@link #openWithNativeParser}. */
    public ModelSpec spec() {
        return spec;
    }

    /** The hyperparameters as the core reports them. */
    public ModelHparams hparams() {
        long p = acquire();
        try {
            int[] ints = new int[NativeEngine.HPARAM_INTS];
            float[] floats = new float[NativeEngine.HPARAM_FLOATS];
            NativeEngine.modelHparams(p, ints, floats);
            return ModelHparams.of(ints, floats);
        } finally {
            release();
        }
    }

    public int vocabSize() {
        return hparams.vocabSize();
    }

    public int contextLength() {
        return hparams.contextLength();
    }

    /** Bytes of the weights as stored in the file (mapped, counted whether resident or not). */
    public long weightBytes() {
        long p = acquire();
        try {
            return NativeEngine.modelWeightBytes(p);
        } finally {
            release();
        }
    }

    /** KV cache bytes one token of one sequence takes, over all layers (the memory contract). */
    public long kvBytesPerToken(KvCacheType type) {
        long p = acquire();
        try {
            return NativeEngine.kvBytesPerToken(p, NativeEngine.ggmlId(type));
        } finally {
            release();
        }
    }

    /** A KV pool that allocates budgetBytes (rounded down to whole blocks) up front and never more. */
    public KvPool newKvPool(KvCacheType type, long budgetBytes) {
        if (budgetBytes <= 0) {
            throw new IllegalArgumentException("KV pool budget must be > 0 bytes, got " + budgetBytes);
        }
        long p = acquire();
        try {
            return new KvPool(
                    NativeEngine.kvPoolInit(p, NativeEngine.ggmlId(type), budgetBytes), this, type, budgetBytes);
        } finally {
            release();
        }
    }

    /** A compute context: threads and the workspace for steps of up to maxBatchTokens tokens, maxLogitRows logits. */
    public ComputeContext newContext(int threads, int maxBatchTokens, int maxLogitRows) {
        if (threads < 1 || threads > 1024) {
            throw new IllegalArgumentException("threads must be in 1..1024, got " + threads);
        }
        if (maxBatchTokens < 1 || maxLogitRows < 1 || maxLogitRows > maxBatchTokens) {
            throw new IllegalArgumentException("maxBatchTokens (" + maxBatchTokens + ") must be >= 1 and maxLogitRows ("
                    + maxLogitRows + ") in 1..maxBatchTokens");
        }
        long p = acquire();
        try {
            return new ComputeContext(
                    NativeEngine.contextInit(p, threads, maxBatchTokens, maxLogitRows),
                    this,
                    threads,
                    maxBatchTokens,
                    maxLogitRows);
        } finally {
            release();
        }
    }
}
