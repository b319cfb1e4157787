package io.stowage.placement.plan;

import java.util.Objects;

/** Replica {@code index} (0-based) of deployment {@code deployment}. */
public record ReplicaId(String deployment, int index) implements Comparable<ReplicaId> {
    public ReplicaId {
        Objects.requireNonNull(deployment, "deployment");
    }

    @Override
    public int compareTo(ReplicaId o) {
        int c = deployment.compareTo(o.deployment);
        return c != 0 ? c : Integer.compare(index, o.index);
    }

    @Override
    public String toString() {
        return deployment + "#" + index;
    }
}
