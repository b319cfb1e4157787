package io.stowage.hostapi;

/**
 * A replica on a host: ready once its model is loaded and its KV is reserved.
 *
 * @param kvReservedBytes measured: the bytes its KV pool allocated on the device (whole blocks within its budget)
 * @param kvPlannedBytes its KV budget K_r as planned (the assignment's kvBytes, else computed from the model)
 */
public record ReplicaState(
        String id,
        String deployment,
        String servedModelName,
        String modelDigest,
        boolean ready,
        long kvReservedBytes,
        long kvUsedBytes,
        int activeSequences,
        int queuedRequests,
        long kvPlannedBytes) {
    /** A replica without the planned figure (a host from before hosts reported it). */
    public ReplicaState(
            String id,
            String deployment,
            String servedModelName,
            String modelDigest,
            boolean ready,
            long kvReservedBytes,
            long kvUsedBytes,
            int activeSequences,
            int queuedRequests) {
        this(
                id,
                deployment,
                servedModelName,
                modelDigest,
                ready,
                kvReservedBytes,
                kvUsedBytes,
                activeSequences,
                queuedRequests,
                0);
    }
}
