package io.stowage.placement.plan;

import java.util.List;

/**
 * A device's contents after a plan: O_host + max A_m + Σ W_m + Σ K_r, split out.
 *
 * @param models digests of the models whose weights are on the device (one copy each)
 */
public record DeviceUsage(
        String deviceId,
        long capacityBytes,
        long usedBytes,
        long overheadBytes,
        long workspaceBytes,
        long weightBytes,
        long kvBytes,
        double computeUsed,
        List<String> models,
        List<ReplicaId> replicas) {

    public long freeBytes() {
        return capacityBytes - usedBytes;
    }
}
