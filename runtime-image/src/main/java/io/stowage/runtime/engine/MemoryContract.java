package io.stowage.runtime.engine;

/**
 * The memory contract between the placement memory model and the engine, computed from hyperparameters: KV bytes
 * per token and per replica budget, and the workspace of one compute context. The engine must allocate exactly
 * these figures; tests and the benchmark compare them with what the core reports.
 */
public final class MemoryContract {
    /** The default prefill chunk B and logit rows L of the contract. */
    public static final int DEFAULT_BATCH_TOKENS = 512;

    public static final int DEFAULT_LOGIT_ROWS = 64;

    private MemoryContract() {}

    /** Bytes of one KV row of width w. */
    public static long kvRowBytes(KvType type, long width) {
        return switch (type) {
            case F32 -> 4 * width;
            case F16 -> 2 * width;
            case Q8_0 -> {
                if (width % 32 != 0) {
                    throw new IllegalArgumentException(
                            "KV type q8_0 needs a row width that is a multiple of 32, got " + width);
                }
                yield width / 32 * 34;
            }
        };
    }

    /** n_layer · (rowBytes(n_head_kv·dk) + rowBytes(n_head_kv·dv)). */
    public static long kvBytesPerToken(ModelHparams hp, KvType type) {
        return hp.layers()
                * (kvRowBytes(type, (long) hp.headCountKv() * hp.keyLength())
                        + kvRowBytes(type, (long) hp.headCountKv() * hp.valueLength()));
    }

    /** K_r = bytesPerToken · ceil(maxTokens / 16)·16 · maxSequences. */
    public static long kvBudget(ModelHparams hp, KvType type, long maxTokens, long maxSequences) {
        long slots = (maxTokens + KvPool.BLOCK_TOKENS - 1) / KvPool.BLOCK_TOKENS * KvPool.BLOCK_TOKENS;
        return kvBytesPerToken(hp, type) * slots * maxSequences;
    }

    /**
     * A = 4·B·(2·n_embd + n_head·dk + n_head·dv + n_head_kv·(dk + dv) + 2·n_ff) + 4·L·n_vocab
     * + B·ceil(max(n_embd, n_head·dv, n_ff)/32)·36.
     */
    public static long workspaceBytes(ModelHparams hp, long batchTokens, long logitRows) {
        long floats = 2L * hp.embeddingLength()
                + (long) hp.headCount() * hp.keyLength()
                + (long) hp.headCount() * hp.valueLength()
                + (long) hp.headCountKv() * (hp.keyLength() + hp.valueLength())
                + 2L * hp.feedForwardLength();
        long widest = Math.max(
                hp.embeddingLength(), Math.max((long) hp.headCount() * hp.valueLength(), hp.feedForwardLength()));
        return 4 * batchTokens * floats + 4 * logitRows * hp.vocabSize() + batchTokens * ((widest + 31) / 32) * 36;
    }
}
