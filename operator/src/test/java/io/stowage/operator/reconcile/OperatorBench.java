package io.stowage.operator.reconcile;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.http.BasicBuilder;
import io.fabric8.kubernetes.client.http.HttpRequest;
import io.fabric8.kubernetes.client.http.Interceptor;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.host.HostAdminClient;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code ./stowage bench-operator}: the placement loop at cluster scale, through informer caches (watch) and through
 * today's LIST-every-pass read path, in the same run. Each read path gets its own API server and its own operator
 * JVM, so that the peak memory is the operator's alone:
 *
 * <ol>
 *   <li>a child JVM runs Fabric8's mock API server in CRUD mode on 127.0.0.1 (no real API server yet);
 *   <li>a second child JVM creates the Nodes (GPU Feature Discovery labels and capacity), other pods and the
 *       LlmDeployments, then runs the operator's placement loop on them (host pods are created but never run, so
 *       there are no host pushes) and measures.
 * </ol>
 */
public final class OperatorBench {
    /** The operator's debounce before a pass (PlacementScheduler): a change waits this long in either read path. */
    static final long DEBOUNCE_MILLIS = 200;

    private OperatorBench() {}

    /**
     * {@code apiServer}: "real" (etcd and kube-apiserver started by {@code e2e/cluster/apiserver.sh}), "mock"
     * (Fabric8's), or null for real when its binaries are cached, else the mock.
     */
    record Options(
            int deployments,
            int nodes,
            int otherPods,
            int models,
            boolean json,
            List<String> readPaths,
            String apiServer) {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--mock-server")) {
            mockServer();
            return;
        }
        if (args.length > 0 && args[0].equals("--operator")) {
            Options o = parse(java.util.Arrays.copyOfRange(args, 3, args.length));
            try {
                operator(args[1], args[2], o);
            } catch (Exception | Error e) {
                // Informer, HTTP and model server threads would keep the JVM alive: say why and end it.
                e.printStackTrace();
                System.exit(1);
            }
            return;
        }
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("stowage bench-operator: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        drive(o);
    }

    static final String USAGE = """
            usage: ./stowage bench-operator [--deployments 1000] [--nodes 2000] [--other-pods 0] [--models 10]
                                            [--read-path both|watch|list] [--api-server real|mock] [--json]
              Creates the LlmDeployments over GPU Nodes on an API server on 127.0.0.1 and measures the placement loop
              with informer caches (watch) and with today's LISTs (list). --api-server real: etcd and kube-apiserver
              v1.35.4 as e2e/cluster/build.sh cached them (e2e/cluster/apiserver.sh), one per read path; mock:
              Fabric8's mock server in CRUD mode. By default real where the binaries are cached, else the mock.""";

    static Options parse(String[] args) {
        int deployments = 1000;
        int nodes = 2000;
        int otherPods = 0;
        int models = 10;
        boolean json = false;
        List<String> paths = List.of("list", "watch");
        String apiServer = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--json" -> json = true;
                case "--deployments" -> deployments = positive(a, value(args, ++i, a));
                case "--nodes" -> nodes = positive(a, value(args, ++i, a));
                case "--other-pods" -> otherPods = Math.max(0, number(a, value(args, ++i, a)));
                case "--models" -> models = positive(a, value(args, ++i, a));
                case "--read-path" -> {
                    String v = value(args, ++i, a);
                    paths = switch (v) {
                        case "both" -> List.of("list", "watch");
                        case "watch", "list" -> List.of(v);
                        default ->
                            throw new IllegalArgumentException("--read-path " + v + " is not one of both, watch, list");
                    };
                }
                case "--api-server" -> {
                    apiServer = value(args, ++i, a);
                    if (!apiServer.equals("real") && !apiServer.equals("mock")) {
                        throw new IllegalArgumentException("--api-server " + apiServer + " is not one of real, mock");
                    }
                }
                case "-h", "--help" -> {
                    System.out.println(USAGE);
                    System.exit(0);
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        return new Options(deployments, nodes, otherPods, models, json, paths, apiServer);
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static int number(String option, String v) {
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " " + v + " is not a whole number");
        }
    }

    private static int positive(String option, String v) {
        int n = number(option, v);
        if (n < 1) {
            throw new IllegalArgumentException(option + " must be at least 1, not " + n);
        }
        return n;
    }

    private static String[] optionArgs(Options o) {
        return new String[] {
            "--deployments",
            "" + o.deployments(),
            "--nodes",
            "" + o.nodes(),
            "--other-pods",
            "" + o.otherPods(),
            "--models",
            "" + o.models()
        };
    }

    /** The repository's {@code e2e/cluster/apiserver.sh}. */
    static Path apiserverScript() {
        return Path.of(System.getProperty("repo.root", "."), "e2e", "cluster", "apiserver.sh")
                .toAbsolutePath()
                .normalize();
    }

    /** Why no real API server can be started here ({@code apiserver.sh check}), or null when one can. */
    static String realApiServerMissing() throws IOException, InterruptedException {
        Path script = apiserverScript();
        if (!Files.isExecutable(script)) {
            return script + " is missing";
        }
        Process p = new ProcessBuilder(script.toString(), "check")
                .redirectErrorStream(true)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        return p.waitFor() == 0 ? null : (out.isEmpty() ? "apiserver.sh check failed" : out);
    }

    /** The driver: one API server and one operator JVM per read path; prints the comparison. */
    static void drive(Options o) throws Exception {
        String missing = o.apiServer() == null || o.apiServer().equals("real") ? realApiServerMissing() : null;
        String apiServer = o.apiServer();
        if (apiServer == null) {
            apiServer = missing == null ? "real" : "mock";
            if (missing != null) {
                System.err.println("bench-operator: no real API server here (" + missing + "); using the mock");
            }
        } else if (apiServer.equals("real") && missing != null) {
            System.err.println("stowage bench-operator: --api-server real cannot start: " + missing);
            System.exit(2);
            return;
        }
        System.err.printf(
                "bench-operator: %d LlmDeployments over %d GPU nodes (%d other pods) on %s%n",
                o.deployments(),
                o.nodes(),
                o.otherPods(),
                apiServer.equals("real")
                        ? "a real kube-apiserver " + "and etcd on 127.0.0.1 (e2e/cluster/apiserver.sh)"
                        : "the mock API server (Fabric8, CRUD mode, 127.0.0.1; not a real kube-apiserver)");
        Map<String, Map<String, Object>> results = new LinkedHashMap<>();
        for (String path : o.readPaths()) {
            results.put(path, apiServer.equals("real") ? runVariantReal(path, o) : runVariant(path, o));
        }
        Map<String, Object> primary =
                results.getOrDefault("watch", results.values().iterator().next());
        if (o.json()) {
            ObjectNode out = HostAdminClient.JSON.createObjectNode();
            out.put("apiServer", apiServer);
            out.put("deployments", o.deployments());
            out.put("nodes", o.nodes());
            out.put("otherPods", o.otherPods());
            out.setAll((ObjectNode) HostAdminClient.JSON.valueToTree(primary));
            if (results.containsKey("watch") && results.containsKey("list")) {
                out.set("baseline", HostAdminClient.JSON.valueToTree(results.get("list")));
            }
            System.out.println(
                    HostAdminClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out));
            return;
        }
        System.out.println(
                apiServer.equals("real")
                        ? "API server: real (kube-apiserver and etcd on 127.0.0.1, e2e/cluster/apiserver.sh)"
                        : "API server: mock (Fabric8 mock server in CRUD mode on 127.0.0.1; not a real API server)");
        System.out.printf(
                "%d LlmDeployments, %d GPU nodes, %d other pods%n", o.deployments(), o.nodes(), o.otherPods());
        String[] keys = {
            "placedSeconds",
            "passesToPlaced",
            "requestsFirstPass",
            "requestsPerPass",
            "idleWrites",
            "idlePassMillis",
            "changeToStatusMillis",
            "cacheFillRequests",
            "peakRssBytes",
            "heapAfterGcBytes"
        };
        System.out.printf("%-22s", "");
        for (String p : results.keySet()) {
            System.out.printf("%18s", p.equals("watch") ? "watch (new)" : "list (today)");
        }
        System.out.println();
        for (String k : keys) {
            System.out.printf("%-22s", k);
            for (Map<String, Object> r : results.values()) {
                System.out.printf("%18s", r.get(k));
            }
            System.out.println();
        }
    }

    /** The child JVMs' command up to the main class: this JVM's java, class path and repository root. */
    private static List<String> childJava() {
        return List.of(
                ProcessHandle.current().info().command().orElse("java"),
                "-Drepo.root=" + System.getProperty("repo.root", "."),
                "-Djava.util.logging.manager=org.jboss.logmanager.LogManager",
                "-cp",
                System.getProperty("java.class.path"),
                OperatorBench.class.getName());
    }

    private static Map<String, Object> runVariant(String path, Options o) throws Exception {
        Path logs = Files.createTempDirectory("stowage-bench-operator-");
        List<String> mockCmd = new ArrayList<>(childJava());
        mockCmd.add("--mock-server");
        Process mock = new ProcessBuilder(mockCmd)
                .redirectError(logs.resolve("mock-server.log").toFile())
                .start();
        try {
            BufferedReader mockOut =
                    new BufferedReader(new InputStreamReader(mock.getInputStream(), StandardCharsets.UTF_8));
            String line = mockOut.readLine();
            if (line == null || !line.startsWith("MOCK ")) {
                throw new IllegalStateException("the mock API server did not start; see " + logs);
            }
            return runOperator(path, line.substring(5), o, logs);
        } finally {
            mock.destroy();
            if (!mock.waitFor(10, TimeUnit.SECONDS)) {
                mock.destroyForcibly();
            }
        }
    }

    /** One read path on its own real API server ({@code apiserver.sh start}), stopped and removed afterwards. */
    private static Map<String, Object> runVariantReal(String path, Options o) throws Exception {
        Path logs = Files.createTempDirectory("stowage-bench-operator-");
        Path dir = logs.resolve("apiserver");
        String script = apiserverScript().toString();
        File startLog = logs.resolve("apiserver-start.log").toFile();
        long t = System.nanoTime();
        // An interrupted bench (Ctrl-C) stops its API server too.
        Thread stopOnExit = new Thread(() -> stopApiServer(script, dir, startLog));
        Runtime.getRuntime().addShutdownHook(stopOnExit);
        try {
            int rc = new ProcessBuilder(script, "start", dir.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(startLog)
                    .start()
                    .waitFor();
            if (rc != 0) {
                throw new IllegalStateException("e2e/cluster/apiserver.sh start failed (exit " + rc + "): "
                        + Files.readString(startLog.toPath()).strip());
            }
            System.err.printf(
                    "bench-operator [%s] API server %s started in %.1f s%n",
                    path, Files.readString(dir.resolve("url")).strip(), (System.nanoTime() - t) / 1e9);
            return runOperator(path, "kubeconfig:" + dir.resolve("admin.conf"), o, logs);
        } finally {
            // Keep the API server's logs next to the operator's, then stop it and remove its state.
            for (String l : List.of("etcd.log", "kube-apiserver.log")) {
                Path f = dir.resolve("logs").resolve(l);
                if (Files.exists(f)) {
                    Files.copy(f, logs.resolve(l), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
            stopApiServer(script, dir, startLog);
            Runtime.getRuntime().removeShutdownHook(stopOnExit);
        }
    }

    private static void stopApiServer(String script, Path dir, File log) {
        try {
            new ProcessBuilder(script, "stop", dir.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log))
                    .start()
                    .waitFor();
        } catch (IOException e) {
            System.err.println("bench-operator: could not stop the API server in " + dir + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Runs the operator JVM for one read path against {@code server} (a URL, or kubeconfig:FILE). */
    private static Map<String, Object> runOperator(String path, String server, Options o, Path logs) throws Exception {
        List<String> cmd = new ArrayList<>(childJava());
        cmd.addAll(List.of("--operator", path, server));
        cmd.addAll(List.of(optionArgs(o)));
        File opLog = logs.resolve("operator-" + path + ".log").toFile();
        Process op = new ProcessBuilder(cmd).redirectError(opLog).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(op.getInputStream(), StandardCharsets.UTF_8));
        Map<String, Object> result = null;
        String line;
        while ((line = out.readLine()) != null) {
            if (line.startsWith("RESULT ")) {
                @SuppressWarnings("unchecked")
                Map<String, Object> r = HostAdminClient.JSON.readValue(line.substring(7), Map.class);
                result = r;
            } else {
                System.err.println("bench-operator [" + path + "] " + line);
            }
        }
        int rc = op.waitFor();
        if (rc != 0 || result == null) {
            throw new IllegalStateException(
                    "the " + path + " run failed (exit " + rc + "); its log: " + opLog.getAbsolutePath());
        }
        return result;
    }

    /** Child: the mock API server until stdin closes. */
    static void mockServer() throws Exception {
        KubernetesMockServer server = new KubernetesMockServer(
                new Context(), new MockWebServer(), new HashMap<>(), new KubernetesCrudDispatcher(List.of()), false);
        server.init(InetAddress.getByName("127.0.0.1"), 0);
        System.out.println("MOCK http://127.0.0.1:" + server.getPort());
        System.out.flush();
        // The driver kills this process; reading stdin keeps it alive until then.
        while (System.in.read() >= 0) {
            // nothing
        }
        server.destroy();
    }

    /** Counts the operator's requests to the API server while {@code on}. */
    static final class RequestCounter implements Interceptor {
        final AtomicBoolean on = new AtomicBoolean();
        final AtomicLong all = new AtomicLong();
        final AtomicLong writes = new AtomicLong();

        @Override
        public void before(BasicBuilder builder, HttpRequest request, Interceptor.RequestTags tags) {
            if (on.get()) {
                all.incrementAndGet();
                if (!"GET".equals(request.method())) {
                    writes.incrementAndGet();
                }
            }
        }

        long[] take() {
            return new long[] {all.getAndSet(0), writes.getAndSet(0)};
        }
    }

    /** Child: populate the API server, run the placement loop with one read path, print one RESULT line. */
    static void operator(String path, String url, Options o) throws Exception {
        boolean real = url.startsWith("kubeconfig:");
        Config config;
        if (real) {
            config = Config.fromKubeconfig(new File(url.substring("kubeconfig:".length())));
            config.setNamespace("default");
            config.setRequestTimeout(120_000);
        } else {
            config = new ConfigBuilder()
                    .withMasterUrl(url)
                    .withNamespace("default")
                    .withTrustCerts(true)
                    .withRequestTimeout(120_000)
                    .build();
        }
        RequestCounter counter = new RequestCounter();
        try (KubernetesClient client = new KubernetesClientBuilder()
                        .withConfig(config)
                        .withHttpClientBuilderConsumer(b -> b.addOrReplaceInterceptor("stowage-bench-count", counter))
                        .build();
                TestCluster cluster = new TestCluster(client, OperatorConfig.defaults())) {
            if (real) {
                prepareReal(client, o);
            }
            populate(client, cluster, o);
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("readPath", path);

            // All Placed: from the operator's start (the caches' first LISTs included) to every deployment Placed.
            long start = System.nanoTime();
            counter.on.set(true);
            if (path.equals("watch")) {
                cluster.watched();
                cluster.view.deployments();
            }
            long cacheFill = counter.take()[0];
            int passes = 0;
            long firstPassRequests = -1;
            int placed = 0;
            while (passes < 10) {
                counter.on.set(true);
                var pass = cluster.loop.runPass();
                counter.on.set(false);
                long[] n = counter.take();
                if (firstPassRequests < 0) {
                    firstPassRequests = n[0];
                }
                passes++;
                placed = placedCount(client);
                System.out.printf(
                        "pass %d: %d requests (%d writes), %d/%d deployments Placed, %d pending replicas, %d ms by"
                                + " phase %s%n",
                        passes,
                        n[0],
                        n[1],
                        placed,
                        o.deployments(),
                        pass.pendingReplicas(),
                        pass.phaseMillis().values().stream()
                                .mapToLong(Long::longValue)
                                .sum(),
                        pass.phaseMillis());
                if (placed == o.deployments()) {
                    break;
                }
                // The next pass comes after the debounce, as a change would bring it.
                Thread.sleep(DEBOUNCE_MILLIS);
            }
            double placedSeconds = (System.nanoTime() - start) / 1e9;
            r.put("placedSeconds", Math.round(placedSeconds * 100) / 100.0);
            r.put("passesToPlaced", placed == o.deployments() ? passes : -1);
            r.put("requestsFirstPass", firstPassRequests);
            r.put("cacheFillRequests", cacheFill);

            // An idle pass: nothing changed since the last one.
            cluster.awaitCaughtUp();
            counter.take();
            counter.on.set(true);
            long t = System.nanoTime();
            cluster.loop.runPass();
            long idleMillis = (System.nanoTime() - t) / 1_000_000;
            counter.on.set(false);
            long[] idle = counter.take();
            r.put("requestsPerPass", idle[0]);
            r.put("idleWrites", idle[1]);
            r.put("idlePassMillis", idleMillis);
            System.out.printf("idle pass: %d requests, %d writes, %d ms%n", idle[0], idle[1], idleMillis);

            // One change: scale a one-replica deployment to two, and time until its status says so.
            LlmDeployment d = client.resources(LlmDeployment.class)
                    .inNamespace("ns-0")
                    .withName(String.format("llm-%05d", 0))
                    .get();
            int before = cluster.changes.get();
            long c0 = System.nanoTime();
            client.resource(d).edit(x -> {
                x.getSpec().setReplicas(x.getSpec().replicasOrZero() + 1);
                return x;
            });
            int want = d.getSpec().replicasOrZero() + 1;
            if (path.equals("watch")) {
                // The pass comes from the watch event, after the debounce.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (cluster.changes.get() == before && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
            }
            Thread.sleep(DEBOUNCE_MILLIS);
            cluster.loop.runPass();
            long changeMillis = -1;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                LlmDeployment now = client.resources(LlmDeployment.class)
                        .inNamespace("ns-0")
                        .withName(d.getMetadata().getName())
                        .get();
                if (now.getStatus() != null
                        && now.getStatus().getReplicas() != null
                        && now.getStatus().getReplicas() == want) {
                    changeMillis = (System.nanoTime() - c0) / 1_000_000;
                    break;
                }
                Thread.sleep(5);
            }
            r.put("changeToStatusMillis", changeMillis);
            System.out.printf("scale of one deployment to %d: status after %d ms%n", want, changeMillis);

            System.gc();
            Runtime rt = Runtime.getRuntime();
            r.put("heapAfterGcBytes", rt.totalMemory() - rt.freeMemory());
            r.put("peakRssBytes", peakRss());
            if (cluster.view instanceof WatchedCluster w) {
                r.put("cached", w.sizes());
            }
            System.out.println("RESULT " + HostAdminClient.JSON.writeValueAsString(r));
            System.out.flush();
        }
        // Informer and HTTP threads: the result is out, end the JVM.
        System.exit(0);
    }

    /**
     * A real API server checks what the mock takes as it comes: the CRD must be Established before its objects are
     * created, and their namespaces must exist (apiserver.sh turns off the admission plugins that need a controller
     * manager: a pod's service account, a new Node's not-ready taint).
     */
    private static void prepareReal(KubernetesClient client, Options o) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            var crd = client.apiextensions()
                    .v1()
                    .customResourceDefinitions()
                    .withName(LlmDeployment.CRD_NAME)
                    .get();
            if (crd != null
                    && crd.getStatus() != null
                    && crd.getStatus().getConditions().stream()
                            .anyMatch(c -> c.getType().equals("Established")
                                    && c.getStatus().equals("True"))) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the CRD " + LlmDeployment.CRD_NAME + " is not Established after 60 s");
            }
            Thread.sleep(100);
        }
        List<String> namespaces = new ArrayList<>();
        for (int i = 0; i < Math.min(20, o.deployments()); i++) {
            namespaces.add("ns-" + i);
        }
        for (int i = 0; i < Math.min(50, o.otherPods()); i++) {
            namespaces.add("apps-" + i);
        }
        for (String ns : namespaces) {
            client.namespaces()
                    .resource(new io.fabric8.kubernetes.api.model.NamespaceBuilder()
                            .withNewMetadata()
                            .withName(ns)
                            .endMetadata()
                            .build())
                    .create();
        }
    }

    private static void populate(KubernetesClient client, TestCluster cluster, Options o) throws Exception {
        long t = System.nanoTime();
        byte[] gguf = ModelServer.resource("/models/stories260K-q8_0.gguf");
        for (int m = 0; m < o.models(); m++) {
            cluster.models.files.put("/m" + m + ".gguf", gguf);
        }
        Map<String, String> a100 = new HashMap<>(TestCluster.a100Labels());
        // The fixture is GFD's README, whose machine label has a space ("NVIDIA DGX-2H"); GFD itself writes label
        // values as a real API server takes them (it refuses the space), with '-' for each character not allowed.
        a100.replaceAll((k, v) -> v.replaceAll("[^A-Za-z0-9._-]", "-"));
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<?>> work = new ArrayList<>();
            for (int i = 0; i < o.nodes(); i++) {
                String name = String.format("gpu-%05d", i);
                work.add(pool.submit(() -> cluster.addGpuNode(name, a100)));
            }
            for (int i = 0; i < o.otherPods(); i++) {
                int n = i;
                work.add(pool.submit(() -> client.pods()
                        .inNamespace("apps-" + (n % 50))
                        .resource(new PodBuilder()
                                .withNewMetadata()
                                .withName(String.format("web-%06d", n))
                                .addToLabels("app", "web")
                                .endMetadata()
                                .withNewSpec()
                                .withNodeName(String.format("gpu-%05d", n % o.nodes()))
                                .addNewContainer()
                                .withName("web")
                                .withImage("registry.example.com/web:1.0")
                                .endContainer()
                                .endSpec()
                                .withNewStatus()
                                .withPhase("Running")
                                .endStatus()
                                .build())
                        .create()));
            }
            for (int i = 0; i < o.deployments(); i++) {
                LlmDeploymentSpec spec =
                        new LlmDeploymentSpec(cluster.models.url("/m" + (i % o.models()) + ".gguf"), 1 + i % 3);
                spec.getContext().setMaxTokens(512);
                // A wide mix of KV budgets: 2 to 2,048 sequences, 1.25 MiB to 1.25 GiB per replica.
                spec.getContext().setMaxSequences(2 << (i % 11));
                LlmDeployment d = new LlmDeployment("ns-" + (i % 20), String.format("llm-%05d", i), spec);
                work.add(pool.submit(() -> client.resource(d).create()));
            }
            for (Future<?> f : work) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.printf(
                "created %d nodes, %d other pods and %d LlmDeployments in %.1f s%n",
                o.nodes(), o.otherPods(), o.deployments(), (System.nanoTime() - t) / 1e9);
    }

    private static int placedCount(KubernetesClient client) {
        return (int) client.resources(LlmDeployment.class).inAnyNamespace().list().getItems().stream()
                .filter(d -> d.getStatus() != null
                        && d.getStatus().condition("Placed") != null
                        && "True".equals(d.getStatus().condition("Placed").getStatus()))
                .count();
    }

    /** The process's peak resident memory (Linux VmHWM), or -1 where /proc does not say. */
    static long peakRss() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) {
                    String[] parts = l.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
