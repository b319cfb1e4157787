package io.stowage.runtime.host;

import java.nio.file.Path;

/**
 * How a host runs its one device.
 *
 * @param budgetBytes the most the host allocates on the device (weights + workspace + KV), whatever it is assigned
 * @param threads compute threads of the device's CPU backend (one pool, shared by the models: steps run one at a time)
 * @param batchTokens tokens of one batched step (decode tokens + prompt chunk)
 * @param logitRows logits rows of one step (the most sequences decoding together per model)
 * @param queuePerReplica requests a replica queues beyond its running sequences before answering 429
 * @param gpuUuid the UUID of the GPU the device plugin gave this host (reported in its state), or null
 */
public record HostSettings(
        String deviceKind,
        String deviceName,
        long totalBytes,
        long budgetBytes,
        Path cacheDir,
        int threads,
        int batchTokens,
        int logitRows,
        int queuePerReplica,
        String gpuUuid) {
    /** Settings of a host that was given no GPU by UUID. */
    public HostSettings(
            String deviceKind,
            String deviceName,
            long totalBytes,
            long budgetBytes,
            Path cacheDir,
            int threads,
            int batchTokens,
            int logitRows,
            int queuePerReplica) {
        this(
                deviceKind,
                deviceName,
                totalBytes,
                budgetBytes,
                cacheDir,
                threads,
                batchTokens,
                logitRows,
                queuePerReplica,
                null);
    }

    public HostSettings {
        if (budgetBytes <= 0) {
            throw new IllegalArgumentException("host budget must be > 0 bytes, got " + budgetBytes);
        }
        if (threads <= 0 || batchTokens <= 0 || logitRows <= 0 || logitRows > batchTokens || queuePerReplica < 0) {
            throw new IllegalArgumentException("host settings out of range: threads " + threads + ", batchTokens "
                    + batchTokens + ", logitRows " + logitRows + " (1..batchTokens), queuePerReplica "
                    + queuePerReplica);
        }
    }
}
