package io.stowage.placement.gguf;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes valid little-endian GGUF files (v3 by default, v2 on request): metadata of every type, then tensor infos,
 * then each tensor's raw bytes at an aligned offset. Tests and tools use it to make small synthetic models.
 *
 * <p>The alignment is {@code general.alignment} when that key is set (see {@link #alignment(int)}), else 32.
 */
public final class GgufWriter {

    private record Tensor(String name, GgufType type, long[] dims, byte[] data) {}

    private int version = 3;
    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();

    /** GGUF version to write: 2 or 3 (they differ only in the number; both are little-endian here). */
    public GgufWriter version(int version) {
        if (version != 2 && version != 3) {
            throw new IllegalArgumentException("GGUF writer: version is " + version + ", must be 2 or 3");
        }
        this.version = version;
        return this;
    }

    /** Adds a metadata entry; keys are written in the order they were added. */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        if (metadata.putIfAbsent(key, value) != null) {
            throw new IllegalArgumentException("GGUF writer: metadata key '" + key + "' was already added");
        }
        return this;
    }

    /** Adds every entry of {@code entries} in its iteration order. */
    public GgufWriter putAll(Map<String, GgufValue> entries) {
        entries.forEach(this::put);
        return this;
    }

    public GgufWriter putString(String key, String value) {
        return put(key, GgufValue.string(value));
    }

    public GgufWriter putUInt32(String key, long value) {
        return put(key, GgufValue.uint32(value));
    }

    public GgufWriter putInt32(String key, int value) {
        return put(key, GgufValue.int32(value));
    }

    public GgufWriter putUInt64(String key, long value) {
        return put(key, GgufValue.uint64(value));
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValue.float32(value));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValue.bool(value));
    }

    public GgufWriter putArray(String key, GgufArray value) {
        return put(key, GgufValue.array(value));
    }

    /** Sets {@code general.alignment} (a uint32 power of two), which places every tensor at a multiple of it. */
    public GgufWriter alignment(int alignment) {
        if (alignment < 1 || Integer.bitCount(alignment) != 1) {
            throw new IllegalArgumentException(
                    "GGUF writer: alignment is " + alignment + ", must be a power of two >= 1");
        }
        return put("general.alignment", GgufValue.uint32(alignment));
    }

    /** Adds a tensor with its data as stored (already quantized); the length must match the type and dims exactly. */
    public GgufWriter addTensor(String name, GgufType type, long[] dims, byte[] data) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        if (dims.length < 1 || dims.length > GgufParser.MAX_DIMS) {
            throw new IllegalArgumentException("GGUF writer: tensor '" + name + "' has " + dims.length
                    + " dimensions, must be 1 to " + GgufParser.MAX_DIMS);
        }
        for (long d : dims) {
            if (d < 1) {
                throw new IllegalArgumentException(
                        "GGUF writer: tensor '" + name + "' has dimension " + d + ", must be >= 1");
            }
        }
        long size;
        try {
            size = type.byteSize(name, dims);
        } catch (GgufFormatException e) {
            throw new IllegalArgumentException("GGUF writer: " + e.getMessage(), e);
        }
        if (data.length != size) {
            throw new IllegalArgumentException("GGUF writer: tensor '" + name + "' as " + type + " "
                    + java.util.Arrays.toString(dims) + " needs " + size + " bytes, got " + data.length);
        }
        for (Tensor t : tensors) {
            if (t.name.equals(name)) {
                throw new IllegalArgumentException("GGUF writer: tensor '" + name + "' was already added");
            }
        }
        tensors.add(new Tensor(name, type, dims.clone(), data));
        return this;
    }

    /** Quantizes {@code values} (row-major, {@code dims[0]} per row) to {@code type} and adds the tensor. */
    public GgufWriter addTensor(String name, GgufType type, long[] dims, float[] values) {
        return addTensor(name, type, dims, GgufQuantizer.quantize(type, values));
    }

    /** The whole file in memory. */
    public byte[] toBytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** Writes the file, replacing what is there. */
    public void write(Path path) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 16)) {
            writeTo(out);
        }
    }

    private void writeTo(OutputStream out) throws IOException {
        long alignment = alignmentOf(metadata.get("general.alignment"));
        LeBytes h = new LeBytes();
        h.bytes(new byte[] {'G', 'G', 'U', 'F'});
        h.u32(version);
        h.u64(tensors.size());
        h.u64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            h.string(e.getKey());
            h.u32(e.getValue().type().id());
            writeValue(h, e.getValue());
        }
        long offset = 0;
        long[] offsets = new long[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            h.string(t.name);
            h.u32(t.dims.length);
            for (long d : t.dims) {
                h.u64(d);
            }
            h.u32(t.type.id());
            offsets[i] = offset;
            h.u64(offset);
            offset = align(offset + t.data.length, alignment);
        }
        long headerSize = h.size();
        out.write(h.array(), 0, h.size());
        pad(out, align(headerSize, alignment) - headerSize);
        long written = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            pad(out, offsets[i] - written);
            out.write(t.data);
            written = offsets[i] + t.data.length;
        }
        pad(out, offset - written);
    }

    private static long alignmentOf(GgufValue v) {
        if (v == null) {
            return GgufFile.DEFAULT_ALIGNMENT;
        }
        if (!v.type().isInteger() || (Long) v.value() < 1 || Long.bitCount((Long) v.value()) != 1) {
            throw new IllegalArgumentException(
                    "GGUF writer: general.alignment is " + v + ", must be an integer power of two");
        }
        return (Long) v.value();
    }

    private static long align(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    private static void pad(OutputStream out, long n) throws IOException {
        for (long i = 0; i < n; i++) {
            out.write(0);
        }
    }

    private static void writeValue(LeBytes h, GgufValue v) {
        Object o = v.value();
        switch (v.type()) {
            case UINT8, INT8 -> h.u8((int) (long) (Long) o);
            case UINT16, INT16 -> h.u16((int) (long) (Long) o);
            case UINT32, INT32 -> h.u32((Long) o);
            case UINT64, INT64 -> h.u64((Long) o);
            case FLOAT32 -> h.u32(Float.floatToRawIntBits((Float) o));
            case FLOAT64 -> h.u64(Double.doubleToRawLongBits((Double) o));
            case BOOL -> h.u8((Boolean) o ? 1 : 0);
            case STRING -> h.string((String) o);
            case ARRAY -> writeArray(h, (GgufArray) o);
        }
    }

    private static void writeArray(LeBytes h, GgufArray a) {
        h.u32(a.elementType().id());
        h.u64(a.size());
        switch (a.elementType()) {
            case UINT8, INT8 -> {
                for (long x : a.longs()) h.u8((int) x);
            }
            case UINT16, INT16 -> {
                for (long x : a.longs()) h.u16((int) x);
            }
            case UINT32, INT32 -> {
                for (long x : a.longs()) h.u32(x);
            }
            case UINT64, INT64 -> {
                for (long x : a.longs()) h.u64(x);
            }
            case FLOAT32 -> {
                for (float x : a.floats()) h.u32(Float.floatToRawIntBits(x));
            }
            case FLOAT64 -> {
                for (double x : a.doubles()) h.u64(Double.doubleToRawLongBits(x));
            }
            case BOOL -> {
                for (boolean x : a.booleans()) h.u8(x ? 1 : 0);
            }
            case STRING -> {
                for (String x : a.strings()) h.string(x);
            }
            case ARRAY -> {
                for (GgufArray x : a.arrays()) writeArray(h, x);
            }
        }
    }

    /** A growable little-endian byte buffer for the header. */
    private static final class LeBytes {
        private byte[] buf = new byte[4096];
        private int size;

        void u8(int v) {
            ensure(1);
            buf[size++] = (byte) v;
        }

        void u16(int v) {
            u8(v);
            u8(v >>> 8);
        }

        void u32(long v) {
            ensure(4);
            for (int i = 0; i < 4; i++) {
                buf[size++] = (byte) (v >>> (8 * i));
            }
        }

        void u64(long v) {
            ensure(8);
            for (int i = 0; i < 8; i++) {
                buf[size++] = (byte) (v >>> (8 * i));
            }
        }

        void bytes(byte[] b) {
            ensure(b.length);
            System.arraycopy(b, 0, buf, size, b.length);
            size += b.length;
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        private void ensure(int n) {
            if (size + n > buf.length) {
                buf = java.util.Arrays.copyOf(buf, Math.max(buf.length * 2, size + n));
            }
        }

        byte[] array() {
            return buf;
        }

        int size() {
            return size;
        }
    }
}
