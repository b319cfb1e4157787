package io.stowage.hostapi;

/** A replica on a host: ready once its model is loaded and its KV is reserved. */
public record ReplicaState(
        String id,
        String deployment,
        String servedModelName,
        String modelDigest,
        boolean ready,
        long kvReservedBytes,
        long kvUsedBytes,
        int activeSequences,
        int queuedRequests) {}
