package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.hostapi.HostAssignment;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.host.HostAdminClient;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The placement loop against the mock API server with real hosts' admin APIs and a real GGUF over Range. */
@EnableKubernetesMockClient(crud = true)
class PlacementLoopTest {
    static KubernetesClient client;

    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    static HostAssignment assignmentOf(Pod p) throws Exception {
        return HostAdminClient.JSON.readValue(
                p.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION), HostAssignment.class);
    }

    @Test
    void applyCreatesAPinnedHostAServiceAndAReadyStatusWithTheModelAndMemory() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());

        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        List<Pod> hosts = cluster.hostPods("team-a");
        assertThat(hosts).hasSize(1);
        Pod host = hosts.get(0);
        assertThat(host.getMetadata().getAnnotations()).containsEntry(Labels.DEVICE_ANNOTATION, "gpu-a/gpu-0");
        assertThat(host.getSpec()
                        .getContainers()
                        .get(0)
                        .getResources()
                        .getLimits()
                        .get("nvidia.com/gpu")
                        .getAmount())
                .isEqualTo("1");
        assertThat(host.getSpec()
                        .getAffinity()
                        .getNodeAffinity()
                        .getRequiredDuringSchedulingIgnoredDuringExecution()
                        .getNodeSelectorTerms()
                        .get(0)
                        .getMatchFields()
                        .get(0)
                        .getValues())
                .containsExactly("gpu-a");
        assertThat(host.getSpec().getSecurityContext().getRunAsNonRoot()).isTrue();
        assertThat(host.getSpec().getContainers().get(0).getSecurityContext().getReadOnlyRootFilesystem())
                .isTrue();
        assertThat(host.getMetadata().getLabels()).containsEntry(Labels.readyLabel("chat"), "true");

        FakeHost fake = cluster.hosts.get(host.getMetadata().getName());
        assertThat(fake.assignment.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0");
        assertThat(fake.assignment).isEqualTo(assignmentOf(host));

        Service svc = client.services().inNamespace("team-a").withName("chat").get();
        assertThat(svc.getSpec().getSelector()).containsEntry(Labels.readyLabel("chat"), "true");

        LlmDeployment d = cluster.get("team-a", "chat");
        assertThat(d.getMetadata().getFinalizers()).contains(Labels.FINALIZER);
        var st = d.getStatus();
        assertThat(st.condition("Placed").getStatus()).isEqualTo("True");
        assertThat(st.condition("Ready").getStatus()).isEqualTo("True");
        assertThat(st.condition("Degraded").getStatus()).isEqualTo("False");
        assertThat(st.getReadyReplicas()).isEqualTo(1);
        assertThat(st.getReady()).isEqualTo("1/1");
        assertThat(st.getModel().getArchitecture()).isEqualTo("llama");
        assertThat(st.getModel().getContextLength()).isEqualTo(512L);
        // KV: 2 (K and V) x 5 layers x 4 KV heads x 8 dims x 2 bytes (f16) x 512 tokens x 4 sequences.
        assertThat(st.getMemory().getKvPerReplicaBytes()).isEqualTo(2L * 5 * 4 * 8 * 2 * 512 * 4);
        assertThat(st.getPlacements()).singleElement().satisfies(p -> {
            assertThat(p.getNode()).isEqualTo("gpu-a");
            assertThat(p.getHost()).isEqualTo(host.getMetadata().getName());
            assertThat(p.getReady()).isTrue();
        });
        assertThat(st.getEndpoint()).isEqualTo("http://chat.team-a.svc.cluster.local/v1");
        assertThat(cluster.events("team-a", "Placed")).isNotEmpty();
    }
}
