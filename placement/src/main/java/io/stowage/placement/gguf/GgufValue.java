package io.stowage.placement.gguf;

import java.util.Objects;

/**
 * One GGUF metadata value with its type tag.
 *
 * <p>Shape of {@code value} by type: every integer type is a {@link Long} (unsigned types hold their unsigned value;
 * {@code uint64} above 2^63-1 holds the raw 64 bits, so it reads as negative), {@code float32} a {@link Float},
 * {@code float64} a {@link Double}, {@code bool} a {@link Boolean}, {@code string} a {@link String}, {@code array} a
 * {@link GgufArray}. Keeping the tag lets a written file read back identical.
 */
public record GgufValue(GgufValueType type, Object value) {

    public GgufValue {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        switch (type) {
            case UINT8 -> checkRange(type, value, 0, 0xFF);
            case INT8 -> checkRange(type, value, Byte.MIN_VALUE, Byte.MAX_VALUE);
            case UINT16 -> checkRange(type, value, 0, 0xFFFF);
            case INT16 -> checkRange(type, value, Short.MIN_VALUE, Short.MAX_VALUE);
            case UINT32 -> checkRange(type, value, 0, 0xFFFF_FFFFL);
            case INT32 -> checkRange(type, value, Integer.MIN_VALUE, Integer.MAX_VALUE);
            case UINT64, INT64 -> checkRange(type, value, Long.MIN_VALUE, Long.MAX_VALUE);
            case FLOAT32 -> requireClass(type, value, Float.class);
            case FLOAT64 -> requireClass(type, value, Double.class);
            case BOOL -> requireClass(type, value, Boolean.class);
            case STRING -> requireClass(type, value, String.class);
            case ARRAY -> requireClass(type, value, GgufArray.class);
        }
    }

    private static void checkRange(GgufValueType type, Object value, long min, long max) {
        requireClass(type, value, Long.class);
        long v = (Long) value;
        if (v < min || v > max) {
            throw new IllegalArgumentException(
                    "GGUF " + type + " value " + v + " is outside [" + min + ", " + max + "]");
        }
    }

    private static void requireClass(GgufValueType type, Object value, Class<?> expected) {
        if (!expected.isInstance(value)) {
            throw new IllegalArgumentException("GGUF " + type + " value must be a " + expected.getSimpleName()
                    + ", not a " + value.getClass().getSimpleName());
        }
    }

    public static GgufValue uint8(int v) {
        return new GgufValue(GgufValueType.UINT8, (long) v);
    }

    public static GgufValue int8(int v) {
        return new GgufValue(GgufValueType.INT8, (long) v);
    }

    public static GgufValue uint16(int v) {
        return new GgufValue(GgufValueType.UINT16, (long) v);
    }

    public static GgufValue int16(int v) {
        return new GgufValue(GgufValueType.INT16, (long) v);
    }

    public static GgufValue uint32(long v) {
        return new GgufValue(GgufValueType.UINT32, v);
    }

    public static GgufValue int32(int v) {
        return new GgufValue(GgufValueType.INT32, (long) v);
    }

    /** A {@code uint64}; values above 2^63-1 are passed as their raw 64 bits. */
    public static GgufValue uint64(long v) {
        return new GgufValue(GgufValueType.UINT64, v);
    }

    public static GgufValue int64(long v) {
        return new GgufValue(GgufValueType.INT64, v);
    }

    public static GgufValue float32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, v);
    }

    public static GgufValue float64(double v) {
        return new GgufValue(GgufValueType.FLOAT64, v);
    }

    public static GgufValue bool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, v);
    }

    public static GgufValue string(String v) {
        return new GgufValue(GgufValueType.STRING, v);
    }

    public static GgufValue array(GgufArray v) {
        return new GgufValue(GgufValueType.ARRAY, v);
    }

    /** Whether this is an integer that fits a signed 64-bit long ({@code uint64} above 2^63-1 does not). */
    boolean isSignedLong() {
        return type.isInteger() && (type != GgufValueType.UINT64 || (Long) value >= 0);
    }

    @Override
    public String toString() {
        return switch (type) {
            case UINT64 -> Long.toUnsignedString((Long) value);
            case STRING -> '"' + (String) value + '"';
            default -> String.valueOf(value);
        };
    }
}
