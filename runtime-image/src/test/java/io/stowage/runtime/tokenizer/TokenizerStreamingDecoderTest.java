package io.stowage.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Token-by-token decoding that only ever emits whole UTF-8 characters. */
class TokenizerStreamingDecoderTest {

    private static List<String> stream(Tokenizer t, int[] ids) {
        StreamingDecoder d = t.streamingDecoder();
        List<String> out = new ArrayList<>();
        for (int id : ids) {
            out.add(d.accept(id));
        }
        out.add(d.flush());
        return out;
    }

    @Test
    void holdsByteLevelPiecesUntilTheCharacterIsComplete() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.LLAMA3);
        String text = "🦙 ok";
        int[] ids = t.encode(text, false);
        List<String> pieces = stream(t, ids);
        // Every emitted piece is whole characters: no U+FFFD from a split emoji.
        assertThat(pieces).allSatisfy(p -> assertThat(p).doesNotContain("\uFFFD"));
        assertThat(String.join("", pieces)).isEqualTo(text);
        // The llama's 4 UTF-8 bytes are spread over more than one token, so some step emitted nothing.
        assertThat(ids.length).isGreaterThan(2);
        assertThat(pieces.subList(0, ids.length)).contains("");
    }

    @Test
    void holdsByteFallbackTokensUntilTheCharacterIsComplete() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        int[] ids = t.encode("a 世界", true);
        StreamingDecoder d = t.streamingDecoder();
        StringBuilder sb = new StringBuilder();
        int heldSteps = 0;
        for (int id : ids) {
            String s = d.accept(id);
            if (s.isEmpty() && d.pendingBytes() > 0) {
                heldSteps++;
            }
            sb.append(s);
        }
        sb.append(d.flush());
        assertThat(sb).hasToString("a 世界");
        // Two 3-byte characters as byte tokens: two partial steps each.
        assertThat(heldSteps).isEqualTo(4);
    }

    @Test
    void continuationKeepsLeadingSpaceButTextAfterBosDropsTheDummyPrefix() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        int[] once = t.encode("Once", false);
        assertThat(String.join("", stream(t, once))).isEqualTo(" Once");
        int[] withBos = t.encode("Once", true);
        assertThat(String.join("", stream(t, withBos))).isEqualTo("Once");
        assertThat(t.decode(once)).isEqualTo("Once");
        assertThat(t.decodeContinuation(once)).isEqualTo(" Once");
    }

    @Test
    void flushReplacesAnIncompleteCharacter() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        StreamingDecoder d = t.streamingDecoder();
        assertThat(d.accept(0xE4 + 3)).isEmpty();
        assertThat(d.pendingBytes()).isEqualTo(1);
        assertThat(d.flush()).isEqualTo("\uFFFD");
        assertThat(d.pendingBytes()).isZero();
    }

    @Test
    void completePrefixFindsTheLastCharacterBoundary() {
        byte[] euro = "€".getBytes(StandardCharsets.UTF_8); // E2 82 AC
        assertThat(StreamingDecoder.completePrefix(euro, 3)).isEqualTo(3);
        assertThat(StreamingDecoder.completePrefix(euro, 2)).isZero();
        assertThat(StreamingDecoder.completePrefix(euro, 1)).isZero();
        byte[] mixed = {'a', (byte) 0xF0, (byte) 0x9F};
        assertThat(StreamingDecoder.completePrefix(mixed, 3)).isEqualTo(1);
        byte[] stray = {'a', (byte) 0x82};
        assertThat(StreamingDecoder.completePrefix(stray, 2)).isEqualTo(2);
    }

    @Test
    void controlTokensAreSilentUnlessRendered() {
        Tokenizer t = TestTokenizers.tokenizer(TestTokenizers.QWEN3);
        int[] ids = t.encode("<|im_start|>user\nHi<|im_end|>", false);
        assertThat(ids[0]).isEqualTo(151644);
        assertThat(t.decode(ids)).isEqualTo("user\nHi");
        assertThat(t.decode(ids, true)).isEqualTo("<|im_start|>user\nHi<|im_end|>");
    }
}
