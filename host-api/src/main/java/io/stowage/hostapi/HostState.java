package io.stowage.hostapi;

import java.util.List;

/**
 * What a host reports: per model and per replica, with measured bytes.
 *
 * @param generation the generation of the last assignment the host accepted
 * @param processRssBytes resident set of the host process (from /proc)
 * @param processPssBytes proportional set size (shared weight pages counted once across processes)
 */
public record HostState(
        long generation,
        DeviceState device,
        List<ModelState> models,
        List<ReplicaState> replicas,
        long processRssBytes,
        long processPssBytes) {
    public HostState {
        models = models == null ? List.of() : List.copyOf(models);
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
    }
}
