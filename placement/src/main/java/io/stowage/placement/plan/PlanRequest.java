package io.stowage.placement.plan;

import java.util.List;

/**
 * Everything the planner decides from: the devices, the deployments, the placements that exist
 * now (replicas already running), and whether a rebalance is asked for.
 *
 * @param maxDisruption in a rebalance, the most running replicas that may be moved
 */
public record PlanRequest(
        List<Device> devices,
        List<Deployment> deployments,
        List<Placement> current,
        boolean rebalance,
        int maxDisruption) {

    public PlanRequest {
        devices = List.copyOf(devices);
        deployments = List.copyOf(deployments);
        current = current == null ? List.of() : List.copyOf(current);
    }

    public static PlanRequest of(List<Device> devices, List<Deployment> deployments) {
        return new PlanRequest(devices, deployments, List.of(), false, 0);
    }
}
