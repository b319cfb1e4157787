package io.stowage.placement.manifest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

class InventoryReaderTest {

    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;
    private static final MemoryParameters P = MemoryParameters.defaults();

    private static Inventory yaml(String text) {
        return InventoryReader.parseYaml("devices.yaml", text, P);
    }

    @Test
    void expandsDeviceEntriesWithUnitsReservesAndForeignUse() {
        Inventory inv = yaml("""
                defaults:
                  reserve: {fraction: 0.05, floor: 1Gi}
                devices:
                  - node: a
                    id: gpu
                    count: 2
                    memory: 80Gi
                    foreign: 2Gi
                    labels: {zone: z1}
                    taints: [{key: dedicated, value: llm, effect: NoSchedule}]
                  - node: b
                    memory: 81559MiB
                    reserve: "10%"
                  - node: c
                    kind: cpu
                    id: ram
                    memory: 64000000000
                    reserve: 2Gi
                """);
        assertThat(inv.devices()).extracting(Device::id).containsExactly("a/gpu-0", "a/gpu-1", "b/gpu-0", "c/ram");
        Device a0 = inv.devices().getFirst();
        assertThat(a0.totalBytes()).isEqualTo(80 * GIB);
        // max(1 GiB, ceil(0.05 · 80 GiB) = 4 GiB)
        assertThat(a0.reserveBytes()).isEqualTo(4 * GIB);
        assertThat(a0.foreignBytes()).isEqualTo(2 * GIB);
        assertThat(a0.capacityBytes()).isEqualTo(74 * GIB);
        assertThat(a0.hostOverheadBytes()).isEqualTo(512 * MIB);
        assertThat(a0.computeCapacity()).isEqualTo(1.0);
        assertThat(a0.labels()).containsExactly(Map.entry("zone", "z1"));
        assertThat(a0.taints()).containsExactly(new Taint("dedicated", "llm", "NoSchedule"));
        Device b = inv.devices().get(2);
        assertThat(b.totalBytes()).isEqualTo(81_559 * MIB);
        assertThat(b.reserveBytes()).isEqualTo((long) Math.ceil(0.10 * 81_559 * MIB));
        Device c = inv.devices().get(3);
        assertThat(c.kind()).isEqualTo(DeviceKind.CPU);
        assertThat(c.reserveBytes()).isEqualTo(2 * GIB);
        assertThat(c.hostOverheadBytes()).isEqualTo(MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES);
    }

    @Test
    void expandsKubernetesNodesByTheirGpuFeatureDiscoveryLabels() throws Exception {
        String text;
        try (InputStream in = getClass().getResourceAsStream("gfd-readme-a100-sxm4-40gb.node.yaml")) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Inventory one = InventoryReader.parseYaml("gfd.yaml", text, P);
        assertThat(one.devices()).hasSize(1);
        Device d = one.devices().getFirst();
        assertThat(d.id()).isEqualTo("gfd-readme-example/gpu-0");
        assertThat(d.totalBytes()).isEqualTo(39_538 * MIB);
        assertThat(d.labels()).containsEntry("nvidia.com/gpu.product", "A100-SXM4-40GB");

        Inventory eight = yaml("""
                nodes:
                  - metadata:
                      name: h100-node
                      labels: {nvidia.com/gpu.memory: "81559", nvidia.com/gpu.count: "8"}
                    spec:
                      taints: [{key: nvidia.com/gpu, effect: NoSchedule}]
                    stowage: {foreign: 1Gi}
                  - metadata: {name: cpu-only, labels: {kubernetes.io/os: linux}}
                """);
        assertThat(eight.devices()).hasSize(8);
        assertThat(eight.devices().get(7).id()).isEqualTo("h100-node/gpu-7");
        assertThat(eight.devices().get(7).foreignBytes()).isEqualTo(GIB);
        assertThat(eight.devices().get(7).taints()).containsExactly(new Taint("nvidia.com/gpu", "", "NoSchedule"));
        assertThat(eight.warnings())
                .containsExactly("devices.yaml doc 1: nodes[1].metadata.labels: node cpu-only has no "
                        + "nvidia.com/gpu.memory label (GPU Feature Discovery); skipped");

        Inventory list = yaml("""
                apiVersion: v1
                kind: List
                items:
                  - kind: Node
                    metadata: {name: n, labels: {nvidia.com/gpu.memory: "15360"}}
                    status: {allocatable: {nvidia.com/gpu: "4"}}
                """);
        assertThat(list.devices()).extracting(Device::id).containsExactly("n/gpu-0", "n/gpu-1", "n/gpu-2", "n/gpu-3");
    }

    @Test
    void timeSlicedAndMpsSharedNodesNeverMultiplyMemory() {
        Inventory sliced = yaml("""
                nodes:
                  - metadata:
                      name: l4
                      labels:
                        nvidia.com/gpu.memory: "23034"
                        nvidia.com/gpu.replicas: "4"
                        nvidia.com/gpu.sharing-strategy: time-slicing
                    status: {allocatable: {nvidia.com/gpu: "8"}}
                """);
        assertThat(sliced.devices())
                .as("8 advertised, 2 physical GPUs of full memory")
                .hasSize(2)
                .allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(23_034 * MIB));

        Inventory mps = yaml("""
                nodes:
                  - metadata:
                      name: h100
                      labels:
                        nvidia.com/gpu.memory: "81559"
                        nvidia.com/gpu.count: "1"
                        nvidia.com/gpu.replicas: "4"
                        nvidia.com/gpu.sharing-strategy: mps
                """);
        assertThat(mps.devices())
                .hasSize(4)
                .allSatisfy(d -> assertThat(d.totalBytes()).isEqualTo(81_559 * MIB / 4));
    }

    @Test
    void readsCsvWithAHeaderRow() {
        Inventory inv = InventoryReader.parseCsv("devices.csv", """
                # a comment
                node,id,kind,memory,count,reserve,foreign,labels,taints
                n1,gpu,gpu,23034MiB,2,0.05,1Gi,zone=a;pool=l4,dedicated=llm:NoSchedule
                n2,,cpu,64Gi,,2Gi,,,
                """, P);
        assertThat(inv.devices()).extracting(Device::id).containsExactly("n1/gpu-0", "n1/gpu-1", "n2/cpu-0");
        Device g = inv.devices().getFirst();
        assertThat(g.totalBytes()).isEqualTo(23_034 * MIB);
        assertThat(g.reserveBytes()).isEqualTo((long) Math.ceil(0.05 * 23_034 * MIB));
        assertThat(g.foreignBytes()).isEqualTo(GIB);
        assertThat(g.labels()).containsOnly(Map.entry("zone", "a"), Map.entry("pool", "l4"));
        assertThat(g.taints()).containsExactly(new Taint("dedicated", "llm", "NoSchedule"));
        assertThat(inv.devices().get(2).reserveBytes()).isEqualTo(2 * GIB);

        assertThatThrownBy(() -> InventoryReader.parseCsv("devices.csv", "node,memory,colour\n", P))
                .hasMessage("devices.csv line 1: header: column must be one of "
                        + "node,id,kind,memory,count,reserve,foreign,compute,labels,taints, got \"colour\"");
        assertThatThrownBy(() -> InventoryReader.parseCsv("devices.csv", "node,memory\nn1,80Gi,extra\n", P))
                .hasMessage("devices.csv line 2: (row): has 3 cells but the header has 2");
        assertThatThrownBy(() -> InventoryReader.parseCsv("devices.csv", "node,memory\nn1,80 bananas\n", P))
                .hasMessageStartingWith("devices.csv line 2: memory: unknown unit \"bananas\"");
    }

    @Test
    void badInventoriesGiveErrorsWithFieldAndValue() {
        assertThatThrownBy(() -> yaml("devices:\n  - node: a\n"))
                .hasMessage("devices.yaml doc 1: devices[0].memory: is required (bytes, or e.g. 80Gi, 81559MiB)");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: 16Gi, reserve: 1.5}\n"))
                .hasMessage("devices.yaml doc 1: devices[0].reserve: fraction must be >= 0 and < 1, got 1.5");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: 16Gi, reserve: 20Gi}\n"))
                .hasMessage(
                        "devices.yaml doc 1: devices[0].reserve: must be less than the device memory 16.00 GiB, got \"20.00 GiB\"");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: -5}\n"))
                .hasMessage("devices.yaml doc 1: devices[0].memory: must be >= 0, got -5");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: 0Gi}\n"))
                .hasMessage("devices.yaml doc 1: devices[0].memory: must be > 0, got \"0Gi\"");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: 16Gi, kind: tpu}\n"))
                .hasMessage("devices.yaml doc 1: devices[0].kind: must be gpu or cpu, got \"tpu\"");
        assertThatThrownBy(() -> yaml("devices:\n  - {node: a, memory: 16Gi, count: 0}\n"))
                .hasMessage("devices.yaml doc 1: devices[0].count: must be >= 1, got 0");
        assertThatThrownBy(() ->
                        yaml("devices:\n  - {node: a, id: g, memory: 16Gi}\n  - {node: a, id: g, memory: 16Gi}\n"))
                .hasMessage("devices.yaml doc 1: devices[1].id: device a/g is already defined in devices.yaml doc 1");
        assertThatThrownBy(() -> yaml("nodes:\n  - metadata: {name: n, labels: {nvidia.com/gpu.memory: lots}}\n"))
                .hasMessage(
                        "devices.yaml doc 1: nodes[0].metadata.labels[nvidia.com/gpu.memory]: must be an integer count of MiB, got \"lots\"");
        assertThatThrownBy(() -> yaml("devices: []\n"))
                .hasMessage("devices.yaml: no devices (expected a devices list, Node objects or CSV rows)");
        assertThat(yaml("devices:\n  - {node: a, memory: 16Gi, colour: red}\n").warnings())
                .containsExactly("devices.yaml doc 1: unknown field devices[0].colour (ignored)");
    }

    @Test
    void byteSizesParseKubernetesAndHumanUnits() {
        assertThat(ByteSize.parse("80Gi")).isEqualTo(80 * GIB);
        assertThat(ByteSize.parse("81559MiB")).isEqualTo(81_559 * MIB);
        assertThat(ByteSize.parse("1.5Gi")).isEqualTo(GIB + GIB / 2);
        assertThat(ByteSize.parse("16G")).isEqualTo(16_000_000_000L);
        assertThat(ByteSize.parse("1024")).isEqualTo(1024);
        assertThatThrownBy(() -> ByteSize.parse("9999999999Ti")).hasMessageContaining("too large");
        assertThat(ByteSize.human(1536 * MIB)).isEqualTo("1.50 GiB");
        assertThat(ByteSize.human(12)).isEqualTo("12 B");
        assertThat(ByteSize.human(-2 * MIB)).isEqualTo("-2.00 MiB");
    }
}
