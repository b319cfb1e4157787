package io.stowage.placement.plan;

/**
 * A replica the planner could not place, with the numbers that prove it.
 *
 * <p>The figures describe the final plan (they agree with its device usage): {@code neededBytes} is what
 * the replica would add on the best device (O_host if empty, W if its model is not there, the workspace
 * increase, K); with no eligible device it is W + A + K.
 *
 * @param bestDeviceId the eligible device with the most free memory (then compute, then id), or null
 *     if none is eligible
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
