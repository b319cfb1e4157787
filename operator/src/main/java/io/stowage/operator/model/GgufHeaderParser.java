package io.stowage.operator.model;

import io.stowage.placement.memory.ModelShape;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Reads the metadata and tensor table at the start of a GGUF file into a {@link ModelHeader},
 * checking every count and length against the bytes it was given (the file is untrusted).
 *
 * <p>Interim: the operator's own bounded reader until the placement library's {@code GgufReader}
 * (branch gguf) is merged; both read the same header layout.
 */
public final class GgufHeaderParser {
    private static final int MAGIC = 0x46554747; // "GGUF" little-endian
    private static final int MAX_STRING = 1 << 24;
    private static final long MAX_COUNT = 1L << 24;

    /** Thrown when the bytes given end inside the header: fetch more and retry. */
    public static final class NeedMoreBytes extends RuntimeException {
        public NeedMoreBytes() {
            super("the GGUF header continues past the bytes read", null, false, false);
        }
    }

    private GgufHeaderParser() {}

    /**
     * Parses {@code bytes} (a prefix of the file).
     *
     * @throws NeedMoreBytes when the prefix ends inside the header
     * @throws InvalidModelException when the bytes are not a GGUF header the operator understands
     */
    public static ModelHeader parse(byte[] bytes, String source) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            return parse(b, source);
        } catch (BufferUnderflowException e) {
            throw new NeedMoreBytes();
        }
    }

    private static ModelHeader parse(ByteBuffer b, String source) {
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw new InvalidModelException(source + ": not a GGUF file (expected magic 'GGUF' but found 0x"
                    + Integer.toHexString(magic) + ")");
        }
        int version = b.getInt();
        if (version < 2 || version > 3) {
            throw new InvalidModelException(source + ": GGUF version " + version + " is not supported (2 or 3)");
        }
        long tensorCount = count(b.getLong(), "tensor count", source);
        long kvCount = count(b.getLong(), "metadata count", source);
        Map<String, Object> kv = new HashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = string(b, source);
            int type = b.getInt();
            kv.put(key, value(b, type, source, key));
        }
        long params = 0;
        long weightBytes = 0;
        Map<String, Long> bytesByType = new HashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = string(b, source);
            int dims = b.getInt();
            if (dims < 1 || dims > 4) {
                throw new InvalidModelException(source + ": tensor " + name + " has " + dims + " dimensions (1..4)");
            }
            long elements = 1;
            for (int d = 0; d < dims; d++) {
                long n = b.getLong();
                if (n <= 0 || n > (1L << 40)) {
                    throw new InvalidModelException(source + ": tensor " + name + " dimension " + d + " is " + n);
                }
                elements = Math.multiplyExact(elements, n);
            }
            int type = b.getInt();
            b.getLong(); // offset: not needed for sizing
            GgmlType t = GgmlType.of(type, source, name);
            if (elements % t.blockValues != 0) {
                throw new InvalidModelException(source + ": tensor " + name + " has " + elements
                        + " elements, not a multiple of the " + t + " block of " + t.blockValues);
            }
            long size = elements / t.blockValues * t.blockBytes;
            params += elements;
            weightBytes += size;
            bytesByType.merge(t.name(), size, Long::sum);
        }
        String arch = str(kv, "general.architecture", source);
        int layers = intOf(kv, arch + ".block_count", source, true);
        int embd = intOf(kv, arch + ".embedding_length", source, true);
        int ff = intOf(kv, arch + ".feed_forward_length", source, true);
        int heads = intOf(kv, arch + ".attention.head_count", source, true);
        Integer kvHeadsOpt = intOrNull(kv, arch + ".attention.head_count_kv");
        int kvHeads = kvHeadsOpt == null ? heads : kvHeadsOpt;
        Integer kLen = intOrNull(kv, arch + ".attention.key_length");
        Integer vLen = intOrNull(kv, arch + ".attention.value_length");
        int headDim = embd / heads;
        Integer vocab = intOrNull(kv, arch + ".vocab_size");
        if (vocab == null) {
            Object tokens = kv.get("tokenizer.ggml.tokens");
            vocab = tokens instanceof Long n ? n.intValue() : null;
        }
        if (vocab == null) {
            throw new InvalidModelException(source + ": no vocabulary size (" + arch
                    + ".vocab_size or tokenizer.ggml.tokens); cannot size the output head");
        }
        Integer ctx = intOrNull(kv, arch + ".context_length");
        String quant = bytesByType.entrySet().stream()
                .max(Map.Entry.comparingByValue())
                .map(Map.Entry::getKey)
                .orElse("none");
        ModelShape shape;
        try {
            shape = new ModelShape(
                    arch,
                    layers,
                    embd,
                    ff,
                    heads,
                    kvHeads,
                    kLen == null ? headDim : kLen,
                    vLen == null ? headDim : vLen,
                    vocab,
                    ctx == null ? 0 : ctx,
                    weightBytes);
        } catch (IllegalArgumentException e) {
            throw new InvalidModelException(source + ": " + e.getMessage());
        }
        Object name = kv.get("general.name");
        return new ModelHeader(arch, name instanceof String s ? s : null, params, quant, shape);
    }

    private static long count(long n, String what, String source) {
        if (n < 0 || n > MAX_COUNT) {
            throw new InvalidModelException(
                    source + ": GGUF " + what + " " + n + " is out of range (0.." + MAX_COUNT + ")");
        }
        return n;
    }

    private static String string(ByteBuffer b, String source) {
        long len = b.getLong();
        if (len < 0 || len > MAX_STRING) {
            throw new InvalidModelException(source + ": GGUF string length " + len + " is out of range");
        }
        if (len > b.remaining()) {
            throw new NeedMoreBytes();
        }
        byte[] s = new byte[(int) len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    /** Returns scalars as Long/Double/Boolean/String; arrays as their length (Long). */
    private static Object value(ByteBuffer b, int type, String source, String key) {
        return switch (type) {
            case 0 -> (long) b.get() & 0xff;
            case 1 -> (long) b.get();
            case 2 -> (long) b.getShort() & 0xffff;
            case 3 -> (long) b.getShort();
            case 4 -> (long) b.getInt() & 0xffffffffL;
            case 5 -> (long) b.getInt();
            case 6 -> (double) b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> string(b, source);
            case 9 -> {
                int elemType = b.getInt();
                long n = count(b.getLong(), "array length of " + key, source);
                int width = switch (elemType) {
                    case 0, 1, 7 -> 1;
                    case 2, 3 -> 2;
                    case 4, 5, 6 -> 4;
                    case 10, 11, 12 -> 8;
                    default -> -1;
                };
                if (width > 0) {
                    long skip = n * width;
                    if (skip > b.remaining()) {
                        throw new NeedMoreBytes();
                    }
                    b.position(b.position() + (int) skip);
                } else {
                    for (long i = 0; i < n; i++) {
                        value(b, elemType, source, key);
                    }
                }
                yield n;
            }
            case 10, 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new InvalidModelException(source + ": metadata " + key + " has unknown type " + type);
        };
    }

    private static String str(Map<String, Object> kv, String key, String source) {
        if (kv.get(key) instanceof String s) {
            return s;
        }
        throw new InvalidModelException(source + ": GGUF metadata " + key + " is missing");
    }

    private static int intOf(Map<String, Object> kv, String key, String source, boolean required) {
        Integer v = intOrNull(kv, key);
        if (v == null || v <= 0) {
            throw new InvalidModelException(
                    source + ": GGUF metadata " + key + " is " + (v == null ? "missing" : v) + " (must be > 0)");
        }
        return v;
    }

    private static Integer intOrNull(Map<String, Object> kv, String key) {
        Object v = kv.get(key);
        if (v instanceof Long l && l >= 0 && l <= Integer.MAX_VALUE) {
            return l.intValue();
        }
        return null;
    }

    /** ggml tensor types: values per block and bytes per block. */
    enum GgmlType {
        F32(0, 1, 4),
        F16(1, 1, 2),
        Q4_0(2, 32, 18),
        Q4_1(3, 32, 20),
        Q5_0(6, 32, 22),
        Q5_1(7, 32, 24),
        Q8_0(8, 32, 34),
        Q8_1(9, 32, 36),
        Q2_K(10, 256, 84),
        Q3_K(11, 256, 110),
        Q4_K(12, 256, 144),
        Q5_K(13, 256, 176),
        Q6_K(14, 256, 210),
        Q8_K(15, 256, 292),
        I8(24, 1, 1),
        I16(25, 1, 2),
        I32(26, 1, 4),
        I64(27, 1, 8),
        F64(28, 1, 8),
        BF16(30, 1, 2);

        final int id;
        final int blockValues;
        final int blockBytes;

        GgmlType(int id, int blockValues, int blockBytes) {
            this.id = id;
            this.blockValues = blockValues;
            this.blockBytes = blockBytes;
        }

        static GgmlType of(int id, String source, String tensor) {
            for (GgmlType t : values()) {
                if (t.id == id) {
                    return t;
                }
            }
            throw new InvalidModelException(
                    source + ": tensor " + tensor + " has ggml type " + id + ", which the operator cannot size");
        }
    }
}
