package io.stowage.runtime.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * SentencePiece-style tokenizer ({@code tokenizer.ggml.model = llama}) as llama.cpp and
 * llama2.c run it: spaces become U+2581, a dummy-prefix space starts the text, adjacent pieces
 * are merged greedily by the score of the merged piece, and characters with no piece fall back
 * to {@code <0xXX>} byte tokens.
 */
public final class SentencePieceTokenizer extends Tokenizer {
    static final char SPACE = '\u2581';

    /** Id of {@code <0xXX>} per byte value, or -1. */
    private final int[] byteTokens = new int[256];

    SentencePieceTokenizer(TokenizerVocabulary vocab) {
        super(vocab);
        for (int b = 0; b < 256; b++) {
            Integer id = idsByText.get(String.format("<0x%02X>", b));
            if (id == null && b < 0x80) {
                // llama.cpp falls back to the byte as a one-character piece.
                id = idsByText.get(String.valueOf((char) b));
            }
            byteTokens[b] = id == null ? -1 : id;
        }
    }

    @Override
    void encodeText(String raw, boolean afterSpecial, IntList out) {
        String text = (vocab.addSpacePrefix() && afterSpecial ? " " + raw : raw).replace(' ', SPACE);
        int n = text.length();
        // Symbols start as single code points; start/length index into text; a merged-away symbol has length 0.
        int[] start = new int[n];
        int[] length = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        int count = 0;
        for (int i = 0; i < n; ) {
            int cp = text.codePointAt(i);
            int len = Character.charCount(cp);
            start[count] = i;
            length[count] = len;
            prev[count] = count - 1;
            next[count] = i + len < n ? count + 1 : -1;
            count++;
            i += len;
        }
        LongHeap queue = new LongHeap(count);
        for (int i = 1; i < count; i++) {
            tryAddBigram(text, start, length, i - 1, i, queue);
        }
        while (!queue.isEmpty()) {
            long entry = queue.poll();
            int l = (int) entry;
            int r = length[l] == 0 ? -1 : next[l];
            // Stale when a side was merged since: the pair now spells another piece (or none).
            // A different pair with the very same score is the merge llama.cpp makes next anyway.
            if (r < 0 || scoreKey(text, start, length, l, r) != entry) {
                continue;
            }
            length[l] += length[r];
            length[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) {
                prev[next[r]] = l;
            }
            if (prev[l] >= 0) {
                tryAddBigram(text, start, length, prev[l], l, queue);
            }
            if (next[l] >= 0) {
                tryAddBigram(text, start, length, l, next[l], queue);
            }
        }
        for (int i = 0; i >= 0 && count > 0; i = next[i]) {
            String piece = text.substring(start[i], start[i] + length[i]);
            Integer id = idsByText.get(piece);
            if (id != null) {
                out.add(id);
                continue;
            }
            // Only unmerged single characters can be missing (a merge always makes a known piece).
            // llama.cpp falls back on the escaped text, so a lone U+2581 becomes its three UTF-8 bytes.
            for (byte c : piece.getBytes(StandardCharsets.UTF_8)) {
                int byteId = byteTokens[c & 0xFF];
                if (byteId >= 0) {
                    out.add(byteId);
                } else if (vocab.unkId() >= 0) {
                    out.add(vocab.unkId());
                } else {
                    throw new IllegalArgumentException("cannot encode byte 0x" + Integer.toHexString(c & 0xFF)
                            + ": the vocabulary has no <0x" + String.format("%02X", c & 0xFF)
                            + "> byte token and no unknown token");
                }
            }
        }
    }

    private void tryAddBigram(String text, int[] start, int[] length, int left, int right, LongHeap q) {
        long key = scoreKey(text, start, length, left, right);
        if (key != NO_PIECE) {
            q.add(key);
        }
    }

    private static final long NO_PIECE = Long.MAX_VALUE;

    /**
     * Heap key of merging {@code left} with {@code right}: the highest score first, then the
     * leftmost (llama.cpp's order), or NO_PIECE when the merged text is not a piece.
     */
    private long scoreKey(String text, int[] start, int[] length, int left, int right) {
        Integer id = idsByText.get(text.substring(start[left], start[left] + length[left] + length[right]));
        if (id == null) {
            return NO_PIECE;
        }
        int bits = Float.floatToIntBits(vocab.scores()[id]);
        // Order-preserving float → int, then inverted so that a higher score is a smaller key.
        int sortable = bits ^ ((bits >> 31) & 0x7FFF_FFFF);
        return ((long) ~sortable << 32) | left;
    }

    @Override
    byte[] textPiece(int id) {
        String text = vocab.tokens().get(id);
        if (vocab.type(id) == TokenType.BYTE && text.length() == 6 && text.startsWith("<0x") && text.endsWith(">")) {
            return new byte[] {(byte) Integer.parseInt(text.substring(3, 5), 16)};
        }
        return text.replace(SPACE, ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override
    boolean stripsLeadingSpace() {
        return vocab.addSpacePrefix();
    }
}
