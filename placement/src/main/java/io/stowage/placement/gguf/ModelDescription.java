package io.stowage.placement.gguf;

import io.stowage.placement.memory.ModelShape;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.OptionalLong;

/**
 * What a GGUF header says about its model that memory planning needs: architecture, hyperparameters, parameter count,
 * quantization and exact weight bytes, read from the {@code <arch>.*} keys llama.cpp writes.
 *
 * @param name {@code general.name}, or "" when absent
 * @param feedForwardLength n_ff; the largest layer's when the file gives one per layer
 * @param headCount n_head; the largest layer's when per layer
 * @param headCountKv n_head_kv (defaults to headCount); the largest layer's when per layer
 * @param keyLength K head dimension: {@code <arch>.attention.key_length}, else embeddingLength / headCount
 * @param valueLength V head dimension: {@code <arch>.attention.value_length}, else embeddingLength / headCount
 * @param vocabSize {@code <arch>.vocab_size}, else the number of tokenizer tokens, else the token embedding's rows
 * @param ropeDimensionCount {@code <arch>.rope.dimension_count}, else keyLength
 * @param ropeFreqBase {@code <arch>.rope.freq_base}, else 10000 (llama.cpp's default)
 * @param rmsEpsilon {@code <arch>.attention.layer_norm_rms_epsilon}, else {@code layer_norm_epsilon}, else 1e-5
 * @param parameterCount the sum of all tensors' element counts
 * @param quantization llama.cpp's name of {@code general.file_type} (7 → "Q8_0", 15 → "Q4_K_M"); without it, the type
 *     holding the most bytes
 * @param bytesByType exact bytes per tensor type, in type order
 * @param weightBytes exact bytes of all tensors as stored
 */
public record ModelDescription(
        String architecture,
        String name,
        int blockCount,
        int embeddingLength,
        int feedForwardLength,
        int headCount,
        int headCountKv,
        int keyLength,
        int valueLength,
        long contextLength,
        int vocabSize,
        int ropeDimensionCount,
        double ropeFreqBase,
        double rmsEpsilon,
        long parameterCount,
        String quantization,
        Map<GgufType, Long> bytesByType,
        long weightBytes) {

    /** llama.cpp's {@code LLAMA_FTYPE_GUESSED}: set on file types inferred rather than stored. */
    private static final int FTYPE_GUESSED = 1024;

    public ModelDescription {
        bytesByType = Collections.unmodifiableMap(new EnumMap<>(bytesByType));
    }

    /** Reads the description of the model whose header is {@code file}; missing required keys name themselves. */
    public static ModelDescription from(GgufFile file) {
        String arch = file.getString("general.architecture");
        String p = arch + ".";
        int blockCount = positive(p + "block_count", file.getInt(p + "block_count"));
        int embedding = positive(p + "embedding_length", file.getInt(p + "embedding_length"));
        int ff = maxIntOrScalar(file, p + "feed_forward_length")
                .orElseThrow(() -> missing(file, p + "feed_forward_length"));
        positive(p + "feed_forward_length", ff);
        int heads = maxIntOrScalar(file, p + "attention.head_count")
                .orElseThrow(() -> missing(file, p + "attention.head_count"));
        positive(p + "attention.head_count", heads);
        int headsKv = maxIntOrScalar(file, p + "attention.head_count_kv").orElse(heads);
        positive(p + "attention.head_count_kv", headsKv);
        int keyLength = file.has(p + "attention.key_length")
                ? positive(p + "attention.key_length", file.getInt(p + "attention.key_length"))
                : headDim(embedding, heads, p);
        int valueLength = file.has(p + "attention.value_length")
                ? positive(p + "attention.value_length", file.getInt(p + "attention.value_length"))
                : headDim(embedding, heads, p);
        long context = file.getLong(p + "context_length");
        if (context < 0) {
            throw new GgufFormatException("metadata key '" + p + "context_length' is " + context + ", must be >= 0");
        }
        int vocab = vocabSize(file, p);
        int ropeDims = file.has(p + "rope.dimension_count") ? file.getInt(p + "rope.dimension_count") : keyLength;
        double ropeBase = file.findDouble(p + "rope.freq_base").orElse(10000.0);
        double eps = file.findDouble(p + "attention.layer_norm_rms_epsilon")
                .orElse(file.findDouble(p + "attention.layer_norm_epsilon").orElse(1e-5));

        long params = 0;
        long weights = 0;
        Map<GgufType, Long> byType = new EnumMap<>(GgufType.class);
        try {
            for (GgufTensorInfo t : file.tensors()) {
                params = Math.addExact(params, t.elementCount());
                weights = Math.addExact(weights, t.byteSize());
                byType.merge(t.type(), t.byteSize(), Math::addExact);
            }
        } catch (ArithmeticException e) {
            // Only possible when the source did not know the file size, so tensor ends were not checked.
            throw new GgufFormatException("the tensors' element or byte counts sum past 2^63-1 ("
                    + file.tensors().size() + " tensors): the header is corrupt");
        }
        String quant = quantization(file, byType);
        return new ModelDescription(
                arch,
                file.findString("general.name").orElse(""),
                blockCount,
                embedding,
                ff,
                heads,
                headsKv,
                keyLength,
                valueLength,
                context,
                vocab,
                ropeDims,
                ropeBase,
                eps,
                params,
                quant,
                byType,
                weights);
    }

    /** The shape the memory model takes. */
    public ModelShape shape() {
        return new ModelShape(
                architecture,
                blockCount,
                embeddingLength,
                feedForwardLength,
                headCount,
                headCountKv,
                keyLength,
                valueLength,
                vocabSize,
                contextLength,
                weightBytes);
    }

    /** llama.cpp's {@code LLAMA_FTYPE_*} name for a {@code general.file_type} value, or null when it has none. */
    public static String fileTypeName(long fileType) {
        return switch ((int) Math.min(Math.max(fileType, -1), Integer.MAX_VALUE)) {
            case 0 -> "F32";
            case 1 -> "F16";
            case 2 -> "Q4_0";
            case 3 -> "Q4_1";
            case 7 -> "Q8_0";
            case 8 -> "Q5_0";
            case 9 -> "Q5_1";
            case 10 -> "Q2_K";
            case 11 -> "Q3_K_S";
            case 12 -> "Q3_K_M";
            case 13 -> "Q3_K_L";
            case 14 -> "Q4_K_S";
            case 15 -> "Q4_K_M";
            case 16 -> "Q5_K_S";
            case 17 -> "Q5_K_M";
            case 18 -> "Q6_K";
            case 19 -> "IQ2_XXS";
            case 20 -> "IQ2_XS";
            case 21 -> "Q2_K_S";
            case 22 -> "IQ3_XS";
            case 23 -> "IQ3_XXS";
            case 24 -> "IQ1_S";
            case 25 -> "IQ4_NL";
            case 26 -> "IQ3_S";
            case 27 -> "IQ3_M";
            case 28 -> "IQ2_S";
            case 29 -> "IQ2_M";
            case 30 -> "IQ4_XS";
            case 31 -> "IQ1_M";
            case 32 -> "BF16";
            case 36 -> "TQ1_0";
            case 37 -> "TQ2_0";
            case 38 -> "MXFP4_MOE";
            default -> null;
        };
    }

    private static String quantization(GgufFile file, Map<GgufType, Long> byType) {
        OptionalLong ft = file.findLong("general.file_type");
        if (ft.isPresent()) {
            String name = fileTypeName(ft.getAsLong() & ~FTYPE_GUESSED);
            if (name != null) {
                return name;
            }
        }
        GgufType dominant = null;
        long most = -1;
        for (Map.Entry<GgufType, Long> e : byType.entrySet()) {
            if (e.getValue() > most) {
                most = e.getValue();
                dominant = e.getKey();
            }
        }
        return dominant == null ? "none" : dominant.name();
    }

    private static int vocabSize(GgufFile file, String p) {
        if (file.has(p + "vocab_size")) {
            return positive(p + "vocab_size", file.getInt(p + "vocab_size"));
        }
        if (file.has("tokenizer.ggml.tokens")) {
            return positive(
                    "tokenizer.ggml.tokens (length)",
                    file.getArray("tokenizer.ggml.tokens").size());
        }
        GgufTensorInfo embd = file.tensor("token_embd.weight")
                .orElseThrow(() -> new GgufFormatException("cannot tell the vocabulary size: no '" + p
                        + "vocab_size' key, no 'tokenizer.ggml.tokens' array and no 'token_embd.weight' tensor"));
        long rows = embd.dim(1);
        if (rows > Integer.MAX_VALUE) {
            throw new GgufFormatException("tensor 'token_embd.weight' has " + rows + " rows, more than 2^31-1 tokens");
        }
        return (int) rows;
    }

    private static int headDim(int embedding, int heads, String p) {
        if (embedding % heads != 0) {
            throw new GgufFormatException("cannot derive the head dimension: " + p + "embedding_length " + embedding
                    + " is not a multiple of " + p + "attention.head_count " + heads + ", and the file has no "
                    + p + "attention.key_length / value_length");
        }
        return embedding / heads;
    }

    /** A scalar integer, or the largest element of an integer array (per-layer values in some architectures). */
    private static java.util.OptionalInt maxIntOrScalar(GgufFile file, String key) {
        var v = file.find(key);
        if (v.isEmpty()) {
            return java.util.OptionalInt.empty();
        }
        if (v.get().type() == GgufValueType.ARRAY) {
            GgufArray a = (GgufArray) v.get().value();
            if (!a.elementType().isInteger() || a.size() == 0) {
                throw new GgufFormatException("metadata key '" + key + "' is an array of " + a.size() + " "
                        + a.elementType() + ", expected a non-empty integer array");
            }
            long max = Long.MIN_VALUE;
            for (long x : a.longs()) max = Math.max(max, x);
            return java.util.OptionalInt.of(GgufFile.toInt(key, max));
        }
        return java.util.OptionalInt.of(file.getInt(key));
    }

    private static int positive(String key, int v) {
        if (v <= 0) {
            throw new GgufFormatException("metadata key '" + key + "' is " + v + ", must be > 0");
        }
        return v;
    }

    private static GgufFormatException missing(GgufFile file, String key) {
        try {
            file.get(key);
        } catch (GgufFormatException e) {
            return e;
        }
        return new GgufFormatException("metadata key '" + key + "' is missing");
    }
}
