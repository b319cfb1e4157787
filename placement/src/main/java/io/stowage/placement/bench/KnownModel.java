package io.stowage.placement.bench;

import io.stowage.placement.memory.ModelShape;
import java.util.List;

/**
 * The shapes of real models from their Hugging Face {@code config.json}, for bench fleets only; the
 * planner and {@code plan} take every figure from a model's own GGUF header instead.
 *
 * @param config the repository whose config.json the numbers come from
 * @param publishedParameters the parameter count the model card states, to check the table
 * @param tiedEmbeddings whether the output head reuses the token embedding (no separate output tensor)
 * @param qkvBias whether q/k/v projections have biases (Qwen2)
 */
public record KnownModel(
        String name,
        String config,
        String architecture,
        int layers,
        int embedding,
        int feedForward,
        int heads,
        int kvHeads,
        int headDim,
        int vocab,
        int contextLength,
        long publishedParameters,
        boolean tiedEmbeddings,
        boolean qkvBias) {

    /** The seven models of the bench; numbers from each config.json named in {@code config}. */
    public static final List<KnownModel> ALL = List.of(
            new KnownModel(
                    "Llama-3.1-8B",
                    "meta-llama/Llama-3.1-8B-Instruct",
                    "llama",
                    32,
                    4096,
                    14336,
                    32,
                    8,
                    128,
                    128256,
                    131072,
                    8_030_000_000L,
                    false,
                    false),
            new KnownModel(
                    "Mistral-7B-v0.3",
                    "mistralai/Mistral-7B-Instruct-v0.3",
                    "llama",
                    32,
                    4096,
                    14336,
                    32,
                    8,
                    128,
                    32768,
                    32768,
                    7_250_000_000L,
                    false,
                    false),
            new KnownModel(
                    "Qwen2.5-14B",
                    "Qwen/Qwen2.5-14B-Instruct",
                    "qwen2",
                    48,
                    5120,
                    13824,
                    40,
                    8,
                    128,
                    152064,
                    32768,
                    14_700_000_000L,
                    false,
                    true),
            new KnownModel(
                    "Qwen2.5-32B",
                    "Qwen/Qwen2.5-32B-Instruct",
                    "qwen2",
                    64,
                    5120,
                    27648,
                    40,
                    8,
                    128,
                    152064,
                    32768,
                    32_500_000_000L,
                    false,
                    true),
            new KnownModel(
                    "Phi-3-mini-4k",
                    "microsoft/Phi-3-mini-4k-instruct",
                    "phi3",
                    32,
                    3072,
                    8192,
                    32,
                    32,
                    96,
                    32064,
                    4096,
                    3_820_000_000L,
                    false,
                    false),
            new KnownModel(
                    "Gemma-2-9B",
                    "google/gemma-2-9b-it",
                    "gemma2",
                    42,
                    3584,
                    14336,
                    16,
                    8,
                    256,
                    256000,
                    8192,
                    9_240_000_000L,
                    true,
                    false),
            new KnownModel(
                    "Llama-3.1-70B",
                    "meta-llama/Llama-3.1-70B-Instruct",
                    "llama",
                    80,
                    8192,
                    28672,
                    64,
                    8,
                    128,
                    128256,
                    131072,
                    70_550_000_000L,
                    false,
                    false));

    /** Parameters per tensor class, from the shapes (norms and biases included). */
    public TensorClasses tensorClasses() {
        long l = layers;
        long e = embedding;
        long qWidth = (long) heads * headDim;
        long kvWidth = (long) kvHeads * headDim;
        long tokenEmbd = (long) vocab * e;
        long output = tiedEmbeddings ? 0 : (long) vocab * e;
        long attnQ = l * e * qWidth;
        long attnK = l * e * kvWidth;
        long attnV = l * e * kvWidth;
        long attnO = l * qWidth * e;
        long ffnGateUp = l * 2 * e * feedForward;
        long ffnDown = l * feedForward * e;
        // two RMS norms per layer (Gemma 2 has four; the difference is a few hundred thousand) and the final norm
        long small = l * 2 * e + e + (qkvBias ? l * (qWidth + 2 * kvWidth) : 0);
        return new TensorClasses(tokenEmbd, output, attnQ + attnK + attnO + ffnGateUp, attnV + ffnDown, small);
    }

    /**
     * The GGUF weight bytes of this model at {@code quant}, approximated from the parameter count of
     * each tensor class and the bits per weight of the type llama.cpp gives that class.
     */
    public long weightBytes(Quant quant) {
        TensorClasses t = tensorClasses();
        double bits = t.tokenEmbedding() * quant.embeddingBits
                + t.output() * quant.outputBits
                + t.mainMatrices() * quant.mainBits
                + t.sensitiveMatrices() * quant.sensitiveBits
                + t.smallF32() * 32.0;
        return (long) Math.ceil(bits / 8);
    }

    /** A ModelShape for this model at {@code quant}, weight bytes approximated by {@link #weightBytes}. */
    public ModelShape shape(Quant quant) {
        return new ModelShape(
                architecture,
                layers,
                embedding,
                feedForward,
                heads,
                kvHeads,
                headDim,
                headDim,
                vocab,
                contextLength,
                weightBytes(quant));
    }

    /**
     * Parameter counts by how llama.cpp quantizes them.
     *
     * @param mainMatrices attn_q, attn_k, attn_output, ffn_gate, ffn_up
     * @param sensitiveMatrices attn_v and ffn_down, which Q4_K_M keeps at Q6_K in about half the layers
     * @param smallF32 norms and biases, stored as F32 in every file type
     */
    public record TensorClasses(
            long tokenEmbedding, long output, long mainMatrices, long sensitiveMatrices, long smallF32) {
        public long total() {
            return tokenEmbedding + output + mainMatrices + sensitiveMatrices + smallF32;
        }
    }

    /**
     * The file types of the bench, as bits per weight per tensor class. Q8_0 is 34 bytes per 32
     * weights (8.5 bits); Q4_K 144 bytes per 256 (4.5 bits); Q6_K 210 bytes per 256 (6.5625 bits).
     * Q4_K_M stores the token embedding as Q4_K, the output head as Q6_K, and attn_v and ffn_down as
     * Q6_K in about half the layers (the first and last eighth and every third layer between), which
     * this table averages to (4.5 + 6.5625) / 2 bits.
     */
    public enum Quant {
        F16("f16", 16, 16, 16, 16),
        Q8_0("q8_0", 8.5, 8.5, 8.5, 8.5),
        Q4_K_M("q4_k_m", 4.5, 6.5625, 4.5, (4.5 + 6.5625) / 2);

        public final String label;
        final double embeddingBits;
        final double outputBits;
        final double mainBits;
        final double sensitiveBits;

        Quant(String label, double embeddingBits, double outputBits, double mainBits, double sensitiveBits) {
            this.label = label;
            this.embeddingBits = embeddingBits;
            this.outputBits = outputBits;
            this.mainBits = mainBits;
            this.sensitiveBits = sensitiveBits;
        }
    }
}
