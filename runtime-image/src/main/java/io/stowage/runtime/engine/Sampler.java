package io.stowage.runtime.engine;

/**
 * A token sampler of the native core (greedy, temperature, top-k, top-p, min-p, repetition penalty), seeded.
 *
 * <p>Thread-safety: a sampler holds its random state; {@link #sample} is synchronized.
 */
public final class Sampler extends NativeHandle {
    private final SamplerParams params;
    private final int vocabSize;

    private Sampler(long pointer, SamplerParams params, int vocabSize) {
        super(pointer, null);
        this.params = params;
        this.vocabSize = vocabSize;
    }

    public static Sampler create(SamplerParams p, int vocabSize) {
        if (vocabSize < 1) {
            throw new IllegalArgumentException("sampler vocabSize must be >= 1, got " + vocabSize);
        }
        NativeLibrary.load();
        long pointer = NativeEngine.samplerInit(
                new float[] {p.temperature(), p.topP(), p.minP(), p.repeatPenalty()},
                p.topK(),
                p.repeatLastN(),
                p.seed(),
                vocabSize);
        return new Sampler(pointer, p, vocabSize);
    }

    @Override
    void free(long pointer) {
        NativeEngine.samplerFree(pointer);
    }

    @Override
    String describe() {
        return "sampler " + params;
    }

    public SamplerParams params() {
        return params;
    }

    /** Picks a token from the logits row at logits[offset .. offset + vocabSize); recent feeds the penalty. */
    public synchronized int sample(float[] logits, int offset, int[] recent, int recentCount) {
        if (offset < 0 || (long) offset + vocabSize > logits.length) {
            throw new IllegalArgumentException("sample: row at offset " + offset + " of " + vocabSize
                    + " logits does not fit an array of " + logits.length);
        }
        if (recentCount < 0 || recentCount > (recent == null ? 0 : recent.length)) {
            throw new IllegalArgumentException("sample: recentCount " + recentCount + " exceeds the recent array");
        }
        long p = acquire();
        try {
            return NativeEngine.samplerSample(p, logits, offset, vocabSize, recent, recentCount);
        } finally {
            release();
        }
    }
}
