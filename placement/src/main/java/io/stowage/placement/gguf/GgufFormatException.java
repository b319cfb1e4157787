package io.stowage.placement.gguf;

/**
 * The one exception the GGUF reader throws for a file it refuses (truncated, hostile, or not GGUF at all); the message
 * names the field, the value and the limit it broke.
 *
 * <p>Unchecked on purpose: a bad file is a bad input, like a bad argument, and callers that can recover (the operator
 * marking a deployment Degraded) catch it by type. I/O failures (file missing, connection refused, HTTP 404) are
 * {@link java.io.IOException}s, never this.
 */
public final class GgufFormatException extends RuntimeException {

    public GgufFormatException(String message) {
        super(message);
    }

    public GgufFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
