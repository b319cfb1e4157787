package io.stowage.runtime.host;

/**
 * An assignment the host refuses, unchanged: {@code reason} OverBudget (HTTP 409) or Invalid (HTTP 400), with a
 * message that names the object and the numbers.
 */
public final class AssignmentException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String reason;
    private final int httpStatus;

    public AssignmentException(String reason, int httpStatus, String message) {
        super(message);
        this.reason = reason;
        this.httpStatus = httpStatus;
    }

    public String reason() {
        return reason;
    }

    public int httpStatus() {
        return httpStatus;
    }
}
