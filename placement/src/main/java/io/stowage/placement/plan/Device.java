package io.stowage.placement.plan;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One device the planner may place replicas on: a GPU, or the share of a node's RAM given to
 * Stowage for CPU serving.
 *
 * <p>{@code capacity = totalBytes − reserveBytes − foreignBytes}; see docs/design.md "The memory model".
 * {@code hostOverheadBytes} is O_host, paid once by the first replica that opens the device.
 *
 * @param id unique and stable, e.g. {@code node-a/gpu-3}; the deterministic tie-break
 * @param computeCapacity the sum of replica compute shares the device takes (normally 1.0)
 */
public record Device(
        String id,
        String node,
        DeviceKind kind,
        long totalBytes,
        long reserveBytes,
        long foreignBytes,
        long hostOverheadBytes,
        double computeCapacity,
        Map<String, String> labels,
        List<Taint> taints) {

    public Device {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(node, "node");
        Objects.requireNonNull(kind, "kind");
        labels = labels == null ? Map.of() : Map.copyOf(labels);
        taints = taints == null ? List.of() : List.copyOf(taints);
        if (totalBytes < 0 || reserveBytes < 0 || foreignBytes < 0 || hostOverheadBytes < 0) {
            throw new IllegalArgumentException("device " + id + ": byte figures must be >= 0");
        }
    }

    /** Bytes Stowage may use on this device: total − reserve − foreign, never below zero. */
    public long capacityBytes() {
        // All three are >= 0, so subtracting one at a time cannot overflow.
        long afterReserve = totalBytes - reserveBytes;
        return afterReserve <= 0 ? 0 : Math.max(0, afterReserve - foreignBytes);
    }
}
