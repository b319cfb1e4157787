package io.stowage.runtime.host;

import io.stowage.hostapi.BackendState;
import io.stowage.hostapi.DeviceState;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.placement.memory.KvCacheType;
import io.stowage.runtime.chat.ChatTemplate;
import io.stowage.runtime.engine.Backend;
import io.stowage.runtime.engine.DeviceInfo;
import io.stowage.runtime.engine.KvPool;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.jboss.logging.Logger;

/**
 * A runtime host: converges its device to the assignment it is given (models loaded once per digest, replicas as KV
 * partitions), routes requests to replicas by served name and reports its measured state.
 *
 * <p>Memory, as the planner counts it (DESIGN.md memory model): each model's weights once, each replica's KV, and
 * one compute workspace for the whole device, the largest of its models' A_m (the backend allocates exactly that
 * and runs one step at a time on it). The host's budget excludes O_host, which the planner charged to the device.
 */
public final class Host implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Host.class);

    private final HostSettings settings;
    private final ModelFetcher fetcher;
    private final DeviceScheduler device;
    private final ExecutorService loader;
    private final Backend backend;
    private final DeviceInfo deviceInfo;

    // Guarded by this.
    private final Map<String, LoadedModel> models = new LinkedHashMap<>();
    private final Map<String, ReplicaAssignment> wantedReplicas = new LinkedHashMap<>();
    private final Map<String, Replica> replicas = new LinkedHashMap<>();
    private final Map<String, String> replicaFailures = new HashMap<>();
    private long generation;
    private HostAssignment current = new HostAssignment(0, 0, List.of(), List.of());

    /** Lets this host read these model files, wherever they are (local mode: the files its manifests name). */
    public void allowModelFiles(Collection<Path> files) {
        fetcher.allowFiles(files);
    }

    /** A host on this machine's CPU, with a backend of {@code settings.threads()} threads. */
    public Host(HostSettings settings, ModelFetcher fetcher) {
        this(settings, fetcher, Backend.cpu(settings.threads()));
    }

    /** A host on the device of this backend, which it owns from now on (and closes last). */
    public Host(HostSettings settings, ModelFetcher fetcher, Backend backend) {
        this.settings = settings;
        this.fetcher = fetcher;
        this.backend = backend;
        this.deviceInfo = backend.deviceInfo();
        this.device = new DeviceScheduler(settings.deviceName());
        this.loader = Executors.newThreadPerTaskExecutor(
                Thread.ofPlatform().name("stowage-loader-", 0).daemon().factory());
    }

    /** The native backend of this host's device. */
    public Backend backend() {
        return backend;
    }

    /** Bytes the backend holds on the device now (weight copies, KV pools, the workspace); 0 once closed. */
    public long deviceAllocatedBytes() {
        try {
            return backend.allocatedBytes();
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    /** The device's one compute workspace as allocated now (the largest A_m of its models); 0 once closed. */
    public long deviceWorkspaceBytes() {
        try {
            return backend.workspaceBytes();
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    public HostSettings settings() {
        return settings;
    }

    public DeviceScheduler device() {
        return device;
    }

    /**
     * Converges to the assignment: the same assignment twice changes nothing; one over budget changes nothing and
     * throws.
     *
     * @throws AssignmentException Invalid (400) or OverBudget (409)
     */
    public synchronized HostState apply(HostAssignment a) {
        converge(a);
        return state();
    }

    /**
     * As {@link #apply}, without reading the state back: the scaler's activations, where a state read (the process's
     * /proc memory figures) would cost more than the activation itself.
     */
    public synchronized void converge(HostAssignment a) {
        validate(a);
        checkBudget(a);
        Map<String, ModelAssignment> wantedModels = new LinkedHashMap<>();
        a.models().forEach(m -> wantedModels.put(m.digest(), m));
        Map<String, ReplicaAssignment> wanted = new LinkedHashMap<>();
        a.replicas().forEach(r -> wanted.put(r.id(), r));

        for (Replica r : List.copyOf(replicas.values())) {
            ReplicaAssignment w = wanted.get(r.id());
            if (w == null || !w.equals(r.assignment)) {
                removeReplica(r);
            }
        }
        for (LoadedModel m : List.copyOf(models.values())) {
            ModelAssignment w = wantedModels.get(m.digest());
            // A changed source for the same digest is a new model (e.g. a corrected URI after a failure).
            if (w == null || !sameSource(w, m.assignment)) {
                m.removed = true;
                models.remove(m.digest());
                if (m.phase != ModelPhase.LOADED) {
                    m.phase = ModelPhase.UNLOADING;
                }
                device.wake();
            }
        }
        wantedReplicas.clear();
        wantedReplicas.putAll(wanted);
        replicaFailures.keySet().retainAll(wanted.keySet());
        for (ModelAssignment w : wantedModels.values()) {
            if (!models.containsKey(w.digest())) {
                LoadedModel m = new LoadedModel(w);
                models.put(w.digest(), m);
                loader.submit(() -> load(m));
            }
        }
        generation = a.generation();
        current = a;
        createReadyReplicas();
    }

    private static boolean sameSource(ModelAssignment a, ModelAssignment b) {
        return Objects.equals(a.uri(), b.uri()) && Objects.equals(a.sha256(), b.sha256());
    }

    private void validate(HostAssignment a) {
        String problem = a.rangeProblem();
        if (problem != null) {
            throw invalid(problem);
        }
        Map<String, ModelAssignment> byDigest = new HashMap<>();
        for (ModelAssignment m : a.models()) {
            if (m == null || m.digest() == null || m.digest().isBlank()) {
                throw invalid("models[]: digest is required");
            }
            if (byDigest.putIfAbsent(m.digest(), m) != null) {
                throw invalid("models[]: digest " + m.digest() + " is listed twice (one entry per model file)");
            }
            if (m.uri() == null || m.uri().isBlank()) {
                throw invalid("models[" + m.digest() + "]: uri is required");
            }
            problem = m.rangeProblem();
            if (problem != null) {
                throw invalid("models[" + m.digest() + "]: " + problem);
            }
            try {
                ModelFetcher.normalizeSha(m.sha256());
            } catch (ModelFetcher.FetchException e) {
                throw invalid("models[" + m.digest() + "]: " + e.getMessage());
            }
        }
        Set<String> ids = new HashSet<>();
        for (ReplicaAssignment r : a.replicas()) {
            if (r == null || r.id() == null || r.id().isBlank()) {
                throw invalid("replicas[]: id is required");
            }
            if (!ids.add(r.id())) {
                throw invalid("replicas[]: id " + r.id() + " is listed twice");
            }
            if (r.servedModelName() == null || r.servedModelName().isBlank()) {
                throw invalid("replicas[" + r.id() + "]: servedModelName is required");
            }
            ModelAssignment model = byDigest.get(r.modelDigest());
            if (model == null) {
                throw invalid("replicas[" + r.id() + "]: modelDigest " + r.modelDigest()
                        + " is not one of the assignment's models " + new TreeSet<>(byDigest.keySet()));
            }
            problem = r.rangeProblem();
            if (problem != null) {
                throw invalid("replicas[" + r.id() + "]: " + problem);
            }
            try {
                KvCacheType.parse(r.kvCacheType() == null ? "f16" : r.kvCacheType());
            } catch (IllegalArgumentException e) {
                throw invalid("replicas[" + r.id() + "]: kvCacheType: " + e.getMessage());
            }
            // Checked here when the model is already loaded; otherwise once it is, for this replica alone.
            LoadedModel have = measured(model);
            int context = have == null ? 0 : have.model.contextLength();
            if (context > 0 && r.maxTokens() > context) {
                throw invalid("replicas[" + r.id() + "]: maxTokens " + r.maxTokens() + " exceeds the context length "
                        + context + " of model " + model.digest());
            }
        }
    }

    /** The loaded model of this assignment entry (same digest and source), or null while there is none. */
    private LoadedModel measured(ModelAssignment m) {
        LoadedModel have = models.get(m.digest());
        return have != null && sameSource(m, have.assignment) && have.model != null ? have : null;
    }

    private static AssignmentException invalid(String message) {
        return new AssignmentException("Invalid", 400, message);
    }

    /** The most the host may use now: its own budget, lowered by the assignment's when that is smaller. */
    private long budgetFor(HostAssignment a) {
        return a.budgetBytes() > 0 ? Math.min(a.budgetBytes(), settings.budgetBytes()) : settings.budgetBytes();
    }

    /**
     * Refuses an assignment whose weights, workspace and KV do not fit the budget (409), or whose byte counts add up
     * past a long (400): every sum is exact, so no overflow can pass for a small total. Weights and KV add up; the
     * workspace is the largest A_m of the models, as the planner counts it and the backend allocates it.
     */
    private void checkBudget(HostAssignment a) {
        long weights = 0;
        long workspace = 0;
        long kv = 0;
        for (ModelAssignment m : a.models()) {
            LoadedModel have = measured(m);
            weights = add(
                    weights,
                    // an understated weightBytes is raised to the file's own W_m (what the planner counts)
                    have != null ? have.weightBytes() : Math.max(m.weightBytes(), fetcher.localWeightBytes(m.uri())),
                    "the models' weightBytes");
            // One workspace per device, shared by its models' contexts: the maximum, not the sum.
            workspace = Math.max(workspace, have != null ? have.workspaceBytes() : m.workspaceBytes());
        }
        for (ReplicaAssignment r : a.replicas()) {
            Replica have = replicas.get(r.id());
            long k;
            try {
                k = have != null && have.assignment.equals(r) ? have.kvReservedBytes() : kvBudgetOf(r);
            } catch (ArithmeticException e) {
                throw invalid("replicas[" + r.id() + "]: its KV bytes (maxTokens " + r.maxTokens() + " x maxSequences "
                        + r.maxSequences() + " x the model's bytes per token) overflow a long; nothing was changed");
            }
            kv = add(kv, k, "the replicas' KV bytes (up to " + r.id() + ")");
        }
        long budget = budgetFor(a);
        long need = add(add(weights, workspace, "weights + workspace"), kv, "weights + workspace + KV");
        if (need > budget) {
            throw new AssignmentException(
                    "OverBudget",
                    409,
                    "assignment generation " + a.generation() + " needs " + need + " bytes (weights " + weights
                            + " + workspace " + workspace + " (the largest A_m of "
                            + a.models().size()
                            + " models) + KV " + kv + " for "
                            + a.replicas().size()
                            + " replicas) but this host's budget is " + budget + " bytes (host "
                            + settings.budgetBytes()
                            + ", assignment " + a.budgetBytes() + "); nothing was changed");
        }
    }

    private static long add(long total, long more, String what) {
        try {
            return Math.addExact(total, more);
        } catch (ArithmeticException e) {
            throw invalid(what + " add up to more than " + Long.MAX_VALUE + " bytes; nothing was changed");
        }
    }

    /** K_r of a replica: as assigned, else the exact contract once the model's hyperparameters are known. */
    private long kvBudgetOf(ReplicaAssignment r) {
        if (r.kvBytes() > 0) {
            return r.kvBytes();
        }
        LoadedModel m = models.get(r.modelDigest());
        if (m != null && m.model != null) {
            // the memory model's K_r: bytes per token x maxTokens rounded up to whole blocks x maxSequences
            long blocks = ((long) r.maxTokens() + KvPool.BLOCK_TOKENS - 1) / KvPool.BLOCK_TOKENS;
            return Math.multiplyExact(
                    Math.multiplyExact(
                            m.model.kvBytesPerToken(kvType(r)), Math.multiplyExact(blocks, KvPool.BLOCK_TOKENS)),
                    (long) r.maxSequences());
        }
        return 0;
    }

    private static KvCacheType kvType(ReplicaAssignment r) {
        return KvCacheType.parse(r.kvCacheType() == null ? "f16" : r.kvCacheType());
    }

    private void load(LoadedModel m) {
        try {
            ModelAssignment a = m.assignment;
            m.phase = ModelPhase.DOWNLOADING;
            Path file = fetcher.fetch(
                    a.uri(), a.sha256(), a.weightBytes(), b -> m.downloadedBytes = b, t -> m.totalBytes = t);
            if (m.removed) {
                return;
            }
            m.phase = ModelPhase.LOADING;
            NativeModel nm = NativeModel.open(file);
            try {
                m.tokenizer = Tokenizer.fromGguf(nm.spec().file());
                m.chatTemplate = ChatTemplate.fromGguf(nm.spec().file());
                // the weights onto the device (a GPU: one upload per model, shared by its replicas), then the context
                nm.load(backend, (done, total) -> {
                    m.uploadedBytes = done;
                    return !m.removed;
                });
                m.context = nm.newContext(backend, settings.batchTokens(), settings.logitRows());
            } catch (RuntimeException | Error e) {
                if (m.context != null) {
                    m.context.close();
                }
                nm.close();
                throw e;
            }
            m.model = nm;
            synchronized (this) {
                if (m.removed) {
                    m.close();
                    return;
                }
                // Sizes unknown at assignment time (an http model without weightBytes) are checked now, measured: its
                // weights, and what its A_m adds to the device's shared workspace (nothing when not the largest).
                long weights = nm.weightBytes();
                long workspace = m.context.workspaceBytes();
                long grows = Math.max(0, workspace - sharedWorkspaceBytes(m));
                long free = budgetFor(current) - usedBytesWithout(m);
                if (weights + grows > free) {
                    m.close();
                    m.fail("the model needs " + (weights + grows) + " bytes (weights " + weights + " + " + grows
                            + " more of the shared workspace for its A_m of " + workspace + ") but only " + free
                            + " bytes of the host's budget of " + budgetFor(current) + " are free");
                    return;
                }
                m.phase = ModelPhase.LOADED;
                device.addModel(m);
                createReadyReplicas();
            }
            LOG.infof(
                    "model %s loaded from %s: %d weight bytes, %d workspace bytes",
                    m.digest(), file, nm.weightBytes(), m.context.workspaceBytes());
        } catch (ModelFetcher.FetchException e) {
            m.fail(e.getMessage());
            LOG.warnf("model %s failed: %s", m.digest(), e.getMessage());
        } catch (RuntimeException | Error e) {
            m.fail(e.getClass().getSimpleName() + ": " + e.getMessage());
            LOG.warnf(e, "model %s failed to load", m.digest());
        }
    }

    /** Makes the wanted replicas whose model is loaded (their KV pools allocated now, within the budget). */
    private void createReadyReplicas() {
        for (ReplicaAssignment ra : wantedReplicas.values()) {
            if (replicas.containsKey(ra.id())) {
                continue;
            }
            LoadedModel m = models.get(ra.modelDigest());
            if (m == null || !m.loaded()) {
                continue;
            }
            int context = m.model.contextLength();
            if (context > 0 && ra.maxTokens() > context) {
                replicaFailures.put(
                        ra.id(), "its maxTokens " + ra.maxTokens() + " exceeds the model's context length " + context);
                continue;
            }
            long kv;
            try {
                kv = kvBudgetOf(ra);
            } catch (ArithmeticException e) {
                replicaFailures.put(
                        ra.id(),
                        "its KV bytes overflow a long (maxTokens " + ra.maxTokens() + " x maxSequences "
                                + ra.maxSequences() + ")");
                continue;
            }
            long free = budgetFor(current) - usedBytes();
            if (kv > free) {
                replicaFailures.put(
                        ra.id(),
                        "its KV budget of " + kv + " bytes exceeds the " + free + " bytes free of the host's budget");
                continue;
            }
            KvPool pool;
            try {
                pool = m.model.newKvPool(backend, kvType(ra), kv);
            } catch (RuntimeException e) {
                // One replica that cannot get its KV must not stop the others, nor leave the apply half done.
                replicaFailures.put(ra.id(), "its KV pool of " + kv + " bytes was refused: " + e.getMessage());
                continue;
            }
            Replica r = new Replica(ra, m, pool, settings.queuePerReplica(), device);
            m.replicas.add(r);
            replicas.put(ra.id(), r);
            replicaFailures.remove(ra.id());
        }
    }

    private void removeReplica(Replica r) {
        replicas.remove(r.id());
        r.removed = true;
        device.wake();
    }

    /**
     * Bytes the host holds on its device: weights of each model once, every replica's KV, and the one workspace (the
     * largest A_m of the models), counting removed replicas and models until their last sequence ends and they are
     * freed.
     */
    private long usedBytes() {
        return usedBytesWithout(null);
    }

    /** {@link #usedBytes()} as if {@code skip} (a model being loaded) were not there. */
    private long usedBytesWithout(LoadedModel skip) {
        long used = 0;
        long workspace = 0;
        for (LoadedModel m : device.models()) {
            if (m == skip) {
                continue;
            }
            used += m.weightBytes();
            workspace = Math.max(workspace, m.workspaceBytes());
            for (Replica r : m.replicas) {
                used += r.pool.isClosed() ? 0 : r.kvReservedBytes();
            }
        }
        return used + workspace;
    }

    /** The largest A_m of the loaded models other than {@code skip}: the shared workspace they need. */
    private long sharedWorkspaceBytes(LoadedModel skip) {
        long workspace = 0;
        for (LoadedModel m : device.models()) {
            if (m != skip) {
                workspace = Math.max(workspace, m.workspaceBytes());
            }
        }
        return workspace;
    }

    /** The least loaded ready replica serving that name, or null when none is. */
    public synchronized Replica route(String servedModelName) {
        Replica best = null;
        for (Replica r : replicas.values()) {
            if (r.servedModelName().equals(servedModelName) && !r.removed && r.model.loaded()) {
                if (best == null || r.load() < best.load()) {
                    best = r;
                }
            }
        }
        return best;
    }

    /** Served names with at least one ready replica, sorted. */
    public synchronized Collection<String> servedModelNames() {
        Set<String> names = new TreeSet<>();
        for (Replica r : replicas.values()) {
            if (!r.removed && r.model.loaded()) {
                names.add(r.servedModelName());
            }
        }
        return names;
    }

    /** Served names the assignment names, ready or not. */
    public synchronized Set<String> assignedModelNames() {
        Set<String> names = new TreeSet<>();
        wantedReplicas.values().forEach(r -> names.add(r.servedModelName()));
        return names;
    }

    /** Served names whose model FAILED (at load, or at run time when its steps kept failing), sorted. */
    public synchronized Set<String> failedModelNames() {
        Set<String> names = new TreeSet<>();
        for (ReplicaAssignment ra : wantedReplicas.values()) {
            LoadedModel m = models.get(ra.modelDigest());
            if (m != null && m.phase == ModelPhase.FAILED) {
                names.add(ra.servedModelName());
            }
        }
        return names;
    }

    public synchronized boolean allReady() {
        for (ReplicaAssignment ra : wantedReplicas.values()) {
            Replica r = replicas.get(ra.id());
            if (r == null || !r.model.loaded()) {
                return false;
            }
        }
        return true;
    }

    public HostState state() {
        HostState s = stateWithoutProcess();
        // the process's memory outside the lock: smaps_rollup walks the page tables (milliseconds with a model
        // mapped), and every request's route() waits on this lock
        return new HostState(
                s.generation(),
                s.device(),
                s.models(),
                s.replicas(),
                ProcMemory.rssBytes(),
                ProcMemory.pssBytes(),
                s.scaling());
    }

    private synchronized HostState stateWithoutProcess() {
        List<ModelState> ms = new ArrayList<>();
        for (LoadedModel m : models.values()) {
            ms.add(new ModelState(
                    m.digest(),
                    m.assignment.uri(),
                    m.phase,
                    m.reason,
                    m.downloadedBytes,
                    m.totalBytes,
                    m.weightBytes(),
                    m.workspaceBytes(),
                    m.deviceBytes(backend)));
        }
        List<ReplicaState> rs = new ArrayList<>();
        for (ReplicaAssignment ra : wantedReplicas.values()) {
            Replica r = replicas.get(ra.id());
            rs.add(new ReplicaState(
                    ra.id(),
                    ra.deployment(),
                    ra.servedModelName(),
                    ra.modelDigest(),
                    r != null && r.model.loaded(),
                    r == null ? 0 : r.kvReservedBytes(),
                    r == null ? 0 : r.kvUsedBytes(),
                    r == null ? 0 : r.running,
                    r == null ? 0 : r.queued,
                    plannedKv(ra)));
        }
        DeviceState ds = new DeviceState(
                settings.deviceKind(),
                settings.deviceName(),
                settings.totalBytes(),
                settings.budgetBytes(),
                usedBytes(),
                // the GPU the backend opened (measured through the driver) over what the environment names
                deviceInfo.uuid() != null ? deviceInfo.uuid() : settings.gpuUuid(),
                backendState());
        return new HostState(generation, ds, ms, rs, -1, -1);
    }

    /** K_r as planned: the assignment's, else the contract's from the loaded model; 0 while unknown. */
    private long plannedKv(ReplicaAssignment ra) {
        try {
            return kvBudgetOf(ra);
        } catch (ArithmeticException | IllegalStateException e) {
            return 0;
        }
    }

    /** The device as the backend measures it now. */
    private BackendState backendState() {
        Long free = null;
        try {
            free = backend.memoryInfo()[0];
        } catch (RuntimeException e) {
            // unknown (null) rather than failing the whole state: a closed host, or a driver that cannot say
        }
        long allocated = deviceAllocatedBytes();
        return new BackendState(
                deviceInfo.kind(),
                deviceInfo.name(),
                deviceInfo.uuid(),
                deviceInfo.totalBytes(),
                free,
                allocated,
                deviceWorkspaceBytes());
    }

    /** Why a wanted replica is not running (its model failed, or its KV does not fit), or null. */
    public synchronized String replicaProblem(String id) {
        ReplicaAssignment ra = wantedReplicas.get(id);
        if (ra == null) {
            return null;
        }
        LoadedModel m = models.get(ra.modelDigest());
        if (m != null && m.phase == ModelPhase.FAILED) {
            return "model " + m.digest() + " failed: " + m.reason;
        }
        return replicaFailures.get(id);
    }

    /** All replicas, for metrics. */
    public synchronized List<Replica> replicas() {
        return List.copyOf(replicas.values());
    }

    public synchronized List<LoadedModel> models() {
        return List.copyOf(models.values());
    }

    @Override
    public void close() {
        loader.shutdownNow();
        device.close();
        synchronized (this) {
            models.values().forEach(LoadedModel::close);
        }
        try {
            backend.close();
        } catch (RuntimeException e) {
            // a model still loading on a loader thread holds memory there: the core keeps it rather than free it
            LOG.warnf("backend of %s not freed at close: %s", settings.deviceName(), e.getMessage());
        }
    }
}
