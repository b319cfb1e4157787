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

    /**
     * A KV pool on the process's shared CPU backend that allocates budgetBytes (rounded down to whole blocks) up front
     * and never more.
     */
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

    /**
     * A KV pool allocated through a backend (device memory on a GPU) that holds budgetBytes rounded down to whole
     * blocks and never more; the model's weights on that backend get one more reference.
     */
    public KvPool newKvPool(Backend backend, KvCacheType type, long budgetBytes) {
        if (budgetBytes <= 0) {
            throw new IllegalArgumentException("KV pool budget must be > 0 bytes, got " + budgetBytes);
        }
        long p = acquire();
        try {
            long b = backend.pointerForCall();
            try {
                return new KvPool(
                        NativeEngine.kvPoolInitOn(b, p, NativeEngine.ggmlId(type), budgetBytes),
                        this,
                        type,
                        budgetBytes);
            } finally {
                backend.endCall();
            }
        } finally {
            release();
        }
    }

    /**
     * A compute context on a backend: its A_m joins the backend's one shared workspace (the largest A_m of the
     * contexts on it), and its steps run one at a time with every other context there.
     */
    public ComputeContext newContext(Backend backend, int maxBatchTokens, int maxLogitRows) {
        checkBatch(maxBatchTokens, maxLogitRows);
        long p = acquire();
        try {
            long b = backend.pointerForCall();
            try {
                return new ComputeContext(
                        NativeEngine.contextInitOn(b, p, maxBatchTokens, maxLogitRows),
                        this,
                        0,
                        maxBatchTokens,
                        maxLogitRows);
            } finally {
                backend.endCall();
            }
        } finally {
            release();
        }
    }

    /**
     * Makes the weights resident on the backend and holds one reference until {@link #unload}: the CPU keeps the
     * mapping; a GPU gets one upload, in chunks reported to progress (may be null), shared by every context and KV
     * pool of this model there.
     */
    public void load(Backend backend, UploadProgress progress) {
        long p = acquire();
        try {
            long b = backend.pointerForCall();
            try {
                NativeEngine.modelLoad(p, b, progress);
            } finally {
                backend.endCall();
            }
        } finally {
            release();
        }
    }

    /** Drops the reference {@link #load} took; the last reference on a device frees the copy there. */
    public void unload(Backend backend) {
        long p = acquire();
        try {
            long b = backend.pointerForCall();
            try {
                NativeEngine.modelUnload(p, b);
            } finally {
                backend.endCall();
            }
        } finally {
            release();
        }
    }

    /**
     * Measured bytes of this model's weight buffer on the backend, 0 when not resident there: a GPU's copy, or on
     * the CPU the mapped span the tensors occupy.
     */
    public long deviceBytes(Backend backend) {
        long p = acquire();
        try {
            long b = backend.pointerForCall();
            try {
                return NativeEngine.modelDeviceBytes(p, b);
            } finally {
                backend.endCall();
            }
        } finally {
            release();
        }
    }

    private static void checkBatch(int maxBatchTokens, int maxLogitRows) {
        if (maxBatchTokens < 1 || maxLogitRows < 1 || maxLogitRows > maxBatchTokens) {
            throw new IllegalArgumentException("maxBatchTokens (" + maxBatchTokens + ") must be >= 1 and maxLogitRows ("
                    + maxLogitRows + ") in 1..maxBatchTokens");
        }
    }

    /**
     * A compute context on a private CPU backend of its own: threads and the workspace for steps of up to
     * maxBatchTokens tokens, maxLogitRows logits.
     */
    public ComputeContext newContext(int threads, int maxBatchTokens, int maxLogitRows) {
        if (threads < 1 || threads > 1024) {
            throw new IllegalArgumentException("threads must be in 1..1024, got " + threads);
        }
        checkBatch(maxBatchTokens, maxLogitRows);
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
