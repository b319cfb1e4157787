package io.stowage.hostapi;

import java.util.List;

/**
 * A host's whole desired state, pushed by the operator (or built by local mode).
 *
 * @param generation increases with every change the operator makes; echoed back in {@link HostState}
 * @param budgetBytes the most the host may allocate on its device (the planner's capacity for it)
 * @param models each distinct model file once, keyed by digest, whatever the number of replicas
 * @param replicas every replica the host must serve
 */
public record HostAssignment(
        long generation, long budgetBytes, List<ModelAssignment> models, List<ReplicaAssignment> replicas) {
    public HostAssignment {
        models = models == null ? List.of() : List.copyOf(models);
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
    }
}
