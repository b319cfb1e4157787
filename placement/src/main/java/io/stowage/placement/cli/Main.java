package io.stowage.placement.cli;

import io.stowage.placement.bench.BenchCommand;
import java.io.PrintStream;
import java.util.Arrays;

/** Entry point of the placement commands of {@code ./stowage}: plan and bench. */
public final class Main {

    static final String USAGE = """
            usage: stowage COMMAND [ARGS]

            Commands:
              plan    place LlmDeployment manifests on a device inventory and print the plan
              bench   compare Stowage's packing with whole-GPU and no-sharing baselines

            Run stowage COMMAND --help for a command's options.
            """;

    private Main() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command in-process and returns its exit status (0, 1 invalid input, 2 usage, 3 refused). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            (args.length == 0 ? err : out).print(USAGE);
            return args.length == 0 ? PlanCommand.EXIT_USAGE : 0;
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        try {
            return switch (args[0]) {
                case "plan" -> new PlanCommand(out, err).run(rest);
                case "bench" -> new BenchCommand(out, err).run(rest);
                default -> {
                    err.println("stowage: unknown command \"" + args[0] + "\"");
                    err.print(USAGE);
                    yield PlanCommand.EXIT_USAGE;
                }
            };
        } catch (UsageException e) {
            err.println("stowage " + args[0] + ": " + e.getMessage());
            err.println("Run ./stowage " + args[0] + " --help for its options.");
            return PlanCommand.EXIT_USAGE;
        }
    }
}
