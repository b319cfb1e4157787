package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What becomes of the idle copies after a plan: the planner placed replicas as if their memory were free
 * (reclaimable), so on each device the least recently used idle copies are evicted until the placed replicas and
 * the copies left fit the device's capacity. A copy of a model that the plan placed on its device again is busy, not
 * idle, and is never evicted: it is the placed replicas' own weights.
 *
 * <p>Pure: the same plan, devices and copies give the same result whatever the order of the copies.
 *
 * @param evictions the copies dropped, per device in eviction order (least recently used first)
 * @param kept the copies left resident (still idle, still reclaimable)
 * @param reactivated the copies whose model the plan placed on their device again
 * @param reclaimableBytes per device id, the bytes of the idle copies kept there (absent: none)
 */
public record Reclaim(
        List<IdleEviction> evictions,
        List<IdleCopy> kept,
        List<IdleCopy> reactivated,
        Map<String, Long> reclaimableBytes) {

    public Reclaim {
        evictions = List.copyOf(evictions);
        kept = List.copyOf(kept);
        reactivated = List.copyOf(reactivated);
        reclaimableBytes = Map.copyOf(reclaimableBytes);
    }

    /** Least recently used first; then by digest, for a deterministic order. */
    static final Comparator<IdleCopy> LRU = Comparator.comparingLong(IdleCopy::lastUsedMillis)
            .thenComparing(c -> c.model().digest());

    /**
     * The idle copies of a plan's devices: those that fit beside the plan stay, the rest are evicted LRU first.
     *
     * @param devices the plan's devices (a copy on another device is evicted: the device is gone)
     * @throws IllegalArgumentException a device holds two idle copies of one digest
     */
    public static Reclaim of(PlanResult plan, List<Device> devices, List<IdleCopy> idle) {
        Map<String, Device> byId = new HashMap<>();
        devices.forEach(d -> byId.put(d.id(), d));
        Map<String, DeviceUsage> usage = new HashMap<>();
        plan.usage().forEach(u -> usage.put(u.deviceId(), u));

        Map<String, List<IdleCopy>> perDevice = new LinkedHashMap<>();
        List<IdleEviction> evictions = new ArrayList<>();
        List<IdleCopy> reactivated = new ArrayList<>();
        for (IdleCopy c : idle.stream()
                .sorted(Comparator.comparing(IdleCopy::deviceId).thenComparing(LRU))
                .toList()) {
            if (!byId.containsKey(c.deviceId())) {
                evictions.add(new IdleEviction(c, "device " + c.deviceId() + " is gone"));
                continue;
            }
            DeviceUsage u = usage.get(c.deviceId());
            if (u != null && u.models().contains(c.model().digest())) {
                reactivated.add(c);
                continue;
            }
            List<IdleCopy> list = perDevice.computeIfAbsent(c.deviceId(), k -> new ArrayList<>());
            if (list.stream().anyMatch(x -> x.model().digest().equals(c.model().digest()))) {
                throw new IllegalArgumentException("device " + c.deviceId() + " lists the idle copy of model "
                        + c.model().digest() + " twice (one copy per model and device)");
            }
            list.add(c);
        }

        List<IdleCopy> kept = new ArrayList<>();
        Map<String, Long> reclaimable = new HashMap<>();
        for (Map.Entry<String, List<IdleCopy>> e : perDevice.entrySet()) {
            Device d = byId.get(e.getKey());
            DeviceUsage u = usage.get(d.id());
            // A device with no replica placed still has its host, which holds the copies: O_host stays paid.
            long used = u != null && !u.replicas().isEmpty() ? u.usedBytes() : d.hostOverheadBytes();
            long free = d.capacityBytes() - used;
            List<IdleCopy> copies = e.getValue(); // LRU order
            long total = copies.stream().mapToLong(IdleCopy::bytes).sum();
            int i = 0;
            while (total > free && i < copies.size()) {
                IdleCopy c = copies.get(i++);
                total -= c.bytes();
                evictions.add(new IdleEviction(
                        c,
                        "least recently used idle copy on " + d.id() + ": the replicas placed there use "
                                + HumanBytes.format(used) + " of " + HumanBytes.format(d.capacityBytes())
                                + ", leaving " + HumanBytes.format(Math.max(0, free)) + " for idle copies of "
                                + HumanBytes.format(total + c.bytes())));
            }
            List<IdleCopy> left = copies.subList(i, copies.size());
            kept.addAll(left);
            if (!left.isEmpty()) {
                reclaimable.put(d.id(), total);
            }
        }
        return new Reclaim(evictions, kept, reactivated, reclaimable);
    }

    /** The evictions of one device. */
    public List<IdleEviction> evictionsOn(String deviceId) {
        return evictions.stream().filter(e -> e.deviceId().equals(deviceId)).toList();
    }

    /** Digests of the idle copies kept on a device. */
    public Set<String> keptOn(String deviceId) {
        Set<String> out = new java.util.TreeSet<>();
        kept.stream()
                .filter(c -> c.deviceId().equals(deviceId))
                .forEach(c -> out.add(c.model().digest()));
        return out;
    }
}
