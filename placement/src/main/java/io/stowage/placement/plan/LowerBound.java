package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.Arrays;
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
     * of which also pays O_host and at least the smallest workspace among the counted models: the
     * fewest devices, largest usable capacity first, that cover the demand. The bound is the larger of
     * that and the copies that must sit on separate devices (see {@link #copiesApart}).
     *
     * <p>Against the statement, which takes one capacity C for all: the capacity used is the
     * largest among each model's eligible devices (a smaller C would overstate k_m, and the bound would
     * no longer be one), and the separate-devices term is added, because a volume bound alone is
     * weak when most copies are larger than half a device.
     */
    public static int devices(PlanRequest request) {
        Counted c = count(request);
        if (c.replicas == 0) return 0;
        BitSet all = new BitSet();
        all.set(0, c.deployments.size());
        Demand total = demand(c, all);
        long minWorkspace = total.minWorkspace;
        // Deployments that only fit a part of the fleet (a nodeSelector, a replica too large for small
        // GPUs) must be covered by that part. Parts are taken smallest first while they nest (each one
        // inside, around or apart from those taken): for such a family, forcing each part's largest
        // devices bottom-up and then adding the largest others gives the most capacity any placement
        // with that many devices can have, so the count below is a bound.
        List<BitSet> parts = new ArrayList<>();
        for (BitSet f : c.fits) {
            if (f.equals(c.fleet) || parts.contains(f)) continue;
            parts.add(f);
        }
        parts.sort(Comparator.comparingInt(BitSet::cardinality).thenComparing(b -> Arrays.toString(b.toLongArray())));
        List<BitSet> accepted = new ArrayList<>();
        BitSet forced = new BitSet();
        for (BitSet part : parts) {
            if (!laminar(part, accepted)) continue;
            BitSet pinned = new BitSet();
            for (int j = 0; j < c.fits.size(); j++) {
                BitSet outside = (BitSet) c.fits.get(j).clone();
                outside.andNot(part);
                if (outside.isEmpty()) pinned.set(j);
            }
            List<Integer> order = largestFirst(c, part, minWorkspace);
            List<Long> sizes = new ArrayList<>();
            for (int i : order) sizes.add(usableOf(c.devices.get(i), minWorkspace));
            Demand own = demand(c, pinned);
            int need = (int)
                    Math.max(cover(sizes, own.bytes), Math.min(sizes.size(), copiesApart(own.models, own.copies)));
            // any placement uses at least `need` devices of this part; the parts inside it (taken
            // first, being smaller) already forced some, and its largest others hold the most
            BitSet inside = (BitSet) forced.clone();
            inside.and(part);
            int more = need - inside.cardinality();
            for (int i = 0; i < order.size() && more > 0; i++) {
                if (!forced.get(order.get(i))) {
                    forced.set(order.get(i));
                    more--;
                }
            }
            accepted.add(part);
        }
        long covered = 0;
        for (int i = forced.nextSetBit(0); i >= 0; i = forced.nextSetBit(i + 1)) {
            covered += usableOf(c.devices.get(i), minWorkspace);
        }
        int count = forced.cardinality();
        BitSet pool = (BitSet) c.fleet.clone();
        pool.andNot(forced);
        for (int i : largestFirst(c, pool, minWorkspace)) {
            if (covered >= total.bytes) break;
            covered += usableOf(c.devices.get(i), minWorkspace);
            count++;
        }
        long apart = Math.min(c.fleet.cardinality(), copiesApart(total.models, total.copies));
        return (int) Math.max(count, apart);
    }

    /** Whether {@code part} nests with every accepted part: inside it, around it, or apart from it. */
    private static boolean laminar(BitSet part, List<BitSet> accepted) {
        for (BitSet q : accepted) {
            if (!q.intersects(part)) continue;
            BitSet outside = (BitSet) q.clone();
            outside.andNot(part);
            if (!outside.isEmpty()) return false; // overlaps without containing: skip this part
        }
        return true;
    }

    /** What a set of counted deployments needs: bytes to cover, their models and copies per model. */
    private record Demand(long bytes, long minWorkspace, List<long[]> models, long[] copies) {}

    private static Demand demand(Counted c, BitSet which) {
        // digest -> {n, minK, W, A, C, ΣK, copies forced by spread}
        Map<String, long[]> byModel = new HashMap<>();
        long kvTotal = 0;
        for (int j = which.nextSetBit(0); j >= 0; j = which.nextSetBit(j + 1)) {
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
        List<long[]> models = new ArrayList<>(byModel.values());
        // a fixed order, so that the greedy clique below does not depend on hash order
        models.sort(Comparator.<long[]>comparingLong(m -> -(m[2] + m[1]))
                .thenComparingLong(m -> m[2])
                .thenComparingLong(m -> m[1])
                .thenComparingLong(m -> m[3])
                .thenComparingLong(m -> m[4])
                .thenComparingLong(m -> m[0]));
        long[] copiesOf = new long[models.size()];
        for (int x = 0; x < models.size(); x++) {
            long[] m = models.get(x);
            long n = m[0];
            long room = Math.max(1, m[4] - m[2] - m[3]); // KV room beside one copy on the largest device
            long perCopy = m[1] == 0 ? n : Math.max(1, room / m[1]);
            long copies = Math.max((n + perCopy - 1) / perCopy, (m[5] + room - 1) / room);
            copies = Math.max(copies, m[6]);
            copiesOf[x] = copies;
            demand += copies * m[2];
            minWorkspace = Math.min(minWorkspace, m[3]);
        }
        return new Demand(demand, minWorkspace, models, copiesOf);
    }

    private static long usableOf(Device d, long minWorkspace) {
        return Math.max(0, d.capacityBytes() - d.hostOverheadBytes() - minWorkspace);
    }

    /** The indexes of a set of devices, largest usable capacity first (then index). */
    private static List<Integer> largestFirst(Counted c, BitSet set, long minWorkspace) {
        List<Integer> out = new ArrayList<>();
        for (int i = set.nextSetBit(0); i >= 0; i = set.nextSetBit(i + 1)) out.add(i);
        out.sort(Comparator.comparingLong((Integer i) -> -usableOf(c.devices.get(i), minWorkspace))
                .thenComparingInt(i -> i));
        return out;
    }

    /** The fewest of {@code usable} (largest first) whose sum reaches {@code bytes}; all of them if none do. */
    private static int cover(List<Long> usable, long bytes) {
        if (bytes <= 0) return 0;
        long covered = 0;
        for (int i = 0; i < usable.size(); i++) {
            covered += usable.get(i);
            if (covered >= bytes) return i + 1;
        }
        return usable.size();
    }

    /**
     * Weight copies that no device can hold two of, so each needs its own device: the copies of one
     * model (a device holds a model's weights once), and copies of two models m, m' whose smallest
     * footprints cannot share one device: {@code W_m + K_m + W_m' + K_m' + max(A_m, A_m') > min(C_m,
     * C_m')} (K the smallest per-replica KV, C the largest usable capacity eligible). The copies of a
     * set of pairwise conflicting models (a clique, found greedily from each model) need that many
     * devices: this is the bin-packing bound that counts items larger than half a bin, which the
     * volume bound misses where large models (a 70B, a 32B at f16) each fill most of a GPU.
     */
    private static long copiesApart(List<long[]> models, long[] copies) {
        int n = models.size();
        long best = 0;
        for (int seed = 0; seed < n; seed++) {
            List<Integer> clique = new ArrayList<>();
            clique.add(seed);
            long total = copies[seed];
            for (int x = 0; x < n; x++) {
                if (x == seed) continue;
                boolean all = true;
                for (int y : clique) {
                    if (!conflict(models.get(x), models.get(y))) {
                        all = false;
                        break;
                    }
                }
                if (all) {
                    clique.add(x);
                    total += copies[x];
                }
            }
            best = Math.max(best, total);
        }
        return best;
    }

    /** Whether no device can hold a copy of each of the two models with one replica of each. */
    private static boolean conflict(long[] a, long[] b) {
        long room = Math.min(a[4], b[4]);
        return a[2] + a[1] + b[2] + b[1] + Math.max(a[3], b[3]) > room;
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
            List<BitSet> fits,
            long replicas) {}

    /** Which replicas can fit alone somewhere, and the union of the devices eligible for them. */
    private static Counted count(PlanRequest request) {
        List<Device> devices = request.devices();
        BitSet fleet = new BitSet(devices.size());
        List<Deployment> deps = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        List<Long> largest = new ArrayList<>();
        List<BitSet> fitsOf = new ArrayList<>();
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
            fitsOf.add(fits);
            replicas += n;
        }
        return new Counted(devices, fleet, deps, counts, largest, fitsOf, replicas);
    }

    private static BitSet eligible(PlanEngine.ClassKey key, List<Device> devices) {
        BitSet el = new BitSet(devices.size());
        for (int i = 0; i < devices.size(); i++) {
            if (PlanEngine.eligibleFor(key, devices.get(i))) el.set(i);
        }
        return el;
    }
}
