package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Lower bounds on the number of devices any feasible placement of a request uses, against which the
 * planner's quality is reported.
 *
 * <p>Only replicas that fit alone on at least one eligible device are counted (the others are refused
 * by every packer). The bounds assume every counted replica is placed; when the eligible fleet cannot
 * hold them all, the memory bound is the size of that fleet.
 */
public final class LowerBound {
    private LowerBound() {}

    /**
     * The memory bound. Model m (by digest) with n_m counted replicas needs at least
     * {@code k_m = ceil(n_m / floor((C_m − W_m − A_m) / K_m))} weight copies, C_m the largest usable
     * capacity (capacity − O_host) among its eligible devices and K_m its smallest per-replica KV; also
     * at least {@code ceil(Σ_r K_r / (C_m − W_m − A_m))} (the KV beside each copy fits in that room),
     * and at least {@code ceil(n_d / maxReplicasPerNode_d)} for a deployment d with a spread limit (one
     * copy per node it spans). The
     * demand {@code Σ_m (k_m·W_m + n_m·K_m)} must fit in the usable capacity of the devices used, each
     * of which also pays O_host and at least the smallest workspace among the counted models. The bound
     * is the fewest devices, largest usable capacity first, that cover the demand.
     */
    public static int devices(PlanRequest request) {
        Counted c = count(request);
        if (c.replicas == 0) return 0;
        // digest -> {n, minK, W, A, C, ΣK, copies forced by spread}
        Map<String, long[]> byModel = new HashMap<>();
        long kvTotal = 0;
        for (int j = 0; j < c.deployments.size(); j++) {
            Deployment d = c.deployments.get(j);
            int n = c.counts.get(j);
            long largest = c.largestUsable.get(j);
            long[] m = byModel.computeIfAbsent(
                    d.model().digest(), g -> new long[] {0, Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE, 0, 0, 0});
            m[0] += n;
            m[5] += n * d.kvBytesPerReplica();
            if (d.maxReplicasPerNode() > 0) {
                // at most s replicas per node: the replicas span ceil(n / s) nodes, each with its own copy
                m[6] = Math.max(m[6], (n + d.maxReplicasPerNode() - 1) / d.maxReplicasPerNode());
            }
            m[1] = Math.min(m[1], d.kvBytesPerReplica());
            m[2] = Math.min(m[2], d.model().weightBytes());
            m[3] = Math.min(m[3], d.model().workspaceBytes());
            m[4] = Math.max(m[4], largest);
            kvTotal += n * d.kvBytesPerReplica();
        }
        long demand = kvTotal;
        long minWorkspace = Long.MAX_VALUE;
        for (long[] m : byModel.values()) {
            long n = m[0];
            long room = Math.max(1, m[4] - m[2] - m[3]); // KV room beside one copy on the largest device
            long perCopy = m[1] == 0 ? n : Math.max(1, room / m[1]);
            long copies = Math.max((n + perCopy - 1) / perCopy, (m[5] + room - 1) / room);
            copies = Math.max(copies, m[6]);
            demand += copies * m[2];
            minWorkspace = Math.min(minWorkspace, m[3]);
        }
        List<Long> usable = new ArrayList<>();
        for (int i = c.fleet.nextSetBit(0); i >= 0; i = c.fleet.nextSetBit(i + 1)) {
            Device d = c.devices.get(i);
            usable.add(Math.max(0, d.capacityBytes() - d.hostOverheadBytes() - minWorkspace));
        }
        usable.sort(Comparator.reverseOrder());
        long covered = 0;
        for (int i = 0; i < usable.size(); i++) {
            covered += usable.get(i);
            if (covered >= demand) return i + 1;
        }
        return usable.size();
    }

    /**
     * The compute bound: the fewest devices, largest compute capacity first, whose capacities cover the
     * counted replicas' compute shares. Where it exceeds {@link #devices}, compute limits the packing.
     */
    public static int computeDevices(PlanRequest request) {
        Counted c = count(request);
        if (c.replicas == 0) return 0;
        long need = 0;
        for (int j = 0; j < c.deployments.size(); j++) {
            need += c.counts.get(j) * PlanEngine.micro(c.deployments.get(j).computeShare());
        }
        if (need == 0) return 1;
        List<Long> caps = new ArrayList<>();
        for (int i = c.fleet.nextSetBit(0); i >= 0; i = c.fleet.nextSetBit(i + 1)) {
            caps.add(PlanEngine.micro(c.devices.get(i).computeCapacity()));
        }
        caps.sort(Comparator.reverseOrder());
        long covered = 0;
        for (int i = 0; i < caps.size(); i++) {
            covered += caps.get(i);
            if (covered >= need) return i + 1;
        }
        return caps.size();
    }

    /** The larger of the memory and the compute bound; still a lower bound for any feasible placement. */
    public static int combined(PlanRequest request) {
        return Math.max(devices(request), computeDevices(request));
    }

    private record Counted(
            List<Device> devices,
            BitSet fleet,
            List<Deployment> deployments,
            List<Integer> counts,
            List<Long> largestUsable,
            long replicas) {}

    /** Which replicas can fit alone somewhere, and the union of the devices eligible for them. */
    private static Counted count(PlanRequest request) {
        List<Device> devices = request.devices();
        BitSet fleet = new BitSet(devices.size());
        List<Deployment> deps = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        List<Long> largest = new ArrayList<>();
        long replicas = 0;
        Map<PlanEngine.ClassKey, BitSet> classes = new HashMap<>();
        for (Deployment d : request.deployments()) {
            if (d.replicas() == 0) continue;
            PlanEngine.ClassKey key = new PlanEngine.ClassKey(d.device(), d.nodeSelector(), d.tolerations());
            BitSet el = classes.computeIfAbsent(key, k -> eligible(k, devices));
            long alone = d.model().weightBytes() + d.model().workspaceBytes() + d.kvBytesPerReplica();
            long best = -1;
            BitSet fits = new BitSet(devices.size());
            for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
                Device v = devices.get(i);
                long usable = v.capacityBytes() - v.hostOverheadBytes();
                if (usable >= alone && PlanEngine.micro(v.computeCapacity()) >= PlanEngine.micro(d.computeShare())) {
                    fits.set(i);
                    best = Math.max(best, usable);
                }
            }
            if (best < 0) continue;
            // A spread limit caps how many replicas can run at all: per node, on the nodes that fit one.
            int n = d.replicas();
            if (d.maxReplicasPerNode() > 0) {
                long nodes = fits.stream()
                        .mapToObj(i -> devices.get(i).node())
                        .distinct()
                        .count();
                n = (int) Math.min(n, nodes * d.maxReplicasPerNode());
            }
            fleet.or(fits);
            deps.add(d);
            counts.add(n);
            largest.add(best);
            replicas += n;
        }
        return new Counted(devices, fleet, deps, counts, largest, replicas);
    }

    private static BitSet eligible(PlanEngine.ClassKey key, List<Device> devices) {
        BitSet el = new BitSet(devices.size());
        for (int i = 0; i < devices.size(); i++) {
            if (PlanEngine.eligibleFor(key, devices.get(i))) el.set(i);
        }
        return el;
    }
}
