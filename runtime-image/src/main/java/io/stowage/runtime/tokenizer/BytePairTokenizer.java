package io.stowage.runtime.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;

/**
 * GPT-2-style byte-level BPE ({@code tokenizer.ggml.model = gpt2}) as llama.cpp runs it: the
 * text is split by the pre-tokenizer regex, each piece's UTF-8 bytes are spelled in the GPT-2
 * byte alphabet, and adjacent symbols are merged lowest merge rank first (leftmost on ties)
 * through a priority queue, so a long piece costs O(n log n) rather than a rescan per merge.
 */
public final class BytePairTokenizer extends Tokenizer {
    private final PreTokenizer preTokenizer;
    /** (left id, right id) → (rank << 32 | merged id). */
    private final LongLongMap merges;
    /** Id of each byte's one-character token, or -1. */
    private final int[] byteTokens = new int[256];

    private final int skippedMerges;

    /**
     * Ids of recently seen pre-tokens. Text repeats its words (Zipf), so most pre-tokens skip the
     * merge loop; Hugging Face's tokenizers and tiktoken cache the same way. Bounded: cleared when full.
     */
    private final ConcurrentHashMap<String, int[]> wordCache = new ConcurrentHashMap<>();

    static final int WORD_CACHE_ENTRIES = 1 << 16;
    static final int WORD_CACHE_MAX_CHARS = 64;

    BytePairTokenizer(TokenizerVocabulary vocab) {
        super(vocab);
        this.preTokenizer = PreTokenizer.forName(vocab.pre());
        for (int b = 0; b < 256; b++) {
            Integer id = idsByText.get(String.valueOf(ByteLevel.charOf(b)));
            byteTokens[b] = id == null ? -1 : id;
        }
        List<String> list = vocab.merges();
        this.merges = new LongLongMap(list.size());
        int skipped = 0;
        for (int rank = 0; rank < list.size(); rank++) {
            String m = list.get(rank);
            // The separator is the first space after the first character (llama.cpp's rule).
            int sep = m.indexOf(' ', 1);
            if (sep < 0) {
                throw new IllegalArgumentException(TokenizerVocabulary.KEY_MERGES + "[" + rank + "] = '" + m
                        + "' is not of the form 'left right'");
            }
            String left = m.substring(0, sep);
            String right = m.substring(sep + 1);
            Integer l = idsByText.get(left);
            Integer r = idsByText.get(right);
            Integer merged = idsByText.get(left + right);
            if (l == null || r == null || merged == null) {
                // A merge whose parts or result are not tokens can never yield a token; llama.cpp
                // would emit the bytes of such a piece, which the vocabulary cannot spell either.
                skipped++;
                continue;
            }
            long key = pair(l, r);
            if (!merges.containsKey(key)) {
                merges.put(key, ((long) rank << 32) | merged);
            }
        }
        this.skippedMerges = skipped;
    }

    /** Empties the pre-token cache (benchmarks measure the merge loop with it). */
    void clearCache() {
        wordCache.clear();
    }

    /** Number of merges left out because their parts or their result are not in the vocabulary. */
    public int skippedMerges() {
        return skippedMerges;
    }

    private static long pair(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFF_FFFFL);
    }

    @Override
    void encodeText(String raw, boolean afterSpecial, IntList out) {
        String text = preTokenizer.normalize(raw);
        Matcher m = preTokenizer.matcher(text);
        while (m.find()) {
            if (m.end() == m.start()) {
                continue;
            }
            String word = m.group();
            if (word.length() > WORD_CACHE_MAX_CHARS) {
                encodeWord(word.getBytes(StandardCharsets.UTF_8), out);
                continue;
            }
            int[] ids = wordCache.get(word);
            if (ids == null) {
                IntList w = new IntList(word.length());
                encodeWord(word.getBytes(StandardCharsets.UTF_8), w);
                ids = w.toArray();
                if (wordCache.size() >= WORD_CACHE_ENTRIES) {
                    wordCache.clear();
                }
                wordCache.put(word, ids);
            }
            out.addAll(ids);
        }
    }

    private void encodeWord(byte[] bytes, IntList out) {
        if (preTokenizer.ignoreMerges()) {
            Integer whole = idsByText.get(ByteLevel.spell(bytes));
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        int n = bytes.length;
        if (n == 1) {
            int id = byteTokens[bytes[0] & 0xFF];
            if (id >= 0) {
                out.add(id);
            }
            return;
        }
        int[] id = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        boolean[] alive = new boolean[n];
        for (int i = 0; i < n; i++) {
            id[i] = byteTokens[bytes[i] & 0xFF];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }
        // Heap entries are (rank << 32 | left index): the lowest rank first, then the leftmost.
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            push(heap, id, i, i + 1);
        }
        while (!heap.isEmpty()) {
            long e = heap.poll();
            int left = (int) e;
            int rank = (int) (e >>> 32);
            int right = alive[left] ? next[left] : -1;
            if (right < 0) {
                continue;
            }
            long merge = merges.get(pair(id[left], id[right]));
            // Stale: a side changed since this entry was queued, so the pair now has another (or no) rank.
            if (merge == LongLongMap.ABSENT || (int) (merge >>> 32) != rank) {
                continue;
            }
            id[left] = (int) merge;
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
            }
            if (prev[left] >= 0) {
                push(heap, id, prev[left], left);
            }
            if (next[left] >= 0) {
                push(heap, id, left, next[left]);
            }
        }
        for (int i = 0; i >= 0; i = next[i]) {
            // -1: a byte with no token in this vocabulary; llama.cpp drops it too.
            if (id[i] >= 0) {
                out.add(id[i]);
            }
        }
    }

    private void push(LongHeap heap, int[] id, int left, int right) {
        if (id[left] < 0 || id[right] < 0) {
            return;
        }
        long merge = merges.get(pair(id[left], id[right]));
        if (merge != LongLongMap.ABSENT) {
            heap.add((merge & 0xFFFF_FFFF_0000_0000L) | left);
        }
    }

    @Override
    byte[] textPiece(int id) {
        return ByteLevel.decode(vocab.tokens().get(id));
    }

    @Override
    boolean stripsLeadingSpace() {
        return false;
    }

    /** Open-addressing long → long map (non-negative values; ABSENT when missing). */
    static final class LongLongMap {
        static final long ABSENT = -1;
        private final long[] keys;
        private final long[] values;
        private final boolean[] used;
        private final int mask;

        LongLongMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2)) * 2;
            keys = new long[cap];
            values = new long[cap];
            used = new boolean[cap];
            mask = cap - 1;
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            int i = (int) (h ^ (h >>> 32)) & mask;
            while (used[i] && keys[i] != key) {
                i = (i + 1) & mask;
            }
            return i;
        }

        boolean containsKey(long key) {
            return used[slot(key)];
        }

        long get(long key) {
            int i = slot(key);
            return used[i] ? values[i] : ABSENT;
        }

        void put(long key, long value) {
            int i = slot(key);
            used[i] = true;
            keys[i] = key;
            values[i] = value;
        }
    }
}
