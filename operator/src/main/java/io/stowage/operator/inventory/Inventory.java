package io.stowage.operator.inventory;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.dcgm.DcgmUsage;
import io.stowage.operator.reconcile.Labels;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * Turns Nodes (allocatable GPUs, GPU Feature Discovery labels, taints, allocatable memory), the GPUs other pods
 * hold, and DCGM's usage by GPU UUID into the planner's devices: one per physical GPU (or MIG device, or MPS share).
 *
 * <p>Counting, per node:
 *
 * <ul>
 *   <li>Physical GPUs: allocatable {@code nvidia.com/gpu} divided by {@code nvidia.com/gpu.replicas} (time-slicing
 *       and MPS advertise each GPU that many times), at most {@code nvidia.com/gpu.count}. Time-slicing gives every
 *       sharer the whole memory, so a time-sliced GPU is one device of its full memory; MPS caps each client at
 *       memory / replicas, so an MPS-shared GPU is {@code replicas} devices of that share: the memory is never
 *       multiplied.
 *   <li>MIG, "single" strategy: {@code nvidia.com/gpu} are MIG devices and GFD's count and memory describe them:
 *       each is planned as a bin of its own size. "mixed" strategy: the {@code nvidia.com/mig-*} devices are left
 *       out (a note says so); the node's whole GPUs are still planned.
 *   <li>Memory: GFD's {@code nvidia.com/gpu.memory}, else DCGM's framebuffer (FB_USED + FB_FREE), else the table
 *       of {@link KnownGpus} by {@code cloud.google.com/gke-accelerator} or the product label (GKE has no GFD).
 *   <li>Foreign memory, counted once: a GPU a Stowage host reported (by UUID) carries only DCGM's usage beyond the
 *       host's own; the GPUs other pods hold through the device plugin are whole GPUs taken, matched to the GPUs DCGM
 *       sees in use (attributed to a pod first, then the most used), so their memory is not counted again on
 *       another GPU; the remaining GPUs get the remaining DCGM usage, one GPU each.
 * </ul>
 */
public final class Inventory {
    private static final Logger LOG = Logger.getLogger(Inventory.class);

    public static final String GPU_RESOURCE = "nvidia.com/gpu";
    public static final String GFD_MEMORY = "nvidia.com/gpu.memory";
    public static final String GFD_PRODUCT = "nvidia.com/gpu.product";
    public static final String GFD_COUNT = "nvidia.com/gpu.count";
    public static final String GFD_REPLICAS = "nvidia.com/gpu.replicas";
    public static final String GFD_SHARING = "nvidia.com/gpu.sharing-strategy";
    public static final String GFD_MIG_STRATEGY = "nvidia.com/mig.strategy";
    public static final String GKE_ACCELERATOR = "cloud.google.com/gke-accelerator";
    /**
     * The taints the node lifecycle controller sets on a cordoned, NotReady or unreachable node. They are not the
     * device's own: a NotReady node's {@code NoExecute} would evict its replicas at once, with no grace.
     */
    public static final Set<String> LIFECYCLE_TAINTS = Set.of(
            "node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable");

    private static final String MIG_RESOURCE_PREFIX = "nvidia.com/mig-";
    private static final long MIB = 1L << 20;

    private final InventoryConfig config;
    /** Notes already logged, so that a pass every 15 s does not repeat them. */
    private final Set<String> logged = ConcurrentHashMap.newKeySet();

    public Inventory(InventoryConfig config) {
        this.config = config;
    }

    /**
     * The devices of the cluster, and what the operator should say about the GPUs it left out or counted
     * differently from what the nodes advertise.
     */
    public record Result(List<Device> devices, List<String> notes) {}

    /** The device id of GPU slot {@code index} on {@code node}. */
    public static String gpuId(String node, int index) {
        return node + "/gpu-" + index;
    }

    /** The device id of the CPU-serving share of {@code node}. */
    public static String cpuId(String node) {
        return node + "/cpu";
    }

    /** Per GPU UUID a host reported ({@link Labels#GPU_UUID_ANNOTATION}), that host's {@code namespace/pod}. */
    public static Map<String, String> hostsByGpuUuid(Collection<Pod> pods) {
        Map<String, String> out = new TreeMap<>();
        for (Pod p : pods) {
            String uuid = gpuUuidOf(p);
            if (Labels.isHost(p) && uuid != null) {
                out.putIfAbsent(
                        uuid,
                        p.getMetadata().getNamespace() + "/" + p.getMetadata().getName());
            }
        }
        return out;
    }

    /** The GPU UUID recorded on a host pod, or null. */
    public static String gpuUuidOf(Pod p) {
        Map<String, String> ann = p.getMetadata().getAnnotations();
        return ann == null ? null : ann.get(Labels.GPU_UUID_ANNOTATION);
    }

    /** The devices of the cluster; see {@link #read}. */
    public List<Device> devices(Collection<Node> nodes, Collection<Pod> pods, DcgmUsage.ForeignUsage dcgm) {
        return read(nodes, pods, dcgm).devices();
    }

    /**
     * The devices of the cluster, with notes (each logged once).
     *
     * @param pods every pod (Stowage's hosts are recognised by label; the others' GPU requests count as held)
     * @param dcgm usage by GPU UUID per node, and on Stowage's own GPUs, from DCGM
     */
    public Result read(Collection<Node> nodes, Collection<Pod> pods, DcgmUsage.ForeignUsage dcgm) {
        Map<String, Map<String, Pod>> oursByNode = new HashMap<>();
        Map<String, Integer> heldByOthers = new HashMap<>();
        List<String> notes = new ArrayList<>();
        for (Pod p : pods) {
            String node = p.getSpec() == null ? null : p.getSpec().getNodeName();
            if (Labels.isHost(p)) {
                String dev = p.getMetadata().getAnnotations() == null
                        ? null
                        : p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION);
                if (dev != null) {
                    oursByNode
                            .computeIfAbsent(dev.substring(0, Math.max(0, dev.indexOf('/'))), k -> new TreeMap<>())
                            .put(dev, p);
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
        // Cordoned and NotReady nodes keep their devices: the loop decides (reconcile.NodeStates) whether their
        // replicas stay or move; the taints Kubernetes sets for those states are that decision's, not the device's.
        for (Node n : nodes) {
            String name = n.getMetadata().getName();
            Map<String, String> labels = n.getMetadata().getLabels() == null
                    ? Map.of()
                    : n.getMetadata().getLabels();
            List<Taint> taints = n.getSpec() == null || n.getSpec().getTaints() == null
                    ? List.of()
                    : n.getSpec().getTaints().stream()
                            .filter(t -> !LIFECYCLE_TAINTS.contains(t.getKey()))
                            .map(t -> new Taint(t.getKey(), t.getValue(), t.getEffect()))
                            .toList();
            Map<String, Pod> ours = oursByNode.getOrDefault(name, Map.of());
            gpus(n, labels, taints, ours, heldByOthers.getOrDefault(name, 0), dcgm, out, notes);
            duplicateUuids(name, ours, notes);
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
        out.sort(Comparator.comparing(Device::id));
        for (String note : notes) {
            if (logged.add(note)) {
                LOG.info(note);
            }
        }
        return new Result(out, notes);
    }

    /** The GPU devices of one node, added to {@code out}. */
    private void gpus(
            Node n,
            Map<String, String> labels,
            List<Taint> taints,
            Map<String, Pod> ours,
            int heldPods,
            DcgmUsage.ForeignUsage dcgm,
            List<Device> out,
            List<String> notes) {
        String name = n.getMetadata().getName();
        Map<String, Quantity> allocatable =
                n.getStatus() == null || n.getStatus().getAllocatable() == null
                        ? Map.of()
                        : n.getStatus().getAllocatable();
        migLeftOut(name, labels, allocatable, notes);
        int replicas = Math.max(1, (int) parseLong(labels.get(GFD_REPLICAS)));
        String sharing = labels.getOrDefault(GFD_SHARING, replicas > 1 ? "time-slicing" : "none")
                .toLowerCase(Locale.ROOT);
        boolean mps = replicas > 1 && sharing.equals("mps");
        int labelled = (int) parseLong(labels.get(GFD_COUNT));
        int physical;
        if (allocatable.containsKey(GPU_RESOURCE)) {
            int advertised = quantityInt(allocatable.get(GPU_RESOURCE));
            physical = advertised / replicas;
            if (labelled > 0) {
                physical = Math.min(physical, labelled);
            }
            if (replicas > 1 && advertised > 0) {
                notes.add("node " + name + " advertises " + advertised + " nvidia.com/gpu shared by " + sharing + " ("
                        + replicas + " per GPU): planned as " + physical + " physical GPU(s)"
                        + (mps
                                ? ", each split in " + replicas + " MPS shares of its memory"
                                : " of their full memory"));
            }
        } else {
            physical = labelled;
        }
        if (physical <= 0) {
            return;
        }
        long total = parseLong(labels.get(GFD_MEMORY)) * MIB;
        if (total <= 0) {
            total = dcgm.memoryByNode().getOrDefault(name, 0L);
        }
        if (total <= 0) {
            total = KnownGpus.bytesOf(labels.get(GKE_ACCELERATOR));
        }
        if (total <= 0) {
            total = KnownGpus.bytesOf(labels.get(GFD_PRODUCT));
        }
        if (total <= 0) {
            notes.add("node " + name + ": its " + physical + " GPU(s) are left out: their memory is unknown (no "
                    + GFD_MEMORY + " label from GPU Feature Discovery, no DCGM framebuffer figures, and product '"
                    + labels.getOrDefault(GKE_ACCELERATOR, labels.getOrDefault(GFD_PRODUCT, "?"))
                    + "' is not a known GPU); install GPU Feature Discovery or configure the DCGM exporter");
            return;
        }
        String product = labels.getOrDefault(GFD_PRODUCT, "");
        if (product.toUpperCase(Locale.ROOT).contains("-MIG-")) {
            notes.add("node " + name + ": " + physical + " MIG device(s) " + product + " (" + GFD_MIG_STRATEGY
                    + "=single) planned as GPUs of their own size, " + (total / MIB) + " MiB each");
        }
        int slots = mps ? physical * replicas : physical;
        long perSlot = mps ? total / replicas : total;
        long reserve = Math.max(config.reserveFloorBytes(), (long) (perSlot * config.reserveFraction()));
        // DCGM's GPUs on this node that are not Stowage's, most used first; an MPS share is capped by the device
        // plugin whatever its GPU's other clients use, so it takes no DCGM usage.
        List<DcgmUsage.NodeGpu> others =
                mps ? new ArrayList<>() : new ArrayList<>(dcgm.byNode().getOrDefault(name, List.of()));
        // Pods that are not Stowage's hold whole devices, except on time-sliced GPUs, where their memory is what
        // DCGM sees (and, without DCGM, at least the GPUs their shares fill).
        int held = heldPods;
        if (replicas > 1 && !mps) {
            held = others.isEmpty() ? (heldPods + replicas - 1) / replicas : 0;
        }
        // Highest index first: the held devices are the last ones, as before.
        for (int i = slots - 1; i >= 0; i--) {
            String id = gpuId(name, i);
            long foreignHere = 0;
            Pod host = ours.get(id);
            if (host != null) {
                foreignHere = dcgm.onHosts()
                        .getOrDefault(
                                host.getMetadata().getNamespace() + "/"
                                        + host.getMetadata().getName(),
                                0L);
            } else if (held > 0) {
                held--;
                foreignHere = perSlot;
                // The held GPU is one DCGM sees in use (by a pod it names, else the most used): not counted twice.
                takeHeld(others);
            } else if (!others.isEmpty()) {
                foreignHere = others.remove(0).usedBytes();
            }
            out.add(new Device(
                    id,
                    name,
                    DeviceKind.GPU,
                    perSlot,
                    reserve,
                    Math.min(foreignHere, perSlot),
                    config.gpuHostOverheadBytes(),
                    1.0,
                    labels,
                    taints));
        }
    }

    private static void takeHeld(List<DcgmUsage.NodeGpu> others) {
        for (int j = 0; j < others.size(); j++) {
            if (others.get(j).pod() != null) {
                others.remove(j);
                return;
            }
        }
        if (!others.isEmpty()) {
            others.remove(0);
        }
    }

    private static void migLeftOut(
            String name, Map<String, String> labels, Map<String, Quantity> allocatable, List<String> notes) {
        Map<String, Integer> mig = new TreeMap<>();
        allocatable.forEach((k, q) -> {
            if (k.startsWith(MIG_RESOURCE_PREFIX) && quantityInt(q) > 0) {
                mig.put(k, quantityInt(q));
            }
        });
        if (mig.isEmpty()) {
            labels.forEach((k, v) -> {
                if (k.startsWith(MIG_RESOURCE_PREFIX) && k.endsWith(".count") && parseLong(v) > 0) {
                    mig.put(k.substring(0, k.length() - ".count".length()), (int) parseLong(v));
                }
            });
        }
        if (!mig.isEmpty()) {
            StringBuilder b = new StringBuilder();
            mig.forEach((k, v) -> b.append(b.length() == 0 ? "" : ", ")
                    .append(v)
                    .append(" x ")
                    .append(k));
            notes.add("node " + name + ": its MIG devices (" + b + ", " + GFD_MIG_STRATEGY + "="
                    + labels.getOrDefault(GFD_MIG_STRATEGY, "mixed") + ") are left out: Stowage plans whole GPUs"
                    + " and, under the single MIG strategy, MIG devices advertised as " + GPU_RESOURCE);
        }
    }

    private static void duplicateUuids(String name, Map<String, Pod> ours, List<String> notes) {
        Map<String, List<String>> byUuid = new TreeMap<>();
        ours.values().forEach(p -> {
            String uuid = gpuUuidOf(p);
            if (uuid != null) {
                byUuid.computeIfAbsent(uuid, k -> new ArrayList<>())
                        .add(p.getMetadata().getName());
            }
        });
        byUuid.forEach((uuid, hosts) -> {
            if (hosts.size() > 1) {
                notes.add("node " + name + ": GPU " + uuid + " was given to " + hosts.size() + " host pods " + hosts
                        + " (the device plugin shares it): their memory budgets add up on one GPU");
            }
        });
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
