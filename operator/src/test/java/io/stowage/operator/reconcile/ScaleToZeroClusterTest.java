package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.hostapi.DormantDeployment;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ScalingPolicy;
import io.stowage.operator.crd.LlmDeploymentStatus;
import io.stowage.operator.crd.MemoryStatus;
import io.stowage.operator.crd.ScalingSpec;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.inventory.Inventory;
import io.stowage.operator.inventory.InventoryConfig;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Scale to zero in a cluster, against the mock API server with fake hosts: the operator passes each deployment's
 * policy to its host, learns from the host's state that it went idle (status Idle, reclaimable bytes), evicts the
 * least recently used idle copy when a new replica needs the memory (never a busy one, an IdleEvicted event), keeps the
 * evicted deployment dormant on its host (which keeps its Service), and places it again when that host reports a held
 * request.
 *
 * <p>Every deployment serves stories260K from its own URL (its own digest, its own weights) with a KV budget large
 * enough that the device's memory, set from the measured figures, takes three replicas and not four.
 */
@EnableKubernetesMockClient(crud = true)
class ScaleToZeroClusterTest {
    static final String NS = "team-s";

    KubernetesClient client;

    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        // No reserve, no host overhead: the device's capacity is its memory label, to the byte.
        cluster = new TestCluster(
                client, OperatorConfig.defaults().withInventory(new InventoryConfig(0.0, 0, 0.0, 0, 0)));
        for (String d : List.of("busy", "old", "recent", "newcomer")) {
            cluster.models.files.put(
                    "/" + d + "/stories260K-q8_0.gguf", cluster.models.files.get("/stories260K-q8_0.gguf"));
        }
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    private void deploy(String name, boolean scalesToZero) {
        cluster.apply(NS, name, 1, s -> {
            s.getModel().setUri(cluster.models.url("/" + name + "/stories260K-q8_0.gguf"));
            s.getContext().setMaxSequences(4096);
            if (scalesToZero) {
                s.setScaling(new ScalingSpec(0, "30s"));
            }
        });
    }

    /** A GPU whose memory takes {@code replicas} of these deployments and half of one more (MiB, as GFD says). */
    private void addNodeFor(double replicas) throws Exception {
        MemoryStatus m = cluster.get(NS, "busy").getStatus().getMemory();
        assertThat(m).as("busy was inspected").isNotNull();
        double bytes = replicas * (m.getWeightsBytes() + m.getKvPerReplicaBytes()) + m.getWorkspaceBytes();
        Map<String, String> labels = new HashMap<>(TestCluster.a100Labels());
        labels.put(Inventory.GFD_MEMORY, Long.toString((long) Math.ceil(bytes / (1 << 20))));
        cluster.addGpuNode("gpu-a", labels);
    }

    private FakeHost host() {
        return cluster.hosts.get(onlyHost().getMetadata().getName());
    }

    private Pod onlyHost() {
        List<Pod> pods = cluster.hostPods(NS);
        assertThat(pods).hasSize(1);
        return pods.getFirst();
    }

    private HostAssignment assignment() throws Exception {
        return HostAdminClient.JSON.readValue(
                onlyHost().getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION), HostAssignment.class);
    }

    private List<String> deployments(HostAssignment a) {
        return a.replicas().stream()
                .map(ReplicaAssignment::deployment)
                .distinct()
                .sorted()
                .toList();
    }

    private LlmDeploymentStatus status(String name) {
        return cluster.get(NS, name).getStatus();
    }

    /** busy, old and recent placed on one GPU that takes 3.5 replicas; old and recent idle, old used first. */
    private FakeHost threeOnOneGpuTwoIdle() throws Exception {
        deploy("busy", false);
        deploy("old", true);
        deploy("recent", true);
        cluster.converge(); // inspected: the memory figures are known, nothing is placed yet
        addNodeFor(3.5);
        cluster.converge();
        assertThat(deployments(assignment())).containsExactly(NS + "/busy", NS + "/old", NS + "/recent");
        FakeHost h = host();
        h.lastUsedMillis.put(NS + "/old", 1_000L);
        h.lastUsedMillis.put(NS + "/recent", 2_000L);
        h.released.add(NS + "/old");
        h.released.add(NS + "/recent");
        cluster.converge();
        return h;
    }

    @Test
    void theHostGetsThePolicyAndAnIdleDeploymentSaysIdleWithItsReclaimableBytes() throws Exception {
        FakeHost h = threeOnOneGpuTwoIdle();

        HostAssignment a = assignment();
        assertThat(a.scaling())
                .containsExactly(
                        new ScalingPolicy(NS + "/old", 0, 30_000), new ScalingPolicy(NS + "/recent", 0, 30_000));
        assertThat(a.dormant()).isEmpty();
        LlmDeploymentStatus old = status("old");
        assertThat(old.getPhase()).isEqualTo("Idle");
        assertThat(old.getReadyReplicas()).isZero();
        assertThat(old.getScaling().getState()).isEqualTo("Idle");
        assertThat(old.getScaling().getReclaimableBytes())
                .isEqualTo(old.getMemory().getWeightsBytes() + old.getMemory().getWorkspaceBytes());
        assertThat(old.condition("Ready").getReason()).isEqualTo("ScaledToZero");
        assertThat(status("busy").getPhase()).isEqualTo("Ready");
        assertThat(status("busy").getScaling()).isNull();
        assertThat(onlyHost().getMetadata().getLabels())
                .as("an idle deployment keeps its Service on its host: the host re-activates it")
                .containsEntry(Labels.readyLabel("old"), "true")
                .containsEntry(Labels.readyLabel("recent"), "true");
        int puts = h.puts.get();

        cluster.converge();

        assertThat(h.puts.get())
                .as("a released replica is still the host's: nothing is pushed again")
                .isEqualTo(puts);
    }

    @Test
    void aNewDeploymentThatNeedsTheSpaceEvictsTheLeastRecentlyUsedIdleCopyAndNeverABusyOne() throws Exception {
        threeOnOneGpuTwoIdle();

        deploy("newcomer", false);
        cluster.converge();

        HostAssignment a = assignment();
        assertThat(deployments(a))
                .as("old (least recently used) gave its memory; busy and recent stay")
                .containsExactly(NS + "/busy", NS + "/newcomer", NS + "/recent");
        assertThat(a.dormant()).containsExactly(new DormantDeployment(NS + "/old", "old"));
        assertThat(status("newcomer").getPhase()).isEqualTo("Ready");
        LlmDeploymentStatus old = status("old");
        assertThat(old.getPhase()).isEqualTo("Dormant");
        assertThat(old.getScaling().getState()).isEqualTo("Dormant");
        assertThat(old.condition("Placed").getReason()).isEqualTo("Dormant");
        assertThat(status("recent").getPhase()).isEqualTo("Idle");
        assertThat(cluster.events(NS, PlacementLoop.IDLE_EVICTED))
                .singleElement()
                .satisfies(e -> {
                    assertThat(e.getInvolvedObject().getName()).isEqualTo("old");
                    assertThat(e.getMessage())
                            .contains("idle copy on gpu-a/gpu-0 evicted")
                            .contains(" bytes: weights, workspace and the released replicas' KV) for " + NS
                                    + "/newcomer#0");
                });
        assertThat(onlyHost().getMetadata().getLabels())
                .as("the dormant deployment's Service still reaches its activation point")
                .containsEntry(Labels.readyLabel("old"), "true");
    }

    @Test
    void aBusyDeploymentIsNeverEvictedTheNewcomerWaitsInstead() throws Exception {
        FakeHost h = threeOnOneGpuTwoIdle();
        h.released.clear(); // old and recent serve again
        cluster.converge();

        deploy("newcomer", false);
        cluster.converge();

        assertThat(deployments(assignment())).containsExactly(NS + "/busy", NS + "/old", NS + "/recent");
        assertThat(assignment().dormant()).isEmpty();
        assertThat(status("newcomer").getPhase()).isEqualTo("Unplaceable");
        assertThat(cluster.events(NS, PlacementLoop.IDLE_EVICTED)).isEmpty();
    }

    @Test
    void anIdleDeploymentWithARequestHeldIsNotEvicted() throws Exception {
        FakeHost h = threeOnOneGpuTwoIdle();
        h.held.put(NS + "/old", 1); // re-activating now
        h.held.put(NS + "/recent", 1);
        cluster.converge();

        deploy("newcomer", false);
        cluster.converge();

        assertThat(deployments(assignment())).containsExactly(NS + "/busy", NS + "/old", NS + "/recent");
        assertThat(status("newcomer").getPhase()).isEqualTo("Unplaceable");
    }

    @Test
    void demandOnADormantDeploymentPlacesItAgainEvictingTheNextIdleCopy() throws Exception {
        FakeHost h = threeOnOneGpuTwoIdle();
        deploy("newcomer", false);
        cluster.converge();
        assertThat(assignment().dormant())
                .extracting(DormantDeployment::deployment)
                .containsExactly(NS + "/old");
        assertThat(cluster.loop.hasScalingHosts()).isTrue();
        assertThat(cluster.loop.pollScaling()).as("nothing changed on the host").isFalse();

        h.held.put(NS + "/old", 2); // two requests for old arrive at its host
        assertThat(cluster.loop.pollScaling()).as("the poll sees the demand").isTrue();
        cluster.pass(); // the pass the poll asks for

        assertThat(deployments(assignment()))
                .as("that one pass places old again")
                .contains(NS + "/old");
        h.released.remove(NS + "/old"); // once placed again, the host serves it
        cluster.converge();

        HostAssignment a = assignment();
        assertThat(deployments(a))
                .as("old is back; recent, idle, gave it the memory")
                .containsExactly(NS + "/busy", NS + "/newcomer", NS + "/old");
        assertThat(a.dormant()).extracting(DormantDeployment::deployment).containsExactly(NS + "/recent");
        assertThat(status("old").getPhase()).isEqualTo("Ready");
        assertThat(status("old").getScaling()).isNull();
        assertThat(cluster.events(NS, PlacementLoop.ACTIVATING))
                .singleElement()
                .satisfies(e -> assertThat(e.getMessage()).startsWith("2 request(s) held on host "));
        assertThat(cluster.events(NS, PlacementLoop.IDLE_EVICTED))
                .extracting(e -> e.getInvolvedObject().getName())
                .containsExactly("old", "recent");
    }

    @Test
    void demandThatCannotBePlacedKeepsTheDeploymentDormantOnItsHost() throws Exception {
        FakeHost h = threeOnOneGpuTwoIdle();
        deploy("newcomer", false);
        cluster.converge();
        h.released.remove(NS + "/recent"); // recent serves again: nothing idle is left to evict

        h.held.put(NS + "/old", 1);
        cluster.converge();

        HostAssignment a = assignment();
        assertThat(deployments(a)).containsExactly(NS + "/busy", NS + "/newcomer", NS + "/recent");
        assertThat(a.dormant())
                .as("the host keeps holding old's requests (503 past the activation timeout)")
                .containsExactly(new DormantDeployment(NS + "/old", "old"));
        assertThat(status("old").getPhase()).isEqualTo("Dormant");
        assertThat(onlyHost().getMetadata().getLabels()).containsEntry(Labels.readyLabel("old"), "true");
    }

    @Test
    void aDeploymentThatNoLongerScalesToZeroLeavesDormancyAndRunsAgain() throws Exception {
        threeOnOneGpuTwoIdle();
        deploy("newcomer", false);
        cluster.converge();
        host().released.remove(NS + "/old");

        deploy("old", false); // spec.scaling removed: it must run
        cluster.converge();

        assertThat(assignment().dormant())
                .extracting(DormantDeployment::deployment)
                .doesNotContain(NS + "/old");
        assertThat(deployments(assignment())).contains(NS + "/old");
    }
}
