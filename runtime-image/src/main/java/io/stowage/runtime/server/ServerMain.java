package io.stowage.runtime.server;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.stowage.hostapi.HostApi;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The entry point of {@code quarkus-run.jar} (the runtime image): {@code host --device cpu|cuda} is the operator's
 * runtime host pod (admin API, waits for assignments), {@code serve -f DIR} is local mode, and the other runtime
 * commands ({@code inspect}, {@code generate}, ...) run without the server, so the image's probe pod can
 * {@code inspect}.
 */
@QuarkusMain
public final class ServerMain {
    static final String HELP = """
            usage: ./stowage serve -f DIR [--port P] [--host H] [--admin-port P] [--memory-fraction F] [--json-logs]
                   quarkus-run.jar host [--device cpu|cuda] [--port P] [--admin-port P] [--memory-fraction F]
                   quarkus-run.jar inspect|generate|tokenize|bench-engine ARGS

            serve: places the LlmDeployment manifests of DIR on this machine (CPU, a share of its RAM) with the
            placement planner, prints the placement and memory breakdown, and serves them all with the
            OpenAI-compatible API on http://localhost:P/v1 (default 8080).

            host: the operator's runtime host. No manifests: it waits for the assignments the operator pushes
            to its admin API (needs STOWAGE_ADMIN_TOKEN); model cache in STOWAGE_CACHE_DIR, device name in
            STOWAGE_DEVICE_ID. --device cuda is refused until the runtime has a CUDA backend.

            Options:
              -f, --file DIR          directory (or file) of LlmDeployment manifests (serve)
              --device D              cpu (host; default cpu)
              --port P                OpenAI API port (default 8080)
              --host H                address the OpenAI API listens on (serve: default 127.0.0.1, this
                                      machine only; host: default 0.0.0.0, the pod's address)
              --admin-port P          admin API port (default 8081; on only when STOWAGE_ADMIN_TOKEN is set)
              --memory-fraction F     share of RAM the models may use, in (0, 1] (default 0.5)
              --json-logs             JSON log lines (default in a pod; off in local mode)
              -h, --help              this help

            With no command the host waits for assignments on its admin API, as with host --device cpu.
            """;

    /** Commands that do not start the server: the CLI runs them (io.stowage.runtime.cli.Main). */
    static final Set<String> CLI_COMMANDS = Set.of("inspect", "generate", "tokenize", "bench-engine");

    /** What a command line asks for: the server with these system properties, or a CLI command. */
    record Launch(boolean cli, boolean help, Map<String, String> properties) {}

    /** A command line the server cannot start with; the message says which option and why. */
    static final class UsageError extends RuntimeException {
        UsageError(String message) {
            super(message);
        }
    }

    private ServerMain() {}

    public static void main(String... args) {
        Launch launch;
        try {
            launch = parse(args, System.getenv());
        } catch (UsageError e) {
            System.err.println(e.getMessage());
            System.err.print(HELP);
            System.exit(2);
            return;
        }
        if (launch.cli()) {
            io.stowage.runtime.cli.Main.main(args);
            return;
        }
        if (launch.help()) {
            System.out.print(HELP);
            return;
        }
        launch.properties().forEach(System::setProperty);
        Quarkus.run();
    }

    /** Parses a command line; pure (the environment is passed), so the contract with the operator is testable. */
    static Launch parse(String[] args, Map<String, String> env) {
        if (args.length > 0 && CLI_COMMANDS.contains(args[0])) {
            return new Launch(true, false, Map.of());
        }
        String mode =
                args.length > 0 && (args[0].equals("serve") || args[0].equals(HostApi.HOST_COMMAND)) ? args[0] : "";
        String[] rest = mode.isEmpty() ? args : Arrays.copyOfRange(args, 1, args.length);
        Map<String, String> props = new LinkedHashMap<>();
        boolean jsonLogs = false;
        String dir = null;
        String device = "cpu";
        String command = mode.isEmpty() ? "host" : mode;
        for (int i = 0; i < rest.length; i++) {
            String a = rest[i];
            switch (a) {
                case "-h", "--help" -> {
                    return new Launch(false, true, Map.of());
                }
                case "-f", "--file" -> dir = value(command, rest, ++i, a);
                case "--device" -> device = value(command, rest, ++i, a);
                case "--port" -> props.put("quarkus.http.port", port(command, value(command, rest, ++i, a), a));
                case "--host" -> props.put("quarkus.http.host", value(command, rest, ++i, a));
                case "--admin-port" -> props.put("stowage.admin.port", port(command, value(command, rest, ++i, a), a));
                case "--memory-fraction" -> props.put("stowage.cpu.memory-fraction", value(command, rest, ++i, a));
                case "--json-logs" -> jsonLogs = true;
                default -> throw new UsageError(command + ": unknown option '" + a + "'");
            }
        }
        if (dir != null && mode.equals(HostApi.HOST_COMMAND)) {
            throw new UsageError("host: -f is for serve (local mode); a host gets its models from the operator");
        }
        if (!device.equals("cpu")) {
            if (device.equals("cuda")) {
                // Refused rather than quietly served from RAM: the operator planned this host's models against the
                // GPU's memory, and the pod requests that GPU and only 1Gi of RAM.
                throw new UsageError(command + ": --device cuda: this runtime build has no CUDA backend yet (the"
                        + " native core runs on the CPU only). Deploy the model with placement.device: cpu, or run"
                        + " the host with --device cpu.");
            }
            throw new UsageError(command + ": --device must be cpu or cuda, got '" + device + "'");
        }
        if (dir != null) {
            if (!Files.exists(Path.of(dir))) {
                throw new UsageError("serve: -f " + dir + ": no such file or directory");
            }
            props.put("stowage.local.dir", dir);
            // Local mode serves an API without authentication: only this machine reaches it unless asked.
            props.putIfAbsent("quarkus.http.host", "127.0.0.1");
            if (!jsonLogs) {
                props.put("quarkus.log.console.json.enabled", "false");
            }
        } else {
            if (mode.equals(HostApi.HOST_COMMAND)) {
                String token = env.get(HostApi.TOKEN_ENV);
                if (token == null || token.isBlank()) {
                    throw new UsageError("host: " + HostApi.TOKEN_ENV + " is not set; a host takes its assignments"
                            + " on the admin API, which needs that bearer token (the operator sets it from its"
                            + " Secret)");
                }
            }
            if (jsonLogs) {
                props.put("quarkus.log.console.json.enabled", "true");
            }
        }
        props.put("stowage.device", device);
        return new Launch(false, false, props);
    }

    private static String value(String command, String[] args, int i, String option) {
        if (i >= args.length) {
            throw new UsageError(command + ": " + option + " needs a value");
        }
        return args[i];
    }

    private static String port(String command, String v, String option) {
        try {
            int p = Integer.parseInt(v);
            if (p >= 0 && p <= 65535) {
                return v;
            }
        } catch (NumberFormatException e) {
            // falls through to the message
        }
        throw new UsageError(command + ": " + option + " must be a port number in 0..65535, got '" + v + "'");
    }
}
