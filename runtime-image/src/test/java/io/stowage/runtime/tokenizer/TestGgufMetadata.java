package io.stowage.runtime.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal GGUF key/value reader for the tokenizer tests, used until the placement module's
 * reader is merged; it trusts its (checked-in) input.
 */
final class TestGgufMetadata {
    private TestGgufMetadata() {}

    static Map<String, Object> read(String resource) {
        try (InputStream in = TestGgufMetadata.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("missing test resource " + resource);
            }
            ByteBuffer b = ByteBuffer.wrap(in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
            if (b.getInt() != 0x46554747) {
                throw new IllegalArgumentException(resource + " is not a GGUF file");
            }
            b.getInt(); // version
            b.getLong(); // tensor count
            long kvCount = b.getLong();
            Map<String, Object> out = new LinkedHashMap<>();
            for (long i = 0; i < kvCount; i++) {
                String key = string(b);
                out.put(key, value(b, b.getInt()));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String string(ByteBuffer b) {
        byte[] bytes = new byte[Math.toIntExact(b.getLong())];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static Object value(ByteBuffer b, int type) {
        return switch (type) {
            case 0 -> (long) Byte.toUnsignedInt(b.get());
            case 1 -> (long) b.get();
            case 2 -> (long) Short.toUnsignedInt(b.getShort());
            case 3 -> (long) b.getShort();
            case 4 -> Integer.toUnsignedLong(b.getInt());
            case 5 -> (long) b.getInt();
            case 6 -> b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> string(b);
            case 9 -> array(b);
            case 10, 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new IllegalArgumentException("unknown GGUF value type " + type);
        };
    }

    private static Object array(ByteBuffer b) {
        int type = b.getInt();
        int n = Math.toIntExact(b.getLong());
        switch (type) {
            case 6 -> {
                float[] f = new float[n];
                for (int i = 0; i < n; i++) {
                    f[i] = b.getFloat();
                }
                return f;
            }
            case 5 -> {
                int[] v = new int[n];
                for (int i = 0; i < n; i++) {
                    v[i] = b.getInt();
                }
                return v;
            }
            default -> {
                List<Object> list = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    list.add(value(b, type));
                }
                return list;
            }
        }
    }
}
