package io.stowage.runtime.engine;

import io.stowage.placement.memory.KvCacheType;

/**
 * A KV cache pool of one model: blocks of 16 token slots (all layers) allocated up front under a byte budget, lent
 * to sequences as they grow.
 *
 * <p>Thread-safety: safe to share; making and closing sequences from several threads is allowed. Closing the pool
 * closes its sequences first.
 */
public final class KvPool extends NativeHandle {
    /** Token slots per block (the memory contract's kvBlockTokens). */
    public static final int BLOCK_TOKENS = 16;

    private final NativeModel model;
    private final KvCacheType type;
    private final long budgetBytes;

    KvPool(long pointer, NativeModel model, KvCacheType type, long budgetBytes) {
        super(pointer, model);
        this.model = model;
        this.type = type;
        this.budgetBytes = budgetBytes;
    }

    @Override
    void free(long pointer) {
        NativeEngine.kvPoolFree(pointer);
    }

    @Override
    String describe() {
        return "KV pool (" + type + ", " + budgetBytes + " bytes) of " + model.describe();
    }

    public NativeModel model() {
        return model;
    }

    public KvCacheType type() {
        return type;
    }

    public long budgetBytes() {
        return budgetBytes;
    }

    /** Bytes the pool allocated (at most the budget). */
    public long allocatedBytes() {
        long p = acquire();
        try {
            return NativeEngine.kvPoolBytes(p);
        } finally {
            release();
        }
    }

    /** Bytes in blocks that sequences hold now. */
    public long usedBytes() {
        long p = acquire();
        try {
            return NativeEngine.kvPoolUsedBytes(p);
        } finally {
            release();
        }
    }

    /** A new empty sequence of at most maxTokens tokens; blocks are taken as it grows. */
    public Sequence newSequence(int maxTokens) {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("sequence maxTokens must be >= 1, got " + maxTokens);
        }
        long p = acquire();
        try {
            return new Sequence(NativeEngine.seqInit(p, maxTokens), this, maxTokens);
        } finally {
            release();
        }
    }
}
