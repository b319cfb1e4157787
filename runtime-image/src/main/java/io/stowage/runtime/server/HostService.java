package io.stowage.runtime.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostState;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.runtime.admin.AdminServer;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.host.ProcMemory;
import io.stowage.runtime.local.LocalPlan;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.openai.OpenAiRoutes;
import io.vertx.core.Vertx;
import io.vertx.ext.web.Router;
import jakarta.annotation.PostConstruct;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
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

    @ConfigProperty(name = "stowage.batch-tokens", defaultValue = "512")
    int batchTokens;

    @ConfigProperty(name = "stowage.logit-rows", defaultValue = "64")
    int logitRows;

    @ConfigProperty(name = "stowage.queue-per-replica", defaultValue = "64")
    int queuePerReplica;

    @ConfigProperty(name = "stowage.retry-after-seconds", defaultValue = "1")
    int retryAfterSeconds;

    @ConfigProperty(name = "stowage.local.dir")
    Optional<String> localDir;

    private Host host;
    private HostMetrics metrics;
    private AdminServer admin;
    private volatile int adminActualPort = -1;

    @PostConstruct
    void init() {
        long ram = ProcMemory.machineRamBytes();
        if (ram <= 0) {
            ram = Runtime.getRuntime().maxMemory();
        }
        if (!(memoryFraction > 0 && memoryFraction <= 1)) {
            throw new IllegalArgumentException("stowage.cpu.memory-fraction must be in (0, 1], got " + memoryFraction);
        }
        long budget = budgetBytes.orElse((long) (ram * memoryFraction));
        Path cache = Path.of(cacheDir.orElse(System.getProperty("java.io.tmpdir") + "/stowage-models"));
        // In a pod the operator names the device it planned (HostApi.DEVICE_ID_ENV); the state reports that name.
        String deviceId = System.getenv(HostApi.DEVICE_ID_ENV);
        HostSettings settings = new HostSettings(
                "cpu",
                deviceId != null && !deviceId.isBlank() ? deviceId : hostName() + "/cpu",
                ram,
                budget,
                cache,
                threads.orElse(Math.max(1, Runtime.getRuntime().availableProcessors())),
                batchTokens,
                logitRows,
                queuePerReplica);
        host = new Host(settings, new ModelFetcher(cache, System.getenv()));
        metrics = new HostMetrics(registry, host);
        if (localDir.isPresent()) {
            startLocal(Path.of(localDir.get()), settings);
        } else {
            LOG.infof(
                    "runtime host for device %s (%s): budget %s of %s RAM, model cache %s; waiting for assignments",
                    settings.deviceName(), settings.deviceKind(), ByteSize.human(budget), ByteSize.human(ram), cache);
        }
    }

    private void startLocal(Path dir, HostSettings settings) {
        try {
            LocalPlan plan = LocalPlan.of(
                    dir, settings.budgetBytes(), hostName(), new ModelFetcher(settings.cacheDir(), System.getenv()));
            for (String w : plan.warnings()) {
                System.out.println("warning: " + w);
            }
            System.out.print(plan.table());
            host.apply(plan.assignment());
            // Local mode answers once its models are loaded (a small model loads in well under a second).
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
            while (!host.allReady() && System.nanoTime() < deadline) {
                HostState s = host.state();
                if (s.models().stream().anyMatch(m -> m.phase() == io.stowage.hostapi.ModelPhase.FAILED)) {
                    break;
                }
                Thread.sleep(20);
            }
            HostState s = host.state();
            for (var m : s.models()) {
                if (m.reason() != null) {
                    System.out.println("model " + m.digest() + " " + m.phase() + ": " + m.reason());
                }
            }
            long kv = s.replicas().stream().mapToLong(r -> r.kvReservedBytes()).sum();
            long weights = s.models().stream().mapToLong(m -> m.weightBytes()).sum();
            long workspace =
                    s.models().stream().mapToLong(m -> m.workspaceBytes()).sum();
            System.out.printf(
                    "Measured: weights %s (once per model), KV reserved %s, workspace %s; process RSS %s, PSS %s%n",
                    ByteSize.human(weights),
                    ByteSize.human(kv),
                    ByteSize.human(workspace),
                    ByteSize.human(s.processRssBytes()),
                    ByteSize.human(s.processPssBytes()));
            int port = ConfigProvider.getConfig()
                    .getOptionalValue("quarkus.http.port", Integer.class)
                    .orElse(HostApi.DEFAULT_API_PORT);
            String first = host.servedModelNames().stream().findFirst().orElse("MODEL");
            System.out.printf(
                    "Serving %s on http://localhost:%d/v1 — try:%n  curl -s localhost:%d/v1/chat/completions"
                            + " -H 'Content-Type: application/json' -d '{\"model\": \"%s\", \"messages\":"
                            + " [{\"role\": \"user\", \"content\": \"Once upon a time\"}], \"max_tokens\": 40}'%n",
                    host.servedModelNames(), port, port, first);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            throw new IllegalStateException("serve -f " + dir + ": " + e.getMessage(), e);
        }
    }

    void routes(@Observes Router router) {
        new OpenAiRoutes(host, metrics, json, retryAfterSeconds).register(router);
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
        admin = AdminServer.start(vertx, host, json, settings);
        adminActualPort = admin.port();
        LOG.infof("admin API on port %d (%s)", adminActualPort, admin.tls() ? "TLS" : "plain HTTP");
    }

    void stop(@Observes ShutdownEvent ev) {
        if (admin != null) {
            admin.close();
        }
        host.close();
    }

    public Host host() {
        return host;
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
