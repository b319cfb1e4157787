package io.stowage.placement.plan;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What one LlmDeployment asks of the planner.
 *
 * @param id unique, e.g. {@code namespace/name}
 * @param kvBytesPerReplica K_r: the replica's KV-cache budget
 * @param maxReplicasPerNode spread limit; 0 means unlimited
 * @param computeShare the fraction of a device one replica takes (0 &lt; share &le; 1)
 */
public record Deployment(
        String id,
        ModelRef model,
        long kvBytesPerReplica,
        int replicas,
        int priority,
        Map<String, String> nodeSelector,
        List<Toleration> tolerations,
        int maxReplicasPerNode,
        DeviceRequest device,
        double computeShare) {

    /** The default compute share of a replica on a GPU (docs/design.md: sharing must not pile up). */
    public static final double DEFAULT_GPU_COMPUTE_SHARE = 0.25;

    public Deployment {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(model, "model");
        nodeSelector = nodeSelector == null ? Map.of() : Map.copyOf(nodeSelector);
        tolerations = tolerations == null ? List.of() : List.copyOf(tolerations);
        device = device == null ? DeviceRequest.GPU : device;
        if (replicas < 0) {
            throw new IllegalArgumentException("deployment " + id + ": replicas must be >= 0, got " + replicas);
        }
        if (kvBytesPerReplica < 0) {
            throw new IllegalArgumentException("deployment " + id + ": KV bytes must be >= 0");
        }
        if (maxReplicasPerNode < 0) {
            throw new IllegalArgumentException("deployment " + id + ": maxReplicasPerNode must be >= 0");
        }
        if (!(computeShare >= 0 && computeShare <= 1)) {
            throw new IllegalArgumentException(
                    "deployment " + id + ": computeShare must be in [0, 1], got " + computeShare);
        }
    }
}
