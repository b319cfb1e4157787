package io.stowage.hostapi;

/**
 * The host's device: {@code kind} is gpu or cpu; {@code usedBytes} is what the host itself
 * allocated (weights + workspace + KV reserved + overhead).
 *
 * @param gpuUuid the UUID of the GPU the host serves on ({@code GPU-…}, or {@code MIG-…} for a MIG device): the one
 *     its CUDA backend opened, else the device plugin's as {@link GpuUuids#fromEnvironment} reads it; null when the
 *     host has no GPU or its id is not a UUID (an index, {@code all})
 * @param backend the device as the host's backend measures it; null from a host that does not report it
 */
public record DeviceState(
        String kind,
        String name,
        long totalBytes,
        long budgetBytes,
        long usedBytes,
        String gpuUuid,
        BackendState backend) {
    /** A device with no GPU UUID (a CPU host, or a host from before hosts reported one). */
    public DeviceState(String kind, String name, long totalBytes, long budgetBytes, long usedBytes) {
        this(kind, name, totalBytes, budgetBytes, usedBytes, null, null);
    }

    /** A device without the backend's measurement (a host from before hosts reported one). */
    public DeviceState(String kind, String name, long totalBytes, long budgetBytes, long usedBytes, String gpuUuid) {
        this(kind, name, totalBytes, budgetBytes, usedBytes, gpuUuid, null);
    }
}
