package io.stowage.operator.inventory;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.type.TypeReference;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.dcgm.DcgmUsage;
import io.stowage.operator.dcgm.GpuMemory;
import io.stowage.operator.dcgm.PrometheusText;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.reconcile.Labels;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Devices from real GPU Feature Discovery labels, GPUs held by other pods, and DCGM's usage by GPU UUID: physical
 * GPUs, foreign memory counted once, MIG, and nodes without GFD.
 */
class InventoryTest {
    static final long MIB = 1L << 20;
    final Inventory inventory = new Inventory(new InventoryConfig(0.05, 256 * MIB, 0.0, 512 * MIB, 64 * MIB));

    static List<Map<String, String>> vks() throws IOException {
        try (InputStream in = InventoryTest.class.getResourceAsStream("/gpu/vks-vgpu-4nodes.labels.json")) {
            return HostAdminClient.JSON.readValue(in, new TypeReference<>() {});
        }
    }

    static Node node(String name, Map<String, String> labels, int gpus) {
        return new NodeBuilder()
                .withNewMetadata()
                .withName(name)
                .withLabels(labels)
                .endMetadata()
                .withNewSpec()
                .endSpec()
                .withNewStatus()
                .addToAllocatable("nvidia.com/gpu", new Quantity(Integer.toString(gpus)))
                .addToAllocatable("memory", new Quantity("32Gi"))
                .endStatus()
                .build();
    }

    @Test
    void everyGfdNodeBecomesOneGpuDeviceWithItsLabelledMemoryLessTheReserve() throws IOException {
        List<Node> nodes = new ArrayList<>();
        List<Map<String, String>> labels = vks();
        for (int i = 0; i < labels.size(); i++) {
            nodes.add(node("vks-" + i, labels.get(i), 1));
        }

        List<Device> devices = inventory.devices(nodes, List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(devices).hasSize(4).allSatisfy(d -> assertThat(d.kind()).isEqualTo(DeviceKind.GPU));
        assertThat(devices)
                .extracting(Device::totalBytes)
                .containsExactlyInAnyOrder(40960 * MIB, 4096 * MIB, 4096 * MIB, 4096 * MIB);
        Device big = devices.stream()
                .filter(d -> d.totalBytes() == 40960 * MIB)
                .findFirst()
                .orElseThrow();
        assertThat(big.reserveBytes()).isEqualTo((long) (40960 * MIB * 0.05));
        assertThat(big.labels()).containsEntry("nvidia.com/gpu.product", "GRID-A100-40C");
        Device small = devices.stream()
                .filter(d -> d.totalBytes() == 4096 * MIB)
                .findFirst()
                .orElseThrow();
        assertThat(small.reserveBytes()).as("the floor wins on a small GPU").isEqualTo(256 * MIB);
    }

    static Pod podHolding(String name, String node, int gpus) {
        return new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace("ml")
                .endMetadata()
                .withNewSpec()
                .withNodeName(node)
                .addNewContainer()
                .withName("c")
                .withNewResources()
                .addToLimits("nvidia.com/gpu", new Quantity(Integer.toString(gpus)))
                .endResources()
                .endContainer()
                .endSpec()
                .build();
    }

    static Pod host(String name, String device, String gpuUuid) {
        PodBuilder b = new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace("team-a")
                .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .addToLabels(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .addToAnnotations(Labels.DEVICE_ANNOTATION, device)
                .endMetadata()
                .withNewSpec()
                .endSpec();
        if (gpuUuid != null) {
            b.editMetadata()
                    .addToAnnotations(Labels.GPU_UUID_ANNOTATION, gpuUuid)
                    .endMetadata();
        }
        return b.build();
    }

    static GpuMemory gpu(String node, String uuid, int index, String pod, long usedMiB) {
        return new GpuMemory(
                node,
                uuid,
                index,
                "NVIDIA H100 80GB HBM3",
                pod == null ? null : "ml",
                pod,
                usedMiB * MIB,
                (81559 - usedMiB) * MIB);
    }

    @Test
    void aGpuHeldByAnotherPodIsTheOneDcgmSeesInUseAndItsMemoryIsCountedOnce() {
        Map<String, String> l = Map.of("nvidia.com/gpu.memory", "81559", "nvidia.com/gpu.count", "4");
        Node n = node("h100", l, 4);
        // The training pod holds one GPU through the device plugin, and DCGM sees its 10,000 MiB on that GPU.
        var dcgm = new DcgmUsage.ForeignUsage(
                Map.of("h100", List.of(new DcgmUsage.NodeGpu("GPU-t", 10_000 * MIB, null))), Map.of(), Map.of());

        List<Device> devices = inventory.devices(List.of(n), List.of(podHolding("training", "h100", 1)), dcgm);

        assertThat(devices).hasSize(4);
        assertThat(devices)
                .filteredOn(d -> d.capacityBytes() == 0)
                .as("held by the training pod")
                .hasSize(1);
        assertThat(devices)
                .filteredOn(d -> d.capacityBytes() > 0)
                .as("its 10,000 MiB are not counted again on a free GPU")
                .hasSize(3)
                .allSatisfy(d -> assertThat(d.foreignBytes()).isZero());
    }

    @Test
    void theHeldGpuIsTheOneDcgmAttributesToAPodAndOtherUsageStaysOnItsOwnGpu() {
        Node n = node("h100", Map.of("nvidia.com/gpu.memory", "81559", "nvidia.com/gpu.count", "4"), 4);
        List<GpuMemory> gpus = List.of(
                gpu("h100", "GPU-a", 0, null, 0),
                gpu("h100", "GPU-b", 1, null, 2_000),
                gpu("h100", "GPU-c", 2, "training-0", 30_000),
                gpu("h100", "GPU-d", 3, null, 0));
        var dcgm = DcgmUsage.foreign(gpus, k -> false, Map.of(), Map.of(), Set.of());

        List<Device> devices = inventory.devices(List.of(n), List.of(podHolding("training-0", "h100", 1)), dcgm);

        assertThat(devices).filteredOn(d -> d.capacityBytes() == 0).hasSize(1);
        assertThat(devices)
                .extracting(Device::foreignBytes)
                .as("one GPU held whole, the 2,000 MiB of an unattributed process on one other, nothing added")
                .containsExactlyInAnyOrder(81559 * MIB, 2_000 * MIB, 0L, 0L);
    }

    @Test
    void aStowageHostsGpuIsFoundByTheUuidItReportedAndCarriesOnlyWhatIsNotItsOwn() {
        Node n = node("h100", Map.of("nvidia.com/gpu.memory", "81559", "nvidia.com/gpu.count", "2"), 2);
        Pod host = host("stowage-host-h100-gpu-0", "h100/gpu-0", "GPU-b");
        List<GpuMemory> gpus = List.of(gpu("h100", "GPU-a", 0, null, 5_000), gpu("h100", "GPU-b", 1, null, 30_000));
        String key = "team-a/stowage-host-h100-gpu-0";
        var dcgm = DcgmUsage.foreign(
                gpus, k -> false, Map.of(key, 28_000 * MIB), Inventory.hostsByGpuUuid(List.of(host)), Set.of());

        Map<String, Device> byId = new java.util.TreeMap<>();
        inventory.devices(List.of(n), List.of(host), dcgm).forEach(d -> byId.put(d.id(), d));

        assertThat(byId.get("h100/gpu-0").foreignBytes())
                .as("DCGM's 30,000 MiB on GPU-b less the host's own 28,000")
                .isEqualTo(2_000 * MIB);
        assertThat(byId.get("h100/gpu-1").foreignBytes())
                .as("GPU-a, which DCGM's index would have put on gpu-0, is the other device")
                .isEqualTo(5_000 * MIB);
    }

    @Test
    void timeSlicedReplicasAreOneDeviceOfFullMemoryPerPhysicalGpu() {
        Map<String, String> l = Map.of(
                "nvidia.com/gpu.memory", "23034",
                "nvidia.com/gpu.count", "2",
                "nvidia.com/gpu.replicas", "4",
                "nvidia.com/gpu.sharing-strategy", "time-slicing",
                "nvidia.com/gpu.product", "NVIDIA-L4-SHARED");

        Inventory.Result r = inventory.read(List.of(node("l4", l, 8)), List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(r.devices())
                .hasSize(2)
                .allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(23034 * MIB));
        assertThat(r.notes())
                .singleElement()
                .asString()
                .contains("8 nvidia.com/gpu")
                .contains("2 physical GPU(s)");
    }

    @Test
    void mpsSharesSplitTheMemoryOfAGpuAndNeverMultiplyIt() {
        Map<String, String> l = Map.of(
                "nvidia.com/gpu.memory", "81559",
                "nvidia.com/gpu.count", "1",
                "nvidia.com/gpu.replicas", "4",
                "nvidia.com/gpu.sharing-strategy", "mps");

        List<Device> devices = inventory.devices(List.of(node("h100", l, 4)), List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(devices).hasSize(4);
        assertThat(devices.stream().mapToLong(Device::totalBytes).sum()).isLessThanOrEqualTo(81559 * MIB);
        assertThat(devices).allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(81559 * MIB / 4));
    }

    @Test
    void singleStrategyMigDevicesArePlannedAsBinsOfTheirOwnSize() {
        Map<String, String> l = Map.of(
                "nvidia.com/gpu.memory", "4864",
                "nvidia.com/gpu.count", "7",
                "nvidia.com/gpu.product", "A100-SXM4-40GB-MIG-1g.5gb",
                "nvidia.com/mig.strategy", "single");

        Inventory.Result r = inventory.read(List.of(node("mig", l, 7)), List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(r.devices())
                .hasSize(7)
                .allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(4864 * MIB));
        assertThat(r.notes()).anySatisfy(x -> assertThat(x).contains("own size"));
    }

    @Test
    void mixedStrategyMigDevicesAreLeftOutAndSaidSoWhileWholeGpusArePlanned() {
        Map<String, String> l = Map.of(
                "nvidia.com/gpu.memory", "40960",
                "nvidia.com/gpu.count", "2",
                "nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB",
                "nvidia.com/mig.strategy", "mixed",
                "nvidia.com/mig-1g.5gb.count", "7",
                "nvidia.com/mig-1g.5gb.memory", "4864");
        Node n = node("mixed", l, 1);
        n.getStatus().getAllocatable().put("nvidia.com/mig-1g.5gb", new Quantity("7"));

        Inventory.Result r = inventory.read(List.of(n), List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(r.devices())
                .as("the one GPU not in MIG mode")
                .singleElement()
                .satisfies(d -> assertThat(d.totalBytes()).isEqualTo(40960 * MIB));
        assertThat(r.notes())
                .anySatisfy(
                        x -> assertThat(x).contains("7 x nvidia.com/mig-1g.5gb").contains("left out"));
    }

    @Test
    void aNodeWithoutGfdLabelsTakesItsMemoryFromDcgmsFramebuffer() throws IOException {
        List<GpuMemory> gpus;
        try (InputStream in = InventoryTest.class.getResourceAsStream("/gpu/kops-l4-1gpu.metrics.txt")) {
            gpus = DcgmUsage.gpus(PrometheusText.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)));
        }
        String name = gpus.get(0).hostname();
        var dcgm = DcgmUsage.foreign(gpus, k -> false, Map.of(), Set.of());

        List<Device> devices = inventory.devices(
                List.of(node(name, Map.of("cloud.google.com/gke-accelerator", "nvidia-l4"), 1)), List.of(), dcgm);

        assertThat(devices)
                .singleElement()
                .as("FB_USED 0 + FB_FREE 22563 MiB, measured, wins over the table's 23034")
                .satisfies(d -> assertThat(d.totalBytes()).isEqualTo(22563 * MIB));
    }

    @Test
    void aGkeNodeWithoutGfdOrDcgmTakesItsMemoryFromTheKnownProducts() {
        Node n = node("gke-a100", Map.of("cloud.google.com/gke-accelerator", "nvidia-tesla-a100"), 2);

        assertThat(inventory.devices(List.of(n), List.of(), DcgmUsage.ForeignUsage.NONE))
                .hasSize(2)
                .allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(40960 * MIB));
    }

    @Test
    void gpusOfUnknownMemoryAreLeftOutWithANoteThatSaysWhatToInstall() {
        Node n = node("mystery", Map.of("cloud.google.com/gke-accelerator", "nvidia-future-9000"), 1);

        Inventory.Result r = inventory.read(List.of(n), List.of(), DcgmUsage.ForeignUsage.NONE);

        assertThat(r.devices()).isEmpty();
        assertThat(r.notes())
                .singleElement()
                .asString()
                .contains("mystery")
                .contains("nvidia-future-9000")
                .contains("GPU Feature Discovery");
    }

    @Test
    void twoHostsGivenTheSameGpuAreNoted() {
        Node n = node("l4", Map.of("nvidia.com/gpu.memory", "23034", "nvidia.com/gpu.count", "2"), 2);
        List<Pod> hosts = List.of(host("h0", "l4/gpu-0", "GPU-same"), host("h1", "l4/gpu-1", "GPU-same"));

        Inventory.Result r = inventory.read(List.of(n), hosts, DcgmUsage.ForeignUsage.NONE);

        assertThat(r.notes())
                .singleElement()
                .asString()
                .contains("GPU-same")
                .contains("h0")
                .contains("h1");
    }

    @Test
    void knownProductsMatchWholeNamesOnlyAndNeverGuessVgpuOrMigSizes() {
        assertThat(KnownGpus.bytesOf("NVIDIA-A100-SXM4-80GB")).isEqualTo(81920 * MIB);
        assertThat(KnownGpus.bytesOf("nvidia-a100-80gb")).isEqualTo(81920 * MIB);
        assertThat(KnownGpus.bytesOf("NVIDIA H100 80GB HBM3")).isEqualTo(81559 * MIB);
        assertThat(KnownGpus.bytesOf("nvidia-l4")).isEqualTo(23034 * MIB);
        assertThat(KnownGpus.bytesOf("NVIDIA-L40S")).isEqualTo(46068 * MIB);
        assertThat(KnownGpus.bytesOf("NVIDIA-A10G")).isEqualTo(23028 * MIB);
        assertThat(KnownGpus.bytesOf("Tesla-T4")).isEqualTo(15360 * MIB);
        assertThat(KnownGpus.bytesOf("GRID-A100-4C")).as("a vGPU profile").isZero();
        assertThat(KnownGpus.bytesOf("A100-SXM4-40GB-MIG-1g.5gb"))
                .as("a MIG device")
                .isZero();
        assertThat(KnownGpus.bytesOf(null)).isZero();
    }

    @Test
    void cordonedAndNotReadyNodesKeepTheirDevicesWithoutTheLifecycleTaints() {
        Map<String, String> l = Map.of("nvidia.com/gpu.memory", "40960");
        Node cordoned = node("a", l, 1);
        cordoned.getSpec().setUnschedulable(true);
        cordoned.getSpec()
                .setTaints(List.of(
                        new io.fabric8.kubernetes.api.model.Taint(
                                "NoSchedule", "node.kubernetes.io/unschedulable", null, null),
                        new io.fabric8.kubernetes.api.model.Taint("NoSchedule", "dedicated", null, "llm")));
        Node notReady = node("b", l, 1);
        notReady.getStatus()
                .setConditions(List.of(new io.fabric8.kubernetes.api.model.NodeConditionBuilder()
                        .withType("Ready")
                        .withStatus("False")
                        .build()));
        notReady.getSpec()
                .setTaints(List.of(new io.fabric8.kubernetes.api.model.Taint(
                        "NoExecute", "node.kubernetes.io/not-ready", null, null)));

        List<Device> devices = inventory.devices(List.of(cordoned, notReady), List.of(), DcgmUsage.ForeignUsage.NONE);

        // The loop (NodeStates) decides whether their replicas stay or move; a NotReady node's NoExecute would
        // evict them at once in the planner.
        assertThat(devices).extracting(Device::id).containsExactly("a/gpu-0", "b/gpu-0");
        assertThat(devices.get(0).taints()).extracting(t -> t.key()).containsExactly("dedicated");
        assertThat(devices.get(1).taints()).isEmpty();
    }
}
