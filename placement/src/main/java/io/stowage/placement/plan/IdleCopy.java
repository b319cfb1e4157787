package io.stowage.placement.plan;

import java.util.Objects;

/**
 * A model's weights left resident on a device after its replicas there were released (scaled to zero): memory that
 * serves nobody now, but brings the model back in milliseconds. The planner counts it as reclaimable: free for any
 * placement that needs it, dropped least recently used first.
 *
 * @param lastUsedMillis when a request last used it (epoch milliseconds); the oldest is evicted first
 */
public record IdleCopy(String deviceId, ModelRef model, long lastUsedMillis) {
    public IdleCopy {
        Objects.requireNonNull(deviceId, "deviceId");
        Objects.requireNonNull(model, "model");
    }

    /** What dropping it frees on its device: the weights and the compute workspace a host keeps per model. */
    public long bytes() {
        return model.weightBytes() + model.workspaceBytes();
    }
}
