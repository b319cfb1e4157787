package io.stowage.hostapi;

/**
 * The device as the host's native backend measures it (not as it was planned).
 *
 * @param kind cpu or cuda
 * @param name the device's own name (a GPU's product name; a CPU's model name)
 * @param uuid the GPU's UUID as its driver reports it ({@code GPU-…}); null on a CPU
 * @param totalBytes the device's memory (CPU: the machine's RAM)
 * @param freeBytes free memory now as the driver reports it (CPU: MemAvailable); null when it could not be read
 * @param allocatedBytes what the host's backend allocated on the device now: weight copies (a CPU maps its weights
 *     instead: 0 there), KV pools, the shared workspace and the step buffer
 * @param workspaceBytes the one compute workspace shared by the models on the device: the largest A_m among them
 */
public record BackendState(
        String kind,
        String name,
        String uuid,
        long totalBytes,
        Long freeBytes,
        long allocatedBytes,
        long workspaceBytes) {}
