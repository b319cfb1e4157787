package io.stowage.placement.gguf;

/** The type tag of a GGUF metadata value ({@code enum gguf_type}), with its fixed encoded size where it has one. */
public enum GgufValueType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    STRING(8, -1),
    ARRAY(9, -1),
    UINT64(10, 8),
    INT64(11, 8),
    FLOAT64(12, 8);

    private static final GgufValueType[] BY_ID = values();

    private final int id;
    private final int fixedSize;

    GgufValueType(int id, int fixedSize) {
        this.id = id;
        this.fixedSize = fixedSize;
    }

    public int id() {
        return id;
    }

    /** Encoded bytes of one value, or -1 for strings and arrays. */
    public int fixedSize() {
        return fixedSize;
    }

    /** The least bytes one value of this type can take in a file (used to bound counts before allocating). */
    int minEncodedSize() {
        return switch (this) {
            case STRING -> 8; // uint64 length
            case ARRAY -> 12; // uint32 element type + uint64 count
            default -> fixedSize;
        };
    }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    /** The type with this id, or null. */
    static GgufValueType fromIdOrNull(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
