package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.gguf.GgufArray;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufValue;
import io.stowage.placement.gguf.GgufValueType;
import io.stowage.placement.gguf.GgufWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** Reading tokenizer metadata from GGUF files, and the errors for inconsistent or unsupported ones. */
class TokenizerVocabularyTest {

    /**
     * A tiny SentencePiece vocabulary written and read back through the real GGUF writer and
     * reader; {@code edit} replaces entries (a null value removes the key).
     */
    private static GgufFile spm(Consumer<Map<String, GgufValue>> edit) {
        Map<String, GgufValue> kv = new LinkedHashMap<>();
        kv.put("general.architecture", GgufValue.string("llama"));
        kv.put("tokenizer.ggml.model", GgufValue.string("llama"));
        kv.put("tokenizer.ggml.tokens", GgufValue.array(GgufArray.ofStrings("<unk>", "<s>", "</s>", "▁", "a", "▁a")));
        kv.put("tokenizer.ggml.scores", GgufValue.array(GgufArray.ofFloat32(0, 0, 0, -1, -2, -0.5f)));
        kv.put(
                "tokenizer.ggml.token_type",
                GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT32, 2, 3, 3, 1, 1, 1)));
        edit.accept(kv);
        kv.values().removeIf(java.util.Objects::isNull);
        return GgufReader.readBytes(new GgufWriter().putAll(kv).toBytes());
    }

    private static Consumer<Map<String, GgufValue>> set(String key, GgufValue value) {
        return kv -> kv.put(key, value);
    }

    private static GgufValue int32s(long... values) {
        return GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT32, values));
    }

    @Test
    void readsATinySentencePieceVocabulary() {
        Tokenizer t = Tokenizer.fromGguf(spm(w -> {}));
        assertThat(t.vocabSize()).isEqualTo(6);
        assertThat(t.encode("a a", true)).containsExactly(1, 5, 5);
        assertThat(t.decode(new int[] {1, 5, 5})).isEqualTo("a a");
        assertThat(t.vocabulary().chatTemplate()).isNull();
    }

    @Test
    void missingTokenizerModelIsNamed() {
        GgufFile f = GgufReader.readBytes(
                new GgufWriter().putString("general.architecture", "llama").toBytes());
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.model is missing");
    }

    @Test
    void unknownTokenizerModelIsRefusedWithItsName() {
        GgufFile f = spm(set("tokenizer.ggml.model", GgufValue.string("rwkv")));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.model = 'rwkv' is not supported")
                .hasMessageContaining("'llama'")
                .hasMessageContaining("'gpt2'");
    }

    @Test
    void scoresOfTheWrongLengthAreRefused() {
        GgufFile f = spm(set("tokenizer.ggml.scores", GgufValue.array(GgufArray.ofFloat32(0, 0, 0))));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tokenizer.ggml.scores has 3 entries but tokenizer.ggml.tokens has 6;"
                        + " they must be the same length");
    }

    @Test
    void tokenTypesOfTheWrongLengthOrValueAreRefused() {
        GgufFile shortTypes = spm(set("tokenizer.ggml.token_type", int32s(1, 1)));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(shortTypes))
                .hasMessageContaining("tokenizer.ggml.token_type has 2 entries but tokenizer.ggml.tokens has 6");
        GgufFile badType = spm(set("tokenizer.ggml.token_type", int32s(2, 3, 3, 1, 9, 1)));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(badType))
                .hasMessageContaining("tokenizer.ggml.token_type[4] = 9 is not a token type");
    }

    @Test
    void tokensOfTheWrongTypeAreRefused() {
        GgufFile f = spm(set("tokenizer.ggml.tokens", GgufValue.array(GgufArray.ofFloat32(1, 2))));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.tokens is a float[]")
                .hasMessageContaining("expected an array of strings");
    }

    @Test
    void specialTokenIdOutsideTheVocabularyIsRefused() {
        GgufFile f = spm(set("tokenizer.ggml.eos_token_id", GgufValue.uint32(6)));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tokenizer.ggml.eos_token_id = 6 is outside the vocabulary (6 tokens, ids 0..5)");
    }

    @Test
    void uint32MaxMeansNoToken() {
        GgufFile f = spm(set("tokenizer.ggml.padding_token_id", GgufValue.uint32(0xFFFF_FFFFL)));
        assertThat(TokenizerVocabulary.fromGguf(f).padId()).isEqualTo(-1);
    }

    @Test
    void bpeWithoutMergesIsRefused() {
        GgufFile f = spm(set("tokenizer.ggml.model", GgufValue.string("gpt2")));
        assertThatThrownBy(() -> TokenizerVocabulary.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.merges is missing or empty");
    }

    @Test
    void unknownPreTokenizerIsRefusedWithTheSupportedNames() {
        GgufFile f = spm(w -> {
            w.put("tokenizer.ggml.model", GgufValue.string("gpt2"));
            w.put("tokenizer.ggml.pre", GgufValue.string("falcon"));
            w.put("tokenizer.ggml.merges", GgufValue.array(GgufArray.ofStrings("▁ a")));
        });
        assertThatThrownBy(() -> Tokenizer.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.pre = 'falcon' is not a supported pre-tokenizer")
                .hasMessageContaining("llama-bpe")
                .hasMessageContaining("qwen2");
    }

    @Test
    void malformedMergeIsNamed() {
        GgufFile f = spm(w -> {
            w.put("tokenizer.ggml.model", GgufValue.string("gpt2"));
            w.put("tokenizer.ggml.merges", GgufValue.array(GgufArray.ofStrings("▁ a", "▁a")));
        });
        assertThatThrownBy(() -> Tokenizer.fromGguf(f))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tokenizer.ggml.merges[1] = '▁a' is not of the form 'left right'");
    }

    @Test
    void decodeRefusesIdsOutsideTheVocabulary() {
        Tokenizer t = Tokenizer.fromGguf(spm(w -> {}));
        assertThatThrownBy(() -> t.decode(new int[] {4, 6}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("token id 6 at position 1 is outside the vocabulary (6 tokens, ids 0..5)");
        assertThatThrownBy(() -> t.decode(new int[] {-1})).hasMessageContaining("token id -1 at position 0");
        assertThatThrownBy(() -> t.streamingDecoder().accept(100))
                .hasMessageContaining("token id 100 is outside the vocabulary");
    }

    @Test
    void unknownCharacterWithoutByteTokensBecomesUnk() {
        Tokenizer t = Tokenizer.fromGguf(spm(w -> {}));
        assertThat(t.encode("ab", false)).containsExactly(5, 0);
    }
}
