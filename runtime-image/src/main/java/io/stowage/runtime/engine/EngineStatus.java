package io.stowage.runtime.engine;

/** The status codes of the native core's C API ({@code stw_status} in stowage.h), by number. */
public enum EngineStatus {
    OK(0),
    INVALID_ARGUMENT(1),
    BAD_MODEL(2),
    UNSUPPORTED(3),
    BUDGET_EXCEEDED(4),
    OUT_OF_MEMORY(5),
    IO(6),
    CANCELLED(7),
    INTERNAL(8);

    private final int code;

    EngineStatus(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The status for a code; an unknown code (a newer core) reads as {@link #INTERNAL}. */
    public static EngineStatus fromCode(int code) {
        for (EngineStatus s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return INTERNAL;
    }
}
