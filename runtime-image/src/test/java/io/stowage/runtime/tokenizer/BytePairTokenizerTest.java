package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.placement.gguf.GgufArray;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufValue;
import io.stowage.runtime.tokenizer.TestTokenizers.VocabCase;
import java.text.Normalizer;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Byte-level BPE against the Llama 3 and Qwen3 reference vectors and llama.cpp's Llama 3 test pair. */
class BytePairTokenizerTest {

    static Stream<Arguments> vectors() {
        return Stream.of(TestTokenizers.LLAMA3, TestTokenizers.QWEN3).flatMap(gguf -> {
            String dir = gguf.substring(0, gguf.lastIndexOf('/'));
            List<JsonNode> lines = TestTokenizers.jsonLines(dir + "/vectors.jsonl");
            assertThat(lines).hasSize(103);
            return lines.stream()
                    .map(v -> Arguments.of(
                            gguf,
                            Named.of(
                                    dir.substring(dir.lastIndexOf('/') + 1) + " "
                                            + v.get("name").asText(),
                                    v)));
        });
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void encodesReferenceVectorsWithSpecialTokensParsed(String gguf, JsonNode v) {
        Tokenizer t = TestTokenizers.tokenizer(gguf);
        assertThat(t.encode(v.get("text").asText(), false, true)).containsExactly(TestTokenizers.ids(v.get("ids")));
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void encodesReferenceVectorsWithoutParsingControlTokens(String gguf, JsonNode v) {
        Tokenizer t = TestTokenizers.tokenizer(gguf);
        JsonNode expected = v.has("ids_plain") ? v.get("ids_plain") : v.get("ids");
        assertThat(t.encode(v.get("text").asText(), false, false)).containsExactly(TestTokenizers.ids(expected));
    }

    @ParameterizedTest
    @MethodSource("vectors")
    void decodeGivesBackTheInput(String gguf, JsonNode v) {
        Tokenizer t = TestTokenizers.tokenizer(gguf);
        String text = v.get("text").asText();
        String expected = gguf.equals(TestTokenizers.QWEN3) ? Normalizer.normalize(text, Normalizer.Form.NFC) : text;
        assertThat(t.decode(TestTokenizers.ids(v.get("ids")), true)).isEqualTo(expected);
    }

    static List<VocabCase> llamaBpeCases() {
        List<VocabCase> cases = TestTokenizers.llamaCppCases("/tokenizers/llama-cpp-vocab/ggml-vocab-llama-bpe.gguf");
        assertThat(cases).hasSize(46);
        return cases;
    }

    @ParameterizedTest
    @MethodSource("llamaBpeCases")
    void encodesLlamaCppBpeVectorsOnTheLlama3Vocabulary(VocabCase c) {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        assertThat(t.encode(c.input(), false, false)).containsExactly(c.expected());
    }

    @Test
    void qwen3NormalisesToNfcAndLlama3DoesNot() {
        // Qwen's tokenizer.json has an NFC normalizer (the reference gives [963] for both spellings);
        // Llama 3's has none, so the decomposed form stays two symbols.
        Tokenizer qwen = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        assertThat(qwen.encode("e\u0301", false)).containsExactly(963);
        assertThat(qwen.encode("\u00e9", false)).containsExactly(963);
        Tokenizer llama = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        assertThat(llama.encode("e\u0301", false)).isNotEqualTo(llama.encode("\u00e9", false));
        assertThat(llama.decode(llama.encode("e\u0301", false))).isEqualTo("e\u0301");
    }

    @Test
    void smaugBpeSplitsLikeLlama3ButAlwaysRunsTheMerges() {
        GgufFile llama3 = TestTokenizers.gguf(TestTokenizers.LLAMA3);
        Tokenizer smaug = Tokenizer.fromMetadata(key -> {
            if (key.equals(TokenizerVocabulary.KEY_PRE)) {
                return "smaug-bpe";
            }
            GgufValue v = llama3.metadata().get(key);
            return v == null ? null : v.value() instanceof GgufArray a ? a.data() : v.value();
        });
        assertThat(smaug.addsBos()).isFalse();
        JsonNode v = TestTokenizers.jsonLines("/tokenizers/llama3/vectors.jsonl").stream()
                .filter(n -> n.get("name").asText().equals("latin-accented-02"))
                .findFirst()
                .orElseThrow();
        int[] reference = TestTokenizers.ids(v.get("ids"));
        // The reference (ignore_merges) emits a whole-word vocabulary entry that the merges would split:
        // the README records two more tokens when the merges run.
        int[] merged = smaug.encode(v.get("text").asText(), false);
        assertThat(merged).hasSize(reference.length + 2);
        assertThat(smaug.decode(merged)).isEqualTo(v.get("text").asText());
    }

    @Test
    void oneTokenizerServesManyThreads() throws Exception {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        List<JsonNode> lines = TestTokenizers.jsonLines("/tokenizers/qwen3/vectors.jsonl");
        var pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            List<java.util.concurrent.Future<Boolean>> results = new java.util.ArrayList<>();
            for (int round = 0; round < 8; round++) {
                for (JsonNode v : lines) {
                    results.add(pool.submit(() -> java.util.Arrays.equals(
                            t.encode(v.get("text").asText(), false), TestTokenizers.ids(v.get("ids")))));
                }
            }
            for (var r : results) {
                assertThat(r.get()).isTrue();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void llama3AddsBosByDefaultAndQwen3DoesNot() {
        Tokenizer llama = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        assertThat(llama.addsBos()).isTrue();
        assertThat(llama.encode("Hello", true)).containsExactly(128000, 9906);
        Tokenizer qwen = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        assertThat(qwen.addsBos()).isFalse();
        assertThat(qwen.bosId()).isEqualTo(151643);
    }

    @Test
    void endOfTurnIdsIncludeEotAndImEnd() {
        Tokenizer llama = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        assertThat(llama.eotIds()).contains(128001, 128009);
        assertThat(llama.isEndOfTurn(128009)).isTrue();
        assertThat(llama.isControl(128009)).isTrue();
        assertThat(llama.isControl(9906)).isFalse();
        Tokenizer qwen = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        assertThat(qwen.eotIds()).contains(151645, 151643);
        assertThat(qwen.isEndOfTurn(151644)).isFalse();
    }

    @Test
    void longRunsOfOneCharacterEncodeAndDecode() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        // One pre-token of 50,000 bytes: the priority queue keeps this fast; a rescan per merge would not finish.
        String text = "a".repeat(50_000);
        int[] ids = t.encode(text, false);
        assertThat(ids.length).isLessThan(50_000 / 4);
        assertThat(t.decode(ids)).isEqualTo(text);
        String spaces = " ".repeat(30_000) + "x";
        assertThat(t.decode(t.encode(spaces, false))).isEqualTo(spaces);
    }

    @Test
    void allMergesOfTheTestVocabulariesAreUsable() {
        assertThat(((BytePairTokenizer) TestTokenizers.tokenizer(TestTokenizers.LLAMA3)).skippedMerges())
                .isZero();
        assertThat(((BytePairTokenizer) TestTokenizers.tokenizer(TestTokenizers.QWEN3)).skippedMerges())
                .isZero();
    }
}
