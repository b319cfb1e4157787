package io.stowage.runtime.engine;

/** A well-formed model that the engine cannot run: an unknown architecture or tensor type. */
public class UnsupportedModelException extends NativeEngineException {
    private static final long serialVersionUID = 1L;

    public UnsupportedModelException(String message) {
        super(EngineStatus.UNSUPPORTED, message);
    }
}
