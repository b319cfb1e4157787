package io.stowage.runtime.cli;

import io.stowage.runtime.engine.NativeEngineException;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.util.Arrays;

/** Entry point of the runtime commands of {@code ./stowage}: inspect, generate, tokenize, bench-engine, serve. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        System.out.flush();
        if (code != 0) {
            System.exit(code);
        }
    }

    /** Runs one command; returns the exit code (0 ok, 1 failure, 2 usage error). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0) {
            err.println("usage: ./stowage inspect|generate|tokenize|bench-engine|serve [ARGS] (--help on each)");
            return 2;
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        try {
            return switch (args[0]) {
                case "inspect" -> InspectCommand.run(rest, out, err);
                case "generate" -> GenerateCommand.run(rest, out, err);
                case "tokenize" -> TokenizeCommand.run(rest, out, err);
                case "bench-engine" -> BenchEngineCommand.run(rest, out, err);
                case "serve" -> serve(rest, err);
                default -> {
                    err.println("stowage: unknown runtime command '" + args[0] + "'");
                    yield 2;
                }
            };
        } catch (UsageException e) {
            err.println(e.getMessage());
            err.println("(run ./stowage " + args[0] + " --help for the options)");
            return 2;
        } catch (NativeEngineException | IllegalArgumentException | UnsatisfiedLinkError e) {
            err.println(args[0] + ": " + e.getMessage());
            return 1;
        }
    }

    /** The server lives in its own package (io.stowage.runtime.server.Serve); called reflectively so this compiles alone. */
    private static int serve(String[] args, PrintStream err) {
        try {
            Class<?> serve = Class.forName("io.stowage.runtime.server.Serve");
            Object code = serve.getMethod("run", String[].class).invoke(null, (Object) args);
            return code instanceof Integer i ? i : 0;
        } catch (ClassNotFoundException e) {
            err.println("serve: this build has no server (io.stowage.runtime.server.Serve is missing)");
            return 2;
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) {
                throw re;
            }
            if (cause instanceof Error er) {
                throw er;
            }
            err.println("serve: " + cause);
            return 1;
        } catch (ReflectiveOperationException e) {
            err.println("serve: cannot start the server: " + e);
            return 1;
        }
    }
}
