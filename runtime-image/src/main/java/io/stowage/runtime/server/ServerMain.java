package io.stowage.runtime.server;

import io.quarkus.arc.Arc;
import io.quarkus.runtime.ApplicationLifecycleManager;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.QuarkusApplication;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.stowage.hostapi.HostApi;
import java.net.BindException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The entry point of {@code quarkus-run.jar} (the runtime image): {@code serve -f DIR} is local mode,
 * {@code host --device cpu|cuda} is the operator's runtime host pod (admin API, waits for assignments), and the other
 * runtime commands ({@code inspect}, {@code generate}, ...) run without the server, so the image's probe pod can
 * {@code inspect}. A command that cannot start prints one line saying why and exits 1, 2 (usage) or 3 (nothing
 * placed), the codes of {@code plan}.
 */
@QuarkusMain
public final class ServerMain {
    static final String SERVE_HELP = """
            usage: ./stowage serve -f DIR [--port P] [--host H] [--memory-fraction F] [--admin-port P] [--json-logs]

            Places the LlmDeployment manifests of DIR (a directory of *.yaml/*.yml files, or one file) on this
            machine (its CPU and a share of its RAM) with the placement planner, prints the placement and memory
            breakdown, loads the models and serves them all with the OpenAI-compatible API on
            http://localhost:P/v1. Ctrl-C stops it.

            Options:
              -f, --file DIR          LlmDeployment manifests (required)
              --port P                OpenAI API port (default 8080; 0 takes any free port)
              --host H                address the API listens on (default 127.0.0.1: this machine only)
              --memory-fraction F     share of RAM the models may use, in (0, 1] (default 0.5)
              --admin-port P          admin API port (default 8081; on only when STOWAGE_ADMIN_TOKEN is set)
              --json-logs             JSON log lines
              -h, --help              this help

            Exit status:
              1  the manifests or a model are invalid, no model loads, or the port is taken
              2  usage error
              3  every replica is refused: nothing fits this machine's share of RAM (as in plan)
            """;

    static final String HOST_HELP = """
            usage: quarkus-run.jar host [--device cpu|cuda[:N]|GPU-UUID] [--port P] [--host H] [--admin-port P]
                                        [--memory-fraction F] [--json-logs]

            The operator's runtime host (the runtime image runs it in a host pod). No manifests: it waits for the
            assignments the operator pushes to its admin API (needs the token in the file STOWAGE_ADMIN_TOKEN_FILE, re-read so it rotates, or in STOWAGE_ADMIN_TOKEN); model cache in
            STOWAGE_CACHE_DIR, device name in STOWAGE_DEVICE_ID. JSON log lines.

            Options:
              --device D              cpu (default), cuda (device 0), cuda:N, or a GPU by UUID (GPU-..., MIG-...);
                                      a device this build or machine cannot use fails at start (exit 1)
              --port P                OpenAI API port (default 8080)
              --host H                address the OpenAI API listens on (default 0.0.0.0, the pod's address)
              --admin-port P          admin API port (default 8081)
              --memory-fraction F     share of RAM the models may use, in (0, 1] (default 0.5)
              --json-logs             JSON log lines (the default here)
              -h, --help              this help
            """;

    static final String ROUTER_HELP = """
            usage: quarkus-run.jar router -f DIR [--backend NAME=URL]... [--port P] [--host H] [--json-logs]

            Serves the LlmRoutes of DIR (a directory of *.yaml/*.yml files, or one file) with the OpenAI-compatible
            API: a request whose model names a route goes to the route's tiers (a confidence cascade), each an
            LlmDeployment reached at its Service (http://NAME.NAMESPACE.svc:80) unless --backend names its URL.
            Decisions: GET /v1/routes/audit; totals: GET /v1/routes; metrics: /q/metrics. Serves no model itself.

            Options:
              -f, --file DIR          LlmRoute manifests (required; LlmDeployments beside them give served names)
              --backend NAME=URL      the OpenAI API of deployment NAME, e.g. small=http://10.0.0.5:8080 (repeatable)
              --port P                API port (default 8080)
              --host H                address the API listens on (default 0.0.0.0)
              --json-logs             JSON log lines
              -h, --help              this help
            """;

    static final String HELP = """
            usage: quarkus-run.jar serve -f DIR [OPTIONS]            local mode (./stowage serve)
                   quarkus-run.jar host [--device cpu|cuda] [OPTIONS]  the operator's runtime host pod
                   quarkus-run.jar router -f DIR [--backend NAME=URL]  the LlmRoute router
                   quarkus-run.jar inspect|generate|tokenize|bench-engine ARGS

            quarkus-run.jar serve --help and host --help list their options.
            """;

    static final String SERVE = "serve";

    static final String ROUTER = "router";

    /** Commands that do not start the server: the CLI runs them (io.stowage.runtime.cli.Main). */
    static final Set<String> CLI_COMMANDS = Set.of("inspect", "generate", "tokenize", "bench-engine");

    /**
     * What a command line asks for: the server with these system properties, a CLI command, or a help text.
     *
     * @param command serve or host (the prefix of its messages)
     * @param help the help text to print, or null
     */
    record Launch(String command, boolean cli, String help, Map<String, String> properties) {}

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
            System.err.println("stowage " + e.getMessage());
            exit(StartupException.USAGE, e);
            return;
        }
        if (launch.cli()) {
            io.stowage.runtime.cli.Main.main(args);
            return;
        }
        if (launch.help() != null) {
            System.out.print(launch.help());
            return;
        }
        Map<String, String> previous = new HashMap<>();
        launch.properties().forEach((k, v) -> previous.put(k, System.setProperty(k, v)));
        try {
            Quarkus.run(Running.class, (code, failure) -> exited(launch.command(), code, failure), args);
        } finally {
            // Only reached where exiting does not end the JVM (a test runs main several times).
            previous.forEach((k, v) -> {
                if (v == null) {
                    System.clearProperty(k);
                } else {
                    System.setProperty(k, v);
                }
            });
        }
    }

    /** The server once Quarkus has started (its ports are bound): says what serves, then runs until stopped. */
    public static final class Running implements QuarkusApplication {
        @Override
        public int run(String... args) {
            Arc.container().instance(HostService.class).get().announce(System.out);
            Quarkus.waitForExit();
            return 0;
        }
    }

    /** Quarkus has stopped, or failed to start: a failure becomes one line and its exit code. */
    private static void exited(String command, int code, Throwable failure) {
        if (failure != null) {
            StartupException e = explain(failure);
            System.err.println("stowage " + command + ": " + e.getMessage());
            code = e.exitCode();
        }
        exit(code, failure);
    }

    /** Exits through Quarkus's handler: System.exit in the jar, a recorded code where a test launched main. */
    private static void exit(int code, Throwable failure) {
        ApplicationLifecycleManager.getDefaultExitCodeHandler().accept(code, failure);
    }

    /**
     * Why startup failed, in one line: ours as thrown, a port in use by its number, anything else by the message of
     * its root cause (Quarkus wraps what a bean throws while starting).
     */
    static StartupException explain(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof StartupException e) {
                return new StartupException(e.exitCode(), oneLine(e.getMessage()), e);
            }
        }
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof io.quarkus.runtime.QuarkusBindException b) {
                return StartupException.portInUse(b.getHost(), b.getPort(), failure);
            }
            if (t instanceof BindException b) {
                return new StartupException(
                        StartupException.FAILED,
                        "cannot listen on the admin API's port: " + b.getMessage()
                                + "; choose another with --admin-port P",
                        failure);
            }
        }
        Throwable root = failure;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getMessage() == null || root.getMessage().isBlank()
                ? root.getClass().getSimpleName()
                : root.getMessage();
        return new StartupException(StartupException.FAILED, "cannot start: " + oneLine(message), failure);
    }

    /** Multi-line messages (configuration errors list one problem per line) on one line. */
    private static String oneLine(String s) {
        return s.strip().replaceAll("\\s*\\R\\s*", "; ").replace(":; ", ": ").replaceAll("\\s+", " ");
    }

    /** Parses a command line; pure (the environment is passed), so the contract with the operator is testable. */
    static Launch parse(String[] args, Map<String, String> env) {
        if (args.length == 0) {
            throw new UsageError("runtime: a command is required: serve -f DIR (local mode), host --device cpu (the"
                    + " operator's runtime host) or one of "
                    + String.join(", ", CLI_COMMANDS.stream().sorted().toList()) + "; --help lists them");
        }
        String command = args[0];
        if (CLI_COMMANDS.contains(command)) {
            return new Launch(command, true, null, Map.of());
        }
        if (command.equals("-h") || command.equals("--help")) {
            return new Launch("runtime", false, HELP, Map.of());
        }
        if (!command.equals(SERVE) && !command.equals(HostApi.HOST_COMMAND) && !command.equals(ROUTER)) {
            throw new UsageError("runtime: unknown command '" + command + "'; the commands are serve, "
                    + HostApi.HOST_COMMAND + ", " + ROUTER + ", "
                    + String.join(", ", CLI_COMMANDS.stream().sorted().toList()));
        }
        boolean serve = command.equals(SERVE);
        boolean routerMode = command.equals(ROUTER);
        List<String> backends = new ArrayList<>();
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        Map<String, String> props = new LinkedHashMap<>();
        boolean jsonLogs = false;
        String dir = null;
        String device = "cpu";
        for (int i = 0; i < rest.length; i++) {
            String a = rest[i];
            switch (a) {
                case "-h", "--help" -> {
                    return new Launch(
                            command, false, serve ? SERVE_HELP : routerMode ? ROUTER_HELP : HOST_HELP, Map.of());
                }
                case "--backend" -> {
                    if (!routerMode) {
                        throw new UsageError(command + ": --backend is for router");
                    }
                    String b = value(command, rest, ++i, a);
                    if (b.indexOf('=') < 1 || b.contains(",")) {
                        throw new UsageError("router: --backend must be NAME=URL, e.g. small=http://10.0.0.5:8080,"
                                + " got '" + b + "'");
                    }
                    backends.add(b);
                }
                case "-f", "--file" -> dir = value(command, rest, ++i, a);
                case "--device" -> device = value(command, rest, ++i, a);
                case "--port" -> props.put("quarkus.http.port", port(command, value(command, rest, ++i, a), a));
                case "--host" -> props.put("quarkus.http.host", value(command, rest, ++i, a));
                case "--admin-port" -> props.put("stowage.admin.port", port(command, value(command, rest, ++i, a), a));
                case "--memory-fraction" ->
                    props.put("stowage.cpu.memory-fraction", fraction(command, value(command, rest, ++i, a), a));
                case "--json-logs" -> jsonLogs = true;
                default ->
                    throw new UsageError(
                            command + ": unknown option '" + a + "' (" + command + " --help lists the options)");
            }
        }
        if (routerMode) {
            if (dir == null) {
                throw new UsageError("router: -f DIR is required: the directory (or file) of LlmRoute manifests");
            }
            if (!Files.exists(Path.of(dir))) {
                throw new UsageError("router: -f " + dir + ": no such file or directory");
            }
            props.put("stowage.router.dir", dir);
            props.put("stowage.router.backends", String.join(",", backends));
            props.putIfAbsent("quarkus.http.host", "0.0.0.0");
            props.put("quarkus.log.console.json.enabled", Boolean.toString(jsonLogs));
        } else if (serve) {
            if (dir == null) {
                throw new UsageError("serve: -f DIR is required: the directory (or file) of LlmDeployment manifests"
                        + " to serve, e.g. ./stowage serve -f examples/local");
            }
            if (!device.equals("cpu")) {
                throw new UsageError("serve: --device " + device + ": local mode serves on this machine's CPU");
            }
            if (!Files.exists(Path.of(dir))) {
                throw new UsageError("serve: -f " + dir + ": no such file or directory");
            }
            props.put("stowage.local.dir", dir);
            // Local mode serves an API without authentication: only this machine reaches it unless asked.
            props.putIfAbsent("quarkus.http.host", "127.0.0.1");
            props.put("quarkus.log.console.json.enabled", Boolean.toString(jsonLogs));
        } else {
            if (dir != null) {
                throw new UsageError("host: -f is for serve (local mode); a host gets its models from the operator");
            }
            // A GPU the native core cannot open fails at start (exit 1) rather than being served from RAM: the
            // operator planned this host's models against the GPU's memory.
            if (DeviceOption.parse(device) == null) {
                throw new UsageError("host: --device must be " + DeviceOption.FORMS + ", got '" + device + "'");
            }
            String token = env.get(HostApi.TOKEN_ENV);
            String tokenFile = env.get(HostApi.TOKEN_FILE_ENV);
            if ((token == null || token.isBlank()) && (tokenFile == null || tokenFile.isBlank())) {
                throw new UsageError("host: neither " + HostApi.TOKEN_FILE_ENV + " nor " + HostApi.TOKEN_ENV
                        + " is set; a host takes its assignments on the admin API, which needs that bearer token"
                        + " (the operator mounts it from its Secret)");
            }
            if (jsonLogs) {
                props.put("quarkus.log.console.json.enabled", "true");
            }
        }
        props.put("stowage.device", device);
        return new Launch(command, false, null, props);
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

    private static String fraction(String command, String v, String option) {
        try {
            double f = Double.parseDouble(v);
            if (f > 0 && f <= 1) {
                return v;
            }
        } catch (NumberFormatException e) {
            // falls through to the message
        }
        throw new UsageError(command + ": " + option + " must be a share of RAM in (0, 1], e.g. 0.5, got '" + v + "'");
    }
}
