package io.stowage.placement.cli;

/** A command line that cannot be run as given; the command prints it with a pointer to --help and exits 2. */
public final class UsageException extends RuntimeException {
    public UsageException(String message) {
        super(message);
    }
}
