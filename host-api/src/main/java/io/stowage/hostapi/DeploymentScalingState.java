package io.stowage.hostapi;

import java.util.List;

/**
 * One deployment's scale-to-zero state on a host: listed for every deployment with a {@link ScalingPolicy} or a
 * {@link DormantDeployment} in the host's assignment.
 *
 * @param deployment {@code namespace/name} of its LlmDeployment
 * @param state {@link #ACTIVE} (every replica here serves or may), {@link #IDLE} (every replica here released, the
 *     weights resident), {@link #PARTIAL} (some released), or {@link #DORMANT} (no replica here: evicted)
 * @param releasedReplicas the ids of its replicas released on this host (KV given back), sorted
 * @param lastUsedMillis when a request last used it here (epoch milliseconds)
 * @param reclaimableBytes what dropping its idle copy would free here (weights and workspace); 0 unless IDLE and no
 *     busy deployment shares its model file
 * @param heldRequests requests held now while it activates (for a DORMANT deployment: the demand the operator acts
 *     on)
 * @param demandSinceMillis when the oldest held request arrived (epoch milliseconds); 0 when none is held
 */
public record DeploymentScalingState(
        String deployment,
        String servedModelName,
        String state,
        List<String> releasedReplicas,
        long lastUsedMillis,
        long reclaimableBytes,
        int heldRequests,
        long demandSinceMillis) {
    public static final String ACTIVE = "Active";
    public static final String PARTIAL = "Partial";
    public static final String IDLE = "Idle";
    public static final String DORMANT = "Dormant";

    public DeploymentScalingState {
        releasedReplicas = releasedReplicas == null ? List.of() : List.copyOf(releasedReplicas);
    }
}
