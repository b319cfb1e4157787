package io.stowage.placement.gguf;

import java.util.Arrays;
import java.util.Objects;

/**
 * A GGUF metadata array: its element type and the elements in one primitive Java array.
 *
 * <p>Storage by element type: every integer type in a {@code long[]} (values as in {@link GgufValue}), {@code float32}
 * a {@code float[]}, {@code float64} a {@code double[]}, {@code bool} a {@code boolean[]}, {@code string} a
 * {@code String[]}, nested {@code array} a {@code GgufArray[]}. Vocabularies hold 100k+ strings, so elements are not
 * boxed one by one. The accessors return the backing arrays: do not modify them.
 */
public final class GgufArray {

    private final GgufValueType elementType;
    private final Object data;
    private final int size;

    private GgufArray(GgufValueType elementType, Object data, int size) {
        this.elementType = elementType;
        this.data = data;
        this.size = size;
    }

    /** An integer array of the given element type (UINT8 ... INT64); each value is range-checked. */
    public static GgufArray ofIntegers(GgufValueType elementType, long... values) {
        if (!elementType.isInteger()) {
            throw new IllegalArgumentException("GGUF integer array needs an integer element type, not " + elementType);
        }
        for (long v : values) {
            new GgufValue(elementType, v); // range check
        }
        return new GgufArray(elementType, values.clone(), values.length);
    }

    public static GgufArray ofFloat32(float... values) {
        return new GgufArray(GgufValueType.FLOAT32, values.clone(), values.length);
    }

    public static GgufArray ofFloat64(double... values) {
        return new GgufArray(GgufValueType.FLOAT64, values.clone(), values.length);
    }

    public static GgufArray ofBool(boolean... values) {
        return new GgufArray(GgufValueType.BOOL, values.clone(), values.length);
    }

    public static GgufArray ofStrings(String... values) {
        for (String s : values) {
            Objects.requireNonNull(s, "GGUF string array element");
        }
        return new GgufArray(GgufValueType.STRING, values.clone(), values.length);
    }

    public static GgufArray ofArrays(GgufArray... values) {
        for (GgufArray a : values) {
            Objects.requireNonNull(a, "GGUF nested array element");
        }
        return new GgufArray(GgufValueType.ARRAY, values.clone(), values.length);
    }

    /** Wraps arrays the reader already validated, without copying. */
    static GgufArray trusted(GgufValueType elementType, Object data, int size) {
        return new GgufArray(elementType, data, size);
    }

    public GgufValueType elementType() {
        return elementType;
    }

    public int size() {
        return size;
    }

    public long[] longs() {
        return as(long[].class, "an integer");
    }

    public float[] floats() {
        return as(float[].class, "a float32");
    }

    public double[] doubles() {
        return as(double[].class, "a float64");
    }

    public boolean[] booleans() {
        return as(boolean[].class, "a bool");
    }

    public String[] strings() {
        return as(String[].class, "a string");
    }

    public GgufArray[] arrays() {
        return as(GgufArray[].class, "a nested");
    }

    /** The elements as a plain Java array (see the class comment for its type). */
    public Object data() {
        return data;
    }

    private <T> T as(Class<T> type, String what) {
        if (!type.isInstance(data)) {
            throw new GgufFormatException(
                    "GGUF array of " + elementType + " (" + size + " elements) is not " + what + " array");
        }
        return type.cast(data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufArray other
                && elementType == other.elementType
                && Arrays.deepEquals(new Object[] {data}, new Object[] {other.data});
    }

    @Override
    public int hashCode() {
        return 31 * elementType.hashCode() + Arrays.deepHashCode(new Object[] {data});
    }

    @Override
    public String toString() {
        String body = Arrays.deepToString(new Object[] {data});
        body = body.substring(1, body.length() - 1);
        if (body.length() > 200) {
            body = body.substring(0, 200) + "...";
        }
        return elementType + "[" + size + "] " + body;
    }
}
