package io.stowage.operator.reconcile;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.stowage.hostapi.DeploymentScalingState;
import io.stowage.hostapi.DormantDeployment;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelHeader;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.hostapi.ScalingPolicy;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.dcgm.DcgmUsage;
import io.stowage.operator.dcgm.GpuMemory;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.host.HostTrust;
import io.stowage.operator.host.HostUnavailableException;
import io.stowage.operator.inventory.Inventory;
import io.stowage.operator.model.ModelResolver;
import io.stowage.operator.model.SourceMount;
import io.stowage.operator.model.Units;
import io.stowage.operator.tls.HostTlsSecrets;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.manifest.Scaling;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.Eviction;
import io.stowage.placement.plan.IdleCopy;
import io.stowage.placement.plan.IdleEviction;
import io.stowage.placement.plan.ModelRef;
import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.PlanRequest;
import io.stowage.placement.plan.PlanResult;
import io.stowage.placement.plan.Reclaim;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.ReplicaId;
import java.net.URI;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * The one placement loop of the cluster: reads every LlmDeployment, the nodes and the host pods (the
 * ledger), batches all pending replicas through the planner, commits host pods and assignments, reads
 * the hosts' state back, and writes Services and statuses.
 */
public final class PlacementLoop {
    private static final Logger LOG = Logger.getLogger(PlacementLoop.class);

    /** One deployment the planner sees, with what it was computed from. */
    record Planned(
            LlmDeployment cr,
            ModelHeader header,
            MemoryBreakdown memory,
            Deployment deployment,
            String uri,
            ModelAssignment recordedModel,
            PlannerInput input) {}

    /** The planner id of the replicas of a deployment's previous model version, kept while the new one starts. */
    static final String PREVIOUS_SUFFIX = "~previous";

    /** One host pod as found: its device, namespace and recorded assignment. */
    record Host(Pod pod, String deviceId, HostAssignment assignment) {}

    /** A replica as recorded on a host. */
    record Recorded(Host host, ReplicaAssignment replica) {
        String deviceId() {
            return host.deviceId();
        }
    }

    /** The planner id of a copy kept beside its replica's primary: {@code <ns>/<name>~moving-<index>@<device>}. */
    static final String MOVING_MARK = "~moving-";

    /** The event and Degraded reason of a replica that cannot leave a cordoned or NotReady node. */
    static final String MOVE_BLOCKED = "MoveBlocked";

    /**
     * A copy of a replica kept where it is, beside the replica's primary, until the primary serves: on a node that
     * is cordoned or NotReady past its grace ({@code why}), or a second copy left by a move ({@code why} null).
     */
    record Moving(String id, ReplicaId replica, Recorded copy, NodeStates.NodeState why) {
        /** The model of the copy as its host records it, or null when the assignment does not name it. */
        ModelAssignment model() {
            for (ModelAssignment m : copy.host().assignment().models()) {
                if (m.digest().equals(copy.replica().modelDigest())) {
                    return m;
                }
            }
            return null;
        }

        /** The copy as the planner sees it: one replica, on its device only, costing what it costs there. */
        Deployment deployment(Planned p) {
            ModelAssignment m = model();
            return new Deployment(
                    id,
                    new ModelRef(m.digest(), m.weightBytes(), m.workspaceBytes()),
                    copy.replica().kvBytes(),
                    1,
                    p.deployment().priority(),
                    Map.of(),
                    List.of(),
                    0,
                    DeviceRequest.ANY,
                    p.deployment().computeShare());
        }

        String where() {
            return copy.deviceId() + (why == null ? "" : " (" + why.why() + ")");
        }
    }

    /** A copy that leaves in this pass: the replica's primary on {@code primaryDevice} serves. */
    record Released(ReplicaId replica, Recorded copy, NodeStates.NodeState why, String primaryDevice) {}

    /** What a host reported in this pass. */
    record HostReport(HostState state, HostUnavailableException error) {}

    /** What one pass did, for tests and metrics. */
    public record PassResult(
            int deployments,
            int placedReplicas,
            int pendingReplicas,
            int devices,
            int hosts,
            List<Refusal> refusals,
            List<Eviction> evictions,
            Map<String, Long> plannedBytesByDevice,
            Map<String, Long> reportedBytesByDevice,
            Map<String, Long> phaseMillis,
            boolean settling,
            boolean scaling) {}

    /** The event reason on a deployment whose idle copy was evicted for another deployment's replicas. */
    static final String IDLE_EVICTED = "IdleEvicted";

    /** The event reason on a dormant deployment placed again because a host holds its requests. */
    static final String ACTIVATING = "Activating";

    /** Wall time per phase of a pass, for the benchmark and the logs. */
    private static final class PhaseClock {
        private final Map<String, Long> millis = new LinkedHashMap<>();
        private String current;
        private long since = System.nanoTime();

        PhaseClock(String first) {
            current = first;
        }

        void mark(String next) {
            long now = System.nanoTime();
            millis.merge(current, (now - since) / 1_000_000, Long::sum);
            current = next;
            since = now;
        }

        Map<String, Long> millis() {
            return millis;
        }
    }

    private final KubernetesClient client;
    private final OperatorConfig config;
    private final ModelResolver models;
    private final Function<PlanRequest, PlanResult> planner;
    private final HostAdminClient admin;
    private final Function<Pod, URI> adminUri;
    private final Supplier<List<GpuMemory>> dcgm;
    private final EventRecorder events;
    private final Inventory inventory;
    private final MemoryModel memoryModel;
    private final StatusAggregator statuses;
    private final HostTlsSecrets tls;
    private final PendingHosts pendingHosts;
    private final NodeStates nodeStates;
    private final HostDisruptionBudgetDependent budgets;
    /**
     * Per host pod ({@code namespace/name/uid}), the replicas it reported ready in the last pass that reached it: a
     * copy leaves only once its replacement is among them. Empty after a restart, which keeps both one pass longer.
     */
    private final Map<String, Set<String>> lastReady = new java.util.concurrent.ConcurrentHashMap<>();

    private final ClusterView view;
    private final PushOptions pushOptions;
    private final java.util.concurrent.ExecutorService pushPool;
    private final java.util.concurrent.ScheduledExecutorService pushTimer;
    /** Per namespace: the admin token as last read from its Secret, and the one before (a rotation in flight). */
    private final Map<String, Tokens> tokens = new java.util.concurrent.ConcurrentHashMap<>();

    /** A host pod this operator wrote (or deleted: null) and when, until its view shows it. */
    private record OwnWrite(Pod pod, long atNanos) {}

    /**
     * How long an own write is laid over the view at most: a watch delivers in well under that, and an object
     * someone else deleted meanwhile must not live on here.
     */
    static final java.time.Duration OWN_WRITES_KEPT = java.time.Duration.ofSeconds(30);

    /** Host pods written or deleted by this operator that its view may not show yet, by {@code namespace/name}. */
    private final Map<String, OwnWrite> ownWrites = new java.util.concurrent.ConcurrentHashMap<>();

    private final Map<String, Long> lastUsed = new java.util.concurrent.ConcurrentHashMap<>();

    /** Per host pod ({@link #podKey}), the scale-to-zero states it reported in the last pass that reached it. */
    private final Map<String, List<DeploymentScalingState>> lastScaling =
            new java.util.concurrent.ConcurrentHashMap<>();

    /** The host pods with a scaling policy or a dormant deployment, and what the last pass saw of them. */
    private volatile Map<String, Pod> scalingHosts = Map.of();

    private final Map<String, String> scalingSeen = new java.util.concurrent.ConcurrentHashMap<>();

    /** The live deployments of the pass in progress, by key (a dormant deployment's host pod names it an owner). */
    private Map<String, LlmDeployment> liveByKey = Map.of();

    private final SecureRandom random = new SecureRandom();

    public PlacementLoop(
            KubernetesClient client,
            OperatorConfig config,
            ModelResolver models,
            Function<PlanRequest, PlanResult> planner,
            HostAdminClient admin,
            Function<Pod, URI> adminUri,
            Supplier<List<GpuMemory>> dcgm,
            EventRecorder events,
            Clock clock) {
        this(client, config, models, planner, admin, adminUri, dcgm, events, clock, null);
    }

    /**
     * @param tls the hosts' admin TLS (CA and per-namespace Secrets); null for plain HTTP, where the admin URIs are
     *     http
     */
    public PlacementLoop(
            KubernetesClient client,
            OperatorConfig config,
            ModelResolver models,
            Function<PlanRequest, PlanResult> planner,
            HostAdminClient admin,
            Function<Pod, URI> adminUri,
            Supplier<List<GpuMemory>> dcgm,
            EventRecorder events,
            Clock clock,
            HostTlsSecrets tls) {
        this(client, config, models, planner, admin, adminUri, dcgm, events, clock, tls, null, PushOptions.DEFAULTS);
    }

    /** How hosts are pushed to: at most {@code parallelism} at once, each given at most {@code hostTimeout}. */
    public record PushOptions(int parallelism, java.time.Duration hostTimeout) {
        public static final PushOptions DEFAULTS = new PushOptions(32, java.time.Duration.ofSeconds(15));

        public PushOptions {
            if (parallelism < 1) {
                throw new IllegalArgumentException("host push parallelism must be at least 1, not " + parallelism);
            }
            if (hostTimeout.isNegative() || hostTimeout.isZero()) {
                throw new IllegalArgumentException("the per-host push timeout must be positive, not " + hostTimeout);
            }
        }
    }

    /**
     * @param view what a pass reads of the cluster; null for today's read path ({@link ClusterView#listing}: LISTs
     *     every pass)
     * @param push the bound and the per-host timeout of the host pushes
     */
    public PlacementLoop(
            KubernetesClient client,
            OperatorConfig config,
            ModelResolver models,
            Function<PlanRequest, PlanResult> planner,
            HostAdminClient admin,
            Function<Pod, URI> adminUri,
            Supplier<List<GpuMemory>> dcgm,
            EventRecorder events,
            Clock clock,
            HostTlsSecrets tls,
            ClusterView view,
            PushOptions push) {
        this.tls = tls;
        this.view = view == null ? ClusterView.listing(client) : view;
        this.pushOptions = push;
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        this.pushPool = java.util.concurrent.Executors.newFixedThreadPool(push.parallelism(), r -> {
            Thread t = new Thread(r, "stowage-host-push-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.pushTimer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stowage-host-push-timer");
            t.setDaemon(true);
            return t;
        });
        this.client = client;
        this.config = config;
        this.models = models;
        this.planner = planner;
        this.admin = admin;
        this.adminUri = adminUri;
        this.dcgm = dcgm;
        this.events = events;
        this.inventory = new Inventory(config.inventory());
        this.memoryModel = new MemoryModel(config.memory());
        this.statuses = new StatusAggregator(client, config, clock);
        this.pendingHosts = new PendingHosts(config.inventory().hostPendingTimeout(), clock);
        this.nodeStates = new NodeStates(config.disruption(), clock);
        this.budgets = new HostDisruptionBudgetDependent(client, config.disruption());
    }

    /** Stops the host pushes' threads and the view's watches. */
    public void close() {
        pushPool.shutdownNow();
        pushTimer.shutdownNow();
        view.close();
    }

    /** The plain-HTTP admin URI of a host pod in a cluster: its pod IP and the admin port. */
    public static URI podAdminUri(Pod pod) {
        return podAdminUri(pod, false);
    }

    /** The admin URI of a host pod in a cluster: https (admin TLS) or http, its pod IP and the admin port. */
    public static URI podAdminUri(Pod pod, boolean https) {
        String ip = pod.getStatus() == null ? null : pod.getStatus().getPodIP();
        if (ip == null) {
            return null;
        }
        // An IPv6 pod IP needs brackets in a URI.
        String host = ip.contains(":") ? "[" + ip + "]" : ip;
        return URI.create(
                (https ? "https://" : "http://") + host + ":" + io.stowage.hostapi.HostApi.DEFAULT_ADMIN_PORT);
    }

    /** One level-based pass over the whole cluster. */
    public synchronized PassResult runPass() {
        PhaseClock phases = new PhaseClock("read");
        List<LlmDeployment> all = new ArrayList<>(view.deployments());
        all.removeIf(d -> !config.manages(d.getMetadata().getNamespace()));
        all.sort(Comparator.comparing(LlmDeployment::key));
        List<Node> nodes = view.nodes();
        List<Pod> pods = withOwnWrites(view.pods());

        phases.mark("finalizers");

        // 1. Finalizers first, so that a deletion always passes through us.
        List<LlmDeployment> live = new ArrayList<>();
        List<LlmDeployment> deleting = new ArrayList<>();
        for (LlmDeployment d : all) {
            if (d.getMetadata().getDeletionTimestamp() != null) {
                deleting.add(d);
            } else {
                live.add(ensureFinalizer(d));
            }
        }

        // 2. The ledger: host pods and the assignments recorded on them.
        Map<String, Host> ledger = new TreeMap<>();
        for (Pod p : pods) {
            if (!Labels.isHost(p) || p.getMetadata().getDeletionTimestamp() != null) {
                continue;
            }
            Map<String, String> ann = p.getMetadata().getAnnotations();
            String dev = ann == null ? null : ann.get(Labels.DEVICE_ANNOTATION);
            if (dev == null) {
                continue;
            }
            HostAssignment a;
            try {
                a = HostAdminClient.JSON.readValue(
                        ann.getOrDefault(Labels.ASSIGNMENT_ANNOTATION, "{}"), HostAssignment.class);
            } catch (JsonProcessingException e) {
                LOG.warnf(
                        "host pod %s/%s has an unreadable assignment annotation; treating it as empty",
                        p.getMetadata().getNamespace(), p.getMetadata().getName());
                a = new HostAssignment(0, 0, List.of(), List.of());
            }
            ledger.put(dev, new Host(p, dev, a));
        }
        passLedger = ledger;
        liveByKey = new HashMap<>();
        for (LlmDeployment d : live) {
            liveByKey.put(d.key(), d);
        }

        phases.mark("models");

        // 3. Models and memory: what each live deployment asks of the planner.
        Map<String, Planned> planned = new LinkedHashMap<>();
        Map<String, StatusAggregator.Problem> problems = new HashMap<>();
        for (LlmDeployment d : live) {
            plan(d, ledger, planned, problems);
        }

        // Host pods the scheduler cannot place within the bound leave the ledger: their replicas are planned again.
        pendingHosts.check(ledger, planned, problems, client, events);

        // Scale to zero: the deployments evicted earlier stay dormant (unplanned, their hosts holding their
        // requests) until a host reports a held request for one.
        Map<String, Map<String, DormantDeployment>> activating = new TreeMap<>();
        Map<String, Map<String, DormantDeployment>> dormant = stillDormant(ledger, planned, activating);

        phases.mark("inventory");

        // 4. Devices, with foreign usage; placements on devices that vanished are dropped.
        List<GpuMemory> gpus = safeDcgm();
        Set<String> hostPodKeys = ledger.values().stream()
                .map(h -> h.pod().getMetadata().getNamespace() + "/"
                        + h.pod().getMetadata().getName())
                .collect(Collectors.toSet());
        DcgmUsage.ForeignUsage foreign = gpus.isEmpty()
                ? DcgmUsage.ForeignUsage.NONE
                : DcgmUsage.foreign(
                        gpus,
                        hostPodKeys::contains,
                        reportedUsage(ledger),
                        Inventory.hostsByGpuUuid(pods),
                        Set.of("nvidia-dcgm-exporter", "dcgm-exporter"));
        List<Device> devices = new ArrayList<>(inventory.devices(nodes, pods, foreign));
        devices.removeIf(pendingHosts::leftOut);
        // Cordoned and NotReady nodes keep their devices, tainted: what runs there stays until it moves.
        Map<String, NodeStates.NodeState> byNode = nodeStates.read(nodes);
        // Per device: its node's state, or that its host must be replaced (make before break as for a cordon).
        Map<String, NodeStates.NodeState> nodeState = new HashMap<>();
        for (Device dv : devices) {
            Host h = ledger.get(dv.id());
            String replace = h == null ? null : annotation(h.pod(), Labels.REPLACE_ANNOTATION);
            NodeStates.NodeState st = byNode.get(dv.node());
            if (replace != null && (st == null || st.ready())) {
                st = NodeStates.NodeState.replacing(h.pod().getMetadata().getName(), replace);
            }
            if (st != null) {
                nodeState.put(dv.id(), st);
            }
        }
        Map<String, Device> untainted = new HashMap<>();
        devices.forEach(dv -> untainted.put(dv.id(), dv));
        devices = new ArrayList<>(NodeStates.unavailableTainted(devices, nodeState));
        Map<String, Device> deviceById = new LinkedHashMap<>();
        devices.forEach(dv -> deviceById.put(dv.id(), dv));

        // 5. Current placements from the ledger, kept only while they still match their deployment. A replica has
        // one primary copy; a copy on a node it must leave, or a second copy (a move in flight), stays beside it
        // until the primary serves (make before break).
        Map<String, List<Placement>> currentByNs = new HashMap<>();
        Map<String, String> claimed = new HashMap<>();
        Map<String, List<Recorded>> outgoing = new TreeMap<>();
        Map<String, List<Recorded>> copies = new TreeMap<>();
        for (Host h : ledger.values()) {
            String ns = h.pod().getMetadata().getNamespace();
            if (!deviceById.containsKey(h.deviceId())) {
                continue;
            }
            for (ReplicaAssignment r : h.assignment().replicas()) {
                Planned p = planned.get(r.deployment());
                if (p == null || !ns.equals(p.cr().getMetadata().getNamespace())) {
                    continue;
                }
                if (!sameReplica(p, r)) {
                    if (p.header() != null && !p.deployment().model().digest().equals(r.modelDigest())) {
                        outgoing.computeIfAbsent(r.deployment(), k -> new ArrayList<>())
                                .add(new Recorded(h, r));
                    }
                    continue;
                }
                int index = replicaIndex(r.id());
                if (index >= 0 && index < p.deployment().replicas()) {
                    copies.computeIfAbsent(r.id(), k -> new ArrayList<>()).add(new Recorded(h, r));
                }
            }
        }
        Map<String, List<Moving>> movingByNs = new TreeMap<>();
        List<Released> released = new ArrayList<>();
        List<Placement> movingPlacements = new ArrayList<>();
        for (Map.Entry<String, List<Recorded>> e : copies.entrySet()) {
            List<Recorded> all2 = e.getValue();
            Recorded primary = primaryOf(all2, nodeState);
            String ns = all2.get(0).host().pod().getMetadata().getNamespace();
            ReplicaAssignment r0 = all2.get(0).replica();
            ReplicaId rid = new ReplicaId(r0.deployment(), replicaIndex(r0.id()));
            if (primary != null) {
                currentByNs.computeIfAbsent(ns, k -> new ArrayList<>()).add(new Placement(rid, primary.deviceId()));
                claimed.put(primary.deviceId(), ns);
            }
            boolean primaryServes = primary != null && serves(primary);
            for (Recorded c : all2) {
                if (c == primary) {
                    continue;
                }
                NodeStates.NodeState why = nodeState.get(c.deviceId());
                if (primaryServes) {
                    released.add(new Released(rid, c, why, primary.deviceId()));
                    continue;
                }
                String id = r0.deployment() + MOVING_MARK + rid.index() + "@" + c.deviceId();
                Moving m = new Moving(id, rid, c, why);
                if (m.model() == null) {
                    // An assignment that names no model for its replica cannot be kept; the primary stands alone.
                    continue;
                }
                movingByNs.computeIfAbsent(ns, k -> new ArrayList<>()).add(m);
                claimed.put(c.deviceId(), ns);
            }
        }

        phases.mark("plan");

        // 6. Plan, per namespace (namespaces never share a device), in one batch each.
        Map<String, List<Deployment>> depsByNs = new TreeMap<>();
        planned.values().stream()
                .filter(p -> !dormant.containsKey(p.deployment().id()))
                .forEach(p -> depsByNs.computeIfAbsent(p.cr().getMetadata().getNamespace(), k -> new ArrayList<>())
                        .add(p.deployment()));
        List<Placement> placements = new ArrayList<>();
        List<Refusal> refusals = new ArrayList<>();
        List<Eviction> evictions = new ArrayList<>();
        Map<String, Moving> movingById = new HashMap<>();
        Map<ReplicaId, String> standIns = new HashMap<>();
        Set<String> replaceInPlace = new HashSet<>();
        for (Map.Entry<String, List<Deployment>> e : depsByNs.entrySet()) {
            String ns = e.getKey();
            List<Device> mine = devices.stream()
                    .filter(dv -> ns.equals(claimed.getOrDefault(dv.id(), ns)))
                    .toList();
            List<Deployment> deps = new ArrayList<>(e.getValue());
            List<Placement> current = new ArrayList<>(currentByNs.getOrDefault(ns, List.of()));
            List<Deployment> previous = keepPrevious(ns, outgoing, planned, current);
            deps.addAll(previous);
            List<Moving> moving = new ArrayList<>(movingByNs.getOrDefault(ns, List.of()));
            for (Moving m : moving) {
                deps.add(m.deployment(planned.get(m.replica().deployment())));
                current.add(new Placement(new ReplicaId(m.id(), 0), m.copy().deviceId()));
            }
            PlanResult r = planner.apply(new PlanRequest(mine, deps, current, false, 0));
            // A replica that does not fit otherwise may take the memory of idle copies (deployments scaled to zero,
            // weights resident): plan again with them as reclaimable; Reclaim then evicts them LRU where needed.
            Map<String, List<Placement>> reclaiming = new TreeMap<>();
            Set<ReplicaId> didNotFit = new HashSet<>();
            r.refusals().forEach(x -> didNotFit.add(x.replica()));
            if (r.refusals().stream().anyMatch(x -> !x.replica().deployment().contains(MOVING_MARK))) {
                Map<String, List<Placement>> idle = idleCopies(ns, planned, current, ledger, moving);
                if (!idle.isEmpty()) {
                    List<Deployment> deps2 = new ArrayList<>(deps);
                    deps2.removeIf(x -> idle.containsKey(x.id()));
                    List<Placement> current2 = new ArrayList<>(current);
                    current2.removeIf(x -> idle.containsKey(x.replica().deployment()));
                    PlanResult r2 = planner.apply(new PlanRequest(mine, deps2, current2, false, 0));
                    if (r2.refusals().size() < r.refusals().size()) {
                        deps.removeIf(x -> idle.containsKey(x.id()));
                        current.removeIf(x -> idle.containsKey(x.replica().deployment()));
                        reclaiming.putAll(idle);
                        r = r2;
                    }
                }
            }
            if (!previous.isEmpty()
                    && r.refusals().stream()
                            .anyMatch(x -> !x.replica().deployment().endsWith(PREVIOUS_SUFFIX)
                                    && !x.replica().deployment().contains(MOVING_MARK))) {
                // Memory does not allow both versions at once: replace in place instead.
                previous.forEach(pd -> planned.remove(pd.id()));
                deps.removeAll(previous);
                current.removeIf(pl -> pl.replica().deployment().endsWith(PREVIOUS_SUFFIX));
                r = planner.apply(new PlanRequest(mine, deps, current, false, 0));
            }
            // A replica that cannot be placed elsewhere stays on a cordoned node (it still serves there); one on a
            // node NotReady past its grace is given up (break before make): it cannot serve there.
            Set<ReplicaId> refused = r.refusals().stream().map(Refusal::replica).collect(Collectors.toSet());
            // A host to be replaced whose replicas cannot all go elsewhere is replaced in place (break before make,
            // as before make before break existed): all its replicas stay, and its device takes new ones again.
            Set<String> inPlace = moving.stream()
                    .filter(m -> m.why() != null && m.why().replacing() && refused.contains(m.replica()))
                    .map(m -> m.copy().deviceId())
                    .collect(Collectors.toSet());
            List<Moving> blocked = moving.stream()
                    .filter(m -> refused.contains(m.replica())
                            || inPlace.contains(m.copy().deviceId()))
                    .toList();
            if (!blocked.isEmpty()) {
                Set<ReplicaId> keptInPlace = new HashSet<>();
                for (Moving m : blocked) {
                    moving.remove(m);
                    deps.removeIf(d -> d.id().equals(m.id()));
                    current.removeIf(pl -> pl.replica().deployment().equals(m.id()));
                    blockedMove(
                            m,
                            planned,
                            problems,
                            refused.contains(m.replica()) ? refusalReason(r, m.replica()) : null,
                            keptInPlace,
                            current);
                }
                if (!inPlace.isEmpty()) {
                    replaceInPlace.addAll(inPlace);
                    mine = mine.stream()
                            .map(dv -> inPlace.contains(dv.id()) ? untainted.get(dv.id()) : dv)
                            .toList();
                }
                r = planner.apply(new PlanRequest(mine, deps, current, false, 0));
            }
            if (!reclaiming.isEmpty()) {
                reclaim(r, mine, reclaiming, current, didNotFit, planned, placements, claimed, dormant, ns);
            }
            for (Moving m : moving) {
                movingById.put(m.id(), m);
                reportMove(m, r.placements(), planned);
            }
            for (Placement p : r.placements()) {
                Moving m = movingById.get(p.replica().deployment());
                if (m != null) {
                    // A copy is only ever kept where it is, never placed anew.
                    if (m.copy().deviceId().equals(p.deviceId())) {
                        movingPlacements.add(p);
                        standIns.put(m.replica(), m.copy().deviceId());
                        claimed.put(p.deviceId(), ns);
                    }
                    continue;
                }
                claimed.put(p.deviceId(), ns);
                placements.add(p);
            }
            refusals.addAll(r.refusals().stream()
                    .filter(x -> !x.replica().deployment().contains(MOVING_MARK))
                    .toList());
            evictions.addAll(r.evictions().stream()
                    .filter(x -> !x.victim().deployment().contains(MOVING_MARK))
                    .toList());
        }
        reportReleased(released, planned);
        // A dormant deployment that its demand could not place stays dormant where it was: its hosts keep holding
        // its requests (answered 503 past the activation timeout) and it is tried again at the next pass.
        Set<String> placedNow = new HashSet<>();
        placements.forEach(pl -> placedNow.add(pl.replica().deployment()));
        activating.forEach((dep, where) -> {
            if (!placedNow.contains(dep)) {
                dormant.put(dep, where);
            }
        });

        phases.mark("commit");

        // 7. Commit: one host pod per used device, its assignment recorded on it.
        Map<String, List<ReplicaId>> byDevice = new TreeMap<>();
        Map<ReplicaId, String> deviceOf = new HashMap<>();
        for (Placement p : placements) {
            byDevice.computeIfAbsent(p.deviceId(), k -> new ArrayList<>()).add(p.replica());
            deviceOf.put(p.replica(), p.deviceId());
        }
        for (Placement p : movingPlacements) {
            byDevice.computeIfAbsent(p.deviceId(), k -> new ArrayList<>()).add(p.replica());
        }
        reportPlacementEvents(ledger, deviceOf, planned, refusals, evictions);
        // A dormant deployment's host stays, its activation point, even with no replica on it.
        Map<String, List<DormantDeployment>> dormantByDevice = new TreeMap<>();
        dormant.forEach((dep, where) -> where.forEach((dev, dd) -> {
            if (deviceById.containsKey(dev)) {
                dormantByDevice.computeIfAbsent(dev, k -> new ArrayList<>()).add(dd);
                byDevice.computeIfAbsent(dev, k -> new ArrayList<>());
            }
        }));
        Map<String, HostAssignment> desiredAssignments = new TreeMap<>();
        Map<String, Long> plannedBytes = new TreeMap<>();
        for (Map.Entry<String, List<ReplicaId>> e : byDevice.entrySet()) {
            Device dev = deviceById.get(e.getKey());
            HostAssignment a = assignment(
                    dev,
                    e.getValue(),
                    planned,
                    movingById,
                    ledger.get(e.getKey()),
                    dormantByDevice.getOrDefault(e.getKey(), List.of()));
            desiredAssignments.put(e.getKey(), a);
            plannedBytes.put(e.getKey(), plannedBytes(a, dev));
        }
        Set<String> terminating = pods.stream()
                .filter(p -> Labels.isHost(p) && p.getMetadata().getDeletionTimestamp() != null)
                .map(p -> p.getMetadata().getNamespace() + "/" + p.getMetadata().getName())
                .collect(Collectors.toSet());
        Map<String, Pod> hostPods =
                commitHostPods(desiredAssignments, deviceById, planned, ledger, problems, terminating, replaceInPlace);
        hostPods.values().stream()
                .map(p -> p.getMetadata().getNamespace())
                .distinct()
                .forEach(budgets::ensure);

        phases.mark("push");

        // 8. Push each host's whole assignment and read its state back.
        Map<String, HostReport> reports = new TreeMap<>();
        Map<String, Long> reported = new TreeMap<>();
        for (Map.Entry<String, HostReport> e :
                pushAll(hostPods, desiredAssignments, planned).entrySet()) {
            HostReport rep = e.getValue();
            if (rep != null) {
                reports.put(e.getKey(), rep);
                if (rep.state() != null && rep.state().device() != null) {
                    reported.put(e.getKey(), rep.state().device().usedBytes());
                    Pod pod = hostPods.get(e.getKey());
                    lastUsed.put(
                            pod.getMetadata().getNamespace() + "/"
                                    + pod.getMetadata().getName(),
                            rep.state().device().usedBytes());
                }
            }
        }
        updateReadyLabels(hostPods, reports, desiredAssignments);
        GpuBinding.record(client, hostPods, reports);
        rememberReady(hostPods, reports);
        rememberScaling(hostPods, reports, desiredAssignments);
        Map<String, StatusAggregator.ScalingView> scalingViews =
                scalingViews(live, planned, dormant, deviceOf, reports);

        phases.mark("status");

        // 9. Services and statuses.
        for (LlmDeployment d : live) {
            try {
                LlmDeployment cr =
                        planned.containsKey(d.key()) ? planned.get(d.key()).cr() : d;
                statuses.ensureService(
                        cr, view.service(cr.getMetadata().getNamespace(), StatusAggregator.serviceName(cr)));
            } catch (KubernetesClientException e) {
                // One deployment's Service that cannot be written must not stop the others' Services and statuses.
                String why = "Service " + StatusAggregator.serviceName(d) + " not written: " + e.getMessage();
                LOG.warnf("%s: %s", d.key(), why);
                events.warning(d, "ServiceFailed", why);
                problems.putIfAbsent(d.key(), new StatusAggregator.Problem("ServiceFailed", why, true));
            }
            try {
                statuses.write(
                        d,
                        planned.get(d.key()),
                        problems.get(d.key()),
                        deviceOf,
                        deviceById,
                        desiredAssignments,
                        hostPods,
                        reports,
                        refusals,
                        standIns,
                        scalingViews.get(d.key()));
            } catch (KubernetesClientException e) {
                // One deployment's status must not stop the pass for the others.
                LOG.warnf("status of %s not written: %s", d.key(), e.getMessage());
            }
        }

        // 10. Deletions: once no host carries a replica of the deployment, release it.
        Set<String> emptied = new TreeSet<>();
        for (LlmDeployment d : deleting) {
            boolean stillAssigned = desiredAssignments.values().stream()
                    .flatMap(a -> a.replicas().stream())
                    .anyMatch(r -> r.deployment().equals(d.key()));
            if (!stillAssigned) {
                removeFinalizer(d);
                emptied.add(d.getMetadata().getNamespace());
            }
        }
        // 11. A namespace whose last LlmDeployment went keeps nothing of ours: its admin Secrets go too.
        for (LlmDeployment d : all) {
            if (d.getMetadata().getDeletionTimestamp() == null
                    || desiredAssignments.values().stream()
                            .flatMap(a -> a.replicas().stream())
                            .anyMatch(r -> r.deployment().equals(d.key()))) {
                emptied.remove(d.getMetadata().getNamespace());
            }
        }
        emptied.forEach(this::removeNamespaceSecrets);
        phases.mark("end");
        int pending = planned.values().stream()
                        .filter(p -> !dormant.containsKey(p.deployment().id()))
                        .mapToInt(p -> p.deployment().replicas())
                        .sum()
                - placements.size();
        return new PassResult(
                all.size(),
                placements.size(),
                pending,
                devices.size(),
                hostPods.size(),
                refusals,
                evictions,
                plannedBytes,
                reported,
                phases.millis(),
                // A move in flight ends when its replacement reports ready, which no Kubernetes event announces.
                settling(reports) || !movingPlacements.isEmpty(),
                !scalingHosts.isEmpty());
    }

    /**
     * The copy of a replica that counts as the replica: one on a node it may stay on, preferring one that serves,
     * then one on a serving node, then the first by device id; null when every copy is on a node it must leave.
     */
    private Recorded primaryOf(List<Recorded> copies, Map<String, NodeStates.NodeState> nodeState) {
        Recorded best = null;
        int bestRank = Integer.MAX_VALUE;
        for (Recorded c : copies) {
            NodeStates.NodeState st = nodeState.get(c.deviceId());
            if (st != null && st.state() == NodeStates.State.MOVING) {
                continue;
            }
            int rank = (serves(c) ? 0 : 2) + (st == null ? 0 : 1);
            if (rank < bestRank) {
                best = c;
                bestRank = rank;
            }
        }
        return best;
    }

    /**
     * Whether a copy serves: its host reported it ready in the last pass, the host pod is Ready, and it carries the
     * deployment's ready label (so its Service has the endpoint).
     */
    private boolean serves(Recorded c) {
        Pod pod = c.host().pod();
        Set<String> ready = lastReady.get(podKey(pod));
        Map<String, String> labels = pod.getMetadata().getLabels();
        return ready != null
                && ready.contains(c.replica().id())
                && podReady(pod)
                && labels != null
                && "true".equals(labels.get(readyLabelOf(c.replica().deployment())));
    }

    private static String podKey(Pod p) {
        return p.getMetadata().getNamespace() + "/" + p.getMetadata().getName() + "/"
                + p.getMetadata().getUid();
    }

    private static boolean podReady(Pod p) {
        return p.getStatus() != null
                && p.getStatus().getConditions() != null
                && p.getStatus().getConditions().stream()
                        .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /**
     * A copy whose replica the planner cannot place elsewhere: on a cordoned node (or a second copy on a serving
     * one) it stays and becomes the primary again, since it still serves there; on a node NotReady past its grace it
     * is given up (break before make), since it cannot serve there. Either way the deployment says so.
     */
    private void blockedMove(
            Moving m,
            Map<String, Planned> planned,
            Map<String, StatusAggregator.Problem> problems,
            String reason,
            Set<ReplicaId> keptInPlace,
            List<Placement> current) {
        Planned p = planned.get(m.replica().deployment());
        String msg;
        if (m.why() != null && m.why().replacing()) {
            if (keptInPlace.add(m.replica())) {
                current.add(new Placement(m.replica(), m.copy().deviceId()));
            }
            if (reason == null) {
                // It could have moved, but its host is replaced in place for another replica: said for that one.
                return;
            }
            msg = m.why().why() + "; no other device can take replica #"
                    + m.replica().index() + " now (" + reason
                    + "), so the host is replaced in place: its models are not served until the new pod is ready";
            LOG.infof("%s: %s", m.replica().deployment(), msg);
            if (p != null) {
                events.warning(p.cr(), "ReplacedInPlace", msg);
            }
            return;
        }
        if (m.why() == null || m.why().ready()) {
            if (keptInPlace.add(m.replica())) {
                current.add(new Placement(m.replica(), m.copy().deviceId()));
            }
            msg = "replica #" + m.replica().index() + " stays on " + m.where() + ": no other device can take it now ("
                    + reason + "); it moves once one can";
        } else {
            msg = "replica #" + m.replica().index() + " on " + m.where()
                    + " is given up and no other device can take it now (" + reason + ")";
        }
        LOG.infof("%s: %s", m.replica().deployment(), msg);
        if (p != null) {
            events.warning(p.cr(), MOVE_BLOCKED, msg);
            problems.putIfAbsent(p.cr().key(), new StatusAggregator.Problem(MOVE_BLOCKED, msg, true));
        }
    }

    /** Why the planner refused {@code replica}. */
    private static String refusalReason(PlanResult r, ReplicaId replica) {
        return r.refusals().stream()
                .filter(x -> x.replica().equals(replica))
                .map(Refusal::reason)
                .findFirst()
                .orElse("refused");
    }

    /** Says where a replica that must leave its device is being started anew, while its copy keeps serving. */
    private void reportMove(Moving m, List<Placement> placements, Map<String, Planned> planned) {
        Planned p = planned.get(m.replica().deployment());
        if (p == null) {
            return;
        }
        placements.stream()
                .filter(x -> x.replica().equals(m.replica()))
                .findFirst()
                .ifPresent(x -> events.normal(
                        p.cr(),
                        "Moving",
                        "replica #" + m.replica().index() + " starts on " + x.deviceId() + "; its copy on " + m.where()
                                + " serves until it is ready"));
    }

    private void reportReleased(List<Released> released, Map<String, Planned> planned) {
        for (Released r : released) {
            Planned p = planned.get(r.replica().deployment());
            String msg = "replica #" + r.replica().index() + " serves on " + r.primaryDevice() + "; its copy on "
                    + r.copy().deviceId()
                    + (r.why() == null ? "" : " (" + r.why().why() + ")") + " is removed";
            LOG.infof("%s: %s", r.replica().deployment(), msg);
            if (p != null) {
                events.normal(p.cr(), "Moved", msg);
            }
        }
    }

    private void plan(
            LlmDeployment d,
            Map<String, Host> ledger,
            Map<String, Planned> planned,
            Map<String, StatusAggregator.Problem> problems) {
        if (d.getSpec() == null || d.getSpec().getModel() == null) {
            problems.put(d.key(), new StatusAggregator.Problem("InvalidSpec", "spec.model is required", true));
            return;
        }
        ModelResolver.Resolution res;
        try {
            res = models.resolve(d);
        } catch (KubernetesClientException e) {
            res = new ModelResolver.Pending("the model probe could not be started yet: " + e.getMessage());
        }
        switch (res) {
            case ModelResolver.Known k -> {
                try {
                    planned.put(d.key(), planned(d, k.header()));
                } catch (ManifestException | IllegalArgumentException | ArithmeticException e) {
                    // A ManifestException names the field; the others are the planner's own range checks.
                    String reason =
                            e instanceof ManifestException && !e.getMessage().contains(": spec.context")
                                    ? "InvalidSpec"
                                    : "InvalidContext";
                    problems.put(d.key(), new StatusAggregator.Problem(reason, e.getMessage(), true));
                    events.warning(d, reason, e.getMessage());
                }
            }
            case ModelResolver.Pending p -> {
                problems.put(d.key(), new StatusAggregator.Problem("InspectingModel", p.message(), false));
                Planned kept = fromLedger(d, ledger);
                if (kept != null) {
                    // Keep what runs while the header is re-read (after a restart): nothing moves.
                    planned.put(d.key(), kept);
                }
            }
            case ModelResolver.Failed f -> {
                problems.put(d.key(), new StatusAggregator.Problem(f.reason(), f.message(), true));
                events.warning(d, f.reason(), f.message());
            }
        }
    }

    private Planned planned(LlmDeployment d, ModelHeader h) {
        // The one meaning of a spec, shared with plan and local mode.
        PlannerInput in = SpecInput.of(d, h.shape(), memoryModel);
        return new Planned(
                d, h, in.memory(), in.deployment(), d.getSpec().getModel().getUri(), null, in);
    }

    /**
     * The previous model version of deployments whose model changed, kept (as their own planner
     * deployments) until the new version has as many ready replicas as asked for: replacing a model
     * does not drop below the ready count when memory allows both.
     */
    private List<Deployment> keepPrevious(
            String ns, Map<String, List<Recorded>> outgoing, Map<String, Planned> planned, List<Placement> current) {
        List<Deployment> out = new ArrayList<>();
        for (Map.Entry<String, List<Recorded>> e : outgoing.entrySet()) {
            Planned p = planned.get(e.getKey());
            if (p == null || !ns.equals(p.cr().getMetadata().getNamespace())) {
                continue;
            }
            int want = p.deployment().replicas();
            // The status describes the version of status.model.digest: only its ready replicas count.
            var st = p.cr().getStatus();
            boolean statusIsNew = st != null
                    && st.getModel() != null
                    && p.deployment().model().digest().equals(st.getModel().getDigest());
            Integer ready = statusIsNew ? st.getReadyReplicas() : null;
            if (ready != null && ready >= want) {
                continue;
            }
            String id = e.getKey() + PREVIOUS_SUFFIX;
            ModelAssignment model = null;
            long kv = 0;
            int max = -1;
            for (Recorded rec : e.getValue()) {
                Host h = rec.host();
                ReplicaAssignment r = rec.replica();
                int index = replicaIndex(r.id());
                if (index < 0 || index >= want) {
                    continue;
                }
                for (ModelAssignment m : h.assignment().models()) {
                    if (m.digest().equals(r.modelDigest())) {
                        model = m;
                    }
                }
                kv = Math.max(kv, r.kvBytes());
                max = Math.max(max, index);
                current.add(new Placement(new ReplicaId(id, index), h.deviceId()));
            }
            if (model == null) {
                continue;
            }
            Deployment prev = new Deployment(
                    id,
                    new ModelRef(model.digest(), model.weightBytes(), model.workspaceBytes()),
                    kv,
                    max + 1,
                    p.deployment().priority(),
                    Map.of(),
                    List.of(),
                    0,
                    DeviceRequest.ANY,
                    p.deployment().computeShare());
            MemoryBreakdown mem = new MemoryBreakdown(model.weightBytes(), 0, kv, model.workspaceBytes(), 0);
            planned.put(id, new Planned(p.cr(), null, mem, prev, sourceOf(p.cr(), model), model, null));
            out.add(prev);
        }
        return out;
    }

    private static String statusKey(String plannerId) {
        return plannerId.endsWith(PREVIOUS_SUFFIX)
                ? plannerId.substring(0, plannerId.length() - PREVIOUS_SUFFIX.length())
                : plannerId;
    }

    /** A deployment whose header is being re-read, as its replicas are recorded on the hosts. */
    private static Planned fromLedger(LlmDeployment d, Map<String, Host> ledger) {
        ModelAssignment model = null;
        ReplicaAssignment any = null;
        int maxIndex = -1;
        for (Host h : ledger.values()) {
            for (ReplicaAssignment r : h.assignment().replicas()) {
                if (r.deployment().equals(d.key())) {
                    any = r;
                    maxIndex = Math.max(maxIndex, replicaIndex(r.id()));
                    for (ModelAssignment m : h.assignment().models()) {
                        if (m.digest().equals(r.modelDigest())) {
                            model = m;
                        }
                    }
                }
            }
        }
        if (any == null || model == null) {
            return null;
        }
        int replicas = Math.min(maxIndex + 1, d.getSpec().replicasOrZero());
        Deployment dep = new Deployment(
                d.key(),
                new ModelRef(model.digest(), model.weightBytes(), model.workspaceBytes()),
                any.kvBytes(),
                replicas,
                0,
                Map.of(),
                List.of(),
                0,
                DeviceRequest.ANY,
                0);
        MemoryBreakdown mem = new MemoryBreakdown(model.weightBytes(), 0, any.kvBytes(), model.workspaceBytes(), 0);
        return new Planned(d, null, mem, dep, sourceOf(d, model), model, null);
    }

    /**
     * Where a model known only from the ledger comes from: the spec's URI when the host reads that one (so that a
     * host pod written again mounts the claim or node directory as before), else the URI recorded on the host,
     * which for a mounted source is a path inside the pod and mounts nothing ({@link SourceMount#of}).
     */
    private static String sourceOf(LlmDeployment d, ModelAssignment recorded) {
        String spec = d.getSpec() == null || d.getSpec().getModel() == null
                ? null
                : d.getSpec().getModel().getUri();
        try {
            if (spec != null && SourceMount.hostUri(spec).equals(recorded.uri())) {
                return spec;
            }
        } catch (IllegalArgumentException e) {
            // a URI the API server took but java.net.URI does not: the recorded one stands
        }
        return recorded.uri();
    }

    private static boolean sameReplica(Planned p, ReplicaAssignment r) {
        return p.deployment().model().digest().equals(r.modelDigest())
                && p.deployment().kvBytesPerReplica() == r.kvBytes()
                && (p.header() == null || p.cr().servedModelName().equals(r.servedModelName()));
    }

    static int replicaIndex(String id) {
        int hash = id.lastIndexOf('#');
        try {
            return hash < 0 ? -1 : Integer.parseInt(id.substring(hash + 1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private HostAssignment assignment(
            Device dev,
            List<ReplicaId> replicas,
            Map<String, Planned> planned,
            Map<String, Moving> moving,
            Host old,
            List<DormantDeployment> dormant) {
        Map<String, ModelAssignment> modelsByDigest = new TreeMap<>();
        List<ReplicaAssignment> reps = new ArrayList<>();
        // In the replicas' own order, a kept copy where its replica would be: a host's assignment does not change
        // while its copies wait for their replacements.
        Function<ReplicaId, ReplicaId> real = r ->
                moving.containsKey(r.deployment()) ? moving.get(r.deployment()).replica() : r;
        for (ReplicaId r : replicas.stream()
                .sorted(Comparator.comparing(real).thenComparing(Comparator.naturalOrder()))
                .toList()) {
            Moving mv = moving.get(r.deployment());
            if (mv != null) {
                ModelAssignment m = mv.model();
                modelsByDigest.putIfAbsent(m.digest(), m);
                reps.add(mv.copy().replica());
                continue;
            }
            Planned p = planned.get(r.deployment());
            String digest = p.deployment().model().digest();
            String sha = p.recordedModel() != null
                    ? p.recordedModel().sha256()
                    : p.cr().getSpec().getModel().getSha256();
            modelsByDigest.putIfAbsent(
                    digest,
                    new ModelAssignment(
                            digest,
                            // pvc:// and file:// sources are mounted into the host pod: it reads them there.
                            SourceMount.hostUri(p.uri()),
                            sha,
                            p.memory().weightBytes(),
                            p.memory().workspaceBytes()));
            if (p.header() == null) {
                // Kept from the ledger: copy the recorded replica unchanged.
                reps.add(findRecorded(r, old, p));
                continue;
            }
            LlmDeploymentManifest m = p.input().manifest();
            reps.add(new ReplicaAssignment(
                    r.toString(),
                    r.deployment(),
                    p.cr().servedModelName(),
                    digest,
                    (int) p.input().maxTokens(),
                    m.maxSequences(),
                    m.kvCacheType().label(),
                    p.memory().kvBytesPerReplica()));
        }
        // A new version's replica and the previous version's with the same id on one host: the new one wins.
        Map<String, ReplicaAssignment> byId = new LinkedHashMap<>();
        for (ReplicaAssignment a : reps) {
            ReplicaAssignment had = byId.get(a.id());
            Planned current = planned.get(a.deployment());
            if (had == null
                    || (current != null && current.deployment().model().digest().equals(a.modelDigest()))) {
                byId.put(a.id(), a);
            }
        }
        reps = new ArrayList<>(byId.values());
        Set<String> used = reps.stream().map(ReplicaAssignment::modelDigest).collect(Collectors.toSet());
        modelsByDigest.keySet().retainAll(used);
        List<ModelAssignment> models = new ArrayList<>(modelsByDigest.values());
        List<ScalingPolicy> scaling = scalingPolicies(reps, planned);
        List<DormantDeployment> dormantHere = dormant.stream()
                .sorted(Comparator.comparing(DormantDeployment::deployment))
                .toList();
        long budget = dev.capacityBytes();
        if (old != null
                && old.assignment().models().equals(models)
                && old.assignment().replicas().equals(reps)
                && old.assignment().scaling().equals(scaling)
                && old.assignment().dormant().equals(dormantHere)
                && old.assignment().budgetBytes() == budget) {
            return old.assignment();
        }
        long gen = old == null ? 1 : old.assignment().generation() + 1;
        return new HostAssignment(gen, budget, models, reps, scaling, dormantHere);
    }

    private static ReplicaAssignment findRecorded(ReplicaId r, Host old, Planned p) {
        String id = statusKey(r.deployment()) + "#" + r.index();
        if (old != null) {
            for (ReplicaAssignment a : old.assignment().replicas()) {
                if (a.id().equals(id)) {
                    return a;
                }
            }
        }
        return new ReplicaAssignment(
                id,
                statusKey(r.deployment()),
                p.cr().servedModelName(),
                p.deployment().model().digest(),
                0,
                0,
                "f16",
                p.deployment().kvBytesPerReplica());
    }

    private static long plannedBytes(HostAssignment a, Device dev) {
        long ws = a.models().stream()
                .mapToLong(ModelAssignment::workspaceBytes)
                .max()
                .orElse(0);
        long w = a.models().stream().mapToLong(ModelAssignment::weightBytes).sum();
        long kv = a.replicas().stream().mapToLong(ReplicaAssignment::kvBytes).sum();
        return dev.hostOverheadBytes() + ws + w + kv;
    }

    private Map<String, Pod> commitHostPods(
            Map<String, HostAssignment> desired,
            Map<String, Device> deviceById,
            Map<String, Planned> planned,
            Map<String, Host> ledger,
            Map<String, StatusAggregator.Problem> problems,
            Set<String> terminating,
            Set<String> replaceInPlace) {
        Map<String, Pod> out = new TreeMap<>();
        for (Map.Entry<String, HostAssignment> e : desired.entrySet()) {
            String devId = e.getKey();
            HostAssignment a = e.getValue();
            Device dev = deviceById.get(devId);
            // The deployments of the host: its replicas' and its dormant ones' (it is their activation point).
            List<String> keys = new ArrayList<>();
            a.replicas().forEach(r -> keys.add(r.deployment()));
            a.dormant().forEach(d -> keys.add(d.deployment()));
            List<LlmDeployment> owners = keys.stream()
                    .distinct()
                    .map(k -> planned.containsKey(k) ? planned.get(k).cr() : liveByKey.get(statusKey(k)))
                    .filter(Objects::nonNull)
                    .toList();
            if (owners.isEmpty()) {
                continue;
            }
            String ns = owners.get(0).getMetadata().getNamespace();
            ensureToken(ns);
            String json;
            try {
                json = HostAdminClient.JSON.writeValueAsString(a);
            } catch (JsonProcessingException ex) {
                throw new IllegalStateException(ex);
            }
            Host old = ledger.get(devId);
            Map<String, String> ready = old == null ? Map.of() : readyLabelsOf(old.pod());
            List<String> sources = keys.stream()
                    .distinct()
                    .map(k -> planned.containsKey(k)
                            ? planned.get(k).uri()
                            : liveByKey.containsKey(statusKey(k))
                                    ? liveByKey
                                            .get(statusKey(k))
                                            .getSpec()
                                            .getModel()
                                            .getUri()
                                    : null)
                    .filter(Objects::nonNull)
                    .toList();
            // A CPU host's pod asks for the memory planned for its contents, not the device's whole share.
            long podBytes = plannedBytes(a, dev);
            Pod want = HostPodDependent.desired(config, ns, dev, json, owners, podBytes, ready, sources, tls != null);
            try {
                if (tls != null) {
                    // The pod mounts the namespace's TLS Secret: it must exist before the pod does.
                    tls.ensure(ns);
                }
                if (commitHostPod(out, devId, ns, old, want, json, terminating, replaceInPlace.contains(devId))) {
                    // Marked for replacement: it serves what it served until its replicas have moved.
                    e.setValue(old.assignment());
                }
            } catch (KubernetesClientException | IllegalStateException ex) {
                // One host that cannot be written must not stop the others; the next pass retries.
                LOG.warnf("host pod for %s in %s not written: %s", devId, ns, ex.getMessage());
                if (ex instanceof KubernetesClientException k
                        && (k.getCode() == 400 || k.getCode() == 403 || k.getCode() == 422)) {
                    // Refused by the API server (admission such as Pod Security, RBAC, validation): the deployments
                    // on it say so, or they would wait for a host that never comes.
                    String why = hostRefusal(ns, want, sources, k);
                    for (LlmDeployment o : owners) {
                        events.warning(o, HOST_POD_REFUSED, why);
                        problems.putIfAbsent(o.key(), new StatusAggregator.Problem(HOST_POD_REFUSED, why, true));
                    }
                }
            }
        }
        deleteEmptyHosts(desired, ledger);
        return out;
    }

    /** The reason of a deployment whose host pod the API server refused to create. */
    static final String HOST_POD_REFUSED = "HostPodRefused";

    private static String hostRefusal(String ns, Pod want, List<String> sources, KubernetesClientException k) {
        String why = k.getStatus() != null && k.getStatus().getMessage() != null
                ? k.getStatus().getMessage()
                : k.getMessage();
        String hint = "";
        if (sources.stream().anyMatch(u -> u.startsWith("file:"))
                && why != null
                && (why.contains("hostPath") || why.contains("PodSecurity"))) {
            hint = "; file:// sources are mounted from the node as hostPath, which Pod Security baseline and"
                    + " restricted refuse: copy the model to a PersistentVolumeClaim and use pvc://CLAIM/PATH";
        } else if (why != null && why.contains("hostPath")) {
            hint = "; the model cache is a node directory (modelCache.hostPath): use modelCache.pvc or the default"
                    + " emptyDir in this namespace";
        }
        return "the API server refused host pod " + ns + "/"
                + want.getMetadata().getName() + " (HTTP " + k.getCode() + "): " + why + hint + "; retried each pass";
    }

    /** A CPU host's memory limit in bytes (a pod's resources cannot be edited); 0 for a GPU host. */
    private static long memoryLimit(Pod p) {
        var res = p.getSpec().getContainers().get(0).getResources();
        var limits = res == null ? null : res.getLimits();
        Quantity q = limits == null ? null : limits.get("memory");
        return q == null ? 0 : Quantity.getAmountInBytes(q).longValue();
    }

    private static boolean isFailed(Pod p) {
        return p.getStatus() != null && "Failed".equals(p.getStatus().getPhase());
    }

    private static Set<String> volumeNames(Pod p) {
        return p.getSpec() == null || p.getSpec().getVolumes() == null
                ? Set.of()
                : p.getSpec().getVolumes().stream()
                        .map(io.fabric8.kubernetes.api.model.Volume::getName)
                        .collect(Collectors.toSet());
    }

    /**
     * Creates, edits or replaces one device's host pod; answers whether the pod keeps its old assignment this pass
     * (it is marked for replacement, and its replicas move first).
     */
    private boolean commitHostPod(
            Map<String, Pod> out,
            String devId,
            String ns,
            Host old,
            Pod want,
            String json,
            Set<String> terminating,
            boolean inPlace) {
        if (old == null) {
            if (terminating.contains(ns + "/" + want.getMetadata().getName())) {
                // Its predecessor of the same name still terminates (draining requests, holding its GPU): the new
                // pod is created once it is gone; its deletion asks for the next pass.
                LOG.infof(
                        "host pod %s/%s waits for its predecessor of the same name to terminate",
                        ns, want.getMetadata().getName());
                return false;
            }
            out.put(devId, wrote(client.pods().inNamespace(ns).resource(want).create()));
            return false;
        }
        Pod current = old.pod();
        // A host keeps volumes it no longer needs (a deployment with its own claim deleted): only a volume it lacks
        // makes it go, so that removing one deployment never replaces the host serving the others.
        boolean hasVolumes = volumeNames(current).containsAll(volumeNames(want));
        if (!isFailed(current) && hasVolumes && memoryLimit(current) < memoryLimit(want)) {
            // A CPU host whose planned memory grew (a model or replica added) is resized in place, so that the
            // models it serves stay served; where the API server cannot (before Kubernetes 1.33), it is replaced.
            current = resized(ns, current, want);
        }
        String name = current.getMetadata().getName();
        boolean mustReplace = !hasVolumes || memoryLimit(current) < memoryLimit(want);
        String marked = annotation(current, Labels.REPLACE_ANNOTATION);
        if (isFailed(current) || (mustReplace && inPlace)) {
            // A failed pod (evicted, say) never runs again; a serving one whose replicas cannot go elsewhere first is
            // replaced in place. It is deleted with its own grace period (a running host drains its requests), and
            // its successor, of the same name, is created once it is gone, with the assignment planned then.
            LOG.infof(
                    "replacing host pod %s/%s in place (%s); the new one starts once it is gone",
                    ns, name, isFailed(current) ? "phase Failed" : "model sources or planned memory changed");
            client.pods().inNamespace(ns).withName(name).delete();
            deleted(ns, name);
            return false;
        }
        if (mustReplace) {
            // A pod's volumes cannot be edited and its memory could not grow: the host is replaced make before
            // break. Marked, it keeps what it serves; the next pass moves its replicas elsewhere (as off a cordoned
            // node) and deletes it once they serve there, or replaces it in place where nothing else has room.
            if (marked == null) {
                String why = !hasVolumes
                        ? "its model sources changed"
                        : "its planned memory grew and it cannot be resized in place";
                LOG.infof("host pod %s/%s is to be replaced (%s): its replicas move first", ns, name, why);
                current = wrote(client.pods().inNamespace(ns).withName(name).edit(p -> {
                    p.getMetadata().getAnnotations().put(Labels.REPLACE_ANNOTATION, why);
                    return p;
                }));
            }
            out.put(devId, current);
            return true;
        }
        if (!Objects.equals(current.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION), json)
                || !sameOwners(current, want)) {
            // Compare only what we own: the assignment and the owners; foreign labels and annotations stay. A host
            // marked for replacement keeps its mark: its device takes nothing new, and it goes once it is empty.
            out.put(devId, wrote(client.pods().inNamespace(ns).withName(name).edit(p -> {
                p.getMetadata().getAnnotations().put(Labels.ASSIGNMENT_ANNOTATION, json);
                p.getMetadata().setOwnerReferences(want.getMetadata().getOwnerReferences());
                return p;
            })));
        } else {
            out.put(devId, current);
        }
        return false;
    }

    private static String annotation(Pod p, String key) {
        Map<String, String> a = p.getMetadata().getAnnotations();
        return a == null ? null : a.get(key);
    }

    /**
     * Resizes a host pod's container resources in place to {@code want}'s (the pod's {@code resize} subresource,
     * Kubernetes 1.33 and later; memory with restart policy NotRequired), and answers the resized pod, or the pod
     * unchanged when the API server refused (the caller then replaces it).
     */
    private Pod resized(String ns, Pod pod, Pod want) {
        String name = pod.getMetadata().getName();
        try {
            String patch = HostAdminClient.JSON.writeValueAsString(List.of(Map.of(
                    "op", "replace",
                    "path", "/spec/containers/0/resources",
                    "value", want.getSpec().getContainers().get(0).getResources())));
            String url = client.getMasterUrl().toString().replaceAll("/+$", "") + "/api/v1/namespaces/" + ns + "/pods/"
                    + name + "/resize";
            var http = client.getHttpClient();
            var response = http.sendAsync(
                            http.newHttpRequestBuilder()
                                    .uri(url)
                                    .method("PATCH", "application/json-patch+json", patch)
                                    .build(),
                            String.class)
                    .get(config.httpTimeout().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            if (response.code() / 100 == 2) {
                Pod p = io.fabric8.kubernetes.client.utils.Serialization.unmarshal(response.body(), Pod.class);
                LOG.infof("resized host pod %s/%s in place to %d bytes of memory", ns, name, memoryLimit(p));
                return wrote(p);
            }
            LOG.infof("host pod %s/%s cannot be resized in place (HTTP %d); replacing it", ns, name, response.code());
        } catch (JsonProcessingException
                | java.util.concurrent.ExecutionException
                | java.util.concurrent.TimeoutException e) {
            Throwable why =
                    e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
            LOG.infof("host pod %s/%s cannot be resized in place (%s); replacing it", ns, name, why.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return pod;
    }

    /** Remembers a host pod as written, until the view shows it at least as new. */
    private Pod wrote(Pod p) {
        if (p != null) {
            ownWrites.put(
                    p.getMetadata().getNamespace() + "/" + p.getMetadata().getName(),
                    new OwnWrite(p, System.nanoTime()));
        }
        return p;
    }

    private void deleted(String ns, String name) {
        ownWrites.put(ns + "/" + name, new OwnWrite(null, System.nanoTime()));
    }

    /**
     * The pods of the view with this operator's own host pod writes laid over them while the view (an informer
     * cache) has not caught up: a pass never plans from a ledger older than the last pass's commit, which could
     * place a replica twice. An own write is dropped once the view shows it, or after {@link #OWN_WRITES_KEPT}.
     */
    private List<Pod> withOwnWrites(List<Pod> pods) {
        if (ownWrites.isEmpty()) {
            return pods;
        }
        Map<String, Pod> byKey = new LinkedHashMap<>();
        for (Pod p : pods) {
            byKey.put(p.getMetadata().getNamespace() + "/" + p.getMetadata().getName(), p);
        }
        long now = System.nanoTime();
        for (Map.Entry<String, OwnWrite> e : ownWrites.entrySet()) {
            OwnWrite w = e.getValue();
            Pod seen = byKey.get(e.getKey());
            // A deletion shows as the pod gone or terminating (it holds its GPU until it is gone).
            boolean caughtUp = w.pod() == null
                    ? seen == null || seen.getMetadata().getDeletionTimestamp() != null
                    : seen != null && !olderThan(seen, w.pod());
            if (caughtUp || now - w.atNanos() > OWN_WRITES_KEPT.toNanos()) {
                ownWrites.remove(e.getKey(), w);
            } else if (w.pod() == null) {
                // Deleted, gracefully: it terminates until the view shows it gone, and no pod of its name is made.
                Pod terminating = new io.fabric8.kubernetes.api.model.PodBuilder(seen)
                        .editMetadata()
                        .withDeletionTimestamp(EventRecorder.time(java.time.Instant.now()))
                        .endMetadata()
                        .build();
                byKey.put(e.getKey(), terminating);
            } else {
                byKey.put(e.getKey(), w.pod());
            }
        }
        return new ArrayList<>(byKey.values());
    }

    /** Whether {@code a} is an older version of the object than {@code b}, by resourceVersion where it is a number. */
    private static boolean olderThan(Pod a, Pod b) {
        try {
            return Long.parseLong(a.getMetadata().getResourceVersion())
                    < Long.parseLong(b.getMetadata().getResourceVersion());
        } catch (NumberFormatException | NullPointerException e) {
            return false;
        }
    }

    private void deleteEmptyHosts(Map<String, HostAssignment> desired, Map<String, Host> ledger) {
        for (Host h : ledger.values()) {
            if (!desired.containsKey(h.deviceId())) {
                Pod p = h.pod();
                LOG.infof(
                        "removing host %s/%s: no replica is placed on %s any more",
                        p.getMetadata().getNamespace(), p.getMetadata().getName(), h.deviceId());
                client.pods()
                        .inNamespace(p.getMetadata().getNamespace())
                        .withName(p.getMetadata().getName())
                        .delete();
                deleted(p.getMetadata().getNamespace(), p.getMetadata().getName());
            }
        }
    }

    /** Whether the owners are the same deployments with the same controlling one. */
    private static boolean sameOwners(Pod have, Pod want) {
        Function<Pod, Set<String>> owners = p -> p.getMetadata().getOwnerReferences().stream()
                .map(o -> o.getUid() + (Boolean.TRUE.equals(o.getController()) ? "!" : ""))
                .collect(Collectors.toSet());
        return owners.apply(have).equals(owners.apply(want));
    }

    private static Map<String, String> readyLabelsOf(Pod p) {
        Map<String, String> out = new TreeMap<>();
        if (p.getMetadata().getLabels() != null) {
            p.getMetadata().getLabels().forEach((k, v) -> {
                if (k.startsWith(Labels.READY_PREFIX)) {
                    out.put(k, v);
                }
            });
        }
        return out;
    }

    /** A namespace's admin token and, during a rotation, the one before it (hosts re-read their file in time). */
    private record Tokens(String current, String previous) {}

    private String ensureToken(String ns) {
        Tokens t = tokens.get(ns);
        if (t != null) {
            return t.current();
        }
        String token = readOrCreateToken(ns);
        tokens.put(ns, new Tokens(token, null));
        return token;
    }

    /**
     * After a 401: reads the token Secret again (it may have been rotated) and answers the tokens worth another try,
     * newest first: the new one if it changed, and the previous one for a host whose mounted file is not updated yet.
     */
    private List<String> retryTokens(String ns, String refused) {
        Tokens t = tokens.get(ns);
        String fresh;
        try {
            fresh = readOrCreateToken(ns);
        } catch (KubernetesClientException e) {
            // The 401 stands; the next pass reads the Secret again.
            LOG.warnf("admin token Secret %s/%s not read after a 401: %s", ns, Labels.TOKEN_SECRET, e.getMessage());
            return t == null || t.previous() == null || t.previous().equals(refused)
                    ? List.of()
                    : List.of(t.previous());
        }
        Tokens now = t == null || fresh.equals(t.current()) ? t : new Tokens(fresh, t.current());
        if (now == null) {
            now = new Tokens(fresh, null);
        }
        tokens.put(ns, now);
        List<String> out = new ArrayList<>();
        for (String c : java.util.Arrays.asList(now.current(), now.previous())) {
            if (c != null && !c.equals(refused) && !out.contains(c)) {
                out.add(c);
            }
        }
        return out;
    }

    private String readOrCreateToken(String ns) {
        Secret s =
                client.secrets().inNamespace(ns).withName(Labels.TOKEN_SECRET).get();
        if (s == null || s.getData() == null || s.getData().get(Labels.TOKEN_KEY) == null) {
            byte[] b = new byte[32];
            random.nextBytes(b);
            String token = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
            s = new SecretBuilder()
                    .withNewMetadata()
                    .withName(Labels.TOKEN_SECRET)
                    .withNamespace(ns)
                    .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                    .endMetadata()
                    .withType("Opaque")
                    .addToData(Labels.TOKEN_KEY, Base64.getEncoder().encodeToString(token.getBytes()))
                    .build();
            try {
                client.secrets().inNamespace(ns).resource(s).create();
            } catch (KubernetesClientException e) {
                if (e.getCode() != 409) {
                    throw e;
                }
                s = client.secrets()
                        .inNamespace(ns)
                        .withName(Labels.TOKEN_SECRET)
                        .get();
            }
        }
        return new String(Base64.getDecoder().decode(s.getData().get(Labels.TOKEN_KEY))).strip();
    }

    /**
     * Pushes every host at once, at most {@link PushOptions#parallelism} at a time; a host that has not answered
     * within {@link PushOptions#hostTimeout} of its start is reported unavailable, so a slow or dead host never
     * holds up another host's push or the pass. Answers by device, in the order of {@code hostPods}.
     */
    private Map<String, HostReport> pushAll(
            Map<String, Pod> hostPods, Map<String, HostAssignment> desired, Map<String, Planned> planned) {
        // The namespace's token and TLS trust first, once each, on this thread.
        for (Pod pod : hostPods.values()) {
            String ns = pod.getMetadata().getNamespace();
            try {
                ensureToken(ns);
                if (tls != null) {
                    tls.ensure(ns);
                }
            } catch (KubernetesClientException | IllegalStateException e) {
                // push() says so for each of the namespace's hosts.
                LOG.debugf("admin token or TLS of namespace %s not ready: %s", ns, e.getMessage());
            }
        }
        Map<String, java.util.concurrent.CompletableFuture<HostReport>> futures = new LinkedHashMap<>();
        for (Map.Entry<String, Pod> e : hostPods.entrySet()) {
            Pod pod = e.getValue();
            HostAssignment a = desired.get(e.getKey());
            java.util.concurrent.CompletableFuture<HostReport> f = new java.util.concurrent.CompletableFuture<>();
            futures.put(e.getKey(), f);
            try {
                pushPool.execute(() -> {
                    if (f.isDone()) {
                        return;
                    }
                    // The host's time starts when its push does, not while it waits for a free thread.
                    var timer = pushTimer.schedule(
                            () -> f.complete(timedOut(pod, a, planned)),
                            pushOptions.hostTimeout().toMillis(),
                            java.util.concurrent.TimeUnit.MILLISECONDS);
                    try {
                        f.complete(push(pod, a, planned));
                    } catch (RuntimeException ex) {
                        f.completeExceptionally(ex);
                    } finally {
                        timer.cancel(false);
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException ex) {
                f.complete(new HostReport(
                        null,
                        new HostUnavailableException(
                                "HostUnavailable", "the operator is shutting down; host not pushed this pass")));
            }
        }
        Map<String, HostReport> out = new LinkedHashMap<>();
        for (Map.Entry<String, java.util.concurrent.CompletableFuture<HostReport>> e : futures.entrySet()) {
            try {
                out.put(e.getKey(), e.getValue().join());
            } catch (java.util.concurrent.CompletionException ex) {
                Pod pod = hostPods.get(e.getKey());
                LOG.warnf(
                        ex.getCause(),
                        "push to host %s failed",
                        pod.getMetadata().getName());
                out.put(
                        e.getKey(),
                        new HostReport(
                                null,
                                new HostUnavailableException(
                                        "HostUnavailable",
                                        "host " + pod.getMetadata().getName() + ": " + ex.getCause())));
            }
        }
        return out;
    }

    /**
     * Whether a host is still downloading, loading or unloading a model: its ready labels will change without a
     * Kubernetes event, so the scheduler looks again soon rather than at the next resync.
     */
    static boolean settling(Map<String, HostReport> reports) {
        return reports.values().stream()
                .filter(r -> r != null && r.state() != null)
                .flatMap(r -> r.state().models().stream())
                .anyMatch(m -> m.phase() == ModelPhase.DOWNLOADING
                        || m.phase() == ModelPhase.LOADING
                        || m.phase() == ModelPhase.UNLOADING);
    }

    /** The event and Degraded reason of a host that did not answer within the per-host push timeout. */
    static final String HOST_TIMEOUT = "HostTimeout";

    private HostReport timedOut(Pod pod, HostAssignment a, Map<String, Planned> planned) {
        HostUnavailableException e = new HostUnavailableException(
                HOST_TIMEOUT,
                "host " + pod.getMetadata().getName() + " did not answer its admin API within "
                        + pushOptions.hostTimeout().toMillis() + " ms; the next pass tries again");
        warnOwners(pod, a, planned, e);
        return new HostReport(null, e);
    }

    private HostReport push(Pod pod, HostAssignment a, Map<String, Planned> planned) {
        String crash = crashMessage(pod);
        if (crash != null) {
            // The runtime exits before its admin API answers (a GPU host without the CUDA backend, say): say
            // why, from what the container left in its termination message.
            HostUnavailableException e = new HostUnavailableException(
                    HOST_FAILED, "host pod " + pod.getMetadata().getName() + " keeps failing: " + crash);
            warnOwners(pod, a, planned, e);
            return new HostReport(null, e);
        }
        String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
        URI uri = "Running".equals(phase) ? adminUri.apply(pod) : null;
        if (uri == null) {
            return null;
        }
        String ns = pod.getMetadata().getNamespace();
        String token = ensureToken(ns);
        try {
            HostTrust trust;
            try {
                trust = tls == null ? null : tls.ensure(ns);
            } catch (KubernetesClientException | IllegalStateException e) {
                throw new HostUnavailableException(
                        "HostTlsUnavailable", "the admin TLS Secrets of namespace " + ns + ": " + e.getMessage());
            }
            HostState s;
            try {
                s = admin.state(uri, token, trust);
            } catch (HostUnavailableException e) {
                if (!"HostUnauthorized".equals(e.reason())) {
                    throw e;
                }
                // The token may have been rotated: try what the Secret holds now, and the token before it.
                HostUnavailableException last = e;
                s = null;
                for (String other : retryTokens(ns, token)) {
                    try {
                        s = admin.state(uri, other, trust);
                        token = other;
                        break;
                    } catch (HostUnavailableException again) {
                        last = again;
                    }
                }
                if (s == null) {
                    throw last;
                }
            }
            if (s.generation() != a.generation() || !covers(s, a)) {
                s = admin.assign(uri, token, trust, a);
            }
            for (ModelState m : s.models()) {
                if (m.phase() == ModelPhase.FAILED) {
                    for (ReplicaAssignment r : a.replicas()) {
                        Planned p = planned.get(r.deployment());
                        if (p != null && r.modelDigest().equals(m.digest())) {
                            events.warning(
                                    p.cr(),
                                    "ModelLoadFailed",
                                    "host " + pod.getMetadata().getName() + " could not load " + m.uri() + ": "
                                            + m.reason());
                        }
                    }
                }
            }
            return new HostReport(s, null);
        } catch (HostUnavailableException e) {
            warnOwners(pod, a, planned, e);
            return new HostReport(null, e);
        }
    }

    /** The event reason and Degraded reason of a host whose container keeps failing. */
    static final String HOST_FAILED = "HostFailed";

    private void warnOwners(Pod pod, HostAssignment a, Map<String, Planned> planned, HostUnavailableException e) {
        for (String dep : a.replicas().stream()
                .map(ReplicaAssignment::deployment)
                .distinct()
                .toList()) {
            Planned p = planned.get(dep);
            if (p != null) {
                events.warning(p.cr(), e.reason(), "host " + pod.getMetadata().getName() + ": " + e.getMessage());
            }
        }
    }

    /**
     * Why the host's container keeps failing, or null while it does not: it waits in CrashLoopBackOff, or
     * has restarted at least 3 times after failing; the message is its last termination message.
     */
    static String crashMessage(Pod pod) {
        if (pod.getStatus() == null || pod.getStatus().getContainerStatuses() == null) {
            return null;
        }
        for (var cs : pod.getStatus().getContainerStatuses()) {
            var waiting = cs.getState() == null ? null : cs.getState().getWaiting();
            boolean backOff = waiting != null && "CrashLoopBackOff".equals(waiting.getReason());
            var last = cs.getLastState() == null ? null : cs.getLastState().getTerminated();
            boolean failing = last != null
                    && last.getExitCode() != null
                    && last.getExitCode() != 0
                    && cs.getRestartCount() != null
                    && cs.getRestartCount() >= 3
                    && !Boolean.TRUE.equals(cs.getReady());
            if (!backOff && !failing) {
                continue;
            }
            StringBuilder b = new StringBuilder("container ").append(cs.getName());
            if (last != null) {
                b.append(" exited with code ").append(last.getExitCode());
                if (last.getReason() != null) {
                    b.append(" (").append(last.getReason()).append(')');
                }
            }
            if (cs.getRestartCount() != null) {
                b.append(" after ").append(cs.getRestartCount()).append(" restart(s)");
            }
            if (backOff) {
                b.append(", CrashLoopBackOff");
            }
            String msg = last == null ? null : last.getMessage();
            b.append(": ").append(msg == null || msg.isBlank() ? "no termination message" : msg.strip());
            return b.toString();
        }
        return null;
    }

    /** Whether the host's state lists every assigned replica (a restarted host forgets its assignment). */
    private static boolean covers(HostState s, HostAssignment a) {
        Set<String> have = s.replicas().stream().map(ReplicaState::id).collect(Collectors.toSet());
        // A replica released by its host (scaled to zero) is still the host's: it re-activates it on a request.
        s.scaling().forEach(x -> have.addAll(x.releasedReplicas()));
        return a.replicas().stream().allMatch(r -> have.contains(r.id()));
    }

    /**
     * Sets each deployment's ready label on the hosts where one of its replicas reports ready, and takes it off
     * where none does. A host that gave no answer this pass (slow, timed out) keeps the labels of the deployments
     * still assigned to it: its own readiness probe (the server is up) takes it out of every Service if it is down.
     */
    private void updateReadyLabels(
            Map<String, Pod> hostPods, Map<String, HostReport> reports, Map<String, HostAssignment> desired) {
        for (Map.Entry<String, Pod> e : hostPods.entrySet()) {
            Pod pod = e.getValue();
            HostReport rep = reports.get(e.getKey());
            Map<String, String> have = readyLabelsOf(pod);
            Map<String, String> want = new TreeMap<>();
            if (rep != null && rep.state() != null) {
                Set<String> readyIds = rep.state().replicas().stream()
                        .filter(ReplicaState::ready)
                        .map(ReplicaState::id)
                        .collect(Collectors.toSet());
                for (ReplicaAssignment r : desired.get(e.getKey()).replicas()) {
                    if (readyIds.contains(r.id())) {
                        want.put(readyLabelOf(r.deployment()), "true");
                    }
                }
                // A deployment scaled to zero (released here) or dormant here keeps its Service on this host: the
                // host holds its requests and activates it (or reports the demand).
                Set<String> assignedHere = new HashSet<>();
                desired.get(e.getKey()).replicas().forEach(r -> assignedHere.add(r.deployment()));
                desired.get(e.getKey()).dormant().forEach(d -> assignedHere.add(d.deployment()));
                // (An active one whose replica still loads keeps it too: the host holds its requests until it serves.)
                for (DeploymentScalingState st : rep.state().scaling()) {
                    if (assignedHere.contains(st.deployment())) {
                        want.put(readyLabelOf(st.deployment()), "true");
                    }
                }
            } else {
                Set<String> assigned = desired.get(e.getKey()).replicas().stream()
                        .map(r -> readyLabelOf(r.deployment()))
                        .collect(Collectors.toSet());
                desired.get(e.getKey()).dormant().forEach(d -> assigned.add(readyLabelOf(d.deployment())));
                have.forEach((k, v) -> {
                    if (assigned.contains(k)) {
                        want.put(k, v);
                    }
                });
            }
            if (!have.equals(want)) {
                // One merge patch of the labels alone: no read first, and foreign labels stay as they are.
                Map<String, Object> labels = new TreeMap<>();
                have.keySet().forEach(k -> labels.put(k, null));
                labels.putAll(want);
                String patch;
                try {
                    patch = HostAdminClient.JSON.writeValueAsString(Map.of("metadata", Map.of("labels", labels)));
                } catch (JsonProcessingException ex) {
                    throw new IllegalStateException(ex);
                }
                try {
                    Pod updated = client.pods()
                            .inNamespace(pod.getMetadata().getNamespace())
                            .withName(pod.getMetadata().getName())
                            .patch(
                                    io.fabric8.kubernetes.client.dsl.base.PatchContext.of(
                                            io.fabric8.kubernetes.client.dsl.base.PatchType.JSON_MERGE),
                                    patch);
                    wrote(updated);
                    e.setValue(updated);
                } catch (KubernetesClientException ex) {
                    // The next pass sets them again; the others' labels must not wait for this one.
                    LOG.warnf(
                            "ready labels of host %s/%s not written: %s",
                            pod.getMetadata().getNamespace(), pod.getMetadata().getName(), ex.getMessage());
                }
            }
        }
    }

    private static String readyLabelOf(String deploymentKey) {
        return Labels.readyLabel(deploymentKey.substring(deploymentKey.indexOf('/') + 1));
    }

    private void reportPlacementEvents(
            Map<String, Host> ledger,
            Map<ReplicaId, String> deviceOf,
            Map<String, Planned> planned,
            List<Refusal> refusals,
            List<Eviction> evictions) {
        Set<String> before = new HashSet<>();
        ledger.values().forEach(h -> h.assignment().replicas().forEach(r -> before.add(r.id() + "@" + h.deviceId())));
        Map<String, TreeSet<String>> newPlacements = new TreeMap<>();
        deviceOf.forEach((r, dev) -> {
            if (!before.contains(r + "@" + dev)) {
                newPlacements
                        .computeIfAbsent(r.deployment(), k -> new TreeSet<>())
                        .add("#" + r.index() + " on " + dev);
            }
        });
        newPlacements.forEach((dep, where) -> {
            Planned p = planned.get(dep);
            events.normal(
                    p.cr(),
                    "Placed",
                    "placed replicas " + String.join(", ", where) + " ("
                            + Units.bytes(p.memory().kvBytesPerReplica()) + " KV each, weights "
                            + Units.bytes(p.memory().weightBytes()) + " once per device)");
        });
        for (Refusal r : refusals) {
            Planned p = planned.get(r.replica().deployment());
            if (p != null) {
                events.warning(p.cr(), "Unplaceable", "replica #" + r.replica().index() + " " + r.reason());
            }
        }
        for (Eviction ev : evictions) {
            Planned victim = planned.get(ev.victim().deployment());
            Planned winner =
                    ev.forReplica() == null ? null : planned.get(ev.forReplica().deployment());
            if (victim != null) {
                events.warning(
                        victim.cr(),
                        "Preempted",
                        "replica #" + ev.victim().index() + " removed from " + ev.deviceId() + " for " + ev.forReplica()
                                + ": " + ev.reason());
            }
            if (winner != null) {
                events.normal(
                        winner.cr(),
                        "Preempting",
                        "replica #" + ev.forReplica().index() + " takes " + ev.deviceId() + " from " + ev.victim()
                                + ": " + ev.reason());
            }
        }
    }

    // ------------------------------------------------------------------ scale to zero

    /** A deployment's {@code spec.scaling} as the manifest rules read it, or null (none, or a spec that fails). */
    private static Scaling scalingOf(Planned p) {
        if (p == null) {
            return null;
        }
        if (p.input() != null) {
            return p.input().manifest().scaling();
        }
        if (p.cr().getSpec() == null || p.cr().getSpec().getScaling() == null) {
            return null;
        }
        try {
            return SpecInput.manifest(p.cr()).scaling();
        } catch (RuntimeException e) { // a ManifestException: the spec's problem is reported where it is planned
            return null;
        }
    }

    /** What a host reported of a deployment's scale-to-zero state in the last pass that reached it, or null. */
    private DeploymentScalingState lastScalingOf(Host h, String deployment) {
        if (h == null) {
            return null;
        }
        for (DeploymentScalingState st : lastScaling.getOrDefault(podKey(h.pod()), List.of())) {
            if (st.deployment().equals(deployment)) {
                return st;
            }
        }
        return null;
    }

    /**
     * The deployments that stay dormant this pass, with their activation points (device to dormant entry): those a
     * host's assignment records as dormant, with no replica on any host, still live and still scaling to zero, and
     * for which no host reported a held request. One with a held request is planned again (an Activating event)
     * and put in {@code activating} with its activation points.
     */
    private Map<String, Map<String, DormantDeployment>> stillDormant(
            Map<String, Host> ledger,
            Map<String, Planned> planned,
            Map<String, Map<String, DormantDeployment>> activating) {
        Map<String, Map<String, DormantDeployment>> recorded = new TreeMap<>();
        Set<String> withReplicas = new HashSet<>();
        for (Host h : ledger.values()) {
            h.assignment()
                    .dormant()
                    .forEach(d -> recorded.computeIfAbsent(d.deployment(), k -> new TreeMap<>())
                            .put(h.deviceId(), d));
            h.assignment().replicas().forEach(r -> withReplicas.add(r.deployment()));
        }
        Map<String, Map<String, DormantDeployment>> out = new TreeMap<>();
        for (Map.Entry<String, Map<String, DormantDeployment>> e : recorded.entrySet()) {
            String dep = e.getKey();
            LlmDeployment cr = liveByKey.get(dep);
            if (cr == null || withReplicas.contains(dep)) {
                continue; // deleted, or placed again
            }
            Planned p = planned.get(dep);
            Scaling sc = p != null ? scalingOf(p) : scalingOf(new Planned(cr, null, null, null, null, null, null));
            if (sc == null || !sc.scalesToZero()) {
                continue; // no longer scales to zero: its replicas run again
            }
            int held = 0;
            long since = 0;
            String where = null;
            for (String dev : e.getValue().keySet()) {
                DeploymentScalingState st = lastScalingOf(ledger.get(dev), dep);
                if (st != null && st.heldRequests() > 0) {
                    held += st.heldRequests();
                    since = since == 0 ? st.demandSinceMillis() : Math.min(since, st.demandSinceMillis());
                    where = ledger.get(dev).pod().getMetadata().getName();
                }
            }
            if (held > 0) {
                events.normal(
                        cr,
                        ACTIVATING,
                        held + " request(s) held on host " + where + " since "
                                + EventRecorder.time(java.time.Instant.ofEpochMilli(since))
                                + ": placing the dormant deployment again");
                activating.put(dep, e.getValue());
                continue;
            }
            out.put(dep, e.getValue());
        }
        return out;
    }

    /**
     * The idle copies of a namespace, by deployment with their current placements: deployments that scale to zero
     * with every replica placed, and every host of theirs reporting them released with no request held.
     */
    private Map<String, List<Placement>> idleCopies(
            String ns,
            Map<String, Planned> planned,
            List<Placement> current,
            Map<String, Host> ledger,
            List<Moving> moving) {
        Map<String, List<Placement>> byDep = new TreeMap<>();
        current.forEach(pl -> byDep.computeIfAbsent(pl.replica().deployment(), k -> new ArrayList<>())
                .add(pl));
        Set<String> isMoving = new HashSet<>();
        moving.forEach(m -> isMoving.add(m.replica().deployment()));
        Map<String, List<Placement>> out = new TreeMap<>();
        for (Map.Entry<String, List<Placement>> e : byDep.entrySet()) {
            Planned p = planned.get(e.getKey());
            if (p == null
                    || p.header() == null
                    || !ns.equals(p.cr().getMetadata().getNamespace())
                    || isMoving.contains(e.getKey())) {
                continue;
            }
            Scaling sc = scalingOf(p);
            if (sc == null
                    || !sc.scalesToZero()
                    || e.getValue().size() != p.deployment().replicas()) {
                continue;
            }
            boolean idle = e.getValue().stream().allMatch(pl -> {
                DeploymentScalingState st = lastScalingOf(ledger.get(pl.deviceId()), e.getKey());
                return st != null && DeploymentScalingState.IDLE.equals(st.state()) && st.heldRequests() == 0;
            });
            if (idle) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    /**
     * Decides the idle copies of a plan made with them reclaimable: per device the least recently used are evicted
     * until the placed replicas and the copies left fit ({@link Reclaim}). An evicted deployment becomes dormant on
     * its devices (an IdleEvicted event names the bytes and the replicas that needed them); one kept keeps its
     * replicas where they are (still released on their hosts). A copy counts its weights, its workspace and its
     * replicas' KV: what its host needs to re-activate it on its own.
     */
    private void reclaim(
            PlanResult r,
            List<Device> devices,
            Map<String, List<Placement>> reclaiming,
            List<Placement> current,
            Set<ReplicaId> didNotFit,
            Map<String, Planned> planned,
            List<Placement> placements,
            Map<String, String> claimed,
            Map<String, Map<String, DormantDeployment>> dormant,
            String ns) {
        Map<String, List<String>> depsOfCopy = new TreeMap<>();
        Map<String, long[]> copyBytes = new TreeMap<>(); // weights + KV, workspace, last used
        Map<String, ModelRef> modelOf = new TreeMap<>();
        for (Map.Entry<String, List<Placement>> e : reclaiming.entrySet()) {
            Planned p = planned.get(e.getKey());
            ModelRef m = p.deployment().model();
            long lastUsed = 0;
            for (Placement pl : e.getValue()) {
                DeploymentScalingState st = lastScalingOf(hostOf(pl.deviceId()), e.getKey());
                lastUsed = Math.max(lastUsed, st == null ? 0 : st.lastUsedMillis());
            }
            for (Placement pl : e.getValue()) {
                String key = pl.deviceId() + "|" + m.digest();
                depsOfCopy.computeIfAbsent(key, k -> new ArrayList<>());
                if (!depsOfCopy.get(key).contains(e.getKey())) {
                    depsOfCopy.get(key).add(e.getKey());
                }
                modelOf.put(key, m);
                long[] b = copyBytes.computeIfAbsent(key, k -> new long[] {m.weightBytes(), m.workspaceBytes(), 0});
                b[0] += p.deployment().kvBytesPerReplica();
                b[2] = Math.max(b[2], lastUsed);
            }
        }
        List<IdleCopy> copies = new ArrayList<>();
        copyBytes.forEach((key, b) -> copies.add(new IdleCopy(
                key.substring(0, key.indexOf('|')),
                new ModelRef(modelOf.get(key).digest(), b[0], b[1]),
                b[2])));
        Reclaim rc = Reclaim.of(r, devices, copies);
        Set<String> before = new HashSet<>();
        current.forEach(pl -> before.add(pl.replica() + "@" + pl.deviceId()));
        Set<String> evicted = new TreeSet<>();
        for (IdleEviction ev : rc.evictions()) {
            String key = ev.deviceId() + "|" + ev.copy().model().digest();
            List<String> needing = r.placements().stream()
                    .filter(pl -> pl.deviceId().equals(ev.deviceId())
                            && (didNotFit.contains(pl.replica())
                                    || !before.contains(pl.replica() + "@" + pl.deviceId())))
                    .map(pl -> pl.replica().toString())
                    .sorted()
                    .toList();
            for (String dep : depsOfCopy.getOrDefault(key, List.of())) {
                evicted.add(dep);
                events.warning(
                        planned.get(dep).cr(),
                        IDLE_EVICTED,
                        "idle copy on " + ev.deviceId() + " evicted: " + Units.bytes(ev.bytes()) + " (" + ev.bytes()
                                + " bytes: weights, workspace and the released replicas' KV) for "
                                + (needing.isEmpty() ? "the replicas placed there" : String.join(", ", needing))
                                + " (" + ev.reason() + "); its next request places it again");
            }
        }
        for (Map.Entry<String, List<Placement>> e : reclaiming.entrySet()) {
            String dep = e.getKey();
            if (evicted.contains(dep)) {
                // Evicted as a whole: each of its hosts stays its activation point.
                Planned p = planned.get(dep);
                for (Placement pl : e.getValue()) {
                    dormant.computeIfAbsent(dep, k -> new TreeMap<>())
                            .put(pl.deviceId(), new DormantDeployment(dep, p.cr().servedModelName()));
                    claimed.put(pl.deviceId(), ns);
                }
                continue;
            }
            for (Placement pl : e.getValue()) {
                placements.add(pl);
                claimed.put(pl.deviceId(), ns);
            }
        }
    }

    /** The host recorded for a device in the pass in progress (set while planning), or null. */
    private Host hostOf(String deviceId) {
        return passLedger.get(deviceId);
    }

    private Map<String, Host> passLedger = Map.of();

    /**
     * The scaling policy of each deployment with {@code spec.scaling} among a host's replicas: {@code minReplicas}
     * is split over the hosts by replica index (replicas 0 .. minReplicas-1 stay active, wherever they are).
     */
    private static List<ScalingPolicy> scalingPolicies(List<ReplicaAssignment> reps, Map<String, Planned> planned) {
        Map<String, int[]> active = new TreeMap<>();
        Map<String, Scaling> policy = new TreeMap<>();
        for (ReplicaAssignment r : reps) {
            Scaling sc = scalingOf(planned.get(r.deployment()));
            if (sc == null) {
                continue;
            }
            policy.put(r.deployment(), sc);
            int[] n = active.computeIfAbsent(r.deployment(), k -> new int[1]);
            int index = replicaIndex(r.id());
            if (index >= 0 && index < sc.minReplicas()) {
                n[0]++;
            }
        }
        List<ScalingPolicy> out = new ArrayList<>();
        policy.forEach((dep, sc) -> out.add(
                new ScalingPolicy(dep, active.get(dep)[0], sc.idleTimeout().toMillis())));
        return out;
    }

    /**
     * Keeps, per host pod, the scale-to-zero states it reported this pass, and which host pods to poll between
     * passes (those with a scaling policy or a dormant deployment).
     */
    private void rememberScaling(
            Map<String, Pod> hostPods, Map<String, HostReport> reports, Map<String, HostAssignment> desired) {
        Set<String> seen = new HashSet<>();
        Map<String, Pod> poll = new TreeMap<>();
        for (Map.Entry<String, Pod> e : hostPods.entrySet()) {
            String key = podKey(e.getValue());
            seen.add(key);
            HostReport rep = reports.get(e.getKey());
            if (rep != null && rep.state() != null) {
                lastScaling.put(key, rep.state().scaling());
                scalingSeen.put(key, scalingSummary(rep.state()));
            } else {
                lastScaling.remove(key);
                scalingSeen.remove(key);
            }
            HostAssignment a = desired.get(e.getKey());
            if (a != null && (!a.scaling().isEmpty() || !a.dormant().isEmpty())) {
                poll.put(key, e.getValue());
            }
        }
        lastScaling.keySet().retainAll(seen);
        scalingSeen.keySet().retainAll(seen);
        scalingHosts = Map.copyOf(poll);
    }

    /** What of a host's scale-to-zero states makes a pass worth running: each deployment's state and demand. */
    private static String scalingSummary(HostState s) {
        return s.scaling().stream()
                .map(x -> x.deployment() + "=" + x.state() + (x.heldRequests() > 0 ? "+held" : ""))
                .sorted()
                .collect(Collectors.joining(","));
    }

    /**
     * Reads the state of the hosts with a scaling policy or a dormant deployment (no write, no Kubernetes request)
     * and says whether a pass should run: a deployment went idle, a held request arrived, or an activation ended.
     * Run between passes, at a short interval, so that a dormant deployment's demand places it within seconds.
     */
    public boolean hasScalingHosts() {
        return !scalingHosts.isEmpty();
    }

    /**
     * Reads the hosts with a scaling policy or a dormant deployment; see {@link #hasScalingHosts}.
     *
     * @return whether a pass should run
     */
    public boolean pollScaling() {
        Map<String, Pod> hosts = scalingHosts;
        if (hosts.isEmpty()) {
            return false;
        }
        List<java.util.concurrent.CompletableFuture<Boolean>> changed = new ArrayList<>();
        for (Map.Entry<String, Pod> e : hosts.entrySet()) {
            changed.add(java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> {
                        Pod pod = e.getValue();
                        URI uri = adminUri.apply(pod);
                        if (uri == null) {
                            return false;
                        }
                        String ns = pod.getMetadata().getNamespace();
                        Tokens t = tokens.get(ns);
                        if (t == null || t.current() == null) {
                            return false;
                        }
                        try {
                            HostState s = admin.state(uri, t.current(), tls == null ? null : tls.ensure(ns));
                            // The pass it may start plans from these states: a held request seen here places its
                            // dormant deployment in that very pass.
                            lastScaling.put(e.getKey(), s.scaling());
                            return !scalingSummary(s).equals(scalingSeen.get(e.getKey()));
                        } catch (HostUnavailableException | RuntimeException ex) {
                            return false; // the next pass reports an unavailable host
                        }
                    },
                    pushPool));
        }
        boolean any = false;
        for (var f : changed) {
            try {
                any |= f.get(pushOptions.hostTimeout().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (Exception ex) {
                // a slow host: the pass reads it
            }
        }
        return any;
    }

    /**
     * Per deployment that scales to zero and is idle or dormant now, what its status says: Dormant (evicted, its
     * hosts hold its next request) or Idle (every placed replica released on its host, the weights resident).
     */
    private static Map<String, StatusAggregator.ScalingView> scalingViews(
            List<LlmDeployment> live,
            Map<String, Planned> planned,
            Map<String, Map<String, DormantDeployment>> dormant,
            Map<ReplicaId, String> deviceOf,
            Map<String, HostReport> reports) {
        Map<String, StatusAggregator.ScalingView> out = new HashMap<>();
        for (LlmDeployment d : live) {
            Map<String, DormantDeployment> where = dormant.get(d.key());
            if (where != null) {
                out.put(
                        d.key(),
                        new StatusAggregator.ScalingView(
                                DeploymentScalingState.DORMANT, 0, String.join(", ", where.keySet())));
                continue;
            }
            Planned p = planned.get(d.key());
            if (p == null || scalingOf(p) == null) {
                continue;
            }
            List<String> devs = new ArrayList<>();
            deviceOf.forEach((r, dev) -> {
                if (r.deployment().equals(d.key())) {
                    devs.add(dev);
                }
            });
            if (devs.isEmpty() || devs.size() != p.deployment().replicas()) {
                continue;
            }
            long reclaimable = 0;
            boolean idle = true;
            for (String dev : new TreeSet<>(devs)) {
                HostReport rep = reports.get(dev);
                DeploymentScalingState st =
                        rep == null || rep.state() == null ? null : rep.state().scalingOf(d.key());
                if (st == null || !DeploymentScalingState.IDLE.equals(st.state())) {
                    idle = false;
                    break;
                }
                reclaimable += st.reclaimableBytes();
            }
            if (idle) {
                out.put(
                        d.key(),
                        new StatusAggregator.ScalingView(
                                DeploymentScalingState.IDLE, reclaimable, String.join(", ", new TreeSet<>(devs))));
            }
        }
        return out;
    }

    /** Keeps, per host pod, the replicas it reported ready this pass; a host that did not answer has none. */
    private void rememberReady(Map<String, Pod> hostPods, Map<String, HostReport> reports) {
        Set<String> seen = new HashSet<>();
        for (Map.Entry<String, Pod> e : hostPods.entrySet()) {
            String key = podKey(e.getValue());
            seen.add(key);
            HostReport rep = reports.get(e.getKey());
            if (rep == null || rep.state() == null) {
                lastReady.remove(key);
            } else {
                lastReady.put(
                        key,
                        rep.state().replicas().stream()
                                .filter(ReplicaState::ready)
                                .map(ReplicaState::id)
                                .collect(Collectors.toUnmodifiableSet()));
            }
        }
        lastReady.keySet().retainAll(seen);
    }

    /** What each host reported using in the last pass, by {@code namespace/pod}: ours, not foreign. */
    private Map<String, Long> reportedUsage(Map<String, Host> ledger) {
        Map<String, Long> out = new HashMap<>();
        for (Host h : ledger.values()) {
            String key = h.pod().getMetadata().getNamespace() + "/"
                    + h.pod().getMetadata().getName();
            Long used = lastUsed.get(key);
            if (used != null) {
                out.put(key, used);
            }
        }
        return out;
    }

    private List<GpuMemory> safeDcgm() {
        try {
            return dcgm.get();
        } catch (RuntimeException e) {
            LOG.warnf("DCGM usage unavailable (%s); capacity is not reduced by foreign usage this pass", e.toString());
            return List.of();
        }
    }

    private LlmDeployment ensureFinalizer(LlmDeployment d) {
        if (d.getMetadata().getFinalizers() != null
                && d.getMetadata().getFinalizers().contains(Labels.FINALIZER)) {
            return d;
        }
        try {
            LlmDeployment patched = Finalizers.add(client, d, Labels.FINALIZER);
            return patched == null ? d : patched;
        } catch (KubernetesClientException e) {
            LOG.debugf("finalizer not added to %s yet: %s", d.key(), e.getMessage());
            return d;
        }
    }

    /**
     * Deletes the admin token and TLS Secrets (and the hosts' disruption budget) of a namespace that has no
     * LlmDeployment left, and forgets them, so
     * that a deployment created there later gets new ones. A failure is logged; the Secrets then stay until the
     * namespace's next last deletion.
     */
    private void removeNamespaceSecrets(String ns) {
        budgets.remove(ns);
        tokens.remove(ns);
        if (tls != null) {
            tls.forget(ns);
        }
        for (String name : List.of(Labels.TOKEN_SECRET, Labels.HOST_TLS_SECRET)) {
            try {
                client.secrets().inNamespace(ns).withName(name).delete();
            } catch (KubernetesClientException e) {
                LOG.warnf(
                        "Secret %s/%s not deleted after the namespace's last LlmDeployment: %s",
                        ns, name, e.getMessage());
            }
        }
        LOG.infof("namespace %s has no LlmDeployment left: its admin Secrets are deleted", ns);
    }

    private void removeFinalizer(LlmDeployment d) {
        // The Service is owned by the deployment; deleting it here does not wait for the garbage collector.
        client.services()
                .inNamespace(d.getMetadata().getNamespace())
                .withName(StatusAggregator.serviceName(d))
                .delete();
        Finalizers.remove(client, d, Labels.FINALIZER);
    }
}
