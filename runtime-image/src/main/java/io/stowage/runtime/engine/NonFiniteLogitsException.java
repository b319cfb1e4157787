package io.stowage.runtime.engine;

/**
 * Logits of the core that no token can be sampled from (NaN or +infinity, or every one -infinity): the model's
 * weights or activations are not finite, so the sequence cannot go on.
 */
public class NonFiniteLogitsException extends NativeEngineException {
    private static final long serialVersionUID = 1L;

    public NonFiniteLogitsException(String message) {
        super(EngineStatus.INTERNAL, message);
    }
}
