package io.stowage.runtime.tokenizer;

/** The kind of a vocabulary entry, numbered as GGUF's {@code tokenizer.ggml.token_type} array numbers them. */
public enum TokenType {
    UNDEFINED,
    NORMAL,
    UNKNOWN,
    CONTROL,
    USER_DEFINED,
    UNUSED,
    BYTE;

    private static final TokenType[] BY_ID = values();

    /** The type with GGUF number {@code id}; {@code index} names the token in the error. */
    static TokenType fromGguf(int id, int index) {
        if (id < 0 || id >= BY_ID.length) {
            throw new IllegalArgumentException("tokenizer.ggml.token_type[" + index + "] = " + id
                    + " is not a token type (expected 0..6: undefined, normal, unknown, control,"
                    + " user-defined, unused, byte)");
        }
        return BY_ID[id];
    }
}
