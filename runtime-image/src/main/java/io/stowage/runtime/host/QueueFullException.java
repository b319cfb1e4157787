package io.stowage.runtime.host;

/** A replica's bounded queue is full: the request is refused (HTTP 429) instead of waiting without bound. */
public final class QueueFullException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public QueueFullException(String message) {
        super(message);
    }
}
