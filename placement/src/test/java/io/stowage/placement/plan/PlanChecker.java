package io.stowage.placement.plan;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks a plan against its request from first principles, without the planner's code: every device's
 * demand and compute recomputed from the placements, eligibility, spread, coverage and refusals.
 */
final class PlanChecker {
    private final PlanRequest request;
    private final PlanResult result;
    private final Map<String, Device> devices = new HashMap<>();
    private final Map<String, Deployment> deployments = new HashMap<>();
    private final Map<String, Long> workspace = new HashMap<>();
    private final Map<String, List<ReplicaId>> onDevice = new HashMap<>();
    private final boolean sharing;

    PlanChecker(PlanRequest request, PlanResult result) {
        this(request, result, true);
    }

    PlanChecker(PlanRequest request, PlanResult result, boolean sharing) {
        this.request = request;
        this.result = result;
        this.sharing = sharing;
        request.devices().forEach(d -> devices.put(d.id(), d));
        for (Deployment d : request.deployments()) {
            deployments.put(d.id(), d);
            workspace.merge(d.model().digest(), d.model().workspaceBytes(), Math::max);
        }
        for (Placement p : result.placements()) {
            onDevice.computeIfAbsent(p.deviceId(), k -> new ArrayList<>()).add(p.replica());
        }
    }

    /** O + max A + Σ distinct W + Σ K of the replicas on {@code deviceId} (plus {@code extra}, if not null). */
    long demand(String deviceId, ReplicaId extra) {
        List<ReplicaId> reps = new ArrayList<>(onDevice.getOrDefault(deviceId, List.of()));
        if (extra != null) reps.add(extra);
        if (reps.isEmpty()) return 0;
        long total = devices.get(deviceId).hostOverheadBytes();
        long ws = 0;
        Set<String> digests = new HashSet<>();
        for (ReplicaId r : reps) {
            Deployment d = deployments.get(r.deployment());
            String digest = d.model().digest();
            long a = workspace.get(digest);
            if (sharing) {
                ws = Math.max(ws, a);
                if (digests.add(digest)) total += d.model().weightBytes();
            } else {
                total += d.model().weightBytes() + d.model().workspaceBytes();
            }
            total += d.kvBytesPerReplica();
        }
        return total + ws;
    }

    double compute(String deviceId) {
        double sum = 0;
        for (ReplicaId r : onDevice.getOrDefault(deviceId, List.of())) {
            sum += deployments.get(r.deployment()).computeShare();
        }
        return sum;
    }

    static boolean eligible(Deployment d, Device v) {
        if (!d.device().accepts(v.kind())) return false;
        for (var e : d.nodeSelector().entrySet()) {
            if (!e.getValue().equals(v.labels().get(e.getKey()))) return false;
        }
        for (Taint t : v.taints()) {
            if (t.effect().equals("PreferNoSchedule")) continue;
            if (d.tolerations().stream().noneMatch(tol -> tol.tolerates(t))) return false;
        }
        return true;
    }

    int onNode(String deployment, String node) {
        int n = 0;
        for (Placement p : result.placements()) {
            if (p.replica().deployment().equals(deployment)
                    && devices.get(p.deviceId()).node().equals(node)) n++;
        }
        return n;
    }

    /** Capacity, compute, eligibility, spread, coverage, and the usage table, all recomputed. */
    void assertValid() {
        Set<ReplicaId> all = new HashSet<>();
        for (Deployment d : request.deployments()) {
            for (int i = 0; i < d.replicas(); i++) all.add(new ReplicaId(d.id(), i));
        }
        Set<ReplicaId> seen = new HashSet<>();
        for (Placement p : result.placements()) {
            assertThat(seen.add(p.replica())).as("placed once: %s", p.replica()).isTrue();
            assertThat(devices).containsKey(p.deviceId());
            Deployment d = deployments.get(p.replica().deployment());
            Device v = devices.get(p.deviceId());
            assertThat(eligible(d, v))
                    .as("%s may run on %s", p.replica(), v.id())
                    .isTrue();
            if (d.maxReplicasPerNode() > 0) {
                assertThat(onNode(d.id(), v.node()))
                        .as("spread of %s on %s", d.id(), v.node())
                        .isLessThanOrEqualTo(d.maxReplicasPerNode());
            }
        }
        for (Refusal f : result.refusals()) {
            assertThat(seen.add(f.replica()))
                    .as("placed or refused once: %s", f.replica())
                    .isTrue();
        }
        assertThat(seen).as("every replica is placed or refused").isEqualTo(all);
        Map<String, DeviceUsage> usage = new HashMap<>();
        result.usage().forEach(u -> usage.put(u.deviceId(), u));
        assertThat(usage.keySet()).isEqualTo(onDevice.keySet());
        for (String id : onDevice.keySet()) {
            Device v = devices.get(id);
            long demand = demand(id, null);
            assertThat(demand).as("demand of %s", id).isLessThanOrEqualTo(v.capacityBytes());
            assertThat(compute(id)).as("compute of %s", id).isLessThanOrEqualTo(v.computeCapacity() + 1e-9);
            DeviceUsage u = usage.get(id);
            assertThat(u.usedBytes()).as("usage of %s", id).isEqualTo(demand);
            assertThat(u.overheadBytes() + u.workspaceBytes() + u.weightBytes() + u.kvBytes())
                    .isEqualTo(u.usedBytes());
            assertThat(u.replicas()).containsExactlyInAnyOrderElementsOf(onDevice.get(id));
        }
    }

    /**
     * Every refusal is true: the named device is the eligible one with the most free memory (then
     * compute), its figures are right, and the replica fits on no eligible device of the final plan.
     */
    void assertRefusalsTrue() {
        for (Refusal f : result.refusals()) {
            Deployment d = deployments.get(f.replica().deployment());
            String best = null;
            long bestFree = 0;
            double bestCompute = 0;
            for (Device v : request.devices()) {
                if (!eligible(d, v)) continue;
                if (d.maxReplicasPerNode() > 0 && onNode(d.id(), v.node()) >= d.maxReplicasPerNode()) continue;
                long free = v.capacityBytes() - demand(v.id(), null);
                double cfree = v.computeCapacity() - compute(v.id());
                long need = demand(v.id(), f.replica()) - demand(v.id(), null);
                boolean fits = need <= free && d.computeShare() <= cfree + 1e-9;
                assertThat(fits)
                        .as("refused %s would fit on %s", f.replica(), v.id())
                        .isFalse();
                if (best == null
                        || free > bestFree
                        || (free == bestFree && cfree > bestCompute + 1e-12)
                        || (free == bestFree && Math.abs(cfree - bestCompute) <= 1e-12 && v.id().compareTo(best) < 0)) {
                    best = v.id();
                    bestFree = free;
                    bestCompute = cfree;
                }
            }
            assertThat(f.bestDeviceId()).as("best device for %s", f.replica()).isEqualTo(best);
            if (best == null) {
                assertThat(f.reason()).startsWith("no eligible device: ");
                continue;
            }
            assertThat(f.bestFreeBytes()).isEqualTo(bestFree);
            assertThat(f.bestFreeCompute()).isCloseTo(bestCompute, org.assertj.core.data.Offset.offset(1e-9));
            assertThat(f.neededBytes()).isEqualTo(demand(best, f.replica()) - demand(best, null));
            assertThat(f.neededCompute()).isEqualTo(d.computeShare());
            assertThat(f.reason()).contains(best).startsWith("needs ");
        }
    }
}
