package io.stowage.operator.reconcile;

import io.stowage.operator.model.Units;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceUsage;
import io.stowage.placement.plan.Eviction;
import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.PlanRequest;
import io.stowage.placement.plan.PlanResult;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.ReplicaId;
import io.stowage.placement.plan.Taint;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * A sharing-aware best-fit planner with priority eviction, used by the operator until the
 * placement library's {@code StowagePlanner} (branch planner) is merged; same records in and out.
 */
public final class InterimPlanner implements Function<PlanRequest, PlanResult> {

    /** One device's running contents while planning. */
    private static final class Slot {
        final Device device;
        final List<ReplicaId> replicas = new ArrayList<>();
        final Map<String, Integer> modelRefs = new HashMap<>();

        Slot(Device device) {
            this.device = device;
        }

        long used(Map<String, Deployment> deps) {
            if (replicas.isEmpty()) {
                return 0;
            }
            long weights = 0;
            long ws = 0;
            long kv = 0;
            Map<String, Boolean> seen = new HashMap<>();
            for (ReplicaId r : replicas) {
                Deployment d = deps.get(r.deployment());
                kv += d.kvBytesPerReplica();
                ws = Math.max(ws, d.model().workspaceBytes());
                if (seen.putIfAbsent(d.model().digest(), true) == null) {
                    weights += d.model().weightBytes();
                }
            }
            return device.hostOverheadBytes() + ws + weights + kv;
        }

        double compute(Map<String, Deployment> deps) {
            double c = 0;
            for (ReplicaId r : replicas) {
                c += deps.get(r.deployment()).computeShare();
            }
            return c;
        }

        long costOf(Deployment d, Map<String, Deployment> deps) {
            long before = used(deps);
            replicas.add(new ReplicaId(d.id(), -1));
            long after = used(deps);
            replicas.remove(replicas.size() - 1);
            return after - before;
        }

        long free(Map<String, Deployment> deps) {
            return device.capacityBytes() - used(deps);
        }
    }

    @Override
    public PlanResult apply(PlanRequest req) {
        Map<String, Deployment> deps = new LinkedHashMap<>();
        req.deployments().forEach(d -> deps.put(d.id(), d));
        Map<String, Slot> slots = new LinkedHashMap<>();
        req.devices().stream().sorted(Comparator.comparing(Device::id)).forEach(d -> slots.put(d.id(), new Slot(d)));
        Map<ReplicaId, String> where = new LinkedHashMap<>();
        for (Placement p : req.current()) {
            Deployment d = deps.get(p.replica().deployment());
            Slot s = slots.get(p.deviceId());
            if (d != null && s != null && p.replica().index() < d.replicas() && !where.containsKey(p.replica())) {
                s.replicas.add(p.replica());
                where.put(p.replica(), s.device.id());
            }
        }
        List<ReplicaId> pending = new ArrayList<>();
        for (Deployment d : deps.values()) {
            for (int i = 0; i < d.replicas(); i++) {
                ReplicaId r = new ReplicaId(d.id(), i);
                if (!where.containsKey(r)) {
                    pending.add(r);
                }
            }
        }
        // Batch order: higher priority first, then the largest replica first, then by id.
        pending.sort(Comparator.<ReplicaId>comparingInt(
                        r -> -deps.get(r.deployment()).priority())
                .thenComparingLong(r -> {
                    Deployment d = deps.get(r.deployment());
                    return -(d.model().weightBytes() + d.kvBytesPerReplica());
                })
                .thenComparing(Comparator.naturalOrder()));
        List<Eviction> evictions = new ArrayList<>();
        List<Refusal> refusals = new ArrayList<>();
        for (ReplicaId r : pending) {
            Deployment d = deps.get(r.deployment());
            List<Slot> eligible =
                    slots.values().stream().filter(s -> eligible(s, d, where)).toList();
            Slot best = null;
            long bestKey = Long.MAX_VALUE;
            for (Slot s : eligible) {
                long cost = s.costOf(d, deps);
                long free = s.free(deps);
                if (cost <= free && s.compute(deps) + d.computeShare() <= s.device.computeCapacity() + 1e-9) {
                    // Prefer a device that already holds the weights (cheaper), then the tightest fit.
                    long key = (s.modelRefs.containsKey(d.model().digest()) || hasModel(s, d, deps) ? 0 : 1L << 62)
                            + (free - cost);
                    if (key < bestKey) {
                        bestKey = key;
                        best = s;
                    }
                }
            }
            if (best == null) {
                best = evictFor(r, d, eligible, deps, where, evictions);
            }
            if (best != null) {
                best.replicas.add(r);
                where.put(r, best.device.id());
            } else {
                refusals.add(refusal(r, d, eligible, deps));
            }
        }
        List<Placement> placements = new ArrayList<>();
        where.forEach((r, dev) -> placements.add(new Placement(r, dev)));
        List<DeviceUsage> usage = new ArrayList<>();
        for (Slot s : slots.values()) {
            if (s.replicas.isEmpty()) {
                continue;
            }
            long weights = 0;
            long ws = 0;
            long kv = 0;
            List<String> models = new ArrayList<>();
            for (ReplicaId x : s.replicas) {
                Deployment dd = deps.get(x.deployment());
                kv += dd.kvBytesPerReplica();
                ws = Math.max(ws, dd.model().workspaceBytes());
                if (!models.contains(dd.model().digest())) {
                    models.add(dd.model().digest());
                    weights += dd.model().weightBytes();
                }
            }
            usage.add(new DeviceUsage(
                    s.device.id(),
                    s.device.capacityBytes(),
                    s.used(deps),
                    s.device.hostOverheadBytes(),
                    ws,
                    weights,
                    kv,
                    s.compute(deps),
                    models,
                    List.copyOf(s.replicas)));
        }
        return new PlanResult(placements, evictions, refusals, usage);
    }

    private static boolean hasModel(Slot s, Deployment d, Map<String, Deployment> deps) {
        for (ReplicaId r : s.replicas) {
            if (deps.get(r.deployment()).model().digest().equals(d.model().digest())) {
                return true;
            }
        }
        return false;
    }

    private static boolean eligible(Slot s, Deployment d, Map<ReplicaId, String> where) {
        Device dev = s.device;
        if (!d.device().accepts(dev.kind())) {
            return false;
        }
        for (Map.Entry<String, String> e : d.nodeSelector().entrySet()) {
            if (!e.getValue().equals(dev.labels().get(e.getKey()))) {
                return false;
            }
        }
        for (Taint t : dev.taints()) {
            if (("NoSchedule".equals(t.effect()) || "NoExecute".equals(t.effect()))
                    && d.tolerations().stream().noneMatch(tol -> tol.tolerates(t))) {
                return false;
            }
        }
        if (d.maxReplicasPerNode() > 0) {
            long onNode = where.entrySet().stream()
                    .filter(e -> e.getKey().deployment().equals(d.id()))
                    .filter(e -> e.getValue().startsWith(dev.node() + "/"))
                    .count();
            return onNode < d.maxReplicasPerNode();
        }
        return true;
    }

    private static Slot evictFor(
            ReplicaId r,
            Deployment d,
            List<Slot> eligible,
            Map<String, Deployment> deps,
            Map<ReplicaId, String> where,
            List<Eviction> evictions) {
        Slot best = null;
        List<ReplicaId> bestVictims = null;
        for (Slot s : eligible) {
            List<ReplicaId> lower = s.replicas.stream()
                    .filter(x -> deps.get(x.deployment()).priority() < d.priority())
                    .sorted(Comparator.<ReplicaId>comparingInt(
                                    x -> deps.get(x.deployment()).priority())
                            .thenComparing(Comparator.reverseOrder()))
                    .toList();
            List<ReplicaId> victims = new ArrayList<>();
            List<ReplicaId> saved = new ArrayList<>(s.replicas);
            for (ReplicaId v : lower) {
                if (fits(s, d, deps)) {
                    break;
                }
                s.replicas.remove(v);
                victims.add(v);
            }
            boolean ok = fits(s, d, deps);
            s.replicas.clear();
            s.replicas.addAll(saved);
            if (ok && !victims.isEmpty() && (bestVictims == null || victims.size() < bestVictims.size())) {
                best = s;
                bestVictims = victims;
            }
        }
        if (best == null) {
            return null;
        }
        for (ReplicaId v : bestVictims) {
            best.replicas.remove(v);
            where.remove(v);
            evictions.add(new Eviction(
                    v,
                    best.device.id(),
                    r,
                    String.format(
                            Locale.ROOT,
                            "priority %d of %s outranks %d; evicted to free memory on %s",
                            d.priority(),
                            d.id(),
                            deps.get(v.deployment()).priority(),
                            best.device.id())));
        }
        return best;
    }

    private static boolean fits(Slot s, Deployment d, Map<String, Deployment> deps) {
        return s.costOf(d, deps) <= s.free(deps)
                && s.compute(deps) + d.computeShare() <= s.device.computeCapacity() + 1e-9;
    }

    private static Refusal refusal(ReplicaId r, Deployment d, List<Slot> eligible, Map<String, Deployment> deps) {
        long need = d.model().weightBytes() + d.kvBytesPerReplica() + d.model().workspaceBytes();
        if (eligible.isEmpty()) {
            return new Refusal(
                    r,
                    need,
                    d.computeShare(),
                    null,
                    0,
                    0,
                    "needs " + Units.bytes(need) + "; no device matches its device kind " + d.device()
                            + ", node selector and tolerations");
        }
        Slot best = eligible.stream()
                .max(Comparator.comparingLong((Slot s) -> s.free(deps)))
                .orElseThrow();
        long cost = best.costOf(d, deps);
        long free = Math.max(0, best.free(deps));
        double freeCompute = best.device.computeCapacity() - best.compute(deps);
        return new Refusal(
                r,
                cost,
                d.computeShare(),
                best.device.id(),
                free,
                freeCompute,
                String.format(
                        Locale.ROOT,
                        "needs %s and %.2f compute; the best eligible device %s has %s and %.2f compute free"
                                + " (capacity %s)",
                        Units.bytes(cost),
                        d.computeShare(),
                        best.device.id(),
                        Units.bytes(free),
                        freeCompute,
                        Units.bytes(best.device.capacityBytes())));
    }
}
