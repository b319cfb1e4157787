package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.model.ModelResolver;
import io.stowage.placement.plan.StowagePlanner;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A probe pod that fails before its container terminates (image pull error, deadline, unschedulable, refused by
 * admission) ends its deployment in Degraded/ModelUnreadable with the cause and an Event, never stuck
 * Inspecting; the probe is retried with backoff, and at once after a spec change.
 */
@EnableKubernetesMockClient(crud = true)
class ProbeFailureTest {
    static final String NS = "team-a";
    static final String URI = "pvc://models/stories260K-q8_0.gguf";

    KubernetesClient client;

    KubernetesMockServer server;

    TestCluster cluster;

    /** The operator's clock, moved by the test. */
    final MovableClock clock = new MovableClock(Instant.now());

    static final class MovableClock extends Clock {
        volatile Instant now;

        MovableClock(Instant now) {
            this.now = now;
        }

        void advance(Duration d) {
            now = now.plus(d);
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.loop = new PlacementLoop(
                client,
                cluster.config,
                new ModelResolver(client, cluster.config, clock),
                new StowagePlanner()::plan,
                new HostAdminClient(cluster.config.httpTimeout()),
                pod -> {
                    FakeHost h = cluster.hosts.get(pod.getMetadata().getName());
                    return h == null ? null : h.uri();
                },
                List::of,
                new EventRecorder(client, clock),
                clock);
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    Pod probePod() {
        List<Pod> probes = client.pods()
                .inNamespace(NS)
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_PROBE)
                .list()
                .getItems();
        return probes.isEmpty() ? null : probes.get(0);
    }

    /** Plays a kubelet (or scheduler) that leaves the probe pod in {@code status}. */
    void probeStatus(Consumer<PodStatusBuilder> status) {
        Pod p = probePod();
        assertThat(p).as("a probe pod").isNotNull();
        PodStatusBuilder b = new PodStatusBuilder();
        status.accept(b);
        PodStatus s = b.build();
        p.setStatus(s);
        client.pods().inNamespace(NS).resource(p).updateStatus();
    }

    Condition condition(String type) {
        LlmDeployment d = cluster.get(NS, "chat");
        return d.getStatus() == null ? null : d.getStatus().condition(type);
    }

    void assertUnreadable(String... messageParts) {
        LlmDeployment d = cluster.get(NS, "chat");
        assertThat(d.getStatus().getPhase()).isNotEqualTo("Inspecting");
        Condition degraded = condition(StatusAggregator.DEGRADED);
        assertThat(degraded.getStatus()).isEqualTo("True");
        assertThat(degraded.getReason()).isEqualTo(ModelResolver.UNREADABLE);
        assertThat(degraded.getMessage()).contains(messageParts);
        assertThat(condition(StatusAggregator.PLACED).getReason()).isEqualTo(ModelResolver.UNREADABLE);
        assertThat(cluster.events(NS, ModelResolver.UNREADABLE))
                .anySatisfy(e -> assertThat(e.getMessage()).contains(messageParts));
    }

    @Test
    void anImagePullBackOffEndsInModelUnreadableAndTheProbeIsRetriedWithBackoffUntilItReads() throws Exception {
        cluster.apply(NS, "chat", 1, s -> s.getModel().setUri(URI));
        cluster.loop.runPass();
        probeStatus(b -> b.withPhase("Pending")
                .addNewContainerStatus()
                .withName("inspect")
                .withNewState()
                .withNewWaiting()
                .withReason("ImagePullBackOff")
                .withMessage("Back-off pulling image \"ghcr.io/stowage/runtime:0.1.0\"")
                .endWaiting()
                .endState()
                .endContainerStatus());

        cluster.loop.runPass();

        assertUnreadable("ImagePullBackOff", "Back-off pulling image");
        assertThat(probePod()).as("the failed probe pod is removed").isNull();

        // Within the backoff nothing is retried.
        clock.advance(Duration.ofSeconds(10));
        cluster.loop.runPass();
        assertThat(probePod()).isNull();

        // After it, a new probe runs (the image is fixed: the fake kubelet runs it) and the deployment recovers.
        clock.advance(Duration.ofSeconds(30));
        cluster.loop.runPass();
        assertThat(probePod()).as("the probe is retried").isNotNull();
        cluster.converge();
        assertThat(condition(StatusAggregator.DEGRADED).getStatus()).isEqualTo("False");
        assertThat(condition(StatusAggregator.PLACED).getStatus()).isEqualTo("True");
    }

    @Test
    void aPodTheKubeletFailedByItsDeadlineEndsInModelUnreadable() throws Exception {
        cluster.apply(NS, "chat", 1, s -> s.getModel().setUri(URI));
        cluster.loop.runPass();
        probeStatus(b -> b.withPhase("Failed")
                .withReason("DeadlineExceeded")
                .withMessage("Pod was active on the node longer than the specified deadline"));

        cluster.loop.runPass();

        assertUnreadable("DeadlineExceeded", "longer than the specified deadline");
    }

    @Test
    void anUnschedulableProbeIsPendingWithinTheBoundAndModelUnreadablePastIt() throws Exception {
        cluster.apply(NS, "chat", 1, s -> s.getModel().setUri(URI));
        cluster.loop.runPass();
        String since = EventRecorder.time(clock.instant());
        probeStatus(b -> b.withPhase("Pending")
                .addNewCondition()
                .withType("PodScheduled")
                .withStatus("False")
                .withReason("Unschedulable")
                .withMessage("0/1 nodes are available: persistentvolumeclaim \"models\" not found.")
                .withLastTransitionTime(since)
                .endCondition());

        cluster.loop.runPass();
        assertThat(cluster.get(NS, "chat").getStatus().getPhase()).isEqualTo("Inspecting");

        clock.advance(Duration.ofMinutes(3));
        cluster.loop.runPass();

        assertUnreadable("unschedulable", "persistentvolumeclaim \"models\" not found");
    }

    @Test
    void aProbePodTheApiServerRefusesEndsInModelUnreadableWithItsMessageAndASpecChangeRetriesAtOnce() throws Exception {
        String refused = "pods \"stowage-inspect-x\" is forbidden: violates PodSecurity \"restricted:latest\":"
                + " restricted volume types (volume \"source\" uses restricted volume type \"hostPath\")";
        server.expect()
                .post()
                .withPath("/api/v1/namespaces/" + NS + "/pods")
                .andReturn(
                        403,
                        new StatusBuilder()
                                .withStatus("Failure")
                                .withCode(403)
                                .withReason("Forbidden")
                                .withMessage(refused)
                                .build())
                .once();
        cluster.apply(NS, "chat", 1, s -> s.getModel().setUri("file:///data/models/stories260K-q8_0.gguf"));

        cluster.loop.runPass();

        assertUnreadable("refused", "HTTP 403", "violates PodSecurity", "use pvc://");
        assertThat(probePod()).isNull();

        // A spec change (here the replicas) retries at once, without waiting for the backoff.
        cluster.apply(NS, "chat", 2, s -> s.getModel().setUri("file:///data/models/stories260K-q8_0.gguf"));
        assertThat(cluster.get(NS, "chat").getMetadata().getGeneration())
                .as("the API server counts spec changes")
                .isGreaterThan(1L);
        cluster.loop.runPass();
        assertThat(probePod()).as("a new probe pod after the spec change").isNotNull();
        cluster.converge();
        assertThat(condition(StatusAggregator.DEGRADED).getStatus())
                .as("%s", condition(StatusAggregator.DEGRADED))
                .isEqualTo("False");
    }

    @Test
    void aHostPodTheApiServerRefusesDegradesItsDeploymentWithTheMessageUntilItIsAdmitted() throws Exception {
        String refused = "pods \"stowage-host-x\" is forbidden: violates PodSecurity \"restricted:latest\":"
                + " restricted volume types (volume \"model-cache\" uses restricted volume type \"hostPath\")";
        server.expect()
                .post()
                .withPath("/api/v1/namespaces/" + NS + "/pods")
                .andReturn(
                        403,
                        new StatusBuilder()
                                .withStatus("Failure")
                                .withCode(403)
                                .withReason("Forbidden")
                                .withMessage(refused)
                                .build())
                .once();
        // Read over http by the operator itself: the first pod created is the host.
        cluster.apply(NS, "chat", 1, s -> {});

        cluster.loop.runPass();

        Condition degraded = condition(StatusAggregator.DEGRADED);
        assertThat(degraded.getStatus()).isEqualTo("True");
        assertThat(degraded.getReason()).isEqualTo(PlacementLoop.HOST_POD_REFUSED);
        assertThat(degraded.getMessage()).contains("HTTP 403", "violates PodSecurity", "modelCache.pvc");
        assertThat(cluster.events(NS, PlacementLoop.HOST_POD_REFUSED)).isNotEmpty();
        assertThat(cluster.hostPods(NS)).isEmpty();

        // Admitted on the next pass (the namespace's policy was fixed): the deployment recovers.
        cluster.converge();
        assertThat(cluster.hostPods(NS)).hasSize(1);
        assertThat(condition(StatusAggregator.DEGRADED).getStatus()).isEqualTo("False");
    }
}
