package io.stowage.runtime.server;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The entry point of {@code quarkus-run.jar}: with no arguments the host of a pod (admin API, assignments pushed by
 * the operator); {@code serve -f DIR [--port P]} local mode, which serves the manifests of DIR.
 */
@QuarkusMain
public final class ServerMain {
    static final String HELP = """
            usage: ./stowage serve -f DIR [--port P] [--admin-port P] [--memory-fraction F] [--json-logs]

            Places the LlmDeployment manifests of DIR on this machine (CPU, a share of its RAM) with the
            placement planner, prints the placement and memory breakdown, and serves them all with the
            OpenAI-compatible API on http://localhost:P/v1 (default 8080).

            Options:
              -f, --file DIR          directory (or file) of LlmDeployment manifests
              --port P                OpenAI API port (default 8080)
              --admin-port P          admin API port (default 8081; on only when STOWAGE_ADMIN_TOKEN is set)
              --memory-fraction F     share of RAM the models may use, in (0, 1] (default 0.5)
              --json-logs             JSON log lines (default in a pod; off in local mode)
              -h, --help              this help

            Without -f the host waits for assignments on its admin API (the operator's runtime host pod).
            """;

    private ServerMain() {}

    public static void main(String... args) {
        String[] rest = args.length > 0 && args[0].equals("serve") ? Arrays.copyOfRange(args, 1, args.length) : args;
        boolean jsonLogs = false;
        String dir = null;
        for (int i = 0; i < rest.length; i++) {
            String a = rest[i];
            switch (a) {
                case "-h", "--help" -> {
                    System.out.print(HELP);
                    return;
                }
                case "-f", "--file" -> dir = value(rest, ++i, a);
                case "--port" -> System.setProperty("quarkus.http.port", port(value(rest, ++i, a), a));
                case "--admin-port" -> System.setProperty("stowage.admin.port", port(value(rest, ++i, a), a));
                case "--memory-fraction" -> System.setProperty("stowage.cpu.memory-fraction", value(rest, ++i, a));
                case "--json-logs" -> jsonLogs = true;
                default -> usage("unknown option '" + a + "'");
            }
        }
        if (dir != null) {
            if (!Files.exists(Path.of(dir))) {
                usage("-f " + dir + ": no such file or directory");
            }
            System.setProperty("stowage.local.dir", dir);
            if (!jsonLogs) {
                System.setProperty("quarkus.log.console.json.enabled", "false");
            }
        } else if (jsonLogs) {
            System.setProperty("quarkus.log.console.json.enabled", "true");
        }
        Quarkus.run(rest);
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            usage(option + " needs a value");
        }
        return args[i];
    }

    private static String port(String v, String option) {
        try {
            int p = Integer.parseInt(v);
            if (p < 0 || p > 65535) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            usage(option + " must be a port number in 0..65535, got '" + v + "'");
            return v;
        }
    }

    private static void usage(String message) {
        System.err.println("serve: " + message);
        System.err.print(HELP);
        System.exit(2);
    }
}
