package io.stowage.placement.plan;

/**
 * A replica the planner could not place, with the numbers that prove it.
 *
 * @param bestDeviceId the eligible device with the most free memory, or null if none is eligible
 * @param bestFreeBytes free bytes on that device (0 if none)
 * @param reason a sentence a user reads, e.g. "needs 5.2 GiB and 0.25 compute; best eligible device
 *     node-a/gpu-0 has 3.1 GiB and 0.50 compute free"
 */
public record Refusal(
        ReplicaId replica,
        long neededBytes,
        double neededCompute,
        String bestDeviceId,
        long bestFreeBytes,
        double bestFreeCompute,
        String reason) {}
