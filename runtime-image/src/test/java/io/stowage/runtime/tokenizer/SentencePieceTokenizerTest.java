package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.runtime.tokenizer.TestTokenizers.VocabCase;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** SentencePiece tokenizer against llama.cpp's SPM vectors and llama2.c's stories260K behaviour. */
class SentencePieceTokenizerTest {

    static List<VocabCase> llamaSpmCases() {
        List<VocabCase> cases = TestTokenizers.llamaCppCases("/tokenizers/llama-cpp-vocab/ggml-vocab-llama-spm.gguf");
        assertThat(cases).hasSize(46);
        return cases;
    }

    @ParameterizedTest
    @MethodSource("llamaSpmCases")
    void encodesLlamaCppSpmVectorsWithoutBosAndWithoutParsingSpecials(VocabCase c) {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.LLAMA_SPM);
        assertThat(t.encode(c.input(), false, false)).containsExactly(c.expected());
    }

    @Test
    void encodesStoriesPromptLikeLlama2c() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        assertThat(t).isInstanceOf(SentencePieceTokenizer.class);
        assertThat(t.encode("Once upon a time", true)).containsExactly(1, 403, 407, 261, 378);
        assertThat(t.bosId()).isEqualTo(1);
        assertThat(t.eosId()).isEqualTo(2);
        assertThat(t.vocabSize()).isEqualTo(512);
        assertThat(t.addsBos()).isTrue();
    }

    @Test
    void decodesStoriesGoldenContinuationAsLlama2cPrintsIt() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        int[] generated = {
            432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411,
            322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426
        };
        int[] all = new int[5 + generated.length];
        System.arraycopy(new int[] {1, 403, 407, 261, 378}, 0, all, 0, 5);
        System.arraycopy(generated, 0, all, 5, generated.length);
        assertThat(t.decode(all))
                .isEqualTo(
                        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
                                + " One day, she saw a big, red ball.");
    }

    @Test
    void emptyTextGivesNoTokensOrJustBos() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        assertThat(t.encode("", false)).isEmpty();
        assertThat(t.encode("", true)).containsExactly(1);
    }

    @Test
    void fallsBackToByteTokensForCharactersWithoutAPiece() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        // The 512-piece vocabulary has no CJK pieces: 世 is E4 B8 96, byte token id = byte + 3.
        int[] ids = t.encode("世", false);
        assertThat(ids).endsWith(0xE4 + 3, 0xB8 + 3, 0x96 + 3);
        assertThat(t.decode(ids)).isEqualTo("世");
    }

    @Test
    void recognisesControlTokenTextOnlyWhenParsingSpecials() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.LLAMA_SPM);
        int[] parsed = t.encode("<s>Hi", false, true);
        assertThat(parsed[0]).isEqualTo(1);
        assertThat(parsed).hasSize(1 + t.encode("Hi", false, false).length);
        int[] plain = t.encode("<s>Hi", false, false);
        assertThat(plain).doesNotContain(1);
    }

    @ParameterizedTest
    @MethodSource("llamaSpmCases")
    void decodeGivesBackTheInput(VocabCase c) {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.LLAMA_SPM);
        assertThat(t.decode(c.expected())).isEqualTo(c.input());
    }
}
