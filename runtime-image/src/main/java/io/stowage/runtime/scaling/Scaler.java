package io.stowage.runtime.scaling;

import io.stowage.hostapi.DeploymentScalingState;
import io.stowage.hostapi.DormantDeployment;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ScalingPolicy;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.manifest.Scaling;
import io.stowage.runtime.host.AssignmentException;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.LoadedModel;
import io.stowage.runtime.host.Replica;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * Scale to zero and hot swap on one host: releases the replicas of a deployment idle past its
 * {@code spec.scaling.idleTimeout} (their KV returns to the host, the model's weights stay resident), activates a
 * released deployment on its next request, and drops the weights of the least recently used idle models when an
 * activation needs their memory (never those of a model with a replica serving or a request in flight).
 *
 * <p>It owns what the host is given: the desired assignment (every replica the manifests ask for) minus the released
 * replicas and the dropped models is what {@link Host#apply} sees. A request holds a {@link Lease} from its arrival
 * until it is queued on a replica, so a deployment with a request in flight is never released under it.
 *
 * <p>In a host pod ({@link #applyHost}) the operator owns the memory: the policies and the dormant deployments come
 * with the assignment, the host releases and re-activates its own replicas, holds the requests of a dormant
 * deployment and reports them as demand, and never drops weights on its own (it drops what the assignment drops).
 */
public final class Scaler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Scaler.class);

    /** How often idle deployments are looked for, at most (a short idle timeout is checked more often). */
    static final long MAX_TICK_MILLIS = 1000;

    /** How often a held request's deployment is checked while it activates. */
    static final long WAIT_POLL_MILLIS = 2;

    /** How long an eviction may take to free the weights before the activation goes on without waiting. */
    static final long FREE_WAIT_MILLIS = 5000;

    private final Host host;
    private final ScheduledExecutorService timer;

    // Guarded by this.
    private HostAssignment desired = new HostAssignment(0, 0, List.of(), List.of());
    private final Map<String, Scaling> policies = new HashMap<>();
    private final Map<String, Use> use = new HashMap<>();
    private final Set<String> released = new HashSet<>();
    private final Set<String> dropped = new HashSet<>();
    private final Map<String, String> activationFailures = new HashMap<>();
    private final Map<String, DormantDeployment> dormant = new TreeMap<>();
    /** In a host pod: the operator owns the memory, so an activation never evicts (see {@link #applyHost}). */
    private boolean hostMode;

    private final List<Waiter> waiters = new ArrayList<>();
    private final List<Event> events = new ArrayList<>();
    private final Map<String, Long> eventCounts = new HashMap<>();
    private ScheduledFuture<?> reaper;
    private ScheduledFuture<?> poller;
    private boolean closed;

    /**
     * A deployment's use: requests in flight, when it last served (System.nanoTime, and the wall clock for the
     * host's state), and since when requests have been in flight without a break (wall clock; 0 when none).
     */
    private static final class Use {
        int inFlight;
        long lastUsedNanos;
        long lastUsedMillis;
        long busySinceMillis;

        Use(long now) {
            touch(now);
        }

        void touch(long now) {
            lastUsedNanos = now;
            lastUsedMillis = System.currentTimeMillis() - (System.nanoTime() - now) / 1_000_000;
        }
    }

    /** A held request waiting for a served name to have a ready replica. */
    private record Waiter(String servedName, CompletableFuture<Void> ready) {}

    /** What the scaler did, for its log and tests: released, activated, evicted. */
    public record Event(String kind, String subject, long bytes, String detail) {}

    public Scaler(Host host) {
        this.host = host;
        this.timer = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("stowage-scaler").daemon().factory());
    }

    public Host host() {
        return host;
    }

    /**
     * Gives the host the desired assignment, less what is released: deployments in {@code startIdle} start with no
     * replica and no weights (they did not fit beside the others; their first request activates them, evicting idle
     * models as needed).
     *
     * @param policies {@code spec.scaling} by deployment id; a deployment without one is never released
     * @throws AssignmentException as {@link Host#apply}
     */
    public synchronized HostState apply(HostAssignment a, Map<String, Scaling> policies, Set<String> startIdle) {
        long now = System.nanoTime();
        Set<String> ids = new HashSet<>();
        a.replicas().forEach(r -> ids.add(r.id()));
        Set<String> digests = new HashSet<>();
        a.models().forEach(m -> digests.add(m.digest()));
        this.desired = a;
        this.policies.clear();
        this.policies.putAll(policies);
        released.retainAll(ids);
        // A replica whose deployment lost its policy serves again: nothing would ever activate it.
        released.removeIf(id -> {
            ReplicaAssignment r = replicaAssignment(id);
            return r == null || !this.policies.containsKey(r.deployment());
        });
        dropped.retainAll(digests);
        for (ReplicaAssignment r : a.replicas()) {
            use.computeIfAbsent(r.deployment(), k -> new Use(now));
        }
        for (String d : startIdle) {
            replicasOf(Set.of(d)).forEach(r -> released.add(r.id()));
        }
        for (ModelAssignment m : a.models()) {
            if (replicasOfModel(m.digest()).stream().allMatch(r -> released.contains(r.id()))
                    && replicasOfModel(m.digest()).stream().anyMatch(r -> startIdle.contains(r.deployment()))) {
                dropped.add(m.digest());
            }
        }
        HostState s = host.apply(effective());
        schedule();
        return s;
    }

    /** The desired assignment less the released replicas and the dropped models: what the host is given. */
    synchronized HostAssignment effective() {
        List<ModelAssignment> models = desired.models().stream()
                .filter(m -> !dropped.contains(m.digest()))
                .toList();
        List<ReplicaAssignment> replicas = desired.replicas().stream()
                .filter(r -> !released.contains(r.id()))
                .toList();
        return new HostAssignment(desired.generation(), desired.budgetBytes(), models, replicas);
    }

    private void schedule() {
        if (reaper != null || closed) {
            return;
        }
        long tick = MAX_TICK_MILLIS;
        for (Scaling s : policies.values()) {
            tick = Math.min(tick, Math.max(10, s.idleTimeout().toMillis() / 4));
        }
        reaper = timer.scheduleWithFixedDelay(this::tickSafely, tick, tick, TimeUnit.MILLISECONDS);
    }

    private void tickSafely() {
        try {
            releaseIdle();
        } catch (RuntimeException e) {
            LOG.errorf(e, "scaler: releasing idle replicas failed; trying again at the next tick");
        }
    }

    /**
     * Releases, down to minReplicas, the replicas of each deployment with no request in flight, none queued or
     * running, and none arrived for its idle timeout.
     *
     * @return how many replicas were released
     */
    synchronized int releaseIdle() {
        long now = System.nanoTime();
        Map<String, List<Replica>> serving = new HashMap<>();
        for (Replica r : host.replicas()) {
            ReplicaAssignment ra = replicaAssignment(r.id());
            if (ra != null) {
                serving.computeIfAbsent(ra.deployment(), k -> new ArrayList<>()).add(r);
            }
        }
        Set<String> ready = new HashSet<>();
        for (Replica r : host.replicas()) {
            if (r.model().phase() == ModelPhase.LOADED) {
                ready.add(r.id());
            }
        }
        Map<String, Long> kvReserved = null; // read from the host's state once something is released
        int count = 0;
        for (Map.Entry<String, Scaling> e : new TreeMap<>(policies).entrySet()) {
            String deployment = e.getKey();
            Use u = use.computeIfAbsent(deployment, k -> new Use(now));
            boolean busy = u.inFlight > 0;
            for (Replica r : serving.getOrDefault(deployment, List.of())) {
                busy |= r.queuedRequests() > 0 || r.activeSequences() > 0;
            }
            if (busy) {
                u.touch(now);
                continue;
            }
            List<ReplicaAssignment> active = replicasOf(Set.of(deployment)).stream()
                    .filter(r -> !released.contains(r.id()))
                    .toList();
            if (active.stream().anyMatch(r -> !ready.contains(r.id()))) {
                u.touch(now); // still loading: its idle time starts once it serves
                continue;
            }
            int release = active.size() - e.getValue().minReplicas();
            if (release <= 0
                    || now - u.lastUsedNanos < e.getValue().idleTimeout().toNanos()) {
                continue;
            }
            if (kvReserved == null) {
                kvReserved = new HashMap<>();
                for (var r : host.state().replicas()) {
                    kvReserved.put(r.id(), r.kvReservedBytes());
                }
            }
            long kv = 0;
            for (ReplicaAssignment r : active.subList(active.size() - release, active.size())) {
                released.add(r.id());
                kv += kvReserved.getOrDefault(r.id(), 0L);
            }
            count += release;
            event(
                    "released",
                    deployment,
                    kv,
                    release + " replica(s) after " + Scaling.text(e.getValue().idleTimeout()) + " idle; KV "
                            + ByteSize.human(kv) + " returns to the host, the weights stay resident");
        }
        if (count > 0) {
            host.converge(effective());
        }
        return count;
    }

    /**
     * Marks a request for {@code servedName} in flight until the lease is closed, and activates the deployments that
     * serve it when they are released.
     *
     * @return the lease, or null when no deployment with {@code spec.scaling} serves that name (nothing to hold)
     */
    public synchronized Lease acquire(String servedName) {
        Set<String> deployments = new LinkedHashSet<>();
        for (ReplicaAssignment r : desired.replicas()) {
            if (r.servedModelName().equals(servedName) && policies.containsKey(r.deployment())) {
                deployments.add(r.deployment());
            }
        }
        for (DormantDeployment d : dormant.values()) {
            if (d.servedModelName().equals(servedName)) {
                deployments.add(d.deployment()); // held, and reported as demand, until its replicas come back
            }
        }
        if (deployments.isEmpty()) {
            return null;
        }
        long now = System.nanoTime();
        for (String d : deployments) {
            Use u = use.computeIfAbsent(d, k -> new Use(now));
            if (u.inFlight++ == 0) {
                u.busySinceMillis = System.currentTimeMillis();
            }
            u.touch(now);
        }
        Lease lease = new Lease(servedName, deployments);
        if (replicasOf(deployments).stream().anyMatch(r -> released.contains(r.id()))) {
            activate(servedName, deployments);
        }
        return lease;
    }

    /** Served names a request may use: those with a ready replica and those scaled to zero (activated on request). */
    public Set<String> servableNames() {
        Set<String> out = new java.util.TreeSet<>(host.servedModelNames());
        out.addAll(idleServedNames());
        return out;
    }

    /**
     * Drops the resident weights of a deployment scaled to zero now, as an activation under memory pressure would
     * (its next request loads them from the file again).
     *
     * @return false, changing nothing, when the deployment is not scaled to zero, its weights are already gone, or
     *     another deployment that is not idle shares its model file
     */
    public synchronized boolean evictIdle(String deployment) {
        List<ReplicaAssignment> rs = replicasOf(Set.of(deployment));
        if (rs.isEmpty() || !rs.stream().allMatch(r -> released.contains(r.id()))) {
            return false;
        }
        String digest = rs.getFirst().modelDigest();
        ModelAssignment model = desired.models().stream()
                .filter(m -> m.digest().equals(digest))
                .findFirst()
                .orElse(null);
        if (model == null
                || dropped.contains(digest)
                || !replicasOfModel(digest).stream().allMatch(r -> released.contains(r.id()))) {
            return false;
        }
        evict(model);
        return true;
    }

    /** Whether the host serves this name now (a ready replica), for the front door's fast path. */
    public boolean serving(String servedName) {
        return host.route(servedName) != null;
    }

    /**
     * Completes once {@code servedName} has a ready replica; fails with the reason when its activation failed (no
     * memory left to evict, the model failed to load). The caller bounds the wait.
     */
    public synchronized CompletableFuture<Void> whenServing(String servedName) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        String failure = activationFailures.get(servedName);
        if (failure != null) {
            f.completeExceptionally(new ActivationException(failure));
        } else if (host.route(servedName) != null) {
            f.complete(null);
        } else {
            waiters.add(new Waiter(servedName, f));
            if (poller == null && !closed) {
                poller = timer.scheduleWithFixedDelay(
                        this::pollSafely, WAIT_POLL_MILLIS, WAIT_POLL_MILLIS, TimeUnit.MILLISECONDS);
            }
        }
        return f;
    }

    private void pollSafely() {
        try {
            poll();
        } catch (RuntimeException e) {
            LOG.errorf(e, "scaler: checking held requests failed; trying again");
        }
    }

    /** Completes the waiters whose name serves now, or whose model failed; re-applies when a replica waits for room. */
    private synchronized void poll() {
        boolean retry = false;
        for (Waiter w : List.copyOf(waiters)) {
            String failure = activationFailures.get(w.servedName());
            String modelFailure = failedModel(w.servedName());
            if (host.route(w.servedName()) != null) {
                w.ready().complete(null);
            } else if (failure != null || modelFailure != null) {
                w.ready().completeExceptionally(new ActivationException(failure != null ? failure : modelFailure));
            } else {
                // A replica refused for want of room that an eviction is still freeing gets it on the next apply.
                retry |= desired.replicas().stream()
                        .filter(r -> r.servedModelName().equals(w.servedName()) && !released.contains(r.id()))
                        .anyMatch(r -> host.replicaProblem(r.id()) != null);
                continue;
            }
            waiters.remove(w);
        }
        if (retry) {
            try {
                host.converge(effective());
            } catch (AssignmentException e) {
                LOG.debugf("scaler: re-apply while activating: %s", e.getMessage());
            }
        }
        if (waiters.isEmpty() && poller != null) {
            poller.cancel(false);
            poller = null;
        }
    }

    /** Why the model of a served name failed (to load, from disk after an eviction), or null. */
    private String failedModel(String servedName) {
        for (ReplicaAssignment r : desired.replicas()) {
            if (!r.servedModelName().equals(servedName) || released.contains(r.id())) {
                continue;
            }
            for (LoadedModel m : host.models()) {
                if (m.digest().equals(r.modelDigest()) && m.phase() == ModelPhase.FAILED) {
                    return "model " + m.digest() + " of '" + servedName + "' failed to load: " + m.reason();
                }
            }
        }
        return null;
    }

    /**
     * Gives the released replicas of the deployments back to the host, dropping the weights of idle models least
     * recently used first while the host refuses for want of memory. On failure nothing changes and the name's
     * waiters fail with the reason.
     */
    private void activate(String servedName, Set<String> deployments) {
        Set<String> wasReleased = new HashSet<>(released);
        Set<String> wasDropped = new HashSet<>(dropped);
        List<ReplicaAssignment> wanted = replicasOf(deployments);
        wanted.forEach(r -> released.remove(r.id()));
        wanted.forEach(r -> dropped.remove(r.modelDigest()));
        boolean fromDisk = wanted.stream().anyMatch(r -> wasDropped.contains(r.modelDigest()));
        activationFailures.remove(servedName);
        List<String> evicted = new ArrayList<>();
        while (true) {
            try {
                host.converge(effective());
                event(
                        "activated",
                        String.join(",", deployments),
                        0,
                        wanted.size() + " replica(s) for '" + servedName + "' "
                                + (fromDisk ? "(weights loaded from the file)" : "(weights resident)")
                                + (evicted.isEmpty() ? "" : "; evicted idle " + evicted));
                return;
            } catch (AssignmentException e) {
                if (e.httpStatus() != 409 || hostMode) {
                    // In a host pod the operator owns the memory: the host never evicts on its own.
                    fail(servedName, wasReleased, wasDropped, evicted, e.getMessage());
                    return;
                }
                ModelAssignment victim = leastRecentlyUsedIdleModel(wanted);
                if (victim == null) {
                    fail(
                            servedName,
                            wasReleased,
                            wasDropped,
                            evicted,
                            "cannot activate '" + servedName + "': " + e.getMessage()
                                    + "; no idle model is left to evict (a model with a replica serving or a request"
                                    + " in flight is never evicted)");
                    return;
                }
                evict(victim);
                evicted.add(victim.digest());
            }
        }
    }

    /** Puts back what the activation changed, except the evictions it made (those weights were idle, and are gone). */
    private void fail(
            String servedName, Set<String> wasReleased, Set<String> wasDropped, List<String> evicted, String why) {
        released.clear();
        released.addAll(wasReleased);
        dropped.clear();
        dropped.addAll(wasDropped);
        dropped.addAll(evicted);
        activationFailures.put(servedName, why);
        event("activation-failed", servedName, 0, why);
        try {
            host.converge(effective());
        } catch (AssignmentException e) {
            LOG.warnf("scaler: restoring the assignment after a failed activation: %s", e.getMessage());
        }
    }

    /**
     * The model with every replica released and no request in flight, used least recently (ties by digest), other
     * than the models being activated; null when none.
     */
    private ModelAssignment leastRecentlyUsedIdleModel(List<ReplicaAssignment> activating) {
        Set<String> keep = new HashSet<>();
        activating.forEach(r -> keep.add(r.modelDigest()));
        Map<ModelAssignment, Long> idle = new LinkedHashMap<>();
        for (ModelAssignment m : desired.models()) {
            if (keep.contains(m.digest()) || dropped.contains(m.digest())) {
                continue;
            }
            List<ReplicaAssignment> rs = replicasOfModel(m.digest());
            boolean allReleased = rs.stream().allMatch(r -> released.contains(r.id()));
            boolean inFlight =
                    rs.stream().anyMatch(r -> use.get(r.deployment()) != null && use.get(r.deployment()).inFlight > 0);
            if (!allReleased || inFlight) {
                continue;
            }
            long last = rs.stream()
                    .mapToLong(r ->
                            use.get(r.deployment()) == null ? Long.MIN_VALUE : use.get(r.deployment()).lastUsedNanos)
                    .max()
                    .orElse(Long.MIN_VALUE);
            idle.put(m, last);
        }
        return idle.entrySet().stream()
                .min(Comparator.comparingLong((Map.Entry<ModelAssignment, Long> e) -> e.getValue())
                        .thenComparing(e -> e.getKey().digest()))
                .map(Map.Entry::getKey)
                .orElse(null);
    }

    /** Drops an idle model's weights and waits (bounded) until the host has freed them. */
    private void evict(ModelAssignment victim) {
        LoadedModel loaded = host.models().stream()
                .filter(m -> m.digest().equals(victim.digest()))
                .findFirst()
                .orElse(null);
        long bytes = 0;
        if (loaded != null) {
            HostState s = host.state();
            bytes = s.models().stream()
                    .filter(m -> m.digest().equals(victim.digest()))
                    .mapToLong(m -> m.weightBytes() + m.workspaceBytes())
                    .sum();
        }
        dropped.add(victim.digest());
        host.converge(effective());
        event(
                "evicted",
                victim.digest(),
                bytes,
                "least recently used idle model: " + ByteSize.human(bytes) + " (weights and workspace) of "
                        + victim.uri() + " freed for an activation");
        if (loaded == null) {
            return;
        }
        // The device thread frees the weights once it sees the model removed (it has no sequence left).
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FREE_WAIT_MILLIS);
        while (loaded.model() != null && System.nanoTime() < deadline) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private List<ReplicaAssignment> replicasOf(Set<String> deployments) {
        return desired.replicas().stream()
                .filter(r -> deployments.contains(r.deployment()))
                .toList();
    }

    private List<ReplicaAssignment> replicasOfModel(String digest) {
        return desired.replicas().stream()
                .filter(r -> r.modelDigest().equals(digest))
                .toList();
    }

    private ReplicaAssignment replicaAssignment(String id) {
        for (ReplicaAssignment r : desired.replicas()) {
            if (r.id().equals(id)) {
                return r;
            }
        }
        return null;
    }

    /** The kinds of {@link Event}, for the metrics. */
    public static final List<String> EVENT_KINDS = List.of("released", "activated", "evicted", "activation-failed");

    private void event(String kind, String subject, long bytes, String detail) {
        eventCounts.merge(kind, 1L, Long::sum);
        events.add(new Event(kind, subject, bytes, detail));
        if (events.size() > 1000) {
            events.removeFirst();
        }
        LOG.infof("scaler: %s %s: %s", kind, subject, detail);
    }

    /** How many events of a kind since the start (all of them, unlike {@link #events}). */
    public synchronized long eventCount(String kind) {
        return eventCounts.getOrDefault(kind, 0L);
    }

    /** What the scaler did, oldest first (the last 1,000). */
    public synchronized List<Event> events() {
        return List.copyOf(events);
    }

    /** Requests holding a lease on the deployment now (arrived, not yet queued on a replica or answered). */
    public synchronized int requestsInFlight(String deployment) {
        Use u = use.get(deployment);
        return u == null ? 0 : u.inFlight;
    }

    /** Deployment ids with every replica released (scaled to zero), sorted. */
    public synchronized Set<String> idleDeployments() {
        Set<String> out = new java.util.TreeSet<>();
        for (String d : policies.keySet()) {
            List<ReplicaAssignment> rs = replicasOf(Set.of(d));
            if (!rs.isEmpty() && rs.stream().allMatch(r -> released.contains(r.id()))) {
                out.add(d);
            }
        }
        return out;
    }

    /** Served names of deployments that are scaled to zero or dormant here (a request activates them), sorted. */
    public synchronized Set<String> idleServedNames() {
        Set<String> out = new java.util.TreeSet<>();
        Set<String> idle = idleDeployments();
        desired.replicas().stream()
                .filter(r -> idle.contains(r.deployment()))
                .forEach(r -> out.add(r.servedModelName()));
        dormant.values().forEach(d -> out.add(d.servedModelName()));
        return out;
    }

    /**
     * Applies an assignment from the operator (a host pod): its scaling policies and dormant deployments with it.
     * Released replicas stay released while the assignment keeps them; requests held for a deployment that leaves
     * this host without replicas here are answered at once (503, retry: the Service now routes elsewhere).
     *
     * @throws AssignmentException Invalid (400) for a policy or dormant entry out of range; else as {@link Host#apply}
     */
    public HostState applyHost(HostAssignment a) {
        String why = a.rangeProblem();
        if (why != null) {
            throw new AssignmentException("Invalid", 400, why);
        }
        synchronized (this) {
            hostMode = true;
            Map<String, Scaling> ps = new HashMap<>();
            for (ScalingPolicy p : a.scaling()) {
                ps.put(p.deployment(), new Scaling(p.minActive(), Duration.ofMillis(p.idleTimeoutMillis())));
            }
            Map<String, DormantDeployment> wasDormant = new TreeMap<>(dormant);
            dormant.clear();
            a.dormant().forEach(d -> dormant.put(d.deployment(), d));
            try {
                apply(new HostAssignment(a.generation(), a.budgetBytes(), a.models(), a.replicas()), ps, Set.of());
            } catch (AssignmentException e) {
                dormant.clear();
                dormant.putAll(wasDormant);
                throw e;
            }
            for (Waiter w : List.copyOf(waiters)) {
                boolean here = dormant.values().stream()
                                .anyMatch(d -> d.servedModelName().equals(w.servedName()))
                        || desired.replicas().stream()
                                .anyMatch(r -> r.servedModelName().equals(w.servedName()));
                if (!here) {
                    waiters.remove(w);
                    w.ready()
                            .completeExceptionally(new ActivationException("model '" + w.servedName()
                                    + "' no longer activates on this host (the operator placed it elsewhere or removed it);"
                                    + " retry: its Service routes to where it serves"));
                }
            }
        }
        return state();
    }

    /** The host's state with each scaled or dormant deployment's scale-to-zero state. */
    public HostState state() {
        HostState s = host.state();
        return s.withScaling(scalingStates(s));
    }

    private synchronized List<DeploymentScalingState> scalingStates(HostState s) {
        Set<String> names = new java.util.TreeSet<>(policies.keySet());
        names.addAll(dormant.keySet());
        List<DeploymentScalingState> out = new ArrayList<>();
        for (String d : names) {
            Use u = use.get(d);
            long last = u == null ? 0 : u.lastUsedMillis;
            int held = u == null ? 0 : u.inFlight;
            long since = u == null || held == 0 ? 0 : u.busySinceMillis;
            DormantDeployment dd = dormant.get(d);
            List<ReplicaAssignment> rs = replicasOf(Set.of(d));
            if (dd != null && rs.isEmpty()) {
                out.add(new DeploymentScalingState(
                        d, dd.servedModelName(), DeploymentScalingState.DORMANT, List.of(), last, 0, held, since));
                continue;
            }
            if (rs.isEmpty()) {
                continue;
            }
            List<String> rel = rs.stream()
                    .map(ReplicaAssignment::id)
                    .filter(released::contains)
                    .sorted()
                    .toList();
            String state = rel.isEmpty()
                    ? DeploymentScalingState.ACTIVE
                    : rel.size() == rs.size() ? DeploymentScalingState.IDLE : DeploymentScalingState.PARTIAL;
            long reclaimable = 0;
            String digest = rs.getFirst().modelDigest();
            if (rel.size() == rs.size()
                    && !dropped.contains(digest)
                    && replicasOfModel(digest).stream().allMatch(r -> released.contains(r.id()))) {
                reclaimable = s.models().stream()
                        .filter(m -> m.digest().equals(digest) && m.phase() == ModelPhase.LOADED)
                        .mapToLong(m -> m.weightBytes() + m.workspaceBytes())
                        .sum();
            }
            out.add(new DeploymentScalingState(
                    d, rs.getFirst().servedModelName(), state, rel, last, reclaimable, held, since));
        }
        return out;
    }

    /** Digests of the models whose weights are not on the host (evicted, or never loaded), sorted. */
    public synchronized Set<String> droppedModels() {
        return new java.util.TreeSet<>(dropped);
    }

    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            for (Waiter w : waiters) {
                w.ready().completeExceptionally(new ActivationException("the host is shutting down"));
            }
            waiters.clear();
        }
        timer.shutdownNow();
    }

    /** A request in flight for a served name; close it once the request is queued on a replica, or answered. */
    public final class Lease implements AutoCloseable {
        private final String servedName;
        private final Set<String> deployments;
        private final AtomicBoolean open = new AtomicBoolean(true);

        private Lease(String servedName, Set<String> deployments) {
            this.servedName = servedName;
            this.deployments = Set.copyOf(deployments);
        }

        public String servedName() {
            return servedName;
        }

        @Override
        public void close() {
            if (!open.compareAndSet(true, false)) {
                return;
            }
            synchronized (Scaler.this) {
                long now = System.nanoTime();
                for (String d : deployments) {
                    Use u = use.get(d);
                    if (u != null) {
                        u.inFlight = Math.max(0, u.inFlight - 1);
                        if (u.inFlight == 0) {
                            u.busySinceMillis = 0;
                        }
                        u.touch(now);
                    }
                }
            }
        }
    }

    /** An activation that cannot complete: the message says why, for the 503 the held request gets. */
    public static final class ActivationException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public ActivationException(String message) {
            super(message);
        }
    }
}
