package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.stowage.hostapi.GpuUuids;
import io.stowage.hostapi.HostApi;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.runtime.admin.AdminServer;
import io.stowage.runtime.engine.Backend;
import io.stowage.runtime.engine.DeviceInfo;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.host.ModelSourcePolicy;
import io.stowage.runtime.host.ProcMemory;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.openai.OpenAiRoutes;
import io.stowage.runtime.route.LlmRouter;
import io.stowage.runtime.route.RouteAudit;
import io.stowage.runtime.route.RouteMetrics;
import io.stowage.runtime.route.RouteRoutes;
import io.stowage.runtime.route.RouteTable;
import io.stowage.runtime.route.RouteTableWatcher;
import io.stowage.runtime.scaling.Scaler;
import io.vertx.core.Vertx;
import io.vertx.ext.web.Router;
import jakarta.annotation.PostConstruct;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.event.Reception;
import jakarta.inject.Inject;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The runtime host inside Quarkus: builds the {@link Host} from configuration, mounts the OpenAI routes on the main
 * HTTP server and the admin API on its own port, and in local mode places and applies the manifests of a directory.
 */
@ApplicationScoped
public class HostService {
    private static final Logger LOG = Logger.getLogger(HostService.class);

    @Inject
    Vertx vertx;

    @Inject
    ObjectMapper json;

    @Inject
    MeterRegistry registry;

    @ConfigProperty(name = "stowage.admin.port", defaultValue = "8081")
    int adminPort;

    @ConfigProperty(name = "stowage.admin.token")
    Optional<String> adminToken;

    // In a host pod: the mounted Secrets (HostApi.TOKEN_FILE_ENV, TLS_CERT_FILE_ENV, TLS_KEY_FILE_ENV map to these).
    @ConfigProperty(name = "stowage.admin.token-file")
    Optional<String> adminTokenFile;

    @ConfigProperty(name = "stowage.admin.tls.cert-file")
    Optional<String> adminCertFile;

    @ConfigProperty(name = "stowage.admin.tls.key-file")
    Optional<String> adminKeyFile;

    @ConfigProperty(name = "stowage.admin.reload-interval", defaultValue = "10s")
    java.time.Duration adminReloadInterval;

    @ConfigProperty(name = "stowage.budget-bytes")
    Optional<Long> budgetBytes;

    @ConfigProperty(name = "stowage.cpu.memory-fraction", defaultValue = "0.5")
    double memoryFraction;

    // Set in a pod through the environment variable HostApi.CACHE_DIR_ENV (STOWAGE_CACHE_DIR): MicroProfile Config
    // maps it to this property.
    @ConfigProperty(name = "stowage.cache-dir")
    Optional<String> cacheDir;

    @ConfigProperty(name = "stowage.threads")
    Optional<Integer> threads;

    // --device (ServerMain puts it here): cpu, cuda, cuda:N or a GPU UUID.
    @ConfigProperty(name = "stowage.device", defaultValue = "cpu")
    String device;

    @ConfigProperty(name = "stowage.batch-tokens", defaultValue = "512")
    int batchTokens;

    @ConfigProperty(name = "stowage.logit-rows", defaultValue = "64")
    int logitRows;

    @ConfigProperty(name = "stowage.queue-per-replica", defaultValue = "64")
    int queuePerReplica;

    @ConfigProperty(name = "stowage.retry-after-seconds", defaultValue = "1")
    int retryAfterSeconds;

    // How long a request for a deployment scaled to zero is held while it activates; then 503 with Retry-After.
    @ConfigProperty(name = "stowage.scaling.activation-timeout", defaultValue = "30s")
    Duration activationTimeout;

    @ConfigProperty(name = "stowage.local.dir")
    Optional<String> localDir;

    // Router mode: the LlmRoute manifests, and NAME=URL pairs for the deployments' APIs (else their Services).
    @ConfigProperty(name = "stowage.router.dir")
    Optional<String> routerDir;

    @ConfigProperty(name = "stowage.router.backends")
    Optional<String> routerBackends;

    // How often the router looks for changed route manifests (the ConfigMap the operator writes); 0s: never.
    @ConfigProperty(name = "stowage.router.reload-interval", defaultValue = "10s")
    Duration routerReloadInterval;

    @ConfigProperty(name = "stowage.router.audit-size", defaultValue = "1000")
    int routerAuditSize;

    @ConfigProperty(name = "stowage.router.try-timeout", defaultValue = "300s")
    Duration routerTryTimeout;

    // Where models may come from (ModelSourcePolicy); in a pod the operator sets HostApi.MODEL_HOSTS_ENV and
    // HostApi.MODEL_ROOTS_ENV, which MicroProfile Config maps to these properties.
    @ConfigProperty(name = "stowage.model.allowed-schemes", defaultValue = "https,hf,s3,file")
    String modelSchemes;

    @ConfigProperty(name = "stowage.model.allowed-hosts", defaultValue = "huggingface.co,*.huggingface.co,*.hf.co")
    String modelHosts;

    @ConfigProperty(name = "stowage.model.roots", defaultValue = "/models,/source")
    String modelRoots;

    @ConfigProperty(name = "stowage.model.max-bytes", defaultValue = "1099511627776")
    long modelMaxBytes;

    @ConfigProperty(name = "stowage.model.connect-timeout", defaultValue = "20s")
    Duration modelConnectTimeout;

    @ConfigProperty(name = "stowage.model.read-timeout", defaultValue = "60s")
    Duration modelReadTimeout;

    @ConfigProperty(name = "stowage.model.deadline", defaultValue = "12h")
    Duration modelDeadline;

    private Host host;
    private Scaler scaler;
    private RouteTableWatcher routesWatcher;
    private HostMetrics metrics;
    private LlmRouter router;
    private AdminServer admin;
    private volatile int adminActualPort = -1;

    @PostConstruct
    void init() {
        DeviceOption deviceOption = DeviceOption.parse(device);
        if (deviceOption == null) {
            throw new StartupException(
                    StartupException.USAGE,
                    "stowage.device (--device) must be " + DeviceOption.FORMS + ", got '" + device + "'");
        }
        int threadCount = threads.orElse(Math.max(1, Runtime.getRuntime().availableProcessors()));
        long ram = ProcMemory.machineRamBytes();
        if (ram <= 0) {
            ram = Runtime.getRuntime().maxMemory();
        }
        if (!(memoryFraction > 0 && memoryFraction <= 1)) {
            // The command line checks --memory-fraction; this is the same setting from the environment or a file.
            throw new StartupException(
                    StartupException.USAGE,
                    "stowage.cpu.memory-fraction (STOWAGE_CPU_MEMORY_FRACTION) must be in (0, 1], got "
                            + memoryFraction);
        }
        // Before anything else is made, so a GPU this build or machine cannot use ends the start with the core's
        // reason (exit 1) and nothing to undo.
        Backend backend = deviceOption.open(threadCount);
        DeviceInfo info = backend.deviceInfo();
        // A GPU host's budget is its GPU's memory unless set (each assignment lowers it to what was planned).
        long total = deviceOption.cuda() ? info.totalBytes() : ram;
        long budget = budgetBytes.orElse(deviceOption.cuda() ? total : (long) (ram * memoryFraction));
        Path cache = Path.of(cacheDir.orElse(System.getProperty("java.io.tmpdir") + "/stowage-models"));
        // In a pod the operator names the device it planned (HostApi.DEVICE_ID_ENV); the state reports that name.
        String deviceId = System.getenv(HostApi.DEVICE_ID_ENV);
        String kind = deviceOption.cuda() ? "gpu" : "cpu";
        HostSettings settings = new HostSettings(
                kind,
                deviceId != null && !deviceId.isBlank() ? deviceId : hostName() + "/" + deviceOption.text(),
                total,
                budget,
                cache,
                threadCount,
                batchTokens,
                logitRows,
                queuePerReplica,
                // The GPU the device plugin gave this pod, by UUID: the operator keys its ledger and DCGM usage on it.
                GpuUuids.single(System.getenv()));
        ModelSourcePolicy policy = sourcePolicy(cache);
        host = new Host(settings, new ModelFetcher(cache, System.getenv(), policy), backend);
        if (activationTimeout.isNegative() || activationTimeout.isZero()) {
            host.close();
            throw new StartupException(
                    StartupException.USAGE,
                    "stowage.scaling.activation-timeout (STOWAGE_SCALING_ACTIVATION_TIMEOUT) must be > 0, got "
                            + activationTimeout);
        }
        scaler = new Scaler(host);
        metrics = new HostMetrics(registry, host);
        // scale to zero: what the scaler did, and how many deployments are scaled to zero now
        for (String eventKind : Scaler.EVENT_KINDS) {
            io.micrometer.core.instrument.FunctionCounter.builder(
                            "stowage_scaling_events_total", scaler, s -> s.eventCount(eventKind))
                    .description("Scale-to-zero events: replicas released, deployments activated, idle models"
                            + " evicted, activations that failed")
                    .tag("kind", eventKind)
                    .register(registry);
        }
        io.micrometer.core.instrument.Gauge.builder(
                        "stowage_scaling_idle_deployments",
                        scaler,
                        s -> s.idleDeployments().size())
                .description("Deployments scaled to zero now (a request activates them)")
                .register(registry);
        if (routerAuditSize < 1) {
            throw new StartupException(
                    StartupException.USAGE,
                    "stowage.router.audit-size (STOWAGE_ROUTER_AUDIT_SIZE) must be at least 1, got " + routerAuditSize);
        }
        router = new LlmRouter(
                HttpClient.newBuilder()
                        .connectTimeout(Duration.ofSeconds(5))
                        .version(HttpClient.Version.HTTP_1_1)
                        .build(),
                json,
                new RouteAudit(routerAuditSize),
                new RouteMetrics(registry),
                HostService::selfUri,
                routerTryTimeout);
        if (routerDir.isPresent()) {
            boolean watched = !routerReloadInterval.isZero() && !routerReloadInterval.isNegative();
            try {
                Path dir = Path.of(routerDir.get());
                String backends = routerBackends.orElse("");
                router.routes(RouterMode.start(dir, backends, System.out, System.err, watched));
                if (watched) {
                    routesWatcher = new RouteTableWatcher(
                            dir,
                            () -> RouterMode.start(dir, backends, System.out, System.err, true),
                            router::routes,
                            routerReloadInterval);
                }
            } catch (RuntimeException e) {
                scaler.close();
                host.close();
                throw e;
            }
        } else if (localDir.isPresent()) {
            Config config = ConfigProvider.getConfig();
            try {
                // Before the models load, so a taken port costs no loading.
                LocalMode.requireListenable(listenHost(config), listeningPort(config));
                RouteTable routes = LocalMode.start(
                        Path.of(localDir.get()),
                        scaler,
                        hostName(),
                        // Planning reads the files the manifests name, wherever they are; the host then reads only
                        // those.
                        new ModelFetcher(cache, System.getenv(), policy.withRoots(null)),
                        System.out,
                        System.err);
                router.routes(routes);
            } catch (RuntimeException e) {
                // Nothing stays behind: the process ends with the reason, before the API opens.
                scaler.close();
                host.close();
                throw e;
            }
        } else {
            LOG.infof(
                    "runtime host for device %s (%s %s%s): budget %s of %s, model cache %s; waiting for assignments",
                    settings.deviceName(),
                    settings.deviceKind(),
                    info.name(),
                    host.state().device().gpuUuid() == null
                            ? ""
                            : ", GPU " + host.state().device().gpuUuid(),
                    ByteSize.human(budget),
                    ByteSize.human(total),
                    cache);
        }
    }

    private ModelSourcePolicy sourcePolicy(Path cache) {
        List<Path> roots = new ArrayList<>();
        roots.add(cache);
        ModelSourcePolicy.list(modelRoots).forEach(r -> roots.add(Path.of(r)));
        return ModelSourcePolicy.defaults(cache)
                .withSchemes(ModelSourcePolicy.list(modelSchemes))
                .withHosts(ModelSourcePolicy.list(modelHosts))
                .withRoots(roots)
                .withMaxBytes(modelMaxBytes)
                .withTimeouts(modelConnectTimeout, modelReadTimeout, modelDeadline);
    }

    /**
     * Says what serves, once the API listens (ServerMain runs this after Quarkus started): in local mode the served
     * models and a request to try.
     */
    void announce(PrintStream out) {
        // LocalMode.start failed the start unless a model served; none serving now would make the banner a lie.
        if (localDir.isPresent() && !scaler.servableNames().isEmpty()) {
            Config config = ConfigProvider.getConfig();
            out.print(LocalMode.banner(
                    scaler.servableNames(),
                    router.routes().routes().stream()
                            .map(RouteTable.Route::name)
                            .toList(),
                    listenHost(config),
                    listeningPort(config)));
            out.flush();
        }
    }

    /** This process's OpenAI API, as local mode's router reaches it (loopback when it listens on every address). */
    private static URI selfUri() {
        Config config = ConfigProvider.getConfig();
        String h = listenHost(config);
        h = switch (h) {
            case "0.0.0.0", "localhost" -> "127.0.0.1";
            case "::" -> "[::1]";
            default -> h.contains(":") ? "[" + h + "]" : h;
        };
        return URI.create("http://" + h + ":" + listeningPort(config));
    }

    private static String listenHost(Config config) {
        return config.getOptionalValue("quarkus.http.host", String.class).orElse("0.0.0.0");
    }

    /** The API's port: Quarkus sets the property to the bound port when the configured one is 0 (any free port). */
    private static int listeningPort(Config config) {
        String key = LaunchMode.current() == LaunchMode.TEST ? "quarkus.http.test-port" : "quarkus.http.port";
        String bound = System.getProperty(key);
        if (bound != null) {
            return Integer.parseInt(bound);
        }
        return config.getOptionalValue(key, Integer.class).orElse(HostApi.DEFAULT_API_PORT);
    }

    void routes(@Observes Router router) {
        new OpenAiRoutes(host, metrics, json, retryAfterSeconds)
                .withRoutes(new RouteRoutes(this.router, json))
                .withScaler(scaler, activationTimeout)
                .register(router);
    }

    void start(@Observes StartupEvent ev) throws Exception {
        String token = adminToken.filter(t -> !t.isBlank()).orElse(System.getenv(HostApi.TOKEN_ENV));
        AdminServer.Settings settings = new AdminServer.Settings(
                adminPort,
                token,
                adminTokenFile.filter(f -> !f.isBlank()).map(Path::of).orElse(null),
                adminCertFile.filter(f -> !f.isBlank()).map(Path::of).orElse(null),
                adminKeyFile.filter(f -> !f.isBlank()).map(Path::of).orElse(null),
                adminReloadInterval);
        if (!settings.enabled()) {
            LOG.infof("admin API off: neither %s nor %s is set", HostApi.TOKEN_ENV, HostApi.TOKEN_FILE_ENV);
            return;
        }
        // A host pod (neither local nor router mode) takes its scaling policies and dormant deployments with its
        // assignment; local mode's scaler gets its policies from the manifests.
        boolean hostPod = localDir.isEmpty() && routerDir.isEmpty();
        admin = AdminServer.start(vertx, hostPod ? scaler::applyHost : host::apply, scaler::state, json, settings);
        adminActualPort = admin.port();
        LOG.infof("admin API on port %d (%s)", adminActualPort, admin.tls() ? "TLS" : "plain HTTP");
    }

    // IF_EXISTS: a service that failed to start has nothing to stop, and must not be created again to stop it.
    void stop(@Observes(notifyObserver = Reception.IF_EXISTS) ShutdownEvent ev) {
        if (admin != null) {
            admin.close();
        }
        if (routesWatcher != null) {
            routesWatcher.close();
        }
        scaler.close();
        host.close();
    }

    public Host host() {
        return host;
    }

    public Scaler scaler() {
        return scaler;
    }

    /** The router of this process's LlmRoutes (empty unless local or router mode read some). */
    public LlmRouter router() {
        return router;
    }

    /** The admin API's port (useful with port 0), or -1 when it is off. */
    public int adminPort() {
        return adminActualPort;
    }

    private static String hostName() {
        String env = System.getenv("NODE_NAME");
        if (env != null && !env.isBlank()) {
            return env;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            return "localhost";
        }
    }
}
