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
 * @param scaling per deployment with {@code spec.scaling} on this host, how far it scales down when idle; absent
 *     (an older operator): no replica is ever released
 * @param dormant deployments evicted from this host for which it stays the activation point; absent: none
 */
public record HostAssignment(
        long generation,
        long budgetBytes,
        List<ModelAssignment> models,
        List<ReplicaAssignment> replicas,
        List<ScalingPolicy> scaling,
        List<DormantDeployment> dormant) {
    public HostAssignment {
        models = models == null ? List.of() : List.copyOf(models);
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
        scaling = scaling == null ? List.of() : List.copyOf(scaling);
        dormant = dormant == null ? List.of() : List.copyOf(dormant);
    }

    /** An assignment without scale to zero (as before hosts took it). */
    public HostAssignment(
            long generation, long budgetBytes, List<ModelAssignment> models, List<ReplicaAssignment> replicas) {
        this(generation, budgetBytes, models, replicas, List.of(), List.of());
    }

    /** What is out of range in the assignment's own numbers, as one line naming the field and the value; or null. */
    public String rangeProblem() {
        if (generation < 0) {
            return "generation must be >= 0, got " + generation;
        }
        if (budgetBytes < 0) {
            return "budgetBytes must be >= 0, got " + budgetBytes;
        }
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (ScalingPolicy p : scaling) {
            String why = p == null ? "scaling[] must not hold null" : p.rangeProblem();
            if (why != null) {
                return why;
            }
            if (!seen.add(p.deployment())) {
                return "scaling lists deployment " + p.deployment() + " twice";
            }
        }
        seen.clear();
        for (DormantDeployment d : dormant) {
            String why = d == null ? "dormant[] must not hold null" : d.rangeProblem();
            if (why != null) {
                return why;
            }
            if (!seen.add(d.deployment())) {
                return "dormant lists deployment " + d.deployment() + " twice";
            }
            for (ReplicaAssignment r : replicas) {
                if (r != null && d.deployment().equals(r.deployment())) {
                    return "deployment " + d.deployment() + " is dormant but has replica " + r.id()
                            + " on this host: a deployment is one or the other";
                }
            }
        }
        return null;
    }
}
