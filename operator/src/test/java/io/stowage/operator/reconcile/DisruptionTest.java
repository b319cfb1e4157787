package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeConditionBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.hostapi.ReplicaAssignment;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Disruption scenarios against the mock API server, step by step (a pass, then the fake kubelet): cordon, NotReady
 * within and past the grace, a host crash, an operator restart in the middle of a move, a slow host. After every step
 * no replica is lost (each is recorded on at least one host) and none is duplicated beyond a move in flight, and a
 * model's Service (the Ready host pods with its ready label) never empties while a copy of it serves.
 */
@EnableKubernetesMockClient(crud = true)
class DisruptionTest {
    static final String NS = "team-a";

    KubernetesClient client;

    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = cluster(OperatorConfig.defaults());
    }

    /** The operator reads the cluster by LISTs here, through informer caches in a subclass. */
    TestCluster cluster(OperatorConfig config) throws Exception {
        return new TestCluster(client, config);
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    // ------------------------------------------------------------------ the scenarios

    @Test
    void aCordonedNodesReplicaStartsElsewhereAndLeavesOnlyOnceItsReplacementServes() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());

        cordon("gpu-a");
        step("chat", 1);

        Pod still = pod(old.getMetadata().getName());
        assertThat(still.getMetadata().getUid())
                .as("the old host stays")
                .isEqualTo(old.getMetadata().getUid());
        assertThat(still.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION))
                .as("untouched while its replacement starts")
                .isEqualTo(old.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION));
        assertThat(devices()).containsExactlyInAnyOrder("gpu-a/gpu-0", "gpu-b/gpu-0");
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas())
                .as("the copy on the cordoned node serves meanwhile")
                .isEqualTo(1);
        assertThat(cluster.events(NS, "Moving")).isNotEmpty();

        for (int i = 0; i < 4; i++) {
            step("chat", 1);
        }

        assertThat(devices()).containsExactly("gpu-b/gpu-0");
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1));
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
        assertThat(cluster.get(NS, "chat").getStatus().getPlacements())
                .singleElement()
                .satisfies(p -> assertThat(p.getNode()).isEqualTo("gpu-b"));
        assertThat(cluster.events(NS, "Moved")).isNotEmpty();
    }

    @Test
    void nothingNewIsPlacedOnACordonedNode() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cordon("gpu-a");

        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();

        assertThat(cluster.hostPods(NS)).isEmpty();
        assertThat(cluster.get(NS, "chat").getStatus().condition("Placed").getStatus())
                .isEqualTo("False");
        assertThat(cluster.get(NS, "chat").getStatus().condition("Placed").getMessage())
                .contains(NodeStates.UNAVAILABLE_TAINT);
    }

    @Test
    void aCordonedNodesReplicaWithNowhereToGoStaysAndSaysSo() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();

        cordon("gpu-a");
        for (int i = 0; i < 3; i++) {
            step("chat", 1);
        }

        assertThat(onlyHost().getMetadata().getUid())
                .isEqualTo(old.getMetadata().getUid());
        var st = cluster.get(NS, "chat").getStatus();
        assertThat(st.getReadyReplicas()).isEqualTo(1);
        assertThat(st.condition("Degraded").getStatus()).isEqualTo("True");
        assertThat(st.condition("Degraded").getReason()).isEqualTo(PlacementLoop.MOVE_BLOCKED);
        assertThat(st.condition("Degraded").getMessage())
                .contains("replica #0 stays on gpu-a/gpu-0 (node gpu-a is cordoned)");
        assertThat(cluster.events(NS, PlacementLoop.MOVE_BLOCKED)).isNotEmpty();

        // Room appears: the replica moves, make before break.
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        for (int i = 0; i < 4; i++) {
            step("chat", 1);
        }
        assertThat(devices()).containsExactly("gpu-b/gpu-0");
        assertThat(cluster.get(NS, "chat").getStatus().condition("Degraded").getStatus())
                .isEqualTo("False");
    }

    @Test
    void aNodeNotReadyAndBackWithinTheGraceKeepsItsHostsUntouched() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());

        FakeHost unreachable = nodeDown("gpu-a", Duration.ofSeconds(5), old);
        for (int i = 0; i < 3; i++) {
            cluster.pass();
            cluster.kubelet();
            assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1));
        }
        assertThat(cluster.hostPods(NS))
                .as("no pod deleted or created while the node is within its grace")
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getUid())
                        .isEqualTo(old.getMetadata().getUid()));

        nodeBack("gpu-a", old, unreachable);
        cluster.converge();

        assertThat(onlyHost().getMetadata().getUid())
                .isEqualTo(old.getMetadata().getUid());
        assertThat(onlyHost().getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION))
                .isEqualTo(old.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION));
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
        assertThat(endpoints("chat")).hasSize(1);
    }

    @Test
    void aNodeNotReadyPastTheGraceHasItsReplicaStartedElsewhereBeforeItsHostIsDeleted() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());

        nodeDown("gpu-a", Duration.ofMinutes(2), old);
        cluster.pass();
        cluster.kubelet();

        assertThat(pod(old.getMetadata().getName()))
                .as("the old host goes only once its replacement serves")
                .isNotNull();
        assertThat(devices()).containsExactlyInAnyOrder("gpu-a/gpu-0", "gpu-b/gpu-0");
        for (int i = 0; i < 4; i++) {
            cluster.pass();
            cluster.kubelet();
            assertThat(copies().get(NS + "/chat#0")).isBetween(1, 2);
        }

        assertThat(devices()).containsExactly("gpu-b/gpu-0");
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1));
        assertThat(endpoints("chat")).hasSize(1);
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    @Test
    void aNodeNotReadyPastTheGraceWithNowhereElseToGoIsGivenUpAndSaysSo() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();

        nodeDown("gpu-a", Duration.ofMinutes(2), old);
        cluster.pass();

        assertThat(cluster.hostPods(NS))
                .as("break before make: it cannot serve there")
                .isEmpty();
        var st = cluster.get(NS, "chat").getStatus();
        assertThat(st.condition("Placed").getStatus()).isEqualTo("False");
        assertThat(st.condition("Degraded").getReason()).isEqualTo(PlacementLoop.MOVE_BLOCKED);
        assertThat(st.condition("Degraded").getMessage()).contains("is given up");
    }

    @Test
    void aCrashedHostIsGivenItsAssignmentAgainWhileTheOtherReplicaKeepsTheService() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 2, s -> s.getPlacement().setComputeShare(1.0));
        cluster.converge();
        Map<String, String> uids = uids();
        FakeHost crashed = cluster.hosts.get(hostOn("gpu-a/gpu-0").getMetadata().getName());
        int puts = crashed.puts.get();

        crashed.crash();
        for (int i = 0; i < 3; i++) {
            step("chat", 2);
        }

        assertThat(crashed.puts.get()).isEqualTo(puts + 1);
        assertThat(uids()).as("no pod replaced").isEqualTo(uids);
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1, NS + "/chat#1", 1));
        assertThat(endpoints("chat")).hasSize(2);
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(2);
    }

    @Test
    void anOperatorRestartedInTheMiddleOfAMoveKeepsBothCopiesUntilTheNewOneServes() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        cordon("gpu-a");
        step("chat", 1);
        assertThat(devices()).containsExactlyInAnyOrder("gpu-a/gpu-0", "gpu-b/gpu-0");

        cluster.restartOperator();
        step("chat", 1);
        assertThat(pod(old.getMetadata().getName()))
                .as("a restarted operator knows nothing of the new host's readiness yet: the old one stays")
                .isNotNull();

        for (int i = 0; i < 4; i++) {
            step("chat", 1);
        }
        assertThat(devices()).containsExactly("gpu-b/gpu-0");
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1));
    }

    @Test
    void aSlowHostKeepsItsPodItsReplicasAndItsEndpoints() throws Exception {
        cluster.pushOptions = new PlacementLoop.PushOptions(4, Duration.ofMillis(300));
        cluster.restartOperator();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 2, s -> s.getPlacement().setComputeShare(1.0));
        cluster.converge();
        Map<String, String> uids = uids();
        FakeHost slow = cluster.hosts.get(hostOn("gpu-a/gpu-0").getMetadata().getName());

        slow.delayMillis = 1500;
        for (int i = 0; i < 2; i++) {
            step("chat", 2);
        }

        assertThat(uids()).isEqualTo(uids);
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1, NS + "/chat#1", 1));
        assertThat(endpoints("chat")).hasSize(2);
        assertThat(cluster.get(NS, "chat").getStatus().condition("Degraded").getMessage())
                .contains("did not answer its admin API within 300 ms");
        assertThat(cluster.events(NS, PlacementLoop.HOST_TIMEOUT)).isNotEmpty();

        slow.delayMillis = 0;
        cluster.converge();
        assertThat(cluster.get(NS, "chat").getStatus().condition("Degraded").getStatus())
                .isEqualTo("False");
        assertThat(uids()).isEqualTo(uids);
    }

    @Test
    void hostPodsHaveOneControllingOwnerAndTheirNamespaceOneDisruptionBudget() throws Exception {
        // A budget left by an operator configured otherwise is corrected.
        client.resources(PodDisruptionBudget.class)
                .inNamespace(NS)
                .resource(HostDisruptionBudgetDependent.desired(NS, 3))
                .create();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.apply(NS, "chat-long", 1, s -> s.getContext().setMaxSequences(8));
        cluster.converge();

        Pod host = onlyHost();
        assertThat(host.getMetadata().getOwnerReferences()).hasSize(2);
        assertThat(host.getMetadata().getOwnerReferences())
                .filteredOn(o -> Boolean.TRUE.equals(o.getController()))
                .singleElement()
                .satisfies(o -> assertThat(o.getName()).isEqualTo("chat"));
        PodDisruptionBudget pdb = client.resources(PodDisruptionBudget.class)
                .inNamespace(NS)
                .withName(HostDisruptionBudgetDependent.NAME)
                .get();
        assertThat(pdb.getSpec().getMaxUnavailable().getIntVal()).isZero();
        assertThat(pdb.getSpec().getSelector().getMatchLabels()).containsEntry(Labels.COMPONENT, Labels.COMPONENT_HOST);
        assertThat(pdb.getSpec().getUnhealthyPodEvictionPolicy()).isEqualTo("AlwaysAllow");

        // The controller leaves with its deployment: the other owner takes over.
        client.resource(cluster.get(NS, "chat")).delete();
        cluster.converge();
        assertThat(onlyHost().getMetadata().getOwnerReferences())
                .singleElement()
                .satisfies(o -> {
                    assertThat(o.getName()).isEqualTo("chat-long");
                    assertThat(o.getController()).isTrue();
                });

        client.resource(cluster.get(NS, "chat-long")).delete();
        cluster.converge();
        assertThat(client.resources(PodDisruptionBudget.class)
                        .inNamespace(NS)
                        .withName(HostDisruptionBudgetDependent.NAME)
                        .get())
                .as("gone with the namespace's last deployment")
                .isNull();
    }

    @Test
    void aHostPodIsNotCreatedAgainUnderItsNameWhileItsPredecessorTerminates() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod host = onlyHost();
        // A finalizer keeps the deleted pod terminating, as a kubelet does while the runtime drains.
        client.pods().inNamespace(NS).withName(host.getMetadata().getName()).edit(p -> {
            p.getMetadata().setFinalizers(List.of("test/hold"));
            return p;
        });
        host = onlyHost();
        host.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder()
                .withPhase("Failed")
                .withReason("Evicted")
                .build());
        client.pods().inNamespace(NS).resource(host).updateStatus();

        cluster.pass();
        cluster.pass();
        Pod terminating = onlyHost();
        assertThat(terminating.getMetadata().getDeletionTimestamp()).isNotNull();
        assertThat(terminating.getMetadata().getUid())
                .isEqualTo(host.getMetadata().getUid());

        client.pods().inNamespace(NS).withName(host.getMetadata().getName()).edit(p -> {
            p.getMetadata().setFinalizers(List.of());
            return p;
        });
        cluster.converge();
        assertThat(onlyHost().getMetadata().getUid())
                .isNotEqualTo(host.getMetadata().getUid());
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    @Test
    void aHostThatMustBeReplacedForANewClaimMovesItsReplicasFirst() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());

        // A model from a claim lands on the running host: its pod's volumes cannot change.
        cluster.apply(NS, "docs", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        for (int i = 0; i < 6; i++) {
            step("chat", 1);
            Pod was = pod(old.getMetadata().getName());
            if (was != null) {
                assertThat(was.getMetadata().getUid())
                        .as("no pod of the old name comes back while it serves")
                        .isEqualTo(old.getMetadata().getUid());
                assertThat(PlacementLoopTest.assignmentOf(was).replicas())
                        .extracting(ReplicaAssignment::id)
                        .as("the old host keeps serving what it served, and takes nothing new")
                        .containsExactly(NS + "/chat#0");
            }
        }

        assertThat(pod(old.getMetadata().getName()))
                .as("deleted once its replica served elsewhere")
                .isNull();
        assertThat(cluster.hostPods(NS)).singleElement().satisfies(p -> {
            assertThat(p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION))
                    .isEqualTo("gpu-b/gpu-0");
            assertThat(p.getMetadata().getAnnotations()).doesNotContainKey(Labels.REPLACE_ANNOTATION);
        });
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1, NS + "/docs#0", 1));
        assertThat(cluster.get(NS, "docs").getStatus().getReadyReplicas()).isEqualTo(1);
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    @Test
    void aHostThatMustBeReplacedWithNowhereElseToGoIsReplacedInPlace() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.converge();
        Pod old = onlyHost();

        cluster.apply(NS, "docs", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        cluster.converge();
        cluster.converge();

        assertThat(onlyHost().getMetadata().getUid())
                .isNotEqualTo(old.getMetadata().getUid());
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1, NS + "/docs#0", 1));
        assertThat(cluster.get(NS, "docs").getStatus().getReadyReplicas()).isEqualTo(1);
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
        assertThat(cluster.events(NS, "ReplacedInPlace")).isNotEmpty();
    }

    @Test
    void deletingTheDeploymentOfAClaimKeepsTheHostThatServesTheOthers() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply(NS, "chat", 1, s -> {});
        cluster.apply(NS, "docs", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        cluster.converge();
        cluster.converge();
        Pod host = onlyHost();
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1, NS + "/docs#0", 1));

        // The host no longer needs the claim's volume; a volume it has and does not need is no reason to replace it.
        client.resource(cluster.get(NS, "docs")).delete();
        cluster.converge();
        cluster.converge();

        assertThat(onlyHost().getMetadata().getUid())
                .as("the host serving chat is kept")
                .isEqualTo(host.getMetadata().getUid());
        assertThat(onlyHost().getMetadata().getAnnotations()).doesNotContainKey(Labels.REPLACE_ANNOTATION);
        assertThat(copies()).isEqualTo(Map.of(NS + "/chat#0", 1));
        assertThat(cluster.get(NS, "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    // ------------------------------------------------------------------ steps and invariants

    /** One pass and the kubelet, then the invariants: nothing lost, nothing doubled beyond a move, a Service. */
    private void step(String deployment, int replicas) throws Exception {
        cluster.pass();
        cluster.kubelet();
        Map<String, Integer> copies = copies();
        for (int i = 0; i < replicas; i++) {
            assertThat(copies.get(NS + "/" + deployment + "#" + i))
                    .as("copies of replica #%d", i)
                    .isNotNull()
                    .isBetween(1, 2);
        }
        assertThat(copies.keySet().stream().filter(id -> id.startsWith(NS + "/" + deployment + "#")))
                .as("no replica beyond the spec")
                .hasSize(replicas);
        assertThat(endpoints(deployment)).as("the Service's endpoints").isNotEmpty();
    }

    /** How many hosts record each replica. */
    private Map<String, Integer> copies() throws Exception {
        Map<String, Integer> out = new TreeMap<>();
        for (Pod p : cluster.hostPods(NS)) {
            for (ReplicaAssignment r : PlacementLoopTest.assignmentOf(p).replicas()) {
                out.merge(r.id(), 1, Integer::sum);
            }
        }
        return out;
    }

    /** The pods the deployment's Service sends requests to: Ready host pods with its ready label. */
    private List<Pod> endpoints(String deployment) {
        return cluster.hostPods(NS).stream()
                .filter(p -> p.getMetadata().getDeletionTimestamp() == null)
                .filter(p -> "true".equals(p.getMetadata().getLabels().get(Labels.readyLabel(deployment))))
                .filter(p -> p.getStatus() != null
                        && p.getStatus().getConditions() != null
                        && p.getStatus().getConditions().stream()
                                .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus())))
                .toList();
    }

    private List<String> devices() {
        return cluster.hostPods(NS).stream()
                .map(p -> p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION))
                .sorted()
                .toList();
    }

    private Map<String, String> uids() {
        return cluster.hostPods(NS).stream()
                .collect(Collectors.toMap(
                        p -> p.getMetadata().getName(), p -> p.getMetadata().getUid()));
    }

    private Pod onlyHost() {
        List<Pod> hosts = cluster.hostPods(NS);
        assertThat(hosts).hasSize(1);
        return hosts.get(0);
    }

    private Pod hostOn(String device) {
        return cluster.hostPods(NS).stream()
                .filter(p -> device.equals(p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION)))
                .findFirst()
                .orElseThrow();
    }

    private Pod pod(String name) {
        return client.pods().inNamespace(NS).withName(name).get();
    }

    private void cordon(String node) {
        client.nodes().withName(node).edit(n -> {
            n.getSpec().setUnschedulable(true);
            return n;
        });
    }

    /**
     * The node stops reporting, {@code since} ago: its Ready condition turns False, the node controller marks its
     * pods not Ready, and its host's admin API no longer answers. Answers the host, to bring back.
     */
    private FakeHost nodeDown(String node, Duration since, Pod host) {
        setReady(node, "False", Instant.now().minus(since));
        setPodReady(host, "False");
        return cluster.hosts.remove(host.getMetadata().getName());
    }

    private void nodeBack(String node, Pod host, FakeHost fake) {
        setReady(node, "True", Instant.now());
        setPodReady(host, "True");
        cluster.hosts.put(host.getMetadata().getName(), fake);
    }

    private void setReady(String node, String status, Instant since) {
        Node n = client.nodes().withName(node).get();
        n.getStatus()
                .setConditions(List.of(new NodeConditionBuilder()
                        .withType("Ready")
                        .withStatus(status)
                        .withLastTransitionTime(since.toString())
                        .build()));
        client.nodes().resource(n).updateStatus();
    }

    private void setPodReady(Pod host, String status) {
        Pod p = pod(host.getMetadata().getName());
        p.getStatus()
                .setConditions(List.of(new PodConditionBuilder()
                        .withType("Ready")
                        .withStatus(status)
                        .build()));
        client.pods().inNamespace(NS).resource(p).updateStatus();
    }
}
