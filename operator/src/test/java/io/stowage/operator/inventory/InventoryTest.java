package io.stowage.operator.inventory;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.type.TypeReference;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.dcgm.DcgmUsage;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Devices from real GPU Feature Discovery labels, GPUs held by other pods, and DCGM's foreign usage. */
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

    @Test
    void gpusHeldByOtherPodsAndDcgmForeignUsageReduceCapacity() {
        Map<String, String> l = Map.of("nvidia.com/gpu.memory", "81559", "nvidia.com/gpu.count", "4");
        Node n = node("h100", l, 4);
        Pod other = new PodBuilder()
                .withNewMetadata()
                .withName("training")
                .withNamespace("ml")
                .endMetadata()
                .withNewSpec()
                .withNodeName("h100")
                .addNewContainer()
                .withName("c")
                .withNewResources()
                .addToLimits("nvidia.com/gpu", new Quantity("1"))
                .endResources()
                .endContainer()
                .endSpec()
                .build();
        var dcgm = new DcgmUsage.ForeignUsage(Map.of("h100", List.of(10_000 * MIB)), Map.of());

        List<Device> devices = inventory.devices(List.of(n), List.of(other), dcgm);

        assertThat(devices).hasSize(4);
        assertThat(devices)
                .filteredOn(d -> d.capacityBytes() == 0)
                .as("held by the training pod")
                .hasSize(1);
        assertThat(devices).filteredOn(d -> d.foreignBytes() == 10_000 * MIB).hasSize(1);
        assertThat(devices).filteredOn(d -> d.foreignBytes() == 0).hasSize(2);
    }

    @Test
    void unschedulableAndNotReadyNodesOfferNothing() {
        Map<String, String> l = Map.of("nvidia.com/gpu.memory", "40960");
        Node cordoned = node("a", l, 1);
        cordoned.getSpec().setUnschedulable(true);
        Node notReady = node("b", l, 1);
        notReady.getStatus()
                .setConditions(List.of(new io.fabric8.kubernetes.api.model.NodeConditionBuilder()
                        .withType("Ready")
                        .withStatus("False")
                        .build()));

        assertThat(inventory.devices(List.of(cordoned, notReady), List.of(), DcgmUsage.ForeignUsage.NONE))
                .isEmpty();
    }
}
