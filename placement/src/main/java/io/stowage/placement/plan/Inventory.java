package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A checked, id-sorted device inventory with its node ids and per-eligibility-class device sets: what
 * a plan derives from the devices alone, so a planner may keep it while the inventory list is the same.
 *
 * <p>Everything here is a function of the (immutable) device list, so reusing it cannot change a
 * result; it only spares an incremental plan the re-sort, the id map and the eligibility scans.
 */
final class Inventory {
    /** The list this was built from; reuse is keyed on its identity (a {@link PlanRequest} copies lists). */
    final List<Device> source;

    final Device[] sorted;
    final int[] node;
    final long[] computeCap;
    final Map<String, Integer> indexById;
    private final Map<PlanEngine.ClassKey, BitSet> eligible = new ConcurrentHashMap<>();
    private final Map<PlanEngine.ClassKey, Long> maxUsable = new ConcurrentHashMap<>();

    private Inventory(List<Device> source) {
        this.source = source;
        List<Device> in = new ArrayList<>(source);
        PlanEngine.sortIfNeeded(in, (a, b) -> a.id().compareTo(b.id()));
        int n = in.size();
        sorted = in.toArray(new Device[0]);
        node = new int[n];
        computeCap = new long[n];
        indexById = HashMap.newHashMap(n);
        Map<String, Integer> nodeIds = HashMap.newHashMap(n);
        for (int i = 0; i < n; i++) {
            Device d = sorted[i];
            if (i > 0 && d.id().equals(sorted[i - 1].id())) {
                throw new IllegalArgumentException(
                        "device " + d.id() + " appears twice in the inventory; ids must be unique");
            }
            if (!(d.computeCapacity() >= 0)) {
                throw new IllegalArgumentException(
                        "device " + d.id() + ": computeCapacity must be >= 0, got " + d.computeCapacity());
            }
            PlanEngine.checkBytes("device " + d.id(), "totalBytes", d.totalBytes());
            PlanEngine.checkBytes("device " + d.id(), "hostOverheadBytes", d.hostOverheadBytes());
            // ids sort a node's devices together: reuse the previous device's node id when it matches
            node[i] = i > 0 && d.node().equals(sorted[i - 1].node())
                    ? node[i - 1]
                    : nodeIds.computeIfAbsent(d.node(), x -> nodeIds.size());
            computeCap[i] = PlanEngine.micro(d.computeCapacity());
            indexById.put(d.id(), i);
        }
    }

    static Inventory of(List<Device> devices) {
        return new Inventory(devices);
    }

    /** The inventory of {@code devices}: {@code last} when it was built from this very list. */
    static Inventory reuse(Inventory last, List<Device> devices) {
        return last != null && last.source == devices ? last : new Inventory(devices);
    }

    /** The devices (by sorted index) that the class may use for a new replica; never modified. */
    BitSet eligible(PlanEngine.ClassKey key) {
        return eligible.computeIfAbsent(key, k -> {
            BitSet el = new BitSet(sorted.length);
            for (int i = 0; i < sorted.length; i++) {
                if (PlanEngine.eligibleFor(k, sorted[i])) el.set(i);
            }
            return el;
        });
    }

    /** The largest capacity − O_host among the class's eligible devices, or -1 if it has none. */
    long maxUsable(PlanEngine.ClassKey key) {
        return maxUsable.computeIfAbsent(key, k -> {
            BitSet el = eligible(k);
            long max = -1;
            for (int i = el.nextSetBit(0); i >= 0; i = el.nextSetBit(i + 1)) {
                max = Math.max(max, sorted[i].capacityBytes() - sorted[i].hostOverheadBytes());
            }
            return max;
        });
    }
}
