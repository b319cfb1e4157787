package io.stowage.hostapi;

import java.util.List;

/**
 * A host's whole desired state, pushed by the operator (or built by local mode).
 *
 * @param generation increases with every change the operator makes, {@code >= 0}; echoed back in {@link HostState}
 * @param budgetBytes the most the host may allocate on its device (the planner's capacity for it), {@code >= 0};
 *     0 leaves the host's own budget
 * @param models each distinct model file once, keyed by digest, whatever the number of replicas
 * @param replicas every replica the host must serve
 */
public record HostAssignment(
        long generation, long budgetBytes, List<ModelAssignment> models, List<ReplicaAssignment> replicas) {
    public HostAssignment {
        models = models == null ? List.of() : List.copyOf(models);
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
    }

    /** What is out of range in the assignment's own numbers, as one line naming the field and the value; or null. */
    public String rangeProblem() {
        if (generation < 0) {
            return "generation must be >= 0, got " + generation;
        }
        if (budgetBytes < 0) {
            return "budgetBytes must be >= 0, got " + budgetBytes;
        }
        return null;
    }
}
