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

    /**
     * Picks a token from the logits row at logits[offset .. offset + vocabSize); recent feeds the penalty.
     *
     * @throws NonFiniteLogitsException when the row holds NaN or +infinity, or only -infinity (-infinity alone is a
     *     mask)
     */
    public synchronized int sample(float[] logits, int offset, int[] recent, int recentCount) {
        if (offset < 0 || (long) offset + vocabSize > logits.length) {
            throw new IllegalArgumentException("sample: row at offset " + offset + " of " + vocabSize
                    + " logits does not fit an array of " + logits.length);
        }
        checkFinite(logits, offset, vocabSize);
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

    /**
     * Checks one logits row before sampling, so that a broken model is reported as such (the core would refuse the
     * row too, with a less telling message).
     */
    static void checkFinite(float[] logits, int offset, int n) {
        int bad = 0;
        int first = -1;
        int masked = 0;
        for (int i = 0; i < n; i++) {
            float v = logits[offset + i];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                if (first < 0) {
                    first = i;
                }
                bad++;
            } else if (v == Float.NEGATIVE_INFINITY) {
                masked++;
            }
        }
        if (bad > 0) {
            throw new NonFiniteLogitsException("the model's logits are not finite: logit " + first + " is "
                    + logits[offset + first] + " (" + bad + " of " + n
                    + " are NaN or +infinity); its weights or activations hold NaN or infinity");
        }
        if (masked == n) {
            throw new NonFiniteLogitsException("the model's logits are all -infinity (" + n
                    + " tokens): no token can be sampled; its weights or activations are not finite");
        }
    }
}
