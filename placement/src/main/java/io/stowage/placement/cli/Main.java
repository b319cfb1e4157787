package io.stowage.placement.cli;

/** Entry point of the placement commands of {@code ./stowage}: plan and bench. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.err.println("stowage: placement commands are being built");
        System.exit(2);
    }
}
