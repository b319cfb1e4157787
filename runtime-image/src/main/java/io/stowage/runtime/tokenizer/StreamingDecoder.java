package io.stowage.runtime.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Decodes tokens one at a time and returns only complete UTF-8 characters, holding back the
 * bytes of a character split across tokens (byte-fallback or byte-level pieces) until the rest
 * arrives. Not thread-safe: one per sequence.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean renderSpecial;
    /** Drop one leading space from the next text piece (SentencePiece's dummy prefix). */
    private boolean stripNextSpace;

    private byte[] pending = new byte[16];
    private int pendingLength;

    StreamingDecoder(Tokenizer tokenizer, boolean renderSpecial, boolean atTextStart) {
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
        this.stripNextSpace = atTextStart && tokenizer.stripsLeadingSpace();
    }

    /**
     * Adds one token and returns the text that is now complete (possibly empty).
     *
     * @throws IllegalArgumentException when {@code id} is outside the vocabulary
     */
    public String accept(int id) {
        byte[] piece = tokenizer.piece(id, renderSpecial);
        int from = 0;
        if (stripNextSpace && piece.length > 0) {
            if (piece[0] == ' ') {
                from = 1;
            }
            stripNextSpace = false;
        }
        if (id == tokenizer.bosId() && tokenizer.stripsLeadingSpace()) {
            // llama2.c: the piece after BOS loses its leading space.
            stripNextSpace = true;
        }
        append(piece, from);
        return drainComplete();
    }

    /** Returns whatever is held back, with U+FFFD for an incomplete character, and resets. */
    public String flush() {
        String s = new String(pending, 0, pendingLength, StandardCharsets.UTF_8);
        pendingLength = 0;
        return s;
    }

    /** Number of bytes held back waiting for the rest of a character. */
    public int pendingBytes() {
        return pendingLength;
    }

    private void append(byte[] piece, int from) {
        int len = piece.length - from;
        if (pendingLength + len > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + len));
        }
        System.arraycopy(piece, from, pending, pendingLength, len);
        pendingLength += len;
    }

    private String drainComplete() {
        int cut = completePrefix(pending, pendingLength);
        if (cut == 0) {
            return "";
        }
        String s = new String(pending, 0, cut, StandardCharsets.UTF_8);
        System.arraycopy(pending, cut, pending, 0, pendingLength - cut);
        pendingLength -= cut;
        return s;
    }

    /** Length of the prefix that ends on a character boundary: a trailing, still-incomplete sequence is held. */
    static int completePrefix(byte[] b, int length) {
        int i = length - 1;
        int continuation = 0;
        while (i >= 0 && continuation < 3 && (b[i] & 0xC0) == 0x80) {
            i--;
            continuation++;
        }
        if (i < 0) {
            return length;
        }
        int lead = b[i] & 0xFF;
        int expected = lead >= 0xF0 && lead <= 0xF4
                ? 4
                : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 1;
        if (expected > 1 && continuation + 1 < expected) {
            return i;
        }
        return length;
    }
}
