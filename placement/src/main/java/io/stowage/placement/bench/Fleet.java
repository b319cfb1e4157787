package io.stowage.placement.bench;

import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.PlanRequest;
import java.util.List;

/** One bench instance: devices and deployments, ready for every packer. */
public record Fleet(String name, double computeShare, List<Device> devices, List<Deployment> deployments) {

    public Fleet {
        devices = List.copyOf(devices);
        deployments = List.copyOf(deployments);
    }

    public int replicas() {
        return deployments.stream().mapToInt(Deployment::replicas).sum();
    }

    public PlanRequest request() {
        return PlanRequest.of(devices, deployments);
    }
}
