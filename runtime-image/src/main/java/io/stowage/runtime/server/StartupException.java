package io.stowage.runtime.server;

import io.stowage.placement.cli.PlanCommand;

/**
 * Why {@code serve} or {@code host} cannot start, as the one line it prints and the exit status it ends with (the
 * codes {@code plan} uses: 1 failed, 2 usage, 3 nothing placed).
 */
public final class StartupException extends RuntimeException {
    /** The manifests, a model or the machine: nothing the command line can fix. */
    public static final int FAILED = 1;

    public static final int USAGE = PlanCommand.EXIT_USAGE;

    /** Every replica was refused: nothing to serve, as {@code plan} exits when replicas are refused. */
    public static final int NOTHING_PLACED = PlanCommand.EXIT_REFUSED;

    private final int exitCode;

    public StartupException(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    public StartupException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }

    /** The API's port is taken: the failure serve checks for before it loads models, and Quarkus's bind failure. */
    public static StartupException portInUse(String host, int port, Throwable cause) {
        return new StartupException(
                FAILED,
                "cannot listen on " + host + ":" + port + ": the port is in use by another process; stop it, or"
                        + " choose another port with --port P",
                cause);
    }
}
