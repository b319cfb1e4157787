package io.stowage.runtime.engine;

import io.stowage.placement.memory.KvCacheType;
import java.util.Locale;

/** The element type of the KV cache, with its ggml type id (the id the C API takes). */
public enum KvType {
    F32(0),
    F16(1),
    Q8_0(8);

    private final int ggmlId;

    KvType(int ggmlId) {
        this.ggmlId = ggmlId;
    }

    public int ggmlId() {
        return ggmlId;
    }

    /** Parses "f32", "f16", "q8_0" (any case); names the accepted values otherwise. */
    public static KvType parse(String text) {
        for (KvType t : values()) {
            if (t.name().equalsIgnoreCase(text.trim())) {
                return t;
            }
        }
        throw new IllegalArgumentException("KV cache type '" + text + "' is not one of f32, f16, q8_0");
    }

    /** The same type in the placement memory model. */
    public KvCacheType placementType() {
        return switch (this) {
            case F32 -> KvCacheType.F32;
            case F16 -> KvCacheType.F16;
            case Q8_0 -> KvCacheType.Q8_0;
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
