package io.stowage.runtime.engine;

/**
 * The hyperparameters the native core runs a model with ({@code stw_hparams}).
 *
 * @param arch 0 llama, 1 qwen2 (STW_ARCH_*)
 * @param ropeType 0 adjacent pairs (llama), 2 NEOX halves (qwen2)
 */
public record ModelHparams(
        int arch,
        int layers,
        int embeddingLength,
        int feedForwardLength,
        int headCount,
        int headCountKv,
        int keyLength,
        int valueLength,
        int vocabSize,
        int contextLength,
        int ropeDimensions,
        int ropeType,
        float ropeFreqBase,
        float rmsEps) {
    public static final int ARCH_LLAMA = 0;
    public static final int ARCH_QWEN2 = 1;
    public static final int ROPE_ADJACENT = 0;
    public static final int ROPE_NEOX = 2;

    int[] ints() {
        return new int[] {
            arch,
            layers,
            embeddingLength,
            feedForwardLength,
            headCount,
            headCountKv,
            keyLength,
            valueLength,
            vocabSize,
            contextLength,
            ropeDimensions,
            ropeType
        };
    }

    float[] floats() {
        return new float[] {ropeFreqBase, rmsEps};
    }

    static ModelHparams of(int[] i, float[] f) {
        return new ModelHparams(i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], i[11], f[0], f[1]);
    }

    /** The architecture name as GGUF spells it. */
    public String architectureName() {
        return arch == ARCH_QWEN2 ? "qwen2" : "llama";
    }
}
