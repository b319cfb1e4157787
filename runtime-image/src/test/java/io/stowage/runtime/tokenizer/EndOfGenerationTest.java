package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * Which generated tokens end a generation: EOS, EOT/EOM and end-of-turn tokens for every model, and BOS for a
 * SentencePiece vocabulary without a chat template (llama2.c's models start each story with BOS).
 */
class EndOfGenerationTest {

    @Test
    void storiesModelEndsAtBosAndEos() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        assertThat(t.vocabulary().chatTemplate()).isNull();
        assertThat(t.bosEndsGeneration()).isTrue();
        assertThat(t.isEndOfGeneration(t.bosId())).isTrue();
        assertThat(t.isEndOfGeneration(t.eosId())).isTrue();
        assertThat(t.isEndOfGeneration(403)).isFalse();
        // BOS is no end of turn: only the generation rule adds it
        assertThat(t.isEndOfTurn(t.bosId())).isFalse();
    }

    @Test
    void sentencePieceVocabularyWithAChatTemplateKeepsBosAsTextStart() {
        TokenizerVocabulary v = TestTokenizers.vocabulary(TestTokenizers.STORIES);
        TokenizerVocabulary withTemplate = new TokenizerVocabulary(
                v.model(),
                v.pre(),
                v.tokens(),
                v.scores(),
                v.types(),
                v.merges(),
                v.bosId(),
                v.eosId(),
                v.unkId(),
                v.padId(),
                v.eotId(),
                v.eomId(),
                v.addBos(),
                v.addEos(),
                v.addSpacePrefix(),
                "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}");
        Tokenizer t = Tokenizer.create(withTemplate);
        assertThat(t.bosEndsGeneration()).isFalse();
        assertThat(t.isEndOfGeneration(t.bosId())).isFalse();
        assertThat(t.isEndOfGeneration(t.eosId())).isTrue();
    }

    @Test
    void byteLevelChatModelsEndAtTheirEndOfTurnTokensNotAtBos() {
        Tokenizer llama3 = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        assertThat(llama3.bosEndsGeneration()).isFalse();
        assertThat(llama3.isEndOfGeneration(128000)).isFalse(); // <|begin_of_text|>
        assertThat(llama3.isEndOfGeneration(128009)).isTrue(); // <|eot_id|>
        assertThat(llama3.isEndOfGeneration(128001)).isTrue(); // <|end_of_text|>
        Tokenizer qwen = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        assertThat(qwen.isEndOfGeneration(151645)).isTrue(); // <|im_end|>
        assertThat(qwen.isEndOfGeneration(151644)).isFalse(); // <|im_start|>
    }
}
