package io.stowage.placement.plan;

import java.util.Objects;

/**
 * The part of a model the planner needs: W_m (weight bytes, shared per device) and A_m (the
 * workspace of its largest step, a maximum over the models of a device), keyed by content digest.
 */
public record ModelRef(String digest, long weightBytes, long workspaceBytes) {
    public ModelRef {
        Objects.requireNonNull(digest, "digest");
        if (weightBytes < 0 || workspaceBytes < 0) {
            throw new IllegalArgumentException("model " + digest + ": byte figures must be >= 0");
        }
    }
}
