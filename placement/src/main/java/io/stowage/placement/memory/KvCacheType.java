package io.stowage.placement.memory;

import java.util.Locale;

/** The element type of the KV cache, as the runtime stores it (the memory contract's row sizes). */
public enum KvCacheType {
    F16("f16"),
    Q8_0("q8_0"),
    F32("f32");

    /** q8_0 stores blocks of 32 values as one f16 scale plus 32 int8: 34 bytes. */
    public static final int Q8_0_BLOCK_VALUES = 32;

    public static final int Q8_0_BLOCK_BYTES = 34;

    private final String label;

    KvCacheType(String label) {
        this.label = label;
    }

    /** The manifest spelling: "f16", "q8_0" or "f32". */
    public String label() {
        return label;
    }

    /** Parses the manifest spelling (case-insensitive). */
    public static KvCacheType parse(String text) {
        if (text != null) {
            String t = text.trim().toLowerCase(Locale.ROOT);
            for (KvCacheType type : values()) {
                if (type.label.equals(t)) {
                    return type;
                }
            }
        }
        throw new IllegalArgumentException("unknown KV cache type \"" + text + "\"; expected one of f16, q8_0, f32");
    }

    /**
     * Bytes of one KV row of {@code width} values: f32 4w, f16 2w, q8_0 (w/32)·34.
     *
     * @throws IllegalArgumentException when q8_0 is asked for a width that is not a multiple of 32
     */
    public long rowBytes(long width) {
        if (width <= 0) {
            throw new IllegalArgumentException("KV row width must be > 0, got " + width);
        }
        return switch (this) {
            case F32 -> 4 * width;
            case F16 -> 2 * width;
            case Q8_0 -> {
                if (width % Q8_0_BLOCK_VALUES != 0) {
                    throw new IllegalArgumentException("KV cache type q8_0 needs a row width that is a multiple of "
                            + Q8_0_BLOCK_VALUES + ", got " + width + "; use f16 for this model");
                }
                yield width / Q8_0_BLOCK_VALUES * Q8_0_BLOCK_BYTES;
            }
        };
    }

    @Override
    public String toString() {
        return label;
    }
}
