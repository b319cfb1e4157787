package io.stowage.operator.dcgm;

/**
 * One physical GPU as DCGM reports it.
 *
 * @param hostname the exporter's {@code Hostname} label: the node name
 * @param pod the workload pod attributed to the GPU (Kubernetes mode), or null
 * @param usedBytes {@code DCGM_FI_DEV_FB_USED} in bytes (DCGM reports MiB)
 * @param freeBytes {@code DCGM_FI_DEV_FB_FREE} in bytes, or -1 when absent
 */
public record GpuMemory(
        String hostname,
        String uuid,
        int index,
        String model,
        String namespace,
        String pod,
        long usedBytes,
        long freeBytes) {}
