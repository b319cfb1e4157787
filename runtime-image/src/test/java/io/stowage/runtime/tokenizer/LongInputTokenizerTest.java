package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.text.Normalizer;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Long runs of one character class: each regex branch and the merge loop must cope without deep recursion. */
class LongInputTokenizerTest {

    static Stream<Arguments> runs() {
        String[] texts = {
            "abc".repeat(70_000),
            "1234567890".repeat(20_000),
            "!?.,;".repeat(40_000),
            "\n".repeat(100_000),
            " \t\r\n\u00a0\u3000".repeat(30_000),
            "日本語の文章".repeat(30_000),
            "🦙👍🏽".repeat(20_000),
            "it's We'LL ".repeat(20_000),
        };
        return Stream.of(TestTokenizers.LLAMA3, TestTokenizers.QWEN3, TestTokenizers.LLAMA_SPM)
                .flatMap(gguf -> Stream.of(texts).map(t -> Arguments.of(gguf, t)));
    }

    @ParameterizedTest
    @MethodSource("runs")
    void longRunsRoundTrip(String gguf, String text) {
        Tokenizer t = TestTokenizers.tokenizer(gguf);
        int[] ids = t.encode(text, false, false);
        assertThat(ids).isNotEmpty();
        String expected = gguf.equals(TestTokenizers.QWEN3) ? Normalizer.normalize(text, Normalizer.Form.NFC) : text;
        assertThat(t.decode(ids)).isEqualTo(expected);
    }
}
