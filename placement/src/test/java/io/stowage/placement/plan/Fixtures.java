package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Small builders for planner test inputs: devices, deployments, requests. */
final class Fixtures {
    static final long MIB = 1L << 20;
    static final long GIB = 1L << 30;

    private Fixtures() {}

    static long gib(double g) {
        return Math.round(g * GIB);
    }

    /** A GPU {@code node/gpu-i} with no reserve, no foreign use and 1 GiB host overhead. */
    static Device gpu(String node, int i, long totalBytes) {
        return new Device(node + "/gpu-" + i, node, DeviceKind.GPU, totalBytes, 0, 0, GIB, 1.0, Map.of(), List.of());
    }

    static Device withLabels(Device d, Map<String, String> labels) {
        return new Device(
                d.id(),
                d.node(),
                d.kind(),
                d.totalBytes(),
                d.reserveBytes(),
                d.foreignBytes(),
                d.hostOverheadBytes(),
                d.computeCapacity(),
                labels,
                d.taints());
    }

    static Device withTaints(Device d, Taint... taints) {
        return new Device(
                d.id(),
                d.node(),
                d.kind(),
                d.totalBytes(),
                d.reserveBytes(),
                d.foreignBytes(),
                d.hostOverheadBytes(),
                d.computeCapacity(),
                d.labels(),
                List.of(taints));
    }

    static Device withForeign(Device d, long foreignBytes) {
        return new Device(
                d.id(),
                d.node(),
                d.kind(),
                d.totalBytes(),
                d.reserveBytes(),
                foreignBytes,
                d.hostOverheadBytes(),
                d.computeCapacity(),
                d.labels(),
                d.taints());
    }

    static List<Device> gpus(int nodes, int perNode, long totalBytes) {
        List<Device> out = new ArrayList<>();
        for (int n = 0; n < nodes; n++) {
            for (int i = 0; i < perNode; i++) {
                out.add(gpu("node-" + (char) ('a' + n), i, totalBytes));
            }
        }
        return out;
    }

    /** A GPU deployment with priority 0, no selector, no spread, compute share 0.25. */
    static Deployment deployment(String id, ModelRef model, long kv, int replicas) {
        return new Deployment(id, model, kv, replicas, 0, Map.of(), List.of(), 0, DeviceRequest.GPU, 0.25);
    }

    static Deployment withPriority(Deployment d, int priority) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                priority,
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    static Deployment withReplicas(Deployment d, int replicas) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                replicas,
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    static Deployment withShare(Deployment d, double share) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                share);
    }

    static Deployment withSelector(Deployment d, Map<String, String> selector) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                d.priority(),
                selector,
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    static Deployment withTolerations(Deployment d, Toleration... tolerations) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                d.priority(),
                d.nodeSelector(),
                List.of(tolerations),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    static Deployment withSpread(Deployment d, int maxPerNode) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                maxPerNode,
                d.device(),
                d.computeShare());
    }

    static PlanRequest request(List<Device> devices, List<Deployment> deployments, List<Placement> current) {
        return new PlanRequest(devices, deployments, current, false, 0);
    }

    static Placement at(String deployment, int index, String deviceId) {
        return new Placement(new ReplicaId(deployment, index), deviceId);
    }
}
