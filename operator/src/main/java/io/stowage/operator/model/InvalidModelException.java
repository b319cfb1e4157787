package io.stowage.operator.model;

/** The model file or its summary is not usable: Kubernetes reason {@code InvalidModel}. */
public class InvalidModelException extends RuntimeException {
    public InvalidModelException(String message) {
        super(message);
    }
}
