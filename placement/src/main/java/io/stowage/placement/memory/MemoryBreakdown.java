package io.stowage.placement.memory;

/**
 * What one deployment's replica costs on a device, in bytes, split the way the planner shares it:
 * weights once per device, KV per replica, workspace as a maximum per device, overhead once.
 *
 * @param weightBytes W_m
 * @param kvBytesPerToken one token slot of one sequence over all layers, K and V
 * @param kvBytesPerReplica K_r: kvBytesPerToken × maxTokens rounded up to whole blocks × maxSequences
 * @param workspaceBytes A_m: buffers of the largest step
 * @param hostOverheadBytes O_host of the device kind
 */
public record MemoryBreakdown(
        long weightBytes, long kvBytesPerToken, long kvBytesPerReplica, long workspaceBytes, long hostOverheadBytes) {

    /** Bytes a device needs to hold exactly one replica of this deployment and nothing else. */
    public long totalForOneReplica() {
        return Math.addExact(
                Math.addExact(weightBytes, kvBytesPerReplica), Math.addExact(workspaceBytes, hostOverheadBytes));
    }
}
