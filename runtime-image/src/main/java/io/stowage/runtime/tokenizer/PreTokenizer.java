package io.stowage.runtime.tokenizer;

import java.text.Normalizer;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The regex split that byte-level BPE applies before merging, chosen by {@code
 * tokenizer.ggml.pre}, with the per-model options llama.cpp attaches to that name.
 *
 * <p>The patterns are the models' own (from their tokenizer.json), which java.util.regex runs
 * as written: it has Unicode {@code \p{L}}/{@code \p{N}}, lookahead and backtracking
 * alternation like Oniguruma. {@code UNICODE_CHARACTER_CLASS} makes {@code \s} Unicode
 * White_Space (NBSP, em space, ideographic space...), as it is in the reference tokenizers.
 *
 * @param ignoreMerges a pre-token that is itself a vocabulary entry is emitted whole (Llama 3)
 * @param nfc normalise text to NFC first (Qwen2's tokenizer.json normalizer; llama.cpp skips it
 *     but the reference ids need it)
 */
record PreTokenizer(String name, Pattern pattern, boolean ignoreMerges, boolean nfc) {

    private static final String GPT2 =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    private static final String LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** How llama.cpp treats a {@code tokenizer.ggml.pre} name (its {@code llama_vocab::impl::load}). */
    private record Options(String pattern, boolean ignoreMerges, boolean addBos, boolean nfc) {}

    private static final Options GPT2_OPTIONS = new Options(GPT2, false, false, false);
    private static final Options LLAMA3_OPTIONS = new Options(LLAMA3, true, true, false);
    /** Same split as Llama 3, but merges always run and no BOS by default. */
    private static final Options SMAUG_OPTIONS = new Options(LLAMA3, false, false, false);

    private static final Options QWEN2_OPTIONS = new Options(QWEN2, false, false, true);

    private static final Map<String, Options> BY_NAME = byName();

    private static Map<String, Options> byName() {
        Map<String, Options> m = new TreeMap<>();
        // llama.cpp's "default" is a chain of four regexes; we use GPT-2's byte-level split, which
        // is what Hugging Face's ByteLevel pre-tokenizer does when a tokenizer.json names no regex.
        for (String n : List.of(
                "default",
                "gpt2",
                "gpt-2",
                "phi-2",
                "jina-es",
                "jina-de",
                "gigachat",
                "jina-v2-es",
                "jina-v2-de",
                "a.x-4.0",
                "mellum",
                "exaone4")) {
            m.put(n, GPT2_OPTIONS);
        }
        for (String n : TokenizerVocabulary.LLAMA3_PRE_NAMES) {
            m.put(n, LLAMA3_OPTIONS);
        }
        m.put("smaug-bpe", SMAUG_OPTIONS);
        m.put("dbrx", SMAUG_OPTIONS);
        for (String n : List.of("qwen2", "deepseek-r1-qwen", "kormo", "megrez")) {
            m.put(n, QWEN2_OPTIONS);
        }
        return m;
    }

    static PreTokenizer forName(String pre) {
        Options o = BY_NAME.get(pre);
        if (o == null) {
            throw new IllegalArgumentException(TokenizerVocabulary.KEY_PRE + " = '" + pre
                    + "' is not a supported pre-tokenizer; supported: " + BY_NAME.keySet());
        }
        return new PreTokenizer(
                pre, Pattern.compile(o.pattern, Pattern.UNICODE_CHARACTER_CLASS), o.ignoreMerges, o.nfc);
    }

    /** Whether llama.cpp adds BOS for this pre-tokenizer when the file does not say. */
    static boolean addsBosByDefault(String pre) {
        Options o = pre == null ? null : BY_NAME.get(pre);
        return o != null && o.addBos;
    }

    /** Normalises {@code text} as the model's tokenizer does before splitting. */
    String normalize(String text) {
        return nfc && !Normalizer.isNormalized(text, Normalizer.Form.NFC)
                ? Normalizer.normalize(text, Normalizer.Form.NFC)
                : text;
    }

    Matcher matcher(String text) {
        return pattern.matcher(text);
    }
}
