package io.stowage.operator.host;

/** A host's admin API did not answer as expected; {@link #reason()} is the Kubernetes event reason. */
public class HostUnavailableException extends Exception {
    private final String reason;

    public HostUnavailableException(String reason, String message) {
        super(message);
        this.reason = reason;
    }

    public String reason() {
        return reason;
    }
}
