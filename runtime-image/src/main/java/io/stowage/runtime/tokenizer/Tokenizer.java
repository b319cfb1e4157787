package io.stowage.runtime.tokenizer;

import io.stowage.placement.gguf.GgufFile;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Turns text into token ids and back for one model, built from the model's GGUF tokenizer
 * metadata and behaving as llama.cpp's tokenizer of the same type.
 *
 * <p>Special-token text (control, user-defined and unknown tokens) is split out of the input
 * first, longest token first, as llama.cpp's {@code tokenizer_st_partition} does; the pieces
 * between are encoded by the model's algorithm. Instances are immutable and thread-safe.
 */
public abstract sealed class Tokenizer permits SentencePieceTokenizer, BytePairTokenizer {

    /** Token texts that end a turn in chat models, as llama.cpp's end-of-generation list names them. */
    private static final Set<String> END_OF_TURN_TEXTS = Set.of(
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "<|end_of_text|>",
            "<｜end▁of▁sentence｜>");

    protected final TokenizerVocabulary vocab;
    protected final Map<String, Integer> idsByText;
    /** Special tokens, longest text first: the order in which they are cut out of the text. */
    private final int[] specialIds;

    private final int[] eotIds;
    /** BOS when it also ends generation (see {@link #bosEndsGeneration()}), else -1. */
    private final int bosEnd;
    /** Decoded bytes per token when special tokens are not rendered; rendered ones come from the text. */
    private final AtomicReferenceArray<byte[]> pieces;

    Tokenizer(TokenizerVocabulary vocab) {
        this.vocab = vocab;
        int n = vocab.size();
        this.idsByText = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) {
            // Later duplicates win, as in llama.cpp's token_to_id map.
            idsByText.put(vocab.tokens().get(i), i);
        }
        List<Integer> special = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            TokenType t = vocab.type(i);
            if ((t == TokenType.CONTROL || t == TokenType.USER_DEFINED || t == TokenType.UNKNOWN)
                    && !vocab.tokens().get(i).isEmpty()) {
                special.add(i);
            }
        }
        special.sort(
                Comparator.comparingInt((Integer id) -> -vocab.tokens().get(id).length())
                        .thenComparingInt(id -> id));
        this.specialIds = special.stream().mapToInt(Integer::intValue).toArray();

        Set<Integer> eot = new LinkedHashSet<>();
        for (int id : new int[] {vocab.eosId(), vocab.eotId(), vocab.eomId()}) {
            if (id >= 0) {
                eot.add(id);
            }
        }
        for (String text : END_OF_TURN_TEXTS) {
            Integer id = idsByText.get(text);
            if (id != null && vocab.type(id) == TokenType.CONTROL) {
                eot.add(id);
            }
        }
        this.eotIds = eot.stream().mapToInt(Integer::intValue).sorted().toArray();
        // llama2.c's convention: its models delimit stories with BOS, so a BOS they generate starts a new document.
        // Such a file is a SentencePiece llama vocabulary with no chat template; a chat model's template, not BOS,
        // marks its turns, so a vocabulary with a template keeps BOS as text start only.
        this.bosEnd = vocab.model().equals("llama")
                        && (vocab.chatTemplate() == null || vocab.chatTemplate().isBlank())
                ? vocab.bosId()
                : -1;
        this.pieces = new AtomicReferenceArray<>(n);
    }

    /** The tokenizer for {@code vocab.model()}: SentencePiece for {@code llama}, byte-level BPE for {@code gpt2}. */
    public static Tokenizer create(TokenizerVocabulary vocab) {
        return switch (vocab.model()) {
            case "llama" -> new SentencePieceTokenizer(vocab);
            case "gpt2" -> new BytePairTokenizer(vocab);
            default ->
                throw new IllegalArgumentException(TokenizerVocabulary.KEY_MODEL + " = '" + vocab.model()
                        + "' is not supported; this runtime implements 'llama' and 'gpt2'");
        };
    }

    /** Reads the vocabulary from a parsed GGUF header and builds its tokenizer. */
    public static Tokenizer fromGguf(GgufFile file) {
        return create(TokenizerVocabulary.fromGguf(file));
    }

    /** Reads the vocabulary from GGUF metadata and builds its tokenizer. */
    public static Tokenizer fromMetadata(TokenizerVocabulary.Metadata metadata) {
        return create(TokenizerVocabulary.fromMetadata(metadata));
    }

    public TokenizerVocabulary vocabulary() {
        return vocab;
    }

    /** Encodes {@code text}, recognising special-token text (such as {@code <|im_start|>}) as single ids. */
    public int[] encode(String text, boolean addBos) {
        return encode(text, addBos, true);
    }

    /**
     * Encodes {@code text}.
     *
     * @param addBos prepend the BOS id (ignored when the vocabulary has none)
     * @param parseSpecial recognise control-token text as the control token; when false such text
     *     is encoded as ordinary text. User-defined tokens are recognised either way (llama.cpp's
     *     {@code parse_special}).
     */
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        if (text == null) {
            throw new IllegalArgumentException("text to encode is null");
        }
        IntList out = new IntList(text.length() / 3 + 4);
        if (addBos && vocab.bosId() >= 0) {
            out.add(vocab.bosId());
        }
        if (text.isEmpty()) {
            return out.toArray();
        }
        List<Fragment> fragments = partition(text, parseSpecial);
        boolean previousSpecial = true;
        for (Fragment f : fragments) {
            if (f.token >= 0) {
                out.add(f.token);
                previousSpecial = true;
            } else {
                encodeText(text.substring(f.start, f.end), previousSpecial, out);
                previousSpecial = false;
            }
        }
        return out.toArray();
    }

    /**
     * Encodes ordinary text (no special tokens in it) and appends the ids.
     *
     * @param afterSpecial the text starts the input or follows a special token (SentencePiece
     *     then prepends its dummy-prefix space)
     */
    abstract void encodeText(String text, boolean afterSpecial, IntList out);

    /** A run of the input: a special token ({@code token >= 0}) or raw text {@code [start, end)}. */
    private record Fragment(int token, int start, int end) {}

    private List<Fragment> partition(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        fragments.add(new Fragment(-1, 0, text.length()));
        for (int id : specialIds) {
            TokenType type = vocab.type(id);
            if (!parseSpecial && type != TokenType.USER_DEFINED) {
                continue;
            }
            String special = vocab.tokens().get(id);
            List<Fragment> next = null;
            for (int i = 0; i < fragments.size(); i++) {
                Fragment f = fragments.get(i);
                // Bounded to the fragment, so each special token costs one pass over the text.
                int at = f.token < 0 ? text.indexOf(special, f.start, f.end) : -1;
                if (at < 0) {
                    if (next != null) {
                        next.add(f);
                    }
                    continue;
                }
                if (next == null) {
                    next = new ArrayList<>(fragments.subList(0, i));
                }
                int pos = f.start;
                while (at >= 0) {
                    if (at > pos) {
                        next.add(new Fragment(-1, pos, at));
                    }
                    next.add(new Fragment(id, at, at + special.length()));
                    pos = at + special.length();
                    at = text.indexOf(special, pos, f.end);
                }
                if (pos < f.end) {
                    next.add(new Fragment(-1, pos, f.end));
                }
            }
            if (next != null) {
                fragments = next;
            }
        }
        return fragments;
    }

    /** Text of {@code ids}: control tokens are left out, SentencePiece's dummy-prefix space is removed. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * Text of {@code ids}.
     *
     * @param renderSpecial write control tokens as their text (e.g. {@code <|eot_id|>}) instead of leaving them out
     * @throws IllegalArgumentException naming the position and the id when an id is outside the vocabulary
     */
    public String decode(int[] ids, boolean renderSpecial) {
        return decode(ids, renderSpecial, true);
    }

    /**
     * Text of tokens that continue a prompt (generated tokens): like {@link #decode(int[])} but
     * a leading space of the first token is kept, as the {@link #streamingDecoder()} keeps it.
     */
    public String decodeContinuation(int[] ids) {
        return decode(ids, false, false);
    }

    private String decode(int[] ids, boolean renderSpecial, boolean atTextStart) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab.size()) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary (" + vocab.size() + " tokens, ids 0.." + (vocab.size() - 1)
                        + ")");
            }
        }
        StreamingDecoder d = new StreamingDecoder(this, renderSpecial, atTextStart);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(d.accept(id));
        }
        return sb.append(d.flush()).toString();
    }

    /**
     * A decoder for tokens that arrive one at a time, continuing text already shown (so a leading
     * space of the first token is kept, except right after BOS as llama2.c does).
     */
    public StreamingDecoder streamingDecoder() {
        return new StreamingDecoder(this, false, false);
    }

    /** The UTF-8 bytes token {@code id} stands for; empty for control tokens unless rendered. */
    final byte[] piece(int id, boolean renderSpecial) {
        checkId(id);
        TokenType t = vocab.type(id);
        if (renderSpecial && (t == TokenType.CONTROL || t == TokenType.UNKNOWN)) {
            return vocab.tokens().get(id).getBytes(StandardCharsets.UTF_8);
        }
        byte[] p = pieces.get(id);
        if (p == null) {
            p = switch (t) {
                case CONTROL, UNKNOWN, UNUSED, UNDEFINED -> new byte[0];
                case USER_DEFINED -> vocab.tokens().get(id).getBytes(StandardCharsets.UTF_8);
                case NORMAL, BYTE -> textPiece(id);
            };
            // Filled lazily; racing threads compute equal bytes, and the array publishes them safely.
            pieces.set(id, p);
        }
        return p;
    }

    /** Bytes of a normal or byte token, undoing the model's text encoding (▁ or the GPT-2 byte alphabet). */
    abstract byte[] textPiece(int id);

    /** SentencePiece drops the dummy-prefix space at the start of the text; byte-level BPE has none. */
    abstract boolean stripsLeadingSpace();

    public int vocabSize() {
        return vocab.size();
    }

    /** The BOS id, or -1 when the vocabulary has none. */
    public int bosId() {
        return vocab.bosId();
    }

    /** The EOS id, or -1 when the vocabulary has none. */
    public int eosId() {
        return vocab.eosId();
    }

    /** Whether the model expects BOS at the start of a prompt ({@code tokenizer.ggml.add_bos_token} or llama.cpp's default). */
    public boolean addsBos() {
        return vocab.addBos();
    }

    /** Ids that end generation: EOS, EOT/EOM and control tokens named like end-of-turn markers ({@code <|eot_id|>}, {@code <|im_end|>}, ...). */
    public int[] eotIds() {
        return eotIds.clone();
    }

    public boolean isEndOfTurn(int id) {
        return Arrays.binarySearch(eotIds, id) >= 0;
    }

    /**
     * Whether generating {@code id} ends the generation: an end-of-turn id ({@link #eotIds()}: EOS, EOT, EOM and
     * end-of-turn control tokens), or BOS where {@link #bosEndsGeneration()}.
     */
    public boolean isEndOfGeneration(int id) {
        return (id == bosEnd && id >= 0) || isEndOfTurn(id);
    }

    /**
     * Whether a generated BOS ends the generation: for a SentencePiece ({@code llama}) vocabulary with a BOS and no
     * chat template, the llama2.c-style models whose training data separates documents with BOS alone.
     */
    public boolean bosEndsGeneration() {
        return bosEnd >= 0;
    }

    public boolean isControl(int id) {
        return id >= 0 && id < vocab.size() && vocab.type(id) == TokenType.CONTROL;
    }

    /** The id of a token text, or -1. */
    public int tokenId(String text) {
        Integer id = idsByText.get(text);
        return id == null ? -1 : id;
    }

    /** The token's text as stored in the vocabulary. */
    public String tokenText(int id) {
        checkId(id);
        return vocab.tokens().get(id);
    }

    private void checkId(int id) {
        if (id < 0 || id >= vocab.size()) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (" + vocab.size()
                    + " tokens, ids 0.." + (vocab.size() - 1) + ")");
        }
    }

    /** A growable int array. */
    static final class IntList {
        private int[] a;
        private int n;

        IntList(int capacity) {
            a = new int[Math.max(4, capacity)];
        }

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            a[n++] = v;
        }

        void addAll(int[] values) {
            if (n + values.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, n + values.length));
            }
            System.arraycopy(values, 0, a, n, values.length);
            n += values.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
