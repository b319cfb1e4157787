package io.stowage.operator.inventory;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.dcgm.DcgmUsage;
import io.stowage.operator.reconcile.Labels;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns Nodes (allocatable GPUs, GPU Feature Discovery labels, taints, allocatable memory), the GPUs
 * other pods hold, and DCGM's foreign usage into the planner's devices.
 */
public final class Inventory {
    public static final String GPU_RESOURCE = "nvidia.com/gpu";
    public static final String GFD_MEMORY = "nvidia.com/gpu.memory";
    public static final String GFD_PRODUCT = "nvidia.com/gpu.product";
    public static final String GFD_COUNT = "nvidia.com/gpu.count";
    private static final long MIB = 1L << 20;

    private final InventoryConfig config;

    public Inventory(InventoryConfig config) {
        this.config = config;
    }

    /** The device id of GPU slot {@code index} on {@code node}. */
    public static String gpuId(String node, int index) {
        return node + "/gpu-" + index;
    }

    /** The device id of the CPU-serving share of {@code node}. */
    public static String cpuId(String node) {
        return node + "/cpu";
    }

    /**
     * The devices of the cluster.
     *
     * @param pods every pod (Stowage's hosts are recognised by label; the others' GPU requests count as held)
     * @param dcgm foreign usage per node and on Stowage's own GPUs, from DCGM
     */
    public List<Device> devices(Collection<Node> nodes, Collection<Pod> pods, DcgmUsage.ForeignUsage dcgm) {
        Map<String, List<Long>> foreign = dcgm.byNode();
        Map<String, Long> foreignOnDevice = new HashMap<>();
        Map<String, Integer> heldByOthers = new HashMap<>();
        Map<String, Set<String>> ours = new HashMap<>();
        for (Pod p : pods) {
            String node = p.getSpec() == null ? null : p.getSpec().getNodeName();
            if (Labels.isHost(p)) {
                String dev = p.getMetadata().getAnnotations() == null
                        ? null
                        : p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION);
                if (dev != null) {
                    Long extra = dcgm.onHosts()
                            .get(p.getMetadata().getNamespace() + "/"
                                    + p.getMetadata().getName());
                    if (extra != null) {
                        foreignOnDevice.put(dev, extra);
                    }
                    ours.computeIfAbsent(dev.substring(0, Math.max(0, dev.indexOf('/'))), k -> new HashSet<>())
                            .add(dev);
                }
                continue;
            }
            if (node == null || isFinished(p)) {
                continue;
            }
            int gpus = p.getSpec().getContainers().stream()
                    .mapToInt(c -> c.getResources() == null || c.getResources().getLimits() == null
                            ? 0
                            : quantityInt(c.getResources().getLimits().get(GPU_RESOURCE)))
                    .sum();
            if (gpus > 0) {
                heldByOthers.merge(node, gpus, Integer::sum);
            }
        }
        List<Device> out = new ArrayList<>();
        for (Node n : nodes) {
            if (!schedulable(n)) {
                continue;
            }
            String name = n.getMetadata().getName();
            Map<String, String> labels = n.getMetadata().getLabels() == null
                    ? Map.of()
                    : n.getMetadata().getLabels();
            List<Taint> taints = n.getSpec() == null || n.getSpec().getTaints() == null
                    ? List.of()
                    : n.getSpec().getTaints().stream()
                            .map(t -> new Taint(t.getKey(), t.getValue(), t.getEffect()))
                            .toList();
            int count = gpuCount(n, labels);
            long memMiB = parseLong(labels.get(GFD_MEMORY));
            if (count > 0 && memMiB > 0) {
                long total = memMiB * MIB;
                long reserve = Math.max(config.reserveFloorBytes(), (long) (total * config.reserveFraction()));
                Set<String> used = ours.getOrDefault(name, Set.of());
                // Pods that are not Stowage's hold whole GPUs; mark free slots as held, highest index first.
                int held = heldByOthers.getOrDefault(name, 0);
                List<Long> foreignBytes = new ArrayList<>(foreign.getOrDefault(name, List.of()));
                for (int i = count - 1; i >= 0; i--) {
                    String id = gpuId(name, i);
                    long foreignHere = foreignOnDevice.getOrDefault(id, 0L);
                    if (!used.contains(id)) {
                        if (held > 0) {
                            held--;
                            foreignHere = total;
                        } else if (!foreignBytes.isEmpty()) {
                            foreignHere = foreignBytes.remove(0);
                        }
                    }
                    out.add(new Device(
                            id,
                            name,
                            DeviceKind.GPU,
                            total,
                            reserve,
                            foreignHere,
                            config.gpuHostOverheadBytes(),
                            1.0,
                            labels,
                            taints));
                }
            }
            if (config.cpuFraction() > 0
                    && n.getStatus() != null
                    && n.getStatus().getAllocatable() != null) {
                long mem = quantityBytes(n.getStatus().getAllocatable().get("memory"));
                long share = (long) (mem * config.cpuFraction());
                if (share > 0) {
                    out.add(new Device(
                            cpuId(name),
                            name,
                            DeviceKind.CPU,
                            share,
                            0,
                            0,
                            config.cpuHostOverheadBytes(),
                            1.0,
                            labels,
                            taints));
                }
            }
        }
        out.sort(java.util.Comparator.comparing(Device::id));
        return out;
    }

    private static int gpuCount(Node n, Map<String, String> labels) {
        if (n.getStatus() != null && n.getStatus().getAllocatable() != null) {
            Quantity q = n.getStatus().getAllocatable().get(GPU_RESOURCE);
            if (q != null) {
                return quantityInt(q);
            }
        }
        return (int) parseLong(labels.get(GFD_COUNT));
    }

    private static boolean schedulable(Node n) {
        if (n.getSpec() != null && Boolean.TRUE.equals(n.getSpec().getUnschedulable())) {
            return false;
        }
        if (n.getStatus() == null || n.getStatus().getConditions() == null) {
            return true;
        }
        for (NodeCondition c : n.getStatus().getConditions()) {
            if ("Ready".equals(c.getType()) && !"True".equals(c.getStatus())) {
                return false;
            }
        }
        return true;
    }

    private static boolean isFinished(Pod p) {
        String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
        return "Succeeded".equals(phase) || "Failed".equals(phase);
    }

    private static int quantityInt(Quantity q) {
        if (q == null) {
            return 0;
        }
        return Quantity.getAmountInBytes(q).intValue();
    }

    private static long quantityBytes(Quantity q) {
        return q == null ? 0 : Quantity.getAmountInBytes(q).longValue();
    }

    private static long parseLong(String s) {
        if (s == null || s.isBlank()) {
            return 0;
        }
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
