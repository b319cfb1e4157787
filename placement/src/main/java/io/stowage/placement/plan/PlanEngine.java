package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeSet;

/**
 * One planning pass over one request: the mutable ledger of devices and replicas shared by the
 * Stowage planner and the two baselines (which differ only in {@link Mode}).
 *
 * <p>A device's demand is {@code O_host + max A_m + Σ W_m + Σ K_r} (docs/design.md). The search for a
 * replica's device goes by tiers: 1, a device that already holds the model's weights (costs K only;
 * best fit); then, for a new weight copy, 2, an open device with room for the rest of the model's
 * pending group; 3, an empty device, the largest usable first; 4, any open device it fits; within tiers
 * 2 and 4 least added bytes, then best fit, then device id (see {@link #findLinear}). Small changes use a linear scan over the eligible
 * devices; large batches use per-eligibility-class sorted indexes that give the same answer in
 * logarithmic time per step (a property test holds them equal).
 */
final class PlanEngine {

    /** How replicas are costed and packed. */
    enum Mode {
        /** Stowage: one copy of a model's weights per device, workspace is a maximum. */
        SHARING,
        /** Memory-fraction best fit: each replica pays its own W + A + K. */
        NO_SHARING,
        /** Kubernetes {@code nvidia.com/gpu: 1}: one whole device per replica. */
        WHOLE_DEVICE
    }

    /** Compute shares are held as integer millionths so that sums never drift. */
    static final long MICRO = 1_000_000L;

    /** Above this many pending replicas in one eligibility class, the sorted indexes pay for their build. */
    static final int INDEX_THRESHOLD = 16;

    private static final long UNLIMITED_COMPUTE = Long.MAX_VALUE / 4;

    /** Replicas in one request; far above any cluster, low enough that a typo cannot exhaust the heap. */
    static final long MAX_REPLICAS = 5_000_000;

    static final long MAX_BYTES = 1L << 50;

    private static final Comparator<Dev> OPEN_ORDER = (a, b) -> {
        int c = Long.compare(a.keyFree, b.keyFree);
        return c != 0 ? c : a.id.compareTo(b.id);
    };
    /** Empty devices, the one to open first first: largest usable capacity (cap − O_host), then id. */
    private static final Comparator<Dev> EMPTY_ORDER = (a, b) -> {
        int c = Long.compare(b.cap - b.overhead, a.cap - a.overhead);
        return c != 0 ? c : a.id.compareTo(b.id);
    };

    /**
     * Pending order: priority desc, then by model (weights desc, digest), so that a model's replicas
     * are placed one after another and fill the devices that hold its weights (first fit decreasing by
     * model groups); within a model, KV desc, deployment id, replica index.
     */
    private static final Comparator<Rep> PENDING_ORDER = (a, b) -> {
        int c = Integer.compare(b.dep.priority, a.dep.priority);
        if (c != 0) return c;
        c = Long.compare(b.dep.w, a.dep.w);
        if (c != 0) return c;
        c = a.dep.d.model().digest().compareTo(b.dep.d.model().digest());
        if (c != 0) return c;
        c = Long.compare(b.dep.k, a.dep.k);
        if (c != 0) return c;
        c = a.dep.id.compareTo(b.dep.id);
        return c != 0 ? c : Integer.compare(a.index, b.index);
    };

    private final Mode mode;
    private final boolean linearOnly;
    private boolean preemption;
    private PlanRequest request;

    private Dev[] devs;
    private final Inventory inventory;
    private Inventory inv;
    private final List<Dep> deps = new ArrayList<>();
    private final Map<String, Dep> depById = new HashMap<>();
    private final Map<ClassKey, Cls> classes = new HashMap<>();

    // Per model id (a digest in SHARING mode, a replica in NO_SHARING mode): W, A, devices holding it.
    private final List<String> modelDigest = new ArrayList<>();
    private final List<Long> modelW = new ArrayList<>();
    private final List<Long> modelA = new ArrayList<>();
    private final List<BitSet> holders = new ArrayList<>();
    private final Map<String, Integer> modelByDigest = new HashMap<>();

    private long minShare = Long.MAX_VALUE;
    private int minPriority = Integer.MAX_VALUE;
    private long version;
    private long replans;

    private final List<Eviction> evictions = new ArrayList<>();
    private final List<Rep> refused = new ArrayList<>();
    private final PriorityQueue<Rep> queue = new PriorityQueue<>(PENDING_ORDER);
    private final Map<Integer, Long> groupKv = new HashMap<>();

    PlanEngine(Mode mode, PlanRequest request, boolean linearOnly) {
        this(mode, request, linearOnly, true);
    }

    PlanEngine(Mode mode, PlanRequest request, boolean linearOnly, boolean preemption) {
        this(mode, request, linearOnly, preemption, null);
    }

    /** {@code inventory}: one built earlier, used when it is of this request's very device list. */
    PlanEngine(Mode mode, PlanRequest request, boolean linearOnly, boolean preemption, Inventory inventory) {
        this.inventory = inventory;
        this.mode = mode;
        this.request = request;
        this.linearOnly = linearOnly;
        this.preemption = preemption;
    }

    PlanResult run() {
        loadDevices();
        loadDeployments();
        return place(mode == Mode.SHARING ? loadCurrent() : allReplicas());
    }

    /** Places the pending replicas on the loaded ledger, drains, retries, and returns the plan. */
    private PlanResult place(List<Rep> pending) {
        for (Rep r : pending) {
            r.dep.cls.pending++;
        }
        enqueue(pending);
        placeQueue(preemption);
        if (mode == Mode.SHARING) {
            // Replicas placed in this pass are not running yet: moving them disrupts nothing, so the
            // drain runs on every plan; running replicas move only in an asked-for rebalance.
            rebalance(request.rebalance() ? request.maxDisruption() : 0);
            List<Rep> retry = new ArrayList<>(refused);
            refused.clear();
            enqueue(retry);
            placeQueue(false);
        }
        return result();
    }

    /**
     * Plans {@code next} on this engine's ledger as its last plan ({@code last}) left it, without loading
     * the fleet again: the same answer as a fresh engine would give (a property test holds them equal),
     * for the change an operator makes most, replica counts changed and deployments added. Returns null,
     * having changed nothing, for any other change (devices, a deployment edited or deleted, a rebalance,
     * current placements other than the last plan's): the caller then plans from scratch.
     */
    PlanResult replan(PlanRequest next, PlanResult last) {
        // an empty current list is a fresh plan, which may adopt the no-sharing packing: not a change
        if (mode != Mode.SHARING || next.rebalance() || next.current().isEmpty()) return null;
        if (next.devices() != request.devices() && !next.devices().equals(request.devices())) return null;
        // ---- check, changing nothing
        Map<String, Deployment> scaled = new HashMap<>();
        List<Deployment> added = new ArrayList<>();
        int matched = 0;
        long total = 0;
        long epoch = ++replans;
        long newMinShare = minShare;
        Map<String, long[]> newModels = new HashMap<>(); // digest -> {W, A} of models new in this change
        for (Deployment d : next.deployments()) {
            total += d.replicas();
            Dep old = depById.get(d.id());
            if (old != null) {
                if (old.seen == epoch) return null; // listed twice: a fresh plan says so
                old.seen = epoch;
                matched++;
                if (old.d == d || old.d.equals(d)) continue;
                if (!sameButReplicas(old.d, d) || scaled.put(d.id(), d) != null) return null;
                if (old.d.replicas() == 0 && d.replicas() > 0 && old.share < newMinShare) return null;
                continue;
            }
            long w = d.model().weightBytes();
            long a = d.model().workspaceBytes();
            if (w > MAX_BYTES || a > MAX_BYTES || d.kvBytesPerReplica() > MAX_BYTES) return null;
            Integer model = modelByDigest.get(d.model().digest());
            long[] fresh = newModels.get(d.model().digest());
            if (model != null && (modelW.get(model) != w || modelA.get(model) < a)) return null;
            if (fresh != null && (fresh[0] != w || fresh[1] != a)) return null;
            if (model == null && fresh == null) newModels.put(d.model().digest(), new long[] {w, a});
            if (d.replicas() > 0) newMinShare = Math.min(newMinShare, micro(d.computeShare()));
            added.add(d);
        }
        // a deletion or a duplicate id, a smaller share (the open-device indexes key on the smallest), or
        // too many replicas: a fresh plan decides (and explains)
        if (matched != deps.size() || newMinShare < minShare || total > MAX_REPLICAS) return null;
        Set<String> addedIds = new HashSet<>();
        for (Deployment d : added) {
            if (!addedIds.add(d.id())) return null;
        }
        if (!sameCurrent(next.current(), last.placements(), scaled, addedIds)) return null;

        // ---- apply
        request = next;
        preemption = true; // as a fresh plan of a request with running replicas has it
        evictions.clear();
        List<Rep> pending = new ArrayList<>(refused);
        refused.clear();
        for (Dev v : devs) v.preemptedInto = false;
        for (Dep dep : deps) {
            for (Rep r : dep.reps) {
                if (r != null && r.dev != null) r.runningOn = r.dev; // what the last plan placed now runs
            }
        }
        for (Deployment d : scaled.values()) {
            Dep dep = depById.get(d.id());
            int n = d.replicas();
            for (int i = n; i < dep.reps.length; i++) {
                Rep r = dep.reps[i];
                if (r.dev != null) remove(r);
                pending.remove(r);
            }
            Rep[] reps = java.util.Arrays.copyOf(dep.reps, n);
            dep.d = d;
            dep.reps = reps;
            for (int i = 0; i < n; i++) {
                if (reps[i] == null) pending.add(newRep(dep, i));
            }
            if (n > 0) minPriority = Math.min(minPriority, dep.priority);
        }
        if (!added.isEmpty()) {
            for (Deployment d : added) {
                int model = modelByDigest.computeIfAbsent(
                        d.model().digest(),
                        g -> newModel(g, d.model().weightBytes(), d.model().workspaceBytes()));
                ClassKey key = new ClassKey(d.device(), d.nodeSelector(), d.tolerations());
                Cls cls = classes.computeIfAbsent(key, Cls::new);
                Dep dep = new Dep(d, d.model().weightBytes(), modelA.get(model), micro(d.computeShare()), model, cls);
                deps.add(dep);
                depById.put(d.id(), dep);
                for (int i = 0; i < d.replicas(); i++) pending.add(newRep(dep, i));
                if (d.replicas() > 0) minPriority = Math.min(minPriority, d.priority());
            }
            deps.sort(Comparator.comparing((Dep x) -> x.id)); // the result lists replicas in id order
        }
        return place(pending);
    }

    /** Whether two deployments differ in nothing but their replica count. */
    private static boolean sameButReplicas(Deployment a, Deployment b) {
        return a.id().equals(b.id())
                && a.model().equals(b.model())
                && a.kvBytesPerReplica() == b.kvBytesPerReplica()
                && a.priority() == b.priority()
                && a.nodeSelector().equals(b.nodeSelector())
                && a.tolerations().equals(b.tolerations())
                && a.maxReplicasPerNode() == b.maxReplicasPerNode()
                && a.device() == b.device()
                && Double.compare(a.computeShare(), b.computeShare()) == 0;
    }

    /**
     * Whether {@code current} is the last plan's placements, in its order, once the replicas that the
     * scaled deployments no longer have are left out of both (a fresh plan ignores those too).
     */
    private boolean sameCurrent(
            List<Placement> current, List<Placement> placed, Map<String, Deployment> scaled, Set<String> added) {
        int i = 0;
        int j = 0;
        while (true) {
            while (i < current.size() && gone(current.get(i), scaled)) i++;
            while (j < placed.size() && gone(placed.get(j), scaled)) j++;
            if (i == current.size() || j == placed.size()) return i == current.size() && j == placed.size();
            Placement p = current.get(i++);
            if (!p.equals(placed.get(j++)) || added.contains(p.replica().deployment())) return false;
        }
    }

    private static boolean gone(Placement p, Map<String, Deployment> scaled) {
        if (scaled.isEmpty()) return false;
        Deployment d = scaled.get(p.replica().deployment());
        return d != null && p.replica().index() >= d.replicas();
    }

    // ---------------------------------------------------------------- loading

    private void loadDevices() {
        inv = Inventory.reuse(inventory, request.devices());
        devs = new Dev[inv.sorted.length];
        for (int i = 0; i < devs.length; i++) {
            devs[i] = new Dev(i, inv.sorted[i], inv.node[i], inv.computeCap[i]);
        }
    }

    private void loadDeployments() {
        List<Deployment> in = new ArrayList<>(request.deployments());
        sortIfNeeded(in, (a, b) -> a.id().compareTo(b.id()));
        Map<String, Deployment> firstOfDigest = new HashMap<>();
        Map<String, Long> workspace = new HashMap<>();
        for (int i = 0; i < in.size(); i++) {
            Deployment d = in.get(i);
            if (i > 0 && d.id().equals(in.get(i - 1).id())) {
                throw new IllegalArgumentException("deployment " + d.id() + " appears twice; ids must be unique");
            }
            Deployment first = firstOfDigest.putIfAbsent(d.model().digest(), d);
            if (first != null && first.model().weightBytes() != d.model().weightBytes()) {
                throw new IllegalArgumentException("model " + d.model().digest() + ": deployment " + first.id()
                        + " says " + first.model().weightBytes() + " weight bytes but " + d.id() + " says "
                        + d.model().weightBytes() + "; one digest must have one size");
            }
            // Two deployments of one file may size their step differently: the device keeps the larger.
            workspace.merge(d.model().digest(), d.model().workspaceBytes(), Math::max);
        }
        long total = 0;
        for (Deployment d : in) {
            checkBytes("deployment " + d.id(), "model weightBytes", d.model().weightBytes());
            checkBytes("deployment " + d.id(), "model workspaceBytes", d.model().workspaceBytes());
            checkBytes("deployment " + d.id(), "kvBytesPerReplica", d.kvBytesPerReplica());
            total += d.replicas();
            if (total > MAX_REPLICAS) {
                throw new IllegalArgumentException("deployment " + d.id() + ": " + d.replicas() + " replicas bring the"
                        + " request to " + total + " replicas, more than the planner's limit of " + MAX_REPLICAS);
            }
        }
        for (Deployment d : in) {
            long a = workspace.get(d.model().digest());
            int model = -1;
            if (mode != Mode.NO_SHARING) {
                model = modelByDigest.computeIfAbsent(
                        d.model().digest(), g -> newModel(g, d.model().weightBytes(), a));
            }
            ClassKey key = new ClassKey(d.device(), d.nodeSelector(), d.tolerations());
            Cls cls = classes.computeIfAbsent(key, Cls::new);
            long share = mode == Mode.WHOLE_DEVICE ? 0 : micro(d.computeShare());
            Dep dep = new Dep(d, d.model().weightBytes(), a, share, model, cls);
            deps.add(dep);
            depById.put(d.id(), dep);
            if (d.replicas() > 0) {
                minShare = Math.min(minShare, share);
                minPriority = Math.min(minPriority, d.priority());
            }
        }
    }

    private int newModel(String digest, long w, long a) {
        modelDigest.add(digest);
        modelW.add(w);
        modelA.add(a);
        holders.add(mode == Mode.SHARING ? new BitSet(devs.length) : null);
        return modelDigest.size() - 1;
    }

    private List<Rep> allReplicas() {
        List<Rep> out = new ArrayList<>();
        for (Dep dep : deps) {
            for (int i = 0; i < dep.d.replicas(); i++) {
                out.add(newRep(dep, i));
            }
        }
        return out;
    }

    private Rep newRep(Dep dep, int index) {
        Rep r = new Rep(dep, index);
        dep.reps[index] = r;
        if (mode == Mode.NO_SHARING) {
            // No sharing: every replica is its own process with its own weights and workspace.
            r.model = newModel(dep.d.model().digest(), dep.w + dep.a, 0);
        } else {
            r.model = dep.model;
        }
        return r;
    }

    /** Applies the running placements, drops what no longer fits, and returns every replica still to place. */
    private List<Rep> loadCurrent() {
        List<Placement> current = new ArrayList<>(request.current());
        sortIfNeeded(current, (x, y) -> {
            int c = x.replica().compareTo(y.replica());
            return c != 0 ? c : x.deviceId().compareTo(y.deviceId());
        });
        List<Rep> pending = new ArrayList<>();
        ReplicaId last = null;
        for (Placement p : current) {
            if (p.replica().equals(last)) {
                continue; // a replica recorded twice: the first (by device id) wins, deterministically
            }
            last = p.replica();
            Dep dep = depById.get(p.replica().deployment());
            if (dep == null || p.replica().index() < 0 || p.replica().index() >= dep.d.replicas()) {
                continue; // deployment deleted or scaled down: the replica is removed
            }
            Rep r = newRep(dep, p.replica().index());
            Integer at = inv.indexById.get(p.deviceId());
            Dev v = at == null ? null : devs[at];
            if (v == null) {
                evictions.add(new Eviction(r.rid, p.deviceId(), null, "device " + p.deviceId() + " is gone"));
                pending.add(r);
                continue;
            }
            String why = keptIneligibility(r.dep, v);
            if (why != null) {
                evictions.add(new Eviction(r.rid, v.id, null, why));
                pending.add(r);
                continue;
            }
            add(r, v);
            r.runningOn = v;
        }
        pending.addAll(dropSpreadExcess());
        for (Dev v : devs) {
            if (v.count > 0) {
                pending.addAll(dropUntilFeasible(v));
            }
        }
        for (Dep dep : deps) {
            for (int i = 0; i < dep.reps.length; i++) {
                if (dep.reps[i] == null) pending.add(newRep(dep, i));
            }
        }
        return pending;
    }

    private List<Rep> dropSpreadExcess() {
        List<Rep> dropped = new ArrayList<>();
        for (Dep dep : deps) {
            if (dep.spread == 0 || dep.perNode == null) continue;
            boolean over = false;
            for (int n : dep.perNode.values()) over |= n > dep.spread;
            if (!over) continue;
            List<Rep> mine = new ArrayList<>();
            for (Dev v : devs) {
                for (Rep r : v.reps) {
                    if (r.dep == dep) mine.add(r);
                }
            }
            mine.sort(Comparator.comparingInt((Rep r) -> r.dev.node).thenComparingInt(r -> r.index));
            Map<Integer, Integer> seen = new HashMap<>();
            for (Rep r : mine) {
                if (seen.merge(r.dev.node, 1, Integer::sum) > dep.spread) {
                    Dev v = r.dev;
                    remove(r);
                    evictions.add(new Eviction(
                            r.rid,
                            v.id,
                            null,
                            "node " + v.d.node() + " runs more than " + dep.spread + " replicas of " + dep.id
                                    + " (maxReplicasPerNode)"));
                    dropped.add(r);
                }
            }
        }
        return dropped;
    }

    /** A device whose capacity shrank (foreign use grew) sheds its lowest-priority replicas until it fits. */
    private List<Rep> dropUntilFeasible(Dev v) {
        List<Rep> dropped = new ArrayList<>();
        if (v.used() <= v.cap && v.compute <= v.computeCap) return dropped;
        List<Rep> order = new ArrayList<>(v.reps);
        order.sort(Comparator.comparingInt((Rep r) -> r.dep.priority)
                .thenComparing((Rep r) -> r.dep.id, Comparator.reverseOrder())
                .thenComparing((Rep r) -> r.index, Comparator.reverseOrder()));
        for (Rep r : order) {
            if (v.used() <= v.cap && v.compute <= v.computeCap) break;
            String why = String.format(
                    Locale.ROOT,
                    "device %s no longer fits its replicas: they need %s and %.2f compute, it has %s and %.2f compute",
                    v.id,
                    HumanBytes.format(v.used()),
                    v.compute / (double) MICRO,
                    HumanBytes.format(v.cap),
                    v.computeCap / (double) MICRO);
            remove(r);
            evictions.add(new Eviction(r.rid, v.id, null, why));
            dropped.add(r);
        }
        return dropped;
    }

    // ---------------------------------------------------------------- the ledger

    private void add(Rep r, Dev v) {
        unindex(v);
        Dep dep = r.dep;
        if (v.count == 0 && v.reps.isEmpty() && !(v.reps instanceof ArrayList)) {
            v.reps = new ArrayList<>(4);
        }
        v.reps.add(r);
        v.count++;
        int slot = v.slot(r.model);
        if (slot < 0) {
            v.addModel(r.model);
            v.weights += modelW.get(r.model);
            if (holders.get(r.model) != null) holders.get(r.model).set(v.idx);
        } else {
            v.modelCount[slot]++;
        }
        v.ws = Math.max(v.ws, modelA.get(r.model));
        v.kv += dep.k;
        v.compute += shareOn(dep, v);
        if (dep.spread > 0) {
            if (dep.perNode == null) dep.perNode = new HashMap<>();
            dep.perNode.merge(v.node, 1, Integer::sum);
        }
        r.dev = v;
        reindex(v);
        version++;
    }

    private void remove(Rep r) {
        Dev v = r.dev;
        unindex(v);
        Dep dep = r.dep;
        v.reps.remove(r);
        v.count--;
        int slot = v.slot(r.model);
        if (--v.modelCount[slot] == 0) {
            v.removeModel(slot);
            v.weights -= modelW.get(r.model);
            if (holders.get(r.model) != null) holders.get(r.model).clear(v.idx);
            long ws = 0;
            for (int i = 0; i < v.models; i++) ws = Math.max(ws, modelA.get(v.modelId[i]));
            v.ws = ws;
        }
        v.kv -= dep.k;
        v.compute -= shareOn(dep, v);
        if (dep.spread > 0) dep.perNode.merge(v.node, -1, Integer::sum);
        r.dev = null;
        r.runningOn = null;
        reindex(v);
        version++;
    }

    private long shareOn(Dep dep, Dev v) {
        return mode == Mode.WHOLE_DEVICE ? v.computeCap : dep.share;
    }

    private boolean holds(Dev v, int model) {
        return v.slot(model) >= 0;
    }

    /** Bytes that placing {@code r} on {@code v} adds to the device's demand. */
    private long added(Rep r, Dev v) {
        long w = modelW.get(r.model);
        long a = modelA.get(r.model);
        if (v.count == 0) return v.overhead + a + w + r.dep.k;
        return (holds(v, r.model) ? 0 : w) + Math.max(0, a - v.ws) + r.dep.k;
    }

    private boolean spreadOk(Dep dep, Dev v) {
        return dep.spread == 0 || dep.perNode == null || dep.perNode.getOrDefault(v.node, 0) < dep.spread;
    }

    private boolean computeOk(Dep dep, Dev v) {
        if (mode == Mode.WHOLE_DEVICE) return v.count == 0;
        return v.compute + dep.share <= v.computeCap;
    }

    private boolean fits(Rep r, Dev v) {
        return spreadOk(r.dep, v) && computeOk(r.dep, v) && added(r, v) <= v.cap - v.used();
    }

    // ---------------------------------------------------------------- indexes

    private void unindex(Dev v) {
        if (v.classes == null) return;
        for (Cls c : v.classes) c.removeDev(v);
    }

    private void reindex(Dev v) {
        if (v.classes == null) return;
        setKey(v);
        for (Cls c : v.classes) c.addDev(v);
    }

    private void setKey(Dev v) {
        v.keyFree = v.cap - v.used();
        if (v.count == 0) {
            v.keyState = Dev.EMPTY;
        } else if (mode != Mode.WHOLE_DEVICE && v.computeCap - v.compute >= minShare) {
            v.keyState = Dev.OPEN;
        } else {
            v.keyState = Dev.NONE; // saturated: no pending replica's share fits any more
        }
    }

    private BitSet eligible(Cls c) {
        if (c.eligible == null) c.eligible = inv.eligible(c.key);
        return c.eligible;
    }

    private void buildIndex(Cls c) {
        c.open = new TreeSet<>(OPEN_ORDER);
        c.empty = new TreeSet<>(EMPTY_ORDER);
        BitSet el = eligible(c);
        for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
            Dev v = devs[i];
            if (v.classes == null) {
                v.classes = new ArrayList<>(2);
                setKey(v);
            }
            v.classes.add(c);
            c.addDev(v);
        }
        c.indexed = true;
    }

    /** Whether class {@code key} may use device {@code d} for a new replica: {@link #ineligibility} without the words. */
    static boolean eligibleFor(ClassKey key, Device d) {
        if (!key.request().accepts(d.kind())) return false;
        for (Map.Entry<String, String> e : key.selector().entrySet()) {
            if (!e.getValue().equals(d.labels().get(e.getKey()))) return false;
        }
        for (Taint t : d.taints()) {
            if (!"NoSchedule".equals(t.effect()) && !"NoExecute".equals(t.effect())) continue;
            if (!tolerated(key.tolerations(), t)) return false;
        }
        return true;
    }

    /** Why class {@code key} may not use device {@code v} for a new replica, or null if it may. */
    static String ineligibility(ClassKey key, Device d) {
        if (!key.request().accepts(d.kind())) {
            return "are not " + (key.request() == DeviceRequest.GPU ? "GPUs" : "CPU devices");
        }
        for (Map.Entry<String, String> e : key.selector().entrySet()) {
            if (!e.getValue().equals(d.labels().get(e.getKey()))) {
                return "fail nodeSelector " + e.getKey() + "=" + e.getValue();
            }
        }
        for (Taint t : d.taints()) {
            if (!"NoSchedule".equals(t.effect()) && !"NoExecute".equals(t.effect())) continue;
            if (!tolerated(key.tolerations(), t)) {
                return "have untolerated taint " + t.key() + (t.value().isEmpty() ? "" : "=" + t.value()) + ":"
                        + t.effect();
            }
        }
        return null;
    }

    private static boolean tolerated(List<Toleration> tolerations, Taint t) {
        for (Toleration tol : tolerations) {
            if (tol.tolerates(t)) return true;
        }
        return false;
    }

    /**
     * Why a running replica must leave its device, or null if it stays. Like Kubernetes, a NoSchedule
     * taint added later does not evict a running replica; NoExecute does. A changed device kind or
     * nodeSelector moves it (the spec now asks for other devices).
     */
    private String keptIneligibility(Dep dep, Dev v) {
        Device d = v.d;
        if (dep.d.nodeSelector().isEmpty()
                && d.taints().isEmpty()
                && dep.d.device().accepts(d.kind())) {
            return null;
        }
        if (!dep.d.device().accepts(d.kind())) {
            return "device " + v.id + " is " + d.kind() + " but " + dep.id + " asks for " + dep.d.device();
        }
        for (Map.Entry<String, String> e : dep.d.nodeSelector().entrySet()) {
            if (!e.getValue().equals(d.labels().get(e.getKey()))) {
                return "device " + v.id + " fails nodeSelector " + e.getKey() + "=" + e.getValue() + " of " + dep.id;
            }
        }
        for (Taint t : d.taints()) {
            if ("NoExecute".equals(t.effect()) && !tolerated(dep.d.tolerations(), t)) {
                return "device " + v.id + " has taint " + t.key() + "=" + t.value() + ":NoExecute that " + dep.id
                        + " does not tolerate";
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- the search

    private void enqueue(List<Rep> reps) {
        queue.addAll(reps);
        for (Rep r : reps) pendingKv(r, +1);
    }

    /**
     * The KV of the queued replicas of {@code r}'s model, including {@code r}; {@code sign} adds (+1)
     * or removes (-1) r's share. Without sharing every replica is its own group.
     */
    private long pendingKv(Rep r, int sign) {
        if (mode != Mode.SHARING) return r.dep.k;
        long before = groupKv.getOrDefault(r.model, 0L);
        groupKv.put(r.model, before + sign * r.dep.k);
        long ownBefore = r.dep.pendingKv;
        r.dep.pendingKv += sign * r.dep.k;
        long group = sign < 0 ? before : before + r.dep.k;
        if (r.dep.spread > 0) {
            // beside one copy, a spread-limited deployment puts at most maxReplicasPerNode replicas;
            // the model's other deployments may fill the rest
            long own = sign < 0 ? ownBefore : ownBefore + r.dep.k;
            group = group - own + Math.min(own, r.dep.spread * r.dep.k);
        }
        return group;
    }

    private void placeQueue(boolean preemption) {
        Dep lastRefused = null;
        long lastRefusedVersion = -1;
        while (!queue.isEmpty()) {
            Rep r = queue.poll();
            r.dep.cls.pending--;
            if (r.dep == lastRefused && version == lastRefusedVersion) {
                refused.add(r); // nothing changed since its sibling was refused
                continue;
            }
            long group = pendingKv(r, -1);
            if (!fitsAloneSomewhere(r)) {
                refused.add(r); // larger than any eligible device even when empty: no search, no preemption
                continue;
            }
            Dev v = find(r, true, group);
            if (v != null) {
                add(r, v);
                continue;
            }
            if (preemption && mode == Mode.SHARING && preempt(r)) {
                continue;
            }
            refused.add(r);
            lastRefused = r.dep;
            lastRefusedVersion = version;
        }
    }

    private boolean fitsAloneSomewhere(Rep r) {
        Cls c = r.dep.cls;
        if (c.maxUsable == Long.MIN_VALUE) c.maxUsable = inv.maxUsable(c.key);
        return modelW.get(r.model) + modelA.get(r.model) + r.dep.k <= c.maxUsable;
    }

    /** The best device for {@code r}, or null if none fits; {@code allowEmpty=false} never opens a device. */
    Dev find(Rep r, boolean allowEmpty, long groupKv) {
        Cls c = r.dep.cls;
        BitSet el = eligible(c);
        if (mode == Mode.SHARING) {
            Dev best = null;
            BitSet h = holders.get(r.model);
            for (int i = h.nextSetBit(0); i >= 0; i = h.nextSetBit(i + 1)) {
                Dev v = devs[i];
                if (!el.get(i) || !fits(r, v)) continue;
                if (best == null
                        || v.free() < best.free()
                        || (v.free() == best.free() && v.id.compareTo(best.id) < 0)) {
                    best = v;
                }
            }
            if (best != null) return best;
        }
        boolean index = !linearOnly && (c.indexed || c.pending >= INDEX_THRESHOLD);
        if (index && !c.indexed) buildIndex(c);
        return index ? findIndexed(r, c, allowEmpty, groupKv) : findLinear(r, el, allowEmpty, groupKv);
    }

    /**
     * The reference search over every eligible device. A replica whose model is not on any fitting
     * device opens a new weight copy, and a copy is worth its bytes only if the model's replicas still
     * to come can use the room beside it. So the order is: (2) an open device where the whole rest of
     * the group ({@code groupKv}: the KV of this and every still-pending replica of the model) fits, by
     * least added then best fit; else (3) an empty device, the largest (usable capacity), since the
     * fewest devices are used when each one opened has the most room for the groups that follow; else
     * (4) any open device where this replica fits, by least added then best fit. Whole-device packing
     * (one replica per device) opens the smallest device that fits instead.
     */
    private Dev findLinear(Rep r, BitSet el, boolean allowEmpty, long groupKv) {
        long rest = groupKv - r.dep.k;
        Dev best = null;
        int bestTier = 0;
        long bestAdded = 0;
        long bestAfter = 0;
        for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
            Dev v = devs[i];
            if (v.count == 0 && !allowEmpty) continue;
            if (v.count > 0 && holds(v, r.model)) continue; // tier 1 was searched first
            if (!fits(r, v)) continue;
            long add = added(r, v);
            long after = v.free() - add;
            boolean whole = after >= rest;
            int tier = v.count == 0 ? 3 : whole ? 2 : 4;
            boolean better;
            if (best == null || tier != bestTier) {
                better = best == null || tier < bestTier;
            } else if (tier == 3) {
                long usable = v.cap - v.overhead;
                long bestUsable = best.cap - best.overhead;
                // one whole device per replica: the smallest that fits keeps large ones for large replicas
                boolean larger = mode == Mode.WHOLE_DEVICE ? usable < bestUsable : usable > bestUsable;
                better = usable != bestUsable ? larger : v.id.compareTo(best.id) < 0;
            } else if (add != bestAdded) {
                better = add < bestAdded;
            } else if (after != bestAfter) {
                better = after < bestAfter;
            } else {
                better = v.id.compareTo(best.id) < 0;
            }
            if (better) {
                best = v;
                bestTier = tier;
                bestAdded = add;
                bestAfter = after;
            }
        }
        return best;
    }

    /** The same answer as {@link #findLinear} from the class's sorted indexes. */
    private Dev findIndexed(Rep r, Cls c, boolean allowEmpty, long groupKv) {
        long w = modelW.get(r.model);
        long a = modelA.get(r.model);
        long base = w + r.dep.k;
        long rest = groupKv - r.dep.k;
        if (mode != Mode.WHOLE_DEVICE) {
            Dev whole = openDevice(r, c, base, rest);
            if (whole != null) return whole;
        }
        if (allowEmpty) {
            long need = w + a + r.dep.k;
            // the devices that fit come first (largest first); whole-device packing takes the smallest
            Iterable<Dev> order = mode == Mode.WHOLE_DEVICE
                    ? c.empty.headSet(Dev.probeUsable(need - 1), false).descendingSet()
                    : c.empty;
            for (Dev v : order) {
                if (v.cap - v.overhead < need) break; // largest first: no later one fits either
                if (spreadOk(r.dep, v) && computeOk(r.dep, v)) return v;
            }
        }
        return mode == Mode.WHOLE_DEVICE || rest == 0 ? null : openDevice(r, c, base, 0);
    }

    /** The open device, without the model, with room for this replica and {@code rest} more KV. */
    private Dev openDevice(Rep r, Cls c, long base, long rest) {
        Dev best = null;
        long bestAdded = 0;
        long bestAfter = 0;
        for (Dev v : c.open.tailSet(Dev.probe(base + rest), true)) {
            if (holds(v, r.model) || !fits(r, v)) continue;
            long add = added(r, v);
            long after = v.free() - add;
            if (after < rest) continue;
            if (best == null || add < bestAdded || (add == bestAdded && after < bestAfter)) {
                best = v;
                bestAdded = add;
                bestAfter = after;
            }
            // Ascending free: the first device that needs no extra workspace cannot be beaten.
            if (add == base) break;
        }
        return best;
    }

    // ---------------------------------------------------------------- preemption

    private boolean preempt(Rep r) {
        int p = r.dep.priority;
        if (minPriority >= p) return false;
        BitSet el = eligible(r.dep.cls);
        Dev bestDev = null;
        List<Rep> bestVictims = null;
        int bestMaxPrio = 0;
        for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
            Dev v = devs[i];
            if (v.count == 0 || !spreadOk(r.dep, v)) continue;
            if (v.overhead + modelW.get(r.model) + modelA.get(r.model) + r.dep.k > v.cap) continue;
            List<Rep> cands = new ArrayList<>();
            for (Rep x : v.reps) {
                if (x.dep.priority < p) cands.add(x);
            }
            if (cands.isEmpty()) continue;
            cands.sort(Comparator.comparingInt((Rep x) -> x.dep.priority)
                    .thenComparing((Rep x) -> x.dep.w + x.dep.k, Comparator.reverseOrder())
                    .thenComparing((Rep x) -> x.rid));
            List<Rep> chosen = new ArrayList<>();
            boolean ok = false;
            for (Rep x : cands) {
                chosen.add(x);
                if (fitsWithout(r, v, chosen)) {
                    ok = true;
                    break;
                }
            }
            if (!ok) continue;
            // Keep only the victims that are needed: fewest evictions.
            for (int j = chosen.size() - 2; j >= 0; j--) {
                Rep x = chosen.remove(j);
                if (!fitsWithout(r, v, chosen)) chosen.add(j, x);
            }
            int maxPrio = Integer.MIN_VALUE;
            for (Rep x : chosen) maxPrio = Math.max(maxPrio, x.dep.priority);
            if (bestDev == null
                    || chosen.size() < bestVictims.size()
                    || (chosen.size() == bestVictims.size() && maxPrio < bestMaxPrio)) {
                bestDev = v;
                bestVictims = chosen;
                bestMaxPrio = maxPrio;
            }
        }
        if (bestDev == null) return false;
        long free = bestDev.free();
        long needed = added(r, bestDev);
        String[] f = HumanBytes.formatPair(needed, free);
        for (Rep x : bestVictims) {
            String why = String.format(
                    Locale.ROOT,
                    "priority %d < %d: %s needs %s and %.2f compute; device %s had %s and %.2f compute free",
                    x.dep.priority,
                    p,
                    r.rid,
                    f[0],
                    r.dep.share / (double) MICRO,
                    bestDev.id,
                    f[1],
                    (bestDev.computeCap - bestDev.compute) / (double) MICRO);
            remove(x);
            evictions.add(new Eviction(x.rid, bestDev.id, r.rid, why));
            x.dep.cls.pending++;
            enqueue(List.of(x));
        }
        add(r, bestDev);
        bestDev.preemptedInto = true;
        return true;
    }

    /** Would {@code r} fit on {@code v} once {@code victims} are gone? Recomputed from the device's replicas. */
    private boolean fitsWithout(Rep r, Dev v, Collection<Rep> victims) {
        Set<Integer> models = new HashSet<>();
        long weights = 0;
        long ws = 0;
        long kv = 0;
        long compute = 0;
        for (Rep x : v.reps) {
            if (victims.contains(x)) continue;
            if (models.add(x.model)) weights += modelW.get(x.model);
            ws = Math.max(ws, modelA.get(x.model));
            kv += x.dep.k;
            compute += shareOn(x.dep, v);
        }
        if (models.add(r.model)) weights += modelW.get(r.model);
        ws = Math.max(ws, modelA.get(r.model));
        kv += r.dep.k;
        compute += shareOn(r.dep, v);
        return v.overhead + ws + weights + kv <= v.cap && compute <= v.computeCap;
    }

    // ---------------------------------------------------------------- rebalance

    /**
     * Drains the devices that are cheapest to empty (fewest replicas, least used) into open devices;
     * a drain happens only when the device ends empty, and moves at most {@code budget} running
     * replicas in all (replicas placed in this pass are free to move).
     */
    private void rebalance(int budget) {
        List<Dev> order = new ArrayList<>();
        for (Dev v : devs) {
            if (v.count == 0 || v.preemptedInto) continue;
            int running = 0;
            for (Rep x : v.reps) {
                if (x.runningOn == v) running++;
            }
            // With no budget only devices holding nothing that runs yet can be drained: after a small
            // change that is a handful, so an incremental plan does not sort the whole fleet.
            if (running <= budget) order.add(v);
        }
        order.sort(Comparator.comparingInt((Dev v) -> v.count)
                .thenComparingLong(Dev::used)
                .thenComparing(v -> v.id));
        Set<Dev> received = new HashSet<>();
        for (Dev v : order) {
            // A device that just took a replica by preemption keeps it: the eviction said it goes there.
            if (v.count == 0 || v.preemptedInto || received.contains(v)) continue;
            Set<Rep> running = new HashSet<>();
            for (Rep x : v.reps) {
                if (x.runningOn == v) running.add(x);
            }
            if (running.size() > budget) continue;
            List<Rep> moving = new ArrayList<>(v.reps);
            moving.sort(PENDING_ORDER);
            for (Rep x : moving) remove(x);
            List<Rep> done = new ArrayList<>();
            for (Rep x : moving) {
                Dev t = find(x, false, x.dep.k);
                if (t == null) break;
                add(x, t);
                done.add(x);
            }
            if (done.size() < moving.size()) {
                for (Rep x : done) remove(x);
                for (Rep x : moving) {
                    add(x, v);
                    if (running.contains(x)) x.runningOn = v;
                }
                continue;
            }
            budget -= running.size();
            for (Rep x : moving) {
                received.add(x.dev);
                if (running.contains(x)) {
                    evictions.add(new Eviction(
                            x.rid, v.id, null, "rebalance: moved to " + x.dev.id + " so that " + v.id + " is freed"));
                }
            }
        }
    }

    // ---------------------------------------------------------------- the result

    private PlanResult result() {
        List<Placement> placements = new ArrayList<>();
        List<DeviceUsage> usage = new ArrayList<>();
        for (Dev v : devs) {
            if (v.count == 0) continue;
            List<ReplicaId> ids = new ArrayList<>(v.reps.size());
            List<String> digests = new ArrayList<>(v.models);
            long weights = v.weights;
            long ws = v.ws;
            if (mode == Mode.NO_SHARING) {
                weights = 0;
                ws = 0;
            }
            if (mode != Mode.NO_SHARING) {
                for (int i = 0; i < v.models; i++) digests.add(modelDigest.get(v.modelId[i]));
            }
            for (Rep x : v.reps) {
                ids.add(x.rid);
                if (mode == Mode.NO_SHARING) {
                    String digest = x.dep.d.model().digest();
                    if (!digests.contains(digest)) digests.add(digest);
                    weights += x.dep.w;
                    ws += x.dep.a;
                }
            }
            sortIfNeeded(ids, Comparator.naturalOrder());
            sortIfNeeded(digests, Comparator.naturalOrder());
            usage.add(new DeviceUsage(
                    v.id,
                    v.cap,
                    v.used(),
                    v.overhead,
                    ws,
                    weights,
                    v.kv,
                    v.compute / (double) MICRO,
                    List.copyOf(digests),
                    List.copyOf(ids)));
        }
        for (Dep dep : deps) { // deployments are in id order, so this is ReplicaId order
            for (Rep x : dep.reps) {
                if (x != null && x.dev != null) placements.add(new Placement(x.rid, x.dev.id));
            }
        }
        List<Refusal> refusals = new ArrayList<>();
        Map<Dep, Refusal> byDep = new IdentityHashMap<>();
        refused.sort(Comparator.comparing(x -> x.rid));
        for (Rep r : refused) {
            Refusal first = byDep.computeIfAbsent(r.dep, d -> refusal(r));
            refusals.add(new Refusal(
                    r.rid,
                    first.neededBytes(),
                    first.neededCompute(),
                    first.bestDeviceId(),
                    first.bestFreeBytes(),
                    first.bestFreeCompute(),
                    first.reason()));
        }
        return new PlanResult(placements, List.copyOf(evictions), refusals, usage);
    }

    /** The numbers of a refusal, taken from the final state so that they agree with the usage table. */
    private Refusal refusal(Rep r) {
        Dep dep = r.dep;
        Dev best = null;
        Map<String, Integer> why = new LinkedHashMap<>();
        BitSet el = eligible(dep.cls);
        // Only when nothing is eligible are the reasons needed; otherwise scan the eligible devices.
        boolean explain = el.isEmpty() || (dep.spread > 0 && noneSpreadOk(dep, el));
        for (int i = explain ? 0 : el.nextSetBit(0);
                i >= 0 && i < devs.length;
                i = explain ? i + 1 : el.nextSetBit(i + 1)) {
            Dev v = devs[i];
            String no = explain ? ineligibility(dep.cls.key, v.d) : null;
            if (no == null && !spreadOk(dep, v)) {
                no = "are on nodes that already run " + dep.spread + " replicas (maxReplicasPerNode " + dep.spread
                        + ")";
            }
            if (no != null) {
                String what = v.d.kind() == DeviceKind.GPU ? "GPUs" : "CPU devices";
                why.merge(what + " " + no, 1, Integer::sum);
                continue;
            }
            if (best == null
                    || v.free() > best.free()
                    || (v.free() == best.free() && freeCompute(v) > freeCompute(best))
                    || (v.free() == best.free()
                            && freeCompute(v) == freeCompute(best)
                            && v.id.compareTo(best.id) < 0)) {
                best = v;
            }
        }
        double needCompute = mode == Mode.WHOLE_DEVICE ? 1.0 : dep.share / (double) MICRO;
        if (best == null) {
            long need = modelW.get(r.model) + modelA.get(r.model) + dep.k;
            StringBuilder sb = new StringBuilder("no eligible device: ");
            if (why.isEmpty()) {
                sb.append("the inventory has no devices");
            } else {
                List<Map.Entry<String, Integer>> reasons = new ArrayList<>(why.entrySet());
                reasons.sort(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder())
                        .thenComparing(Map.Entry.comparingByKey()));
                for (int i = 0; i < reasons.size(); i++) {
                    if (i > 0) sb.append(", ");
                    int n = reasons.get(i).getValue();
                    String what = reasons.get(i).getKey();
                    sb.append(n).append(' ').append(n == 1 ? singular(what) : what);
                }
            }
            return new Refusal(r.rid, need, needCompute, null, 0, 0, sb.toString());
        }
        long need = added(r, best);
        double freeCompute = freeCompute(best) / (double) MICRO;
        String[] f = HumanBytes.formatPair(need, best.free());
        String reason = String.format(
                Locale.ROOT,
                "needs %s and %.2f compute; best eligible device %s has %s and %.2f compute free",
                f[0],
                needCompute,
                best.id,
                f[1],
                freeCompute);
        return new Refusal(r.rid, need, needCompute, best.id, best.free(), freeCompute, reason);
    }

    private boolean noneSpreadOk(Dep dep, BitSet el) {
        for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
            if (spreadOk(dep, devs[i])) return false;
        }
        return true;
    }

    /** "GPUs have taint x" for one device reads "GPU has taint x". */
    private static String singular(String plural) {
        String noun = plural.startsWith("CPU devices ") ? "CPU device" : "GPU";
        String rest = plural.substring(noun.length() + 2);
        if (rest.startsWith("fail ")) rest = "fails " + rest.substring(5);
        else if (rest.startsWith("have ")) rest = "has " + rest.substring(5);
        else if (rest.equals("are not GPUs")) rest = "is not a GPU";
        else if (rest.equals("are not CPU devices")) rest = "is not a CPU device";
        else if (rest.startsWith("are ")) rest = "is " + rest.substring(4);
        return noun + " " + rest;
    }

    private long freeCompute(Dev v) {
        if (mode == Mode.WHOLE_DEVICE) return v.count == 0 ? v.computeCap : 0;
        return v.computeCap - v.compute;
    }

    /** Byte figures above 1 PiB are typos (and sums of them could overflow): refuse them by name. */
    static void checkBytes(String object, String field, long bytes) {
        if (bytes > MAX_BYTES) {
            throw new IllegalArgumentException(object + ": " + field + " is " + bytes
                    + " bytes, more than the limit of " + MAX_BYTES + " (1 PiB)");
        }
    }

    /** Inputs usually arrive sorted (ids from the inventory, placements from the last plan): check first. */
    static <T> void sortIfNeeded(List<T> list, Comparator<? super T> order) {
        for (int i = 1; i < list.size(); i++) {
            if (order.compare(list.get(i - 1), list.get(i)) > 0) {
                list.sort(order);
                return;
            }
        }
    }

    static long micro(double share) {
        if (Double.isInfinite(share)) return UNLIMITED_COMPUTE;
        return Math.round(share * MICRO);
    }

    // ---------------------------------------------------------------- state types

    /** What decides a deployment's eligible devices; deployments with equal keys share indexes. */
    record ClassKey(DeviceRequest request, Map<String, String> selector, List<Toleration> tolerations) {}

    /** An eligibility class with its (lazily built) sorted indexes of open and empty devices. */
    static final class Cls {
        final ClassKey key;
        BitSet eligible;
        long maxUsable = Long.MIN_VALUE;
        int pending;
        boolean indexed;
        TreeSet<Dev> open;
        // empty devices in opening order (EMPTY_ORDER)
        TreeSet<Dev> empty;

        Cls(ClassKey key) {
            this.key = key;
        }

        void addDev(Dev v) {
            if (v.keyState == Dev.OPEN) {
                open.add(v);
            } else if (v.keyState == Dev.EMPTY) {
                empty.add(v);
            }
        }

        void removeDev(Dev v) {
            if (v.keyState == Dev.OPEN) {
                open.remove(v);
            } else if (v.keyState == Dev.EMPTY) {
                empty.remove(v);
            }
        }
    }

    /** A device and what is on it now. */
    static final class Dev {
        static final int NONE = 0;
        static final int EMPTY = 1;
        static final int OPEN = 2;

        final int idx;
        final Device d;
        final String id;
        final int node;
        final long cap;
        final long overhead;
        final long computeCap;
        int count;
        long weights;
        long ws;
        long kv;
        long compute;
        // the models whose weights are here, with their replica counts (a device holds a few: a scan is
        // cheaper than a map); allocated on first use, as most of a large inventory stays empty
        int models;
        int[] modelId = NO_INTS;
        int[] modelCount = NO_INTS;
        List<Rep> reps = List.of();
        List<Cls> classes;
        // the key under which the device sits in the class indexes (changed only while it is out of them)
        long keyFree;
        int keyState;
        boolean preemptedInto;

        Dev(int idx, Device d, int node, long computeCap) {
            this.idx = idx;
            this.d = d;
            this.id = d.id();
            this.node = node;
            this.cap = d.capacityBytes();
            this.overhead = d.hostOverheadBytes();
            this.computeCap = computeCap;
        }

        private Dev(String id, long cap, long keyFree) {
            this.idx = -1;
            this.d = null;
            this.id = id;
            this.node = -1;
            this.cap = cap;
            this.overhead = 0;
            this.computeCap = 0;
            this.keyFree = keyFree;
        }

        private static final int[] NO_INTS = new int[0];

        int slot(int model) {
            for (int i = 0; i < models; i++) {
                if (modelId[i] == model) return i;
            }
            return -1;
        }

        void addModel(int model) {
            if (models == modelId.length) {
                int n = Math.max(2, models * 2);
                modelId = java.util.Arrays.copyOf(modelId, n);
                modelCount = java.util.Arrays.copyOf(modelCount, n);
            }
            modelId[models] = model;
            modelCount[models] = 1;
            models++;
        }

        void removeModel(int slot) {
            models--;
            modelId[slot] = modelId[models];
            modelCount[slot] = modelCount[models];
        }

        static Dev probe(long free) {
            return new Dev("", 0, free);
        }

        /** Sorts in EMPTY_ORDER before every device of usable capacity {@code usable} ("" precedes any id). */
        static Dev probeUsable(long usable) {
            return new Dev("", usable, 0);
        }

        long used() {
            return count == 0 ? 0 : overhead + ws + weights + kv;
        }

        long free() {
            return cap - used();
        }
    }

    /** A deployment with its figures resolved. */
    static final class Dep {
        Deployment d;
        final String id;
        final int priority;
        final long w;
        final long a;
        final long k;
        final long share;
        final int model;
        final int spread;
        final Cls cls;
        Map<Integer, Integer> perNode;
        long pendingKv;
        // the replan that last saw this deployment in its request (duplicate ids fall back)
        long seen;
        // replica index -> replica, for output in id order without a sort
        Rep[] reps;

        Dep(Deployment d, long w, long a, long share, int model, Cls cls) {
            this.d = d;
            this.id = d.id();
            this.priority = d.priority();
            this.w = w;
            this.a = a;
            this.k = d.kvBytesPerReplica();
            this.share = share;
            this.model = model;
            this.spread = d.maxReplicasPerNode();
            this.cls = cls;
            this.reps = new Rep[d.replicas()];
        }
    }

    /** One replica: where it is now and whether it was running before this plan. */
    static final class Rep {
        final Dep dep;
        final int index;
        final ReplicaId rid;
        int model;
        Dev dev;
        // the device it was running on before this plan, while it is still there
        Dev runningOn;

        Rep(Dep dep, int index) {
            this.dep = dep;
            this.index = index;
            this.rid = new ReplicaId(dep.id, index);
        }
    }
}
