package io.stowage.runtime.cli;

/** Entry point of the runtime commands of {@code ./stowage}: inspect, generate, tokenize, bench-engine, serve. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.err.println("stowage: runtime commands are being built");
        System.exit(2);
    }
}
