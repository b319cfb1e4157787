package io.stowage.placement.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses a GGUF header from a window of the file's first bytes, checking every count, length and offset against the
 * file size and the header cap before it is used.
 *
 * <p>The window may be shorter than the file: when a field runs past it (but not past the file or the cap) the parser
 * throws {@link NeedMore} with the byte it needs, and the source fetches more and parses again from the start.
 */
final class GgufParser {

    /** ggml's GGML_MAX_DIMS. */
    static final int MAX_DIMS = 4;
    /** Real files nest arrays at most twice; the limit keeps a hostile file from exhausting the stack. */
    static final int MAX_ARRAY_DEPTH = 8;
    /** The largest alignment we accept: general.alignment is a uint32 in llama.cpp. */
    static final long MAX_ALIGNMENT = 1L << 31;

    private static final int MIN_KV_BYTES = 8 + 4 + 1; // key length, value type, smallest value
    private static final int MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8; // name length, n_dims, ne0, type, offset

    /** Signals that the window ends before {@code needed}, which still lies inside the file and the cap. */
    static final class NeedMore extends RuntimeException {
        final long needed;

        NeedMore(long needed) {
            super(null, null, false, false);
            this.needed = needed;
        }
    }

    private final ByteBuffer buf;
    private final int len;
    private final long fileSize;
    private final long cap;
    private int pos;
    private String context = "GGUF header";

    /**
     * @param window the first {@code len} bytes of the file
     * @param fileSize the file's size, or -1 when unknown
     * @param cap the most header bytes we are willing to read
     */
    private GgufParser(byte[] window, int len, long fileSize, long cap) {
        this.buf = ByteBuffer.wrap(window, 0, len).order(ByteOrder.LITTLE_ENDIAN);
        this.len = len;
        this.fileSize = fileSize;
        this.cap = cap;
    }

    static GgufFile parse(byte[] window, int len, long fileSize, long cap) {
        return new GgufParser(window, len, fileSize, cap).parse();
    }

    private GgufFile parse() {
        require(4, "magic");
        if (buf.get(0) != 'G' || buf.get(1) != 'G' || buf.get(2) != 'U' || buf.get(3) != 'F') {
            throw new GgufFormatException("not a GGUF file: the first 4 bytes are " + hex(0, 4) + " (\"" + ascii(0, 4)
                    + "\"), expected 47 47 55 46 (\"GGUF\")");
        }
        pos = 4;
        require(4, "version");
        int rawVersion = buf.getInt(pos);
        if (rawVersion != 0 && (rawVersion & 0xFFFF) == 0) {
            throw new GgufFormatException("big-endian GGUF file (version bytes " + hex(4, 4)
                    + "): only little-endian GGUF is supported; convert it on a little-endian machine");
        }
        long version = Integer.toUnsignedLong(rawVersion);
        pos += 4;
        if (version == 1) {
            throw new GgufFormatException(
                    "GGUF version 1 is not supported (it has 32-bit counts and no alignment); versions 2 and 3 are."
                            + " Re-convert the model with a current llama.cpp");
        }
        if (version != 2 && version != 3) {
            throw new GgufFormatException("GGUF version " + version + " is not supported; versions 2 and 3 are");
        }
        long tensorCount = readCount("tensor count", MIN_TENSOR_INFO_BYTES);
        long kvCount = readCount("metadata key/value count", MIN_KV_BYTES);

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        Map<String, Integer> keyOffsets = new HashMap<>();
        for (long i = 0; i < kvCount; i++) {
            context = "metadata entry #" + i;
            int keyAt = pos;
            String key = readString("key");
            context = "metadata key '" + key + "'";
            GgufValueType type = readValueType("value type");
            GgufValue value = readValue(type, 0);
            if (metadata.putIfAbsent(key, value) != null) {
                throw new GgufFormatException("metadata key '" + key + "' appears twice (entries at bytes "
                        + keyOffsets.get(key) + " and " + keyAt + ")");
            }
            keyOffsets.put(key, keyAt);
        }

        long alignment = alignment(metadata.get("general.alignment"));

        List<GgufTensorInfo> tensors = new ArrayList<>();
        Set<String> names = new HashSet<>();
        long[] relOffsets = new long[(int) tensorCount];
        long[][] dimsOf = new long[(int) tensorCount][];
        GgufType[] types = new GgufType[(int) tensorCount];
        String[] tensorNames = new String[(int) tensorCount];
        long[] byteSizes = new long[(int) tensorCount];
        long[] elementCounts = new long[(int) tensorCount];
        for (int i = 0; i < tensorCount; i++) {
            context = "tensor info #" + i;
            String name = readString("name");
            context = "tensor '" + name + "'";
            if (!names.add(name)) {
                throw new GgufFormatException("tensor '" + name + "' appears twice in the tensor infos");
            }
            long nDims = readU32("number of dimensions");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw new GgufFormatException(
                        context + ": number of dimensions is " + nDims + ", must be between 1 and " + MAX_DIMS);
            }
            long[] dims = new long[(int) nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                dims[d] = readU64("dimension " + d);
                if (dims[d] < 1) {
                    throw new GgufFormatException(context + ": dimension " + d + " is " + Long.toUnsignedString(dims[d])
                            + ", must be between 1 and 2^63-1");
                }
                try {
                    elements = Math.multiplyExact(elements, dims[d]);
                } catch (ArithmeticException e) {
                    throw new GgufFormatException(context + ": element count of dims "
                            + Arrays.toString(Arrays.copyOf(dims, d + 1)) + " overflows 2^63-1");
                }
            }
            long rawType = readU32("type");
            GgufType type = GgufType.fromId(rawType, name);
            long size = type.byteSize(name, dims);
            long rel = readU64("data offset");
            if (rel < 0) {
                throw new GgufFormatException(
                        context + ": data offset " + Long.toUnsignedString(rel) + " is larger than 2^63-1");
            }
            if (rel % alignment != 0) {
                throw new GgufFormatException(
                        context + ": data offset " + rel + " is not a multiple of the alignment " + alignment);
            }
            tensorNames[i] = name;
            dimsOf[i] = dims;
            types[i] = type;
            relOffsets[i] = rel;
            byteSizes[i] = size;
            elementCounts[i] = elements;
        }
        context = "GGUF header";
        long headerSize = pos;
        long dataOffset = (headerSize + alignment - 1) / alignment * alignment;

        for (int i = 0; i < tensorCount; i++) {
            String name = tensorNames[i];
            long abs;
            long end;
            try {
                abs = Math.addExact(dataOffset, relOffsets[i]);
                end = Math.addExact(abs, byteSizes[i]);
            } catch (ArithmeticException e) {
                throw new GgufFormatException("tensor '" + name + "': data offset " + relOffsets[i] + " + size "
                        + byteSizes[i] + " overflows 2^63-1");
            }
            if (fileSize >= 0 && end > fileSize) {
                throw new GgufFormatException(String.format(
                        "tensor '%s': data ends at byte %,d but the file has %,d bytes", name, end, fileSize));
            }
            tensors.add(
                    new GgufTensorInfo(name, dimsOf[i], types[i], relOffsets[i], abs, byteSizes[i], elementCounts[i]));
        }
        checkNoOverlap(tensors);
        return new GgufFile((int) version, metadata, tensors, alignment, dataOffset, fileSize, headerSize);
    }

    private static void checkNoOverlap(List<GgufTensorInfo> tensors) {
        List<GgufTensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(GgufTensorInfo::absoluteOffset));
        for (int i = 1; i < sorted.size(); i++) {
            GgufTensorInfo a = sorted.get(i - 1);
            GgufTensorInfo b = sorted.get(i);
            if (a.absoluteEnd() > b.absoluteOffset()) {
                throw new GgufFormatException(String.format(
                        "tensors '%s' (bytes %,d to %,d) and '%s' (bytes %,d to %,d) overlap",
                        a.name(), a.absoluteOffset(), a.absoluteEnd(), b.name(), b.absoluteOffset(), b.absoluteEnd()));
            }
        }
    }

    private long alignment(GgufValue v) {
        if (v == null) {
            return GgufFile.DEFAULT_ALIGNMENT;
        }
        if (!v.type().isInteger()) {
            throw new GgufFormatException("metadata key 'general.alignment' has type "
                    + v.type().name().toLowerCase() + ", expected an unsigned integer (uint32)");
        }
        long a = (Long) v.value();
        if (a < 1 || a > MAX_ALIGNMENT || Long.bitCount(a) != 1) {
            throw new GgufFormatException(
                    "metadata key 'general.alignment' is " + v + ", must be a power of two between 1 and 2^31");
        }
        return a;
    }

    private GgufValue readValue(GgufValueType type, int depth) {
        return switch (type) {
            case UINT8 ->
                new GgufValue(type, (long) (readBytes(1, "uint8 value").get(pos - 1) & 0xFF));
            case INT8 -> new GgufValue(type, (long) readBytes(1, "int8 value").get(pos - 1));
            case UINT16 ->
                new GgufValue(type, (long) (readBytes(2, "uint16 value").getShort(pos - 2) & 0xFFFF));
            case INT16 -> new GgufValue(type, (long) readBytes(2, "int16 value").getShort(pos - 2));
            case UINT32 -> new GgufValue(type, readU32("uint32 value"));
            case INT32 -> new GgufValue(type, (long) readBytes(4, "int32 value").getInt(pos - 4));
            case UINT64, INT64 -> new GgufValue(type, readU64(type.name().toLowerCase() + " value"));
            case FLOAT32 -> new GgufValue(type, readBytes(4, "float32 value").getFloat(pos - 4));
            case FLOAT64 -> new GgufValue(type, readBytes(8, "float64 value").getDouble(pos - 8));
            case BOOL -> new GgufValue(type, readBool());
            case STRING -> new GgufValue(type, readString("string value"));
            case ARRAY -> new GgufValue(type, readArray(depth + 1));
        };
    }

    private boolean readBool() {
        byte b = readBytes(1, "bool value").get(pos - 1);
        if (b != 0 && b != 1) {
            throw new GgufFormatException(
                    context + ": bool value at byte " + (pos - 1) + " is " + (b & 0xFF) + ", must be 0 or 1");
        }
        return b == 1;
    }

    private GgufArray readArray(int depth) {
        if (depth > MAX_ARRAY_DEPTH) {
            throw new GgufFormatException(context + ": arrays nested " + depth + " deep at byte " + pos
                    + ", the limit is " + MAX_ARRAY_DEPTH);
        }
        GgufValueType elementType = readValueType("array element type");
        int countAt = pos;
        long count = readU64("array count");
        int min = elementType.minEncodedSize();
        if (count < 0 || count > (Long.MAX_VALUE - pos) / min) {
            throw new GgufFormatException(context + ": array count " + Long.toUnsignedString(count) + " at byte "
                    + countAt + " of " + elementType + " cannot fit in any file");
        }
        // Every element takes at least `min` bytes: this bounds the allocation below by the bytes really there.
        require(count * min, "array of " + count + " " + elementType + " (at least " + count * min + " bytes)");
        int n = (int) count;
        return switch (elementType) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> {
                long[] out = new long[n];
                for (int i = 0; i < n; i++) {
                    out[i] = switch (elementType) {
                        case UINT8 -> buf.get(pos) & 0xFF;
                        case INT8 -> buf.get(pos);
                        case UINT16 -> buf.getShort(pos) & 0xFFFF;
                        case INT16 -> buf.getShort(pos);
                        case UINT32 -> Integer.toUnsignedLong(buf.getInt(pos));
                        case INT32 -> buf.getInt(pos);
                        default -> buf.getLong(pos);
                    };
                    pos += elementType.fixedSize();
                }
                yield GgufArray.trusted(elementType, out, n);
            }
            case FLOAT32 -> {
                float[] out = new float[n];
                for (int i = 0; i < n; i++) {
                    out[i] = buf.getFloat(pos);
                    pos += 4;
                }
                yield GgufArray.trusted(elementType, out, n);
            }
            case FLOAT64 -> {
                double[] out = new double[n];
                for (int i = 0; i < n; i++) {
                    out[i] = buf.getDouble(pos);
                    pos += 8;
                }
                yield GgufArray.trusted(elementType, out, n);
            }
            case BOOL -> {
                boolean[] out = new boolean[n];
                for (int i = 0; i < n; i++) {
                    out[i] = readBool();
                }
                yield GgufArray.trusted(elementType, out, n);
            }
            case STRING -> {
                String[] out = new String[n];
                for (int i = 0; i < n; i++) {
                    out[i] = readString("array element", i);
                }
                yield GgufArray.trusted(elementType, out, n);
            }
            case ARRAY -> {
                GgufArray[] out = new GgufArray[n];
                for (int i = 0; i < n; i++) {
                    out[i] = readArray(depth + 1);
                }
                yield GgufArray.trusted(elementType, out, n);
            }
        };
    }

    private GgufValueType readValueType(String field) {
        long id = readU32(field);
        GgufValueType t = GgufValueType.fromIdOrNull((int) Math.min(id, Integer.MAX_VALUE));
        if (t == null) {
            throw new GgufFormatException(
                    context + ": " + field + " " + id + " at byte " + (pos - 4) + " is unknown (known: 0 to 12)");
        }
        return t;
    }

    private long readCount(String field, int minBytesEach) {
        int at = pos;
        long count = readU64(field);
        long remaining = (fileSize >= 0 ? Math.min(fileSize, cap) : cap) - pos;
        if (count < 0 || count > remaining / minBytesEach) {
            throw new GgufFormatException(String.format(
                    "%s: %s %s at byte %d needs at least %d bytes each, but only %,d bytes remain %s",
                    context,
                    field,
                    Long.toUnsignedString(count),
                    at,
                    minBytesEach,
                    remaining,
                    fileSize >= 0 && fileSize <= cap ? "in the file" : "below the header cap"));
        }
        return count;
    }

    private String readString(String field) {
        return readString(field, -1);
    }

    /** Reads a string; {@code index} (when >= 0) is appended to the field's name in errors only. */
    private String readString(String field, long index) {
        int at = pos;
        if (len - pos < 8 || buf.getLong(pos) < 0 || buf.getLong(pos) > len - pos - 8) {
            // The slow path names the field precisely; the fast path below builds no strings.
            field = index >= 0 ? field + " " + index : field;
            long n = readU64(field + " length");
            if (n < 0) {
                throw new GgufFormatException(context + ": " + field + " length " + Long.toUnsignedString(n)
                        + " at byte " + at + " is larger than any file");
            }
            require(n, field + " of " + n + " bytes");
            pos = at;
        }
        long n = buf.getLong(pos);
        pos += 8;
        String s = new String(buf.array(), pos, (int) n, StandardCharsets.UTF_8);
        pos += (int) n;
        return s;
    }

    private long readU32(String field) {
        require(4, field);
        long v = Integer.toUnsignedLong(buf.getInt(pos));
        pos += 4;
        return v;
    }

    private long readU64(String field) {
        require(8, field);
        long v = buf.getLong(pos);
        pos += 8;
        return v;
    }

    private ByteBuffer readBytes(int n, String field) {
        require(n, field);
        pos += n;
        return buf;
    }

    /** Makes sure bytes [pos, pos + n) are in the window, or says why they cannot be. */
    private void require(long n, String field) {
        long end = n > Long.MAX_VALUE - pos ? Long.MAX_VALUE : pos + n;
        if (end <= len) {
            return;
        }
        if (fileSize >= 0 && end > fileSize) {
            throw new GgufFormatException(String.format(
                    "%s: %s at byte %,d runs past the end of the file (%,d bytes): the file is truncated or corrupt",
                    context, field, pos, fileSize));
        }
        if (end > cap) {
            throw new GgufFormatException(String.format(
                    "%s: %s at byte %,d would end at byte %,d, past the header cap of %,d bytes;"
                            + " raise the reader's maxHeaderBytes if the file is genuine",
                    context, field, pos, end, cap));
        }
        throw new NeedMore(end);
    }

    private String hex(int from, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = from; i < from + n && i < len; i++) {
            sb.append(sb.isEmpty() ? "" : " ").append(String.format("%02x", buf.get(i) & 0xFF));
        }
        return sb.toString();
    }

    private String ascii(int from, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = from; i < from + n && i < len; i++) {
            int c = buf.get(i) & 0xFF;
            sb.append(c >= 0x20 && c < 0x7F ? (char) c : '.');
        }
        return sb.toString();
    }
}
