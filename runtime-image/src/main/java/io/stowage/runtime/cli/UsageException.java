package io.stowage.runtime.cli;

/** A command line the command cannot run: the message says what is wrong; the exit code is 2. */
final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
        super(message);
    }
}
