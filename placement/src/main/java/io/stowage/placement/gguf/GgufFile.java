package io.stowage.placement.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * A parsed GGUF header: version, metadata in file order, tensor infos in file order, alignment and where the tensor
 * data starts. The typed getters throw {@link GgufFormatException} naming the key when it is missing or mis-typed.
 *
 * @param fileSize bytes of the whole file, or -1 when the source did not say (an HTTP server without a length)
 * @param headerSize bytes of the header proper (magic to the end of the last tensor info, before padding)
 */
public record GgufFile(
        int version,
        Map<String, GgufValue> metadata,
        List<GgufTensorInfo> tensors,
        long alignment,
        long dataOffset,
        long fileSize,
        long headerSize) {

    /** The alignment of the data section and of each tensor when {@code general.alignment} is absent. */
    public static final int DEFAULT_ALIGNMENT = 32;

    public GgufFile {
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        tensors = List.copyOf(tensors);
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    /** The value under {@code key}, or a {@link GgufFormatException} saying it is missing. */
    public GgufValue get(String key) {
        GgufValue v = metadata.get(key);
        if (v == null) {
            throw new GgufFormatException("metadata key '" + key + "' is missing" + architectureHint());
        }
        return v;
    }

    public Optional<GgufValue> find(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    public String getString(String key) {
        return string(key, get(key));
    }

    public Optional<String> findString(String key) {
        GgufValue v = metadata.get(key);
        return v == null ? Optional.empty() : Optional.of(string(key, v));
    }

    /** An integer of any GGUF integer type that fits a signed 64-bit long. */
    public long getLong(String key) {
        return integer(key, get(key));
    }

    public OptionalLong findLong(String key) {
        GgufValue v = metadata.get(key);
        return v == null ? OptionalLong.empty() : OptionalLong.of(integer(key, v));
    }

    /** An integer of any GGUF integer type that fits a Java int. */
    public int getInt(String key) {
        return toInt(key, getLong(key));
    }

    /** A float32 or float64. */
    public double getDouble(String key) {
        return floating(key, get(key));
    }

    public OptionalDouble findDouble(String key) {
        GgufValue v = metadata.get(key);
        return v == null ? OptionalDouble.empty() : OptionalDouble.of(floating(key, v));
    }

    public boolean getBoolean(String key) {
        GgufValue v = get(key);
        if (v.type() != GgufValueType.BOOL) {
            throw misTyped(key, v, "bool");
        }
        return (Boolean) v.value();
    }

    public GgufArray getArray(String key) {
        return array(key, get(key));
    }

    public Optional<GgufArray> findArray(String key) {
        GgufValue v = metadata.get(key);
        return v == null ? Optional.empty() : Optional.of(array(key, v));
    }

    /** The tensor with this name. */
    public Optional<GgufTensorInfo> tensor(String name) {
        for (GgufTensorInfo t : tensors) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    static int toInt(String key, long v) {
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new GgufFormatException(
                    "metadata key '" + key + "' is " + v + ", outside the int range [-2^31, 2^31-1]");
        }
        return (int) v;
    }

    private static String string(String key, GgufValue v) {
        if (v.type() != GgufValueType.STRING) {
            throw misTyped(key, v, "string");
        }
        return (String) v.value();
    }

    static long integer(String key, GgufValue v) {
        if (!v.type().isInteger()) {
            throw misTyped(key, v, "integer");
        }
        if (!v.isSignedLong()) {
            throw new GgufFormatException("metadata key '" + key + "' is " + v + ", larger than 2^63-1");
        }
        return (Long) v.value();
    }

    private static double floating(String key, GgufValue v) {
        return switch (v.type()) {
            case FLOAT32 -> (Float) v.value();
            case FLOAT64 -> (Double) v.value();
            default -> throw misTyped(key, v, "float32 or float64");
        };
    }

    private static GgufArray array(String key, GgufValue v) {
        if (v.type() != GgufValueType.ARRAY) {
            throw misTyped(key, v, "array");
        }
        return (GgufArray) v.value();
    }

    private static GgufFormatException misTyped(String key, GgufValue v, String expected) {
        return new GgufFormatException(
                "metadata key '" + key + "' has type " + v.type().name().toLowerCase() + ", expected " + expected);
    }

    private String architectureHint() {
        GgufValue arch = metadata.get("general.architecture");
        return arch != null && arch.type() == GgufValueType.STRING
                ? " (architecture '" + arch.value() + "', " + metadata.size() + " keys)"
                : " (" + metadata.size() + " keys)";
    }
}
