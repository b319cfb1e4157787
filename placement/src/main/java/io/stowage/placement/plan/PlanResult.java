package io.stowage.placement.plan;

import java.util.List;

/**
 * The planner's decision: where every placed replica runs (kept and new), which running replicas
 * are evicted and why, which replicas could not be placed and why, and each used device's usage.
 */
public record PlanResult(
        List<Placement> placements, List<Eviction> evictions, List<Refusal> refusals, List<DeviceUsage> usage) {

    /** Number of devices holding at least one replica. */
    public int devicesUsed() {
        return (int) usage.stream().filter(u -> !u.replicas().isEmpty()).count();
    }
}
