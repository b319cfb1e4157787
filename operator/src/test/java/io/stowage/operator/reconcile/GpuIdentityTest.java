package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.operator.dcgm.GpuMemory;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The GPU a host was given, by UUID: recorded on its pod and used to match DCGM's usage to its device. */
@EnableKubernetesMockClient(crud = true)
class GpuIdentityTest {
    static final long MIB = 1L << 20;
    static final String UUID_0 = "GPU-11111111-2222-3333-4444-555555555555";
    static final String UUID_1 = "GPU-66666666-7777-8888-9999-000000000000";

    KubernetesClient client;
    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    @Test
    void theUuidAHostReportsIsRecordedOnItsPodAndSurvivesAnOperatorRestart() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(host.getMetadata().getAnnotations()).doesNotContainKey(Labels.GPU_UUID_ANNOTATION);

        cluster.hosts.get(host.getMetadata().getName()).gpuUuid = UUID_0;
        cluster.converge();
        cluster.restartOperator();
        cluster.converge();

        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getAnnotations())
                        .containsEntry(Labels.GPU_UUID_ANNOTATION, UUID_0)
                        .containsEntry(Labels.DEVICE_ANNOTATION, "gpu-a/gpu-0"));
    }

    @Test
    void theUuidTheHostsCudaBackendOpenedIsWhatIsRecorded() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        String name = cluster.hostPods("team-a").get(0).getMetadata().getName();

        // The environment names one GPU, the backend measured another (a device list the host did not get):
        // the GPU the host actually serves on wins.
        FakeHost host = cluster.hosts.get(name);
        host.gpuUuid = UUID_0;
        host.backendUuid = UUID_1;
        cluster.converge();

        assertThat(cluster.hostPods("team-a").get(0).getMetadata().getAnnotations())
                .containsEntry(Labels.GPU_UUID_ANNOTATION, UUID_1);
    }

    @Test
    void aHostThatReportsNoUuidIsLeftAsItIs() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        assertThat(cluster.hostPods("team-a").get(0).getMetadata().getAnnotations())
                .doesNotContainKey(Labels.GPU_UUID_ANNOTATION);
    }

    @Test
    void dcgmUsageOnTheHostsOwnGpuIsNotForeignOnAnotherDevice() throws Exception {
        Map<String, String> two = new java.util.HashMap<>(TestCluster.a100Labels());
        two.put("nvidia.com/gpu.count", "2");
        cluster.addGpuNode("gpu-a", two);
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        cluster.hosts.get(host.getMetadata().getName()).gpuUuid = UUID_1;
        cluster.converge();

        // Something outside Kubernetes fills the host's GPU (UUID_1) but for what chat holds and 8 MiB; the node's
        // other GPU is free. Matched by UUID, that usage lands on the host's own device: chat stays, and a second
        // model (20 MiB of KV) goes to the other GPU. Matched by index or order, it would land on the free GPU.
        long total = 39538 * MIB;
        long reserve = (long) (total * 0.05);
        long chat = cluster.loop
                .runPass()
                .plannedBytesByDevice()
                .values()
                .iterator()
                .next();
        long used = total - reserve - chat - 8 * MIB;
        cluster.dcgm.add(new GpuMemory("gpu-a", UUID_0, 0, "A100", null, null, 0, total));
        cluster.dcgm.add(new GpuMemory("gpu-a", UUID_1, 1, "A100", null, null, used, total - used));
        cluster.apply("team-a", "other", 1, s -> s.getContext().setMaxSequences(64));
        cluster.converge();

        String chatDevice =
                cluster.get("team-a", "chat").getStatus().getPlacements().get(0).getDevice();
        assertThat(chatDevice).isEqualTo(host.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION));
        var other = cluster.get("team-a", "other").getStatus();
        assertThat(other.getPlacements())
                .singleElement()
                .satisfies(p -> assertThat(p.getDevice()).isNotEqualTo(chatDevice));
        assertThat(cluster.hostPods("team-a")).hasSize(2);
    }
}
