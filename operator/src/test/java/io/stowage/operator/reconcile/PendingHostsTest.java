package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.operator.inventory.InventoryConfig;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A host pod that stays Pending past the bound is noticed, reported with the scheduler's reason, and re-planned. */
@EnableKubernetesMockClient(crud = true)
class PendingHostsTest {
    static final String SCHEDULER_SAYS =
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity.";

    KubernetesClient client;
    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    /** Plays a scheduler that cannot place the pod since {@code ago}. */
    Pod unschedulable(Pod p, Duration ago) {
        p.setStatus(new PodStatusBuilder()
                .withPhase("Pending")
                .addNewCondition()
                .withType("PodScheduled")
                .withStatus("False")
                .withReason("Unschedulable")
                .withMessage(SCHEDULER_SAYS)
                .withLastTransitionTime(Instant.now().minus(ago).toString())
                .endCondition()
                .build());
        return client.pods()
                .inNamespace(p.getMetadata().getNamespace())
                .resource(p)
                .updateStatus();
    }

    Pod placedHost() throws Exception {
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(host.getMetadata().getAnnotations()).containsEntry(Labels.DEVICE_ANNOTATION, "gpu-a/gpu-0");
        return host;
    }

    @Test
    void anUnschedulableHostPastTheBoundIsReportedAndItsReplicasArePlacedElsewhere() throws Exception {
        Pod host = placedHost();

        unschedulable(host, Duration.ofMinutes(6));
        cluster.converge();

        assertThat(client.pods()
                        .inNamespace("team-a")
                        .withName(host.getMetadata().getName())
                        .get())
                .as("the stuck pod is gone")
                .isNull();
        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getAnnotations())
                        .containsEntry(Labels.DEVICE_ANNOTATION, "gpu-b/gpu-0"));
        var st = cluster.get("team-a", "chat").getStatus();
        assertThat(st.getPlacements()).singleElement().satisfies(p -> {
            assertThat(p.getNode()).isEqualTo("gpu-b");
            assertThat(p.getReady()).isTrue();
        });
        assertThat(st.getReadyReplicas()).isEqualTo(1);
        assertThat(st.condition("Degraded").getStatus()).isEqualTo("True");
        assertThat(st.condition("Degraded").getReason()).isEqualTo(PendingHosts.UNSCHEDULABLE);
        assertThat(st.condition("Degraded").getMessage())
                .contains(SCHEDULER_SAYS)
                .contains("gpu-a/gpu-0");
        assertThat(cluster.events("team-a", PendingHosts.UNSCHEDULABLE))
                .singleElement()
                .satisfies(e -> assertThat(e.getMessage())
                        .contains(host.getMetadata().getName())
                        .contains("Unschedulable: " + SCHEDULER_SAYS)
                        .contains("more than 5m"));
    }

    @Test
    void aHostPendingWithinTheBoundIsLeftAlone() throws Exception {
        Pod host = placedHost();

        unschedulable(host, Duration.ofMinutes(2));
        cluster.loop.runPass();

        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getName())
                        .isEqualTo(host.getMetadata().getName()));
        assertThat(cluster.events("team-a", PendingHosts.UNSCHEDULABLE)).isEmpty();
        assertThat(cluster.get("team-a", "chat")
                        .getStatus()
                        .getPlacements()
                        .get(0)
                        .getNode())
                .isEqualTo("gpu-a");
    }

    @Test
    void theBoundIsConfigurable() throws Exception {
        OperatorConfig d = OperatorConfig.defaults();
        InventoryConfig i = d.inventory();
        cluster.config = cluster.config.withInventory(new InventoryConfig(
                i.reserveFraction(),
                i.reserveFloorBytes(),
                i.cpuFraction(),
                i.gpuHostOverheadBytes(),
                i.cpuHostOverheadBytes(),
                Duration.ofSeconds(30)));
        cluster.restartOperator();
        Pod host = placedHost();

        unschedulable(host, Duration.ofMinutes(1));
        cluster.converge();

        assertThat(cluster.get("team-a", "chat")
                        .getStatus()
                        .getPlacements()
                        .get(0)
                        .getNode())
                .isEqualTo("gpu-b");
        assertThat(cluster.events("team-a", PendingHosts.UNSCHEDULABLE))
                .singleElement()
                .satisfies(e -> assertThat(e.getMessage()).contains("more than 30s"));
    }

    @Test
    void aScheduledHostThatDoesNotStartIsReportedWithItsWaitingReasonAndNotMoved() throws Exception {
        Pod host = placedHost();

        host.setStatus(new PodStatusBuilder()
                .withPhase("Pending")
                .addNewCondition()
                .withType("PodScheduled")
                .withStatus("True")
                .withLastTransitionTime(
                        Instant.now().minus(Duration.ofMinutes(7)).toString())
                .endCondition()
                .addNewContainerStatus()
                .withName("runtime")
                .withNewState()
                .withNewWaiting()
                .withReason("ImagePullBackOff")
                .withMessage("Back-off pulling image \"ghcr.io/stowage/runtime:0.1.0\"")
                .endWaiting()
                .endState()
                .endContainerStatus()
                .build());
        client.pods().inNamespace("team-a").resource(host).updateStatus();
        cluster.loop.runPass();

        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getName())
                        .isEqualTo(host.getMetadata().getName()));
        assertThat(cluster.events("team-a", PendingHosts.PENDING))
                .singleElement()
                .satisfies(e -> assertThat(e.getMessage()).contains("ImagePullBackOff"));
        var degraded = cluster.get("team-a", "chat").getStatus().condition("Degraded");
        assertThat(degraded.getStatus()).isEqualTo("True");
        assertThat(degraded.getReason()).isEqualTo(PendingHosts.PENDING);
    }

    @Test
    void aBoundOfZeroIsRefusedWithWhatToGive() {
        assertThatThrownBy(() -> new InventoryConfig(0.05, 1, 0, 1, 1, Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("above zero")
                .hasMessageContaining("5m");
    }

    @Test
    void durationsReadAsPeopleWriteThem() {
        assertThat(PendingHosts.human(Duration.ofMinutes(5))).isEqualTo("5m");
        assertThat(PendingHosts.human(Duration.ofSeconds(90))).isEqualTo("90s");
        assertThat(PendingHosts.human(Duration.ofMinutes(90))).isEqualTo("1h30m");
        assertThat(PendingHosts.human(Duration.ofHours(2))).isEqualTo("2h");
    }
}
