package io.stowage.hostapi;

import java.util.List;

/**
 * What a host reports: per model and per replica, with measured bytes.
 *
 * @param generation the generation of the last assignment the host accepted
 * @param processRssBytes resident set of the host process (from /proc)
 * @param processPssBytes proportional set size (shared weight pages counted once across processes)
 * @param scaling per deployment with a scaling policy or dormant here, its scale-to-zero state; empty from a host
 *     that does not report it
 */
public record HostState(
        long generation,
        DeviceState device,
        List<ModelState> models,
        List<ReplicaState> replicas,
        long processRssBytes,
        long processPssBytes,
        List<DeploymentScalingState> scaling) {
    public HostState {
        models = models == null ? List.of() : List.copyOf(models);
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
        scaling = scaling == null ? List.of() : List.copyOf(scaling);
    }

    /** A state without scale-to-zero states (a host from before hosts reported them). */
    public HostState(
            long generation,
            DeviceState device,
            List<ModelState> models,
            List<ReplicaState> replicas,
            long processRssBytes,
            long processPssBytes) {
        this(generation, device, models, replicas, processRssBytes, processPssBytes, List.of());
    }

    /** This state with the scale-to-zero states given. */
    public HostState withScaling(List<DeploymentScalingState> states) {
        return new HostState(generation, device, models, replicas, processRssBytes, processPssBytes, states);
    }

    /** The scale-to-zero state of a deployment here, or null when it has none. */
    public DeploymentScalingState scalingOf(String deployment) {
        for (DeploymentScalingState s : scaling) {
            if (s.deployment().equals(deployment)) {
                return s;
            }
        }
        return null;
    }
}
