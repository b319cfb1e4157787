package io.stowage.operator.dcgm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The Prometheus parser and the GPU mapping on real dcgm-exporter captures (see test resources README). */
class DcgmUsageTest {
    static final long MIB = 1L << 20;
    static final Set<String> EXPORTER = Set.of("nvidia-dcgm-exporter");

    static String resource(String name) throws IOException {
        try (InputStream in = DcgmUsageTest.class.getResourceAsStream("/gpu/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void parsesACompleteL4ExporterResponseWithHelpAndTypeLines() throws IOException {
        List<PrometheusText.Sample> samples = PrometheusText.parse(resource("kops-l4-1gpu.metrics.txt"));

        assertThat(samples)
                .extracting(PrometheusText.Sample::name)
                .contains("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED");
        List<GpuMemory> gpus = DcgmUsage.gpus(samples);
        assertThat(gpus).singleElement().satisfies(g -> {
            assertThat(g.freeBytes()).isEqualTo(22563 * MIB);
            assertThat(g.usedBytes()).isZero();
            assertThat(g.index()).isZero();
            assertThat(g.uuid()).startsWith("GPU-");
            assertThat(g.hostname()).isNotBlank();
            assertThat(g.pod()).as("no pod uses the GPU").isNull();
        });
    }

    @Test
    void parsesAVgpuResponseAndItsModelName() throws IOException {
        List<GpuMemory> gpus =
                DcgmUsage.gpus(PrometheusText.parse(resource("vks-grid-a100-40c-vgpu-1gpu.metrics.txt")));

        assertThat(gpus).singleElement().satisfies(g -> {
            assertThat(g.model()).isEqualTo("GRID A100-40C");
            assertThat(g.hostname()).isEqualTo("test-ai-1-node-pool-40c-d5ds8-br9r6-9tb2c");
            assertThat(g.freeBytes()).isEqualTo(37739 * MIB);
        });
        var foreign = DcgmUsage.foreign(gpus, k -> false, Map.of(), EXPORTER);
        assertThat(foreign.foreignBytesOn("test-ai-1-node-pool-40c-d5ds8-br9r6-9tb2c"))
                .as("nothing used, nothing foreign")
                .isZero();
        assertThat(foreign.memoryByNode())
                .as("the framebuffer: FB_USED + FB_FREE")
                .containsEntry(
                        "test-ai-1-node-pool-40c-d5ds8-br9r6-9tb2c", gpus.get(0).usedBytes() + 37739 * MIB);
    }

    @Test
    void parsesSampledH100LinesWithPodAttributionAndDecimalValues() throws IOException {
        List<PrometheusText.Sample> samples = PrometheusText.parse(resource("aicr-h100-8gpu-k8s-sampled.metrics.txt"));

        assertThat(samples).hasSize(30);
        assertThat(samples)
                .filteredOn(s -> "0".equals(s.labels().get("gpu")))
                .allSatisfy(s -> assertThat(s.labels()).containsEntry("namespace", "dynamo-workload"));
        assertThat(DcgmUsage.gpus(samples))
                .as("no framebuffer metrics in this capture")
                .isEmpty();
    }

    @Test
    void mapsFbUsedByHostnameAndUuidAndCountsOnlyWorkloadsThatAreNotStowage() throws IOException {
        List<GpuMemory> gpus =
                DcgmUsage.gpus(PrometheusQuery.parseVector(resource("aicr-h100-2nodes-fb-used.prometheus-query.json")));

        assertThat(gpus).hasSize(16);
        assertThat(gpus).extracting(GpuMemory::hostname).containsOnly("gpu-node-1", "gpu-node-2");
        assertThat(gpus).extracting(GpuMemory::uuid).doesNotHaveDuplicates();
        GpuMemory busy =
                gpus.stream().filter(g -> g.usedBytes() > 0).findFirst().orElseThrow();
        assertThat(busy.hostname()).isEqualTo("gpu-node-1");
        assertThat(busy.index()).isZero();
        assertThat(busy.usedBytes()).isEqualTo(74166 * MIB);
        assertThat(busy.namespace()).isEqualTo("dynamo-workload");

        var foreign = DcgmUsage.foreign(gpus, k -> false, Map.of(), EXPORTER);
        assertThat(foreign.byNode()).containsOnlyKeys("gpu-node-1", "gpu-node-2");
        assertThat(foreign.byNode().get("gpu-node-1")).hasSize(8);
        assertThat(foreign.byNode().get("gpu-node-1").get(0))
                .as("most used first, with the pod DCGM attributes it to")
                .isEqualTo(new DcgmUsage.NodeGpu(busy.uuid(), 74166 * MIB, "dynamo-workload/" + busy.pod()));
        assertThat(foreign.foreignBytesOn("gpu-node-1")).isEqualTo(74166 * MIB);
        assertThat(foreign.foreignBytesOn("gpu-node-2")).isZero();

        // Were the vLLM pod a Stowage host that reports 70000 MiB, only the rest is foreign, on its own device.
        String pod = "dynamo-workload/" + busy.pod();
        var ours = DcgmUsage.foreign(gpus, pod::equals, Map.of(pod, 70000 * MIB), EXPORTER);
        assertThat(ours.byNode().get("gpu-node-1"))
                .hasSize(7)
                .extracting(DcgmUsage.NodeGpu::uuid)
                .doesNotContain(busy.uuid());
        assertThat(ours.onHosts()).containsEntry(pod, 4166 * MIB);
    }

    @Test
    void aGpuIsAStowageHostsByTheUuidItReportedEvenWithoutDcgmPodAttribution() throws IOException {
        List<GpuMemory> gpus =
                DcgmUsage.gpus(PrometheusQuery.parseVector(resource("aicr-h100-2nodes-fb-used.prometheus-query.json")));
        GpuMemory busy =
                gpus.stream().filter(g -> g.usedBytes() > 0).findFirst().orElseThrow();
        String host = "team-a/stowage-host-gpu-node-1-gpu-0-0123abcd";

        var usage = DcgmUsage.foreign(gpus, k -> false, Map.of(host, 74000 * MIB), Map.of(busy.uuid(), host), EXPORTER);

        assertThat(usage.onHosts()).containsOnly(Map.entry(host, 166 * MIB));
        assertThat(usage.foreignBytesOn("gpu-node-1"))
                .as("the host's GPU is not counted as foreign on another device")
                .isZero();
        assertThat(usage.byNode().get("gpu-node-1"))
                .extracting(DcgmUsage.NodeGpu::uuid)
                .doesNotContain(busy.uuid());
    }

    @Test
    void migInstanceSamplesAreNotTakenForTheirParentGpu() {
        String line = "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-aaaa\",Hostname=\"n\",GPU_I_ID=\"1\","
                + "GPU_I_PROFILE=\"1g.5gb\"} 100\n";
        assertThat(DcgmUsage.gpus(PrometheusText.parse(line))).isEmpty();
    }

    @Test
    void aMalformedLineNamesItsNumber() {
        assertThatThrownBy(() -> PrometheusText.parse("# HELP x\nDCGM_FI_DEV_FB_USED{gpu=\"0\" 12\n"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("line 2");
        assertThatThrownBy(() -> PrometheusText.parse("DCGM_FI_DEV_FB_USED{gpu=\"0\"} twelve\n"))
                .hasMessageContaining("line 1");
    }
}
