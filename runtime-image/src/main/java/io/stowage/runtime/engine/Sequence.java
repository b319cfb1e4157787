package io.stowage.runtime.engine;

/**
 * One token sequence's KV cache state in a pool; closing it returns its blocks to the pool at once.
 *
 * <p>Thread-safety: a sequence is advanced by one decode at a time; it is not meant to be used from two threads
 * concurrently (calls do not corrupt memory, but the order of two concurrent decodes is undefined).
 */
public final class Sequence extends NativeHandle {
    private final KvPool pool;
    private final int maxTokens;

    Sequence(long pointer, KvPool pool, int maxTokens) {
        super(pointer, pool);
        this.pool = pool;
        this.maxTokens = maxTokens;
    }

    @Override
    void free(long pointer) {
        NativeEngine.seqFree(pointer);
    }

    @Override
    String describe() {
        return "sequence (max " + maxTokens + " tokens)";
    }

    public KvPool pool() {
        return pool;
    }

    public int maxTokens() {
        return maxTokens;
    }

    /** Tokens in the KV cache now. */
    public int length() {
        long p = acquire();
        try {
            return NativeEngine.seqLength(p);
        } finally {
            release();
        }
    }

    /** Forgets the tokens from position length on (blocks past it go back to the pool). */
    public void truncate(int length) {
        if (length < 0) {
            throw new IllegalArgumentException("truncate length must be >= 0, got " + length);
        }
        long p = acquire();
        try {
            NativeEngine.seqTruncate(p, length);
        } finally {
            release();
        }
    }
}
