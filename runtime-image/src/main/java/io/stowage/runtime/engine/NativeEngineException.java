package io.stowage.runtime.engine;

/** A failure reported by the native inference core, with the core's status code. */
public class NativeEngineException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final EngineStatus status;

    public NativeEngineException(EngineStatus status, String message) {
        super(message);
        this.status = status;
    }

    public NativeEngineException(EngineStatus status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    public EngineStatus status() {
        return status;
    }
}
