package io.stowage.runtime.tokenizer;

import java.text.Normalizer;
import java.util.List;
import java.util.Map;
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

    private static final Map<String, String> PATTERNS = Map.of("gpt2", GPT2, "llama3", LLAMA3, "qwen2", QWEN2);

    /** Pre-tokenizer names accepted in {@code tokenizer.ggml.pre}, by the pattern they use. */
    private static final Map<String, List<String>> NAMES = Map.of(
            "gpt2", List.of("default", "gpt2", "gpt-2"),
            "llama3", List.copyOf(TokenizerVocabulary.LLAMA3_PRE_NAMES),
            "qwen2", List.of("qwen2", "deepseek-r1-qwen"));

    static PreTokenizer forName(String pre) {
        for (Map.Entry<String, List<String>> e : NAMES.entrySet()) {
            if (e.getValue().contains(pre)) {
                String kind = e.getKey();
                Pattern p = Pattern.compile(PATTERNS.get(kind), Pattern.UNICODE_CHARACTER_CLASS);
                return new PreTokenizer(pre, p, kind.equals("llama3"), kind.equals("qwen2"));
            }
        }
        throw new IllegalArgumentException(TokenizerVocabulary.KEY_PRE + " = '" + pre
                + "' is not a supported pre-tokenizer; supported: "
                + NAMES.values().stream().flatMap(List::stream).sorted().toList());
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
