package io.stowage.placement.plan;

import java.util.Objects;

/** A Kubernetes node taint; effect is NoSchedule, PreferNoSchedule or NoExecute. */
public record Taint(String key, String value, String effect) {
    public Taint {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(effect, "effect");
        value = value == null ? "" : value;
    }
}
