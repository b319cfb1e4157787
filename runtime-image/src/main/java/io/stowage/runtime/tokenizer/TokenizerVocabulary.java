package io.stowage.runtime.tokenizer;

import io.stowage.placement.gguf.GgufArray;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufValue;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * The tokenizer part of a GGUF file's metadata ({@code tokenizer.ggml.*} and {@code
 * tokenizer.chat_template}), checked for consistency.
 *
 * <p>Optional ids are {@code -1} when the file does not name them. The flags are resolved to
 * the values llama.cpp uses when the file leaves them out.
 *
 * @param model {@code tokenizer.ggml.model}: {@code llama} (SentencePiece) or {@code gpt2} (byte-level BPE)
 * @param pre {@code tokenizer.ggml.pre}, the pre-tokenizer name ({@code default} when absent)
 * @param tokens token texts, index = id
 * @param scores one score per token (SentencePiece merge priority; zeros when absent)
 * @param types one type per token
 * @param merges BPE merges {@code "left right"} in rank order (empty for SentencePiece)
 * @param chatTemplate {@code tokenizer.chat_template}, or null when the file has none
 */
public record TokenizerVocabulary(
        String model,
        String pre,
        List<String> tokens,
        float[] scores,
        TokenType[] types,
        List<String> merges,
        int bosId,
        int eosId,
        int unkId,
        int padId,
        int eotId,
        int eomId,
        boolean addBos,
        boolean addEos,
        boolean addSpacePrefix,
        String chatTemplate) {

    public static final String KEY_MODEL = "tokenizer.ggml.model";
    public static final String KEY_PRE = "tokenizer.ggml.pre";
    public static final String KEY_TOKENS = "tokenizer.ggml.tokens";
    public static final String KEY_SCORES = "tokenizer.ggml.scores";
    public static final String KEY_TYPES = "tokenizer.ggml.token_type";
    public static final String KEY_MERGES = "tokenizer.ggml.merges";
    public static final String KEY_CHAT_TEMPLATE = "tokenizer.chat_template";

    /** The tokenizer models this runtime implements. */
    public static final Set<String> SUPPORTED_MODELS = Set.of("llama", "gpt2");

    /** Reads one GGUF metadata value by key; null when the key is absent. */
    @FunctionalInterface
    public interface Metadata {
        Object get(String key);
    }

    public TokenizerVocabulary {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(scores, "scores");
        Objects.requireNonNull(types, "types");
        Objects.requireNonNull(merges, "merges");
        if (!SUPPORTED_MODELS.contains(model)) {
            throw new IllegalArgumentException(KEY_MODEL + " = '" + model + "' is not supported; this runtime"
                    + " implements 'llama' (SentencePiece) and 'gpt2' (byte-level BPE)");
        }
        if (tokens.isEmpty()) {
            throw new IllegalArgumentException(KEY_TOKENS + " is empty: a tokenizer needs at least one token");
        }
        if (scores.length != tokens.size()) {
            throw new IllegalArgumentException(KEY_SCORES + " has " + scores.length + " entries but " + KEY_TOKENS
                    + " has " + tokens.size() + "; they must be the same length");
        }
        if (types.length != tokens.size()) {
            throw new IllegalArgumentException(KEY_TYPES + " has " + types.length + " entries but " + KEY_TOKENS
                    + " has " + tokens.size() + "; they must be the same length");
        }
        if (model.equals("gpt2") && merges.isEmpty()) {
            throw new IllegalArgumentException(KEY_MERGES + " is missing or empty, but " + KEY_MODEL
                    + " = 'gpt2' (byte-level BPE) needs its merges");
        }
        for (int i = 0; i < tokens.size(); i++) {
            if (tokens.get(i) == null) {
                throw new IllegalArgumentException(KEY_TOKENS + "[" + i + "] is null");
            }
        }
        checkId("tokenizer.ggml.bos_token_id", bosId, tokens.size());
        checkId("tokenizer.ggml.eos_token_id", eosId, tokens.size());
        checkId("tokenizer.ggml.unknown_token_id", unkId, tokens.size());
        checkId("tokenizer.ggml.padding_token_id", padId, tokens.size());
        checkId("tokenizer.ggml.eot_token_id", eotId, tokens.size());
        checkId("tokenizer.ggml.eom_token_id", eomId, tokens.size());
        pre = pre == null ? "default" : pre;
        tokens = List.copyOf(tokens);
        merges = List.copyOf(merges);
    }

    private static void checkId(String key, int id, int size) {
        if (id < -1 || id >= size) {
            throw new IllegalArgumentException(
                    key + " = " + id + " is outside the vocabulary (" + size + " tokens, ids 0.." + (size - 1) + ")");
        }
    }

    public int size() {
        return tokens.size();
    }

    public TokenType type(int id) {
        return types[id];
    }

    /**
     * Reads the tokenizer keys of a parsed GGUF header.
     *
     * @throws IllegalArgumentException naming the key and the values when a key is missing, has
     *     the wrong type, or disagrees with another
     */
    public static TokenizerVocabulary fromGguf(GgufFile file) {
        return fromMetadata(key -> {
            GgufValue v = file.metadata().get(key);
            if (v == null) {
                return null;
            }
            return v.value() instanceof GgufArray a ? a.data() : v.value();
        });
    }

    /**
     * Reads the tokenizer keys from GGUF metadata. Arrays may come as Java arrays or lists, numbers
     * as any {@link Number}.
     *
     * @throws IllegalArgumentException naming the key and the values when a key is missing, has
     *     the wrong type, or disagrees with another
     */
    public static TokenizerVocabulary fromMetadata(Metadata metadata) {
        String model = string(metadata, KEY_MODEL);
        if (model == null) {
            throw new IllegalArgumentException(KEY_MODEL + " is missing: the GGUF file carries no tokenizer");
        }
        List<String> tokens = stringList(metadata, KEY_TOKENS);
        if (tokens == null) {
            throw new IllegalArgumentException(KEY_TOKENS + " is missing: the GGUF file carries no vocabulary");
        }
        float[] scores = floats(metadata, KEY_SCORES);
        if (scores == null) {
            // llama.cpp treats absent scores as zeros; so do we.
            scores = new float[tokens.size()];
        }
        int[] typeIds = ints(metadata, KEY_TYPES);
        TokenType[] types = new TokenType[typeIds == null ? tokens.size() : typeIds.length];
        for (int i = 0; i < types.length; i++) {
            types[i] = typeIds == null ? TokenType.NORMAL : TokenType.fromGguf(typeIds[i], i);
        }
        List<String> merges = stringList(metadata, KEY_MERGES);
        boolean spm = model.equals("llama");
        String pre = string(metadata, KEY_PRE);
        // llama.cpp's defaults when the file leaves the flags out: SentencePiece adds BOS; of the
        // BPE pre-tokenizers, Llama 3's does, Qwen2's and GPT-2's do not.
        boolean defaultAddBos = spm || PreTokenizer.addsBosByDefault(pre);
        return new TokenizerVocabulary(
                model,
                pre,
                tokens,
                scores,
                types,
                merges == null ? List.of() : merges,
                tokenId(metadata, "tokenizer.ggml.bos_token_id", spm ? 1 : -1),
                tokenId(metadata, "tokenizer.ggml.eos_token_id", spm ? 2 : -1),
                tokenId(metadata, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1),
                tokenId(metadata, "tokenizer.ggml.padding_token_id", -1),
                tokenId(metadata, "tokenizer.ggml.eot_token_id", -1),
                tokenId(metadata, "tokenizer.ggml.eom_token_id", -1),
                bool(metadata, "tokenizer.ggml.add_bos_token", defaultAddBos),
                bool(metadata, "tokenizer.ggml.add_eos_token", false),
                bool(metadata, "tokenizer.ggml.add_space_prefix", spm),
                string(metadata, KEY_CHAT_TEMPLATE));
    }

    /** Pre-tokenizer names that llama.cpp runs as Llama 3's (same regex, whole-word lookup, BOS). */
    static final Set<String> LLAMA3_PRE_NAMES =
            Set.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2");

    private static String string(Metadata m, String key) {
        Object v = m.get(key);
        if (v == null || v instanceof String) {
            return (String) v;
        }
        throw wrongType(key, v, "a string");
    }

    private static boolean bool(Metadata m, String key, boolean dflt) {
        Object v = m.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw wrongType(key, v, "a bool");
    }

    /** An optional token id; GGUF writers use -1 or UINT32_MAX for "none". */
    private static int tokenId(Metadata m, String key, int dflt) {
        Object v = m.get(key);
        if (v == null) {
            return dflt;
        }
        if (!(v instanceof Number n) || v instanceof Float || v instanceof Double) {
            throw wrongType(key, v, "an integer token id");
        }
        long id = n.longValue();
        if (id == -1 || id == 0xFFFF_FFFFL) {
            return -1;
        }
        if (id < 0 || id > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(key + " = " + id + " is not a valid token id");
        }
        return (int) id;
    }

    @SuppressWarnings("unchecked")
    private static List<String> stringList(Metadata m, String key) {
        Object v = m.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof String[] a) {
            return Arrays.asList(a);
        }
        if (v instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                if (!(list.get(i) instanceof String)) {
                    throw new IllegalArgumentException(
                            key + "[" + i + "] is " + describe(list.get(i)) + ", expected a string");
                }
            }
            return (List<String>) list;
        }
        throw wrongType(key, v, "an array of strings");
    }

    private static float[] floats(Metadata m, String key) {
        Object v = m.get(key);
        if (v == null || v instanceof float[]) {
            return (float[]) v;
        }
        if (v instanceof double[] d) {
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                f[i] = (float) d[i];
            }
            return f;
        }
        if (v instanceof List<?> list) {
            float[] f = new float[list.size()];
            for (int i = 0; i < f.length; i++) {
                if (!(list.get(i) instanceof Number n)) {
                    throw new IllegalArgumentException(
                            key + "[" + i + "] is " + describe(list.get(i)) + ", expected a number");
                }
                f[i] = n.floatValue();
            }
            return f;
        }
        throw wrongType(key, v, "an array of float32");
    }

    private static int[] ints(Metadata m, String key) {
        Object v = m.get(key);
        if (v == null || v instanceof int[]) {
            return (int[]) v;
        }
        if (v instanceof long[] l) {
            return Arrays.stream(l).mapToInt(Math::toIntExact).toArray();
        }
        if (v instanceof byte[] b) {
            int[] r = new int[b.length];
            for (int i = 0; i < b.length; i++) {
                r[i] = b[i];
            }
            return r;
        }
        if (v instanceof List<?> list) {
            int[] r = new int[list.size()];
            for (int i = 0; i < r.length; i++) {
                if (!(list.get(i) instanceof Number n)
                        || list.get(i) instanceof Float
                        || list.get(i) instanceof Double) {
                    throw new IllegalArgumentException(
                            key + "[" + i + "] is " + describe(list.get(i)) + ", expected an integer");
                }
                r[i] = n.intValue();
            }
            return r;
        }
        throw wrongType(key, v, "an array of int32");
    }

    private static IllegalArgumentException wrongType(String key, Object v, String expected) {
        return new IllegalArgumentException(key + " is " + describe(v) + ", expected " + expected);
    }

    private static String describe(Object v) {
        if (v == null) {
            return "null";
        }
        String s = String.valueOf(v);
        if (s.length() > 40) {
            s = s.substring(0, 40) + "...";
        }
        return "a " + v.getClass().getSimpleName() + " (" + s + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenizerVocabulary v
                && model.equals(v.model)
                && pre.equals(v.pre)
                && tokens.equals(v.tokens)
                && Arrays.equals(scores, v.scores)
                && Arrays.equals(types, v.types)
                && merges.equals(v.merges)
                && bosId == v.bosId
                && eosId == v.eosId
                && unkId == v.unkId
                && padId == v.padId
                && eotId == v.eotId
                && eomId == v.eomId
                && addBos == v.addBos
                && addEos == v.addEos
                && addSpacePrefix == v.addSpacePrefix
                && Objects.equals(chatTemplate, v.chatTemplate);
    }

    @Override
    public int hashCode() {
        return Objects.hash(model, pre, tokens.size(), merges.size(), bosId, eosId);
    }

    @Override
    public String toString() {
        return "TokenizerVocabulary[model=" + model + ", pre=" + pre + ", tokens=" + tokens.size() + ", merges="
                + merges.size() + ", bos=" + bosId + ", eos=" + eosId + ", chatTemplate="
                + (chatTemplate == null ? "none" : chatTemplate.length() + " chars") + "]";
    }
}
