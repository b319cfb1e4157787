package io.stowage.runtime.engine;

/** A model file that is malformed: truncated, inconsistent, a missing tensor or a tensor of the wrong shape. */
public class ModelFormatException extends NativeEngineException {
    private static final long serialVersionUID = 1L;

    public ModelFormatException(String message) {
        super(EngineStatus.BAD_MODEL, message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(EngineStatus.BAD_MODEL, message, cause);
    }
}
