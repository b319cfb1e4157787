package io.stowage.placement.plan;

import java.util.Objects;

/** Replica {@code replica} runs on device {@code deviceId}. */
public record Placement(ReplicaId replica, String deviceId) {
    public Placement {
        Objects.requireNonNull(replica, "replica");
        Objects.requireNonNull(deviceId, "deviceId");
    }
}
