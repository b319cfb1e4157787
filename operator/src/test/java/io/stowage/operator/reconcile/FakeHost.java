package io.stowage.operator.reconcile;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import io.stowage.hostapi.AdminError;
import io.stowage.hostapi.DeviceState;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.operator.host.HostAdminClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;

/** A real HTTP server playing one runtime host's admin API: checks the token, keeps the assignment, reports state. */
final class FakeHost implements AutoCloseable {
    final HttpServer server;
    final boolean tls;
    volatile String token;
    final AtomicInteger puts = new AtomicInteger();
    volatile HostAssignment assignment = new HostAssignment(0, 0, List.of(), List.of());
    volatile long delayMillis;
    volatile String failModelReason;
    /** Models whose URI ends with one of these fail to load on this host, with the reason "corrupt file". */
    final java.util.Set<String> failingUris = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Models whose URI ends with one of these are still loading on this host. */
    final java.util.Set<String> loadingUris = java.util.concurrent.ConcurrentHashMap.newKeySet();

    volatile boolean garbage;

    /**
     * Deployments whose replicas this host has released (scaled to zero, as its Scaler would after the idle timeout
     * of a scaling policy in its assignment): their KV is given back and they are reported Idle.
     */
    final java.util.Set<String> released = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Requests held per deployment (a dormant one's are the demand the operator acts on). */
    final java.util.Map<String, Integer> held = new java.util.concurrent.ConcurrentHashMap<>();
    /** When each deployment was last used here (epoch milliseconds). */
    final java.util.Map<String, Long> lastUsedMillis = new java.util.concurrent.ConcurrentHashMap<>();
    /** How many times the state was read. */
    final AtomicInteger stateReads = new AtomicInteger();
    /** The UUID of the GPU this host reports it was given, or null. */
    volatile String gpuUuid;
    /** The UUID of the GPU this host's CUDA backend reports it opened (device.backend.uuid), or null: no backend. */
    volatile String backendUuid;

    FakeHost(String token) throws IOException {
        this(token, null);
    }

    /** @param tls the server's key and certificate; null for plain HTTP */
    FakeHost(String token, SSLContext tls) throws IOException {
        this.token = token;
        this.tls = tls != null;
        if (tls == null) {
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        } else {
            HttpsServer https = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            https.setHttpsConfigurator(new HttpsConfigurator(tls));
            server = https;
        }
        server.createContext(HostApi.STATE_PATH, this::state);
        server.createContext(HostApi.ASSIGNMENT_PATH, this::assign);
        // Several threads: a request held by delayMillis must not block the next one.
        server.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
        server.start();
    }

    URI uri() {
        return URI.create(
                (tls ? "https" : "http") + "://127.0.0.1:" + server.getAddress().getPort());
    }

    /** What a restarted host knows: nothing. */
    void crash() {
        assignment = new HostAssignment(0, 0, List.of(), List.of());
    }

    private boolean authorised(HttpExchange ex) throws IOException {
        String auth = ex.getRequestHeaders().getFirst(HostApi.AUTHORIZATION_HEADER);
        if (!(HostApi.BEARER_PREFIX + token).equals(auth)) {
            send(ex, 401, new AdminError("Unauthorized", "missing or wrong bearer token"));
            return false;
        }
        return true;
    }

    private void pause() {
        if (delayMillis > 0) {
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void state(HttpExchange ex) throws IOException {
        pause();
        stateReads.incrementAndGet();
        if (authorised(ex)) {
            send(ex, 200, currentState());
        }
    }

    private void assign(HttpExchange ex) throws IOException {
        pause();
        if (!authorised(ex)) {
            return;
        }
        if (!"PUT".equals(ex.getRequestMethod())) {
            send(ex, 405, new AdminError("MethodNotAllowed", ex.getRequestMethod()));
            return;
        }
        HostAssignment a = HostAdminClient.JSON.readValue(ex.getRequestBody(), HostAssignment.class);
        puts.incrementAndGet();
        assignment = a;
        send(ex, 200, currentState());
    }

    HostState currentState() {
        HostAssignment a = assignment;
        List<ModelState> models = new ArrayList<>();
        long used = 0;
        java.util.Map<String, ModelPhase> phases = new java.util.HashMap<>();
        for (ModelAssignment m : a.models()) {
            ModelPhase phase = failModelReason == null ? ModelPhase.LOADED : ModelPhase.FAILED;
            String reason = failModelReason;
            if (failingUris.stream().anyMatch(m.uri()::endsWith)) {
                phase = ModelPhase.FAILED;
                reason = "corrupt file";
            } else if (loadingUris.stream().anyMatch(m.uri()::endsWith)) {
                phase = ModelPhase.LOADING;
            }
            phases.put(m.digest(), phase);
            models.add(new ModelState(
                    m.digest(),
                    m.uri(),
                    phase,
                    reason,
                    m.weightBytes(),
                    m.weightBytes(),
                    m.weightBytes(),
                    m.workspaceBytes()));
            used += m.weightBytes() + m.workspaceBytes();
        }
        java.util.Set<String> policies = new java.util.HashSet<>();
        a.scaling().forEach(p -> policies.add(p.deployment()));
        java.util.Set<String> releasedHere = new java.util.HashSet<>(released);
        releasedHere.retainAll(policies);
        List<io.stowage.hostapi.DeploymentScalingState> scaling = new ArrayList<>();
        for (io.stowage.hostapi.ScalingPolicy p : a.scaling()) {
            List<String> ids = a.replicas().stream()
                    .filter(r -> r.deployment().equals(p.deployment()))
                    .map(ReplicaAssignment::id)
                    .sorted()
                    .toList();
            boolean idle = releasedHere.contains(p.deployment());
            long reclaimable = 0;
            if (idle) {
                String digest = a.replicas().stream()
                        .filter(r -> r.deployment().equals(p.deployment()))
                        .findFirst()
                        .map(ReplicaAssignment::modelDigest)
                        .orElse("");
                reclaimable = a.models().stream()
                        .filter(m -> m.digest().equals(digest))
                        .mapToLong(m -> m.weightBytes() + m.workspaceBytes())
                        .sum();
            }
            scaling.add(new io.stowage.hostapi.DeploymentScalingState(
                    p.deployment(),
                    null,
                    idle
                            ? io.stowage.hostapi.DeploymentScalingState.IDLE
                            : io.stowage.hostapi.DeploymentScalingState.ACTIVE,
                    idle ? ids : List.of(),
                    lastUsedMillis.getOrDefault(p.deployment(), 0L),
                    reclaimable,
                    held.getOrDefault(p.deployment(), 0),
                    held.getOrDefault(p.deployment(), 0) > 0 ? 1 : 0));
        }
        for (io.stowage.hostapi.DormantDeployment d : a.dormant()) {
            scaling.add(new io.stowage.hostapi.DeploymentScalingState(
                    d.deployment(),
                    d.servedModelName(),
                    io.stowage.hostapi.DeploymentScalingState.DORMANT,
                    List.of(),
                    lastUsedMillis.getOrDefault(d.deployment(), 0L),
                    0,
                    held.getOrDefault(d.deployment(), 0),
                    held.getOrDefault(d.deployment(), 0) > 0 ? 1 : 0));
        }
        List<ReplicaState> replicas = new ArrayList<>();
        for (ReplicaAssignment r : a.replicas()) {
            if (releasedHere.contains(r.deployment())) {
                continue; // released: not served, its KV given back
            }
            replicas.add(new ReplicaState(
                    r.id(),
                    r.deployment(),
                    r.servedModelName(),
                    r.modelDigest(),
                    phases.get(r.modelDigest()) == ModelPhase.LOADED,
                    r.kvBytes(),
                    0,
                    0,
                    0));
            used += r.kvBytes();
        }
        return new HostState(
                a.generation(),
                new DeviceState(
                        "gpu",
                        "fake",
                        0,
                        a.budgetBytes(),
                        used,
                        gpuUuid,
                        backendUuid == null
                                ? null
                                : new io.stowage.hostapi.BackendState(
                                        "cuda", "fake", backendUuid, 40L << 30, 40L << 30, used, 0)),
                models,
                replicas,
                0,
                0,
                scaling);
    }

    private void send(HttpExchange ex, int code, Object body) throws IOException {
        byte[] b = garbage
                ? "<html>not json".getBytes(StandardCharsets.UTF_8)
                : HostAdminClient.JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(code, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
