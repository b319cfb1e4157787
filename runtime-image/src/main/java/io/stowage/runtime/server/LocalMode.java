package io.stowage.runtime.server;

import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaState;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.runtime.host.AssignmentException;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.local.LocalPlan;
import io.stowage.runtime.route.RouteTable;
import io.stowage.runtime.scaling.Scaler;
import java.io.IOException;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Local mode's start ({@code serve -f DIR}): reads and places the manifests, prints the placement, loads the models
 * and waits until each replica serves or has failed; the LlmRoutes of the manifests become the router's table. When nothing can serve, it throws the reason as a
 * {@link StartupException} instead, and the process ends before its port opens.
 */
final class LocalMode {
    /** How long the models may take to load; serve then goes on with those that did. */
    static final Duration LOAD_LIMIT = Duration.ofMinutes(10);

    private LocalMode() {}

    /**
     * Places and loads the manifests of dir on host: the table, the measured memory and warnings (skipped documents,
     * failed models) are printed; the caller prints {@link #banner} once the API listens.
     *
     * @return the manifests' LlmRoutes, their tiers served by this process
     *
     * @throws StartupException no deployment, a manifest or model error (1), every replica refused (3), no model
     *     loaded (1)
     */
    static RouteTable start(Path dir, Host host, String node, ModelFetcher fetcher, PrintStream out, PrintStream err) {
        try (Scaler scaler = new Scaler(host)) {
            return start(dir, scaler, node, fetcher, out, err);
        }
    }

    /**
     * As {@link #start(Path, Host, String, ModelFetcher, PrintStream, PrintStream)}, the assignment given through
     * the scaler: the deployments with {@code spec.scaling} are released when idle and activated on request.
     */
    static RouteTable start(
            Path dir, Scaler scaler, String node, ModelFetcher fetcher, PrintStream out, PrintStream err) {
        Host host = scaler.host();
        ManifestSet set;
        LocalPlan plan;
        RouteTable routes;
        try {
            set = ManifestReader.read(dir);
            // The reader's hints (e.g. "skipped: kind LLMDeployment is not LlmDeployment") come first, as in plan.
            set.warnings().forEach(w -> err.println("warning: " + w));
            // The routes' tiers must be deployments of these manifests: checked before any model loads.
            routes = RouteTable.local(set.routes(), set.deployments());
            plan = LocalPlan.of(set, dir, host.settings().budgetBytes(), node, fetcher);
        } catch (ManifestException e) {
            throw new StartupException(StartupException.FAILED, e.getMessage(), e);
        } catch (IOException e) {
            throw new StartupException(StartupException.FAILED, "cannot read " + dir + ": " + e.getMessage(), e);
        }
        plan.warnings().forEach(w -> err.println("warning: " + w));
        out.print(plan.table());
        if (plan.assignment().replicas().isEmpty()) {
            throw new StartupException(StartupException.NOTHING_PLACED, nothingPlaced(plan, host));
        }
        // Local mode trusts the manifests it was given: the files they name become model roots of the host.
        host.allowModelFiles(plan.assignment().models().stream()
                .filter(m -> !m.uri().contains("://"))
                .map(m -> Path.of(m.uri()))
                .toList());
        try {
            scaler.apply(plan.assignment(), plan.scaling(), plan.startIdle());
        } catch (AssignmentException e) {
            throw new StartupException(StartupException.FAILED, "the host refused the plan: " + e.getMessage(), e);
        }
        awaitSettled(host, LOAD_LIMIT);
        List<String> problems = problems(host);
        if (scaler.servableNames().isEmpty()) {
            throw new StartupException(
                    StartupException.FAILED,
                    "nothing to serve: no model could be loaded ("
                            + (problems.isEmpty()
                                    ? "still loading after " + LOAD_LIMIT.toMinutes() + " minutes"
                                    : problems.getFirst())
                            + ")");
        }
        problems.forEach(p -> err.println("warning: " + p));
        HostState s = host.state();
        out.printf(
                "Measured: weights %s (once per model), KV reserved %s, workspace %s (one, the largest model's);"
                        + " process RSS %s, PSS %s%n",
                ByteSize.human(
                        s.models().stream().mapToLong(ModelState::weightBytes).sum()),
                ByteSize.human(s.replicas().stream()
                        .mapToLong(ReplicaState::kvReservedBytes)
                        .sum()),
                ByteSize.human(s.models().stream()
                        .mapToLong(ModelState::workspaceBytes)
                        .max()
                        .orElse(0)),
                ByteSize.human(s.processRssBytes()),
                ByteSize.human(s.processPssBytes()));
        for (RouteTable.Route r : routes.routes()) {
            out.printf(
                    "Route %s (LlmRoute %s): %s%n",
                    r.name(),
                    r.manifest().id(),
                    r.tiers().stream()
                            .map(b -> b.deployment()
                                    + (b.tier().cascade() == null
                                            ? ""
                                            : " ("
                                                    + b.tier()
                                                            .cascade()
                                                            .confidence()
                                                            .text() + " confidence >= "
                                                    + b.tier().cascade().threshold() + ")"))
                            .collect(Collectors.joining(" -> ")));
        }
        return routes;
    }

    /**
     * Fails now, before any model loads, when the API cannot listen on host:port (taken, or an address this machine
     * does not have); port 0 (any free port) cannot be taken.
     */
    static void requireListenable(String host, int port) {
        if (port == 0) {
            return;
        }
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(host, port));
        } catch (BindException e) {
            if (e.getMessage() != null && e.getMessage().contains("in use")) {
                throw StartupException.portInUse(host, port, e);
            }
            throw new StartupException(
                    StartupException.FAILED,
                    "cannot listen on " + host + ":" + port + ": " + e.getMessage() + " (see --host and --port)",
                    e);
        } catch (IOException e) {
            throw new StartupException(
                    StartupException.FAILED, "cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    /** The one line for a plan that placed no replica: the budget, the first refusal and what to change. */
    static String nothingPlaced(LocalPlan plan, Host host) {
        List<String> refusals = plan.refusals();
        if (refusals.isEmpty()) {
            return "nothing to serve: the manifests ask for no replica (spec.replicas: 0)";
        }
        return "nothing to serve: "
                + (refusals.size() == 1 ? "the only replica was" : "all " + refusals.size() + " replicas were")
                + " refused on this machine's budget of "
                + ByteSize.human(host.settings().budgetBytes()) + " (of "
                + ByteSize.human(host.settings().totalBytes()) + " RAM): "
                + refusals.getFirst()
                + "; give serve a larger share with --memory-fraction F (at most 1), or lower spec.replicas,"
                + " spec.context.maxTokens or maxSequences";
    }

    /**
     * Waits until every assigned replica serves or has a problem (its model failed, its KV does not fit), or until
     * limit.
     */
    private static void awaitSettled(Host host, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < deadline) {
            boolean settled =
                    host.state().replicas().stream().allMatch(r -> r.ready() || host.replicaProblem(r.id()) != null);
            if (settled) {
                return;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StartupException(StartupException.FAILED, "interrupted while loading the models", e);
            }
        }
    }

    /** What does not serve, once per failed model and once per replica that fails on its own. */
    private static List<String> problems(Host host) {
        HostState s = host.state();
        List<String> out = new ArrayList<>();
        Map<String, ModelState> failed = s.models().stream()
                .filter(m -> m.phase() == ModelPhase.FAILED)
                .collect(Collectors.toMap(ModelState::digest, m -> m));
        failed.values().forEach(m -> out.add("model " + m.uri() + " failed to load: " + m.reason()));
        for (ReplicaState r : s.replicas()) {
            String problem = host.replicaProblem(r.id());
            if (!r.ready() && problem != null && !failed.containsKey(r.modelDigest())) {
                out.add("replica " + r.id() + " does not serve: " + problem);
            }
        }
        return out;
    }

    /**
     * What serve prints once its API listens: the served names, the address and a request to try.
     *
     * @param listenHost the address the API listens on ({@code quarkus.http.host})
     */
    static String banner(Collection<String> served, String listenHost, int port) {
        return banner(served, List.of(), listenHost, port);
    }

    /** The banner, with the route names the API also serves. */
    static String banner(Collection<String> served, Collection<String> routes, String listenHost, int port) {
        String host = switch (listenHost) {
            case "0.0.0.0", "127.0.0.1", "::", "::1", "localhost" -> "localhost";
            default -> listenHost.contains(":") ? "[" + listenHost + "]" : listenHost;
        };
        String base = "http://" + host + ":" + port + "/v1";
        String first = served.iterator().next();
        String names = String.join(", ", served)
                + (routes.isEmpty()
                        ? ""
                        : " and route" + (routes.size() == 1 ? " " : "s ") + String.join(", ", routes));
        return "Serving " + names + " on " + base + " — try:\n"
                + "  curl -s " + base + "/chat/completions -H 'Content-Type: application/json' -d '{\"model\": \""
                + first + "\", \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}],"
                + " \"max_tokens\": 40}'\n";
    }
}
