package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelHeader;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.crd.LlmDeploymentStatus;
import io.stowage.operator.helm.ArgoHealth;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.ReplicaId;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link StatusAggregator#write}: the status of one LlmDeployment built from a pass's results, written to the
 * API server (Fabric8's mock in CRUD mode) and read back.
 */
@EnableKubernetesMockClient(crud = true)
class StatusAggregatorTest {
    private static final String URI = "hf://org/stories/stories260K-q8_0.gguf";
    private static final String DEVICE = "node-a/gpu-0";
    private static final String HOST = "stowage-host-a";
    private static final ModelShape SHAPE = new ModelShape("llama", 5, 64, 172, 8, 4, 8, 8, 512, 512, 1_000_000);
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    KubernetesClient client;
    KubernetesMockServer server;

    /** One pass's view of the world around the deployment under test. */
    private final Map<ReplicaId, String> deviceOf = new LinkedHashMap<>();

    private final Map<String, HostAssignment> assignments = new LinkedHashMap<>();
    private final Map<String, Pod> hostPods = new LinkedHashMap<>();
    private final Map<String, PlacementLoop.HostReport> reports = new LinkedHashMap<>();
    private final List<Refusal> refusals = new ArrayList<>();
    private final Map<String, Device> devices = Map.of(
            DEVICE, new Device(DEVICE, "node-a", DeviceKind.GPU, 40L << 30, 0, 0, 1L << 30, 1.0, Map.of(), List.of()));

    @BeforeEach
    void crd() throws Exception {
        client.apiextensions()
                .v1()
                .customResourceDefinitions()
                .resource(TestCluster.crd())
                .create();
    }

    private LlmDeployment apply(String name, int replicas) {
        return client.resource(new LlmDeployment("team-a", name, new LlmDeploymentSpec(URI, replicas)))
                .create();
    }

    private LlmDeployment read(String name) {
        return client.resources(LlmDeployment.class)
                .inNamespace("team-a")
                .withName(name)
                .get();
    }

    private StatusAggregator aggregator(Instant now) {
        return new StatusAggregator(client, OperatorConfig.defaults(), Clock.fixed(now, ZoneOffset.UTC));
    }

    private static PlacementLoop.Planned planned(LlmDeployment d) {
        PlannerInput in = SpecInput.of(d, SHAPE, MemoryModel.withDefaults());
        ModelHeader header = new ModelHeader("llama", "stories260K", 260_000, "Q8_0", SHAPE);
        return new PlacementLoop.Planned(d, header, in.memory(), in.deployment(), URI, null, in);
    }

    /** Places replicas 0..placed-1 of d on one device; the host reports {@code ready} of them ready. */
    private void onOneHost(PlacementLoop.Planned p, int placed, int ready, ModelPhase phase, String reason) {
        String digest = p.deployment().model().digest();
        List<ReplicaAssignment> reps = new ArrayList<>();
        List<ReplicaState> states = new ArrayList<>();
        for (int i = 0; i < placed; i++) {
            ReplicaId r = new ReplicaId(p.cr().key(), i);
            deviceOf.put(r, DEVICE);
            reps.add(new ReplicaAssignment(r.toString(), p.cr().key(), "chat", digest, 512, 4, "f16", 1 << 20));
            states.add(new ReplicaState(r.toString(), p.cr().key(), "chat", digest, i < ready, 1 << 20, 0, 0, 0));
        }
        assignments.put(
                DEVICE,
                new HostAssignment(
                        1, 30L << 30, List.of(new ModelAssignment(digest, URI, null, 1_000_000, 4096)), reps));
        hostPods.put(
                DEVICE,
                new PodBuilder()
                        .withNewMetadata()
                        .withName(HOST)
                        .withNamespace("team-a")
                        .endMetadata()
                        .build());
        HostState state = new HostState(
                1, null, List.of(new ModelState(digest, URI, phase, reason, 0, 0, 1_000_000, 4096)), states, 0, 0);
        reports.put(DEVICE, new PlacementLoop.HostReport(state, null));
    }

    private void write(StatusAggregator agg, LlmDeployment d, PlacementLoop.Planned p, StatusAggregator.Problem pr) {
        agg.write(d, p, pr, deviceOf, devices, assignments, hostPods, reports, refusals);
    }

    private static Map<String, Condition> conditions(LlmDeployment d) {
        Map<String, Condition> out = new LinkedHashMap<>();
        d.getStatus().getConditions().forEach(c -> out.put(c.getType(), c));
        return out;
    }

    @Test
    void allReplicasReadyIsPlacedReadyAndNotDegradedAtTheObservedGeneration() throws Exception {
        LlmDeployment d = apply("chat", 2);
        PlacementLoop.Planned p = planned(d);
        onOneHost(p, 2, 2, ModelPhase.LOADED, null);

        write(aggregator(T0), d, p, null);

        LlmDeployment got = read("chat");
        LlmDeploymentStatus s = got.getStatus();
        assertThat(s.getPhase()).isEqualTo("Ready");
        assertThat(s.getReady()).isEqualTo("2/2");
        assertThat(s.getReadyReplicas()).isEqualTo(2);
        assertThat(s.getObservedGeneration()).isEqualTo(got.getMetadata().getGeneration());
        Map<String, Condition> c = conditions(got);
        assertThat(c.keySet()).containsExactly("Placed", "Ready", "Degraded");
        assertThat(c.get("Placed").getStatus()).isEqualTo("True");
        assertThat(c.get("Ready").getReason()).isEqualTo("AllReplicasReady");
        assertThat(c.get("Degraded").getStatus()).isEqualTo("False");
        for (Condition x : c.values()) {
            assertThat(x.getObservedGeneration())
                    .as(x.getType())
                    .isEqualTo(got.getMetadata().getGeneration());
            assertThat(x.getLastTransitionTime()).isEqualTo("2026-01-01T00:00:00Z");
        }
        // Two replicas of one model on one device: the first carries the weights, the second only its KV cache.
        assertThat(s.getPlacements()).hasSize(2);
        assertThat(s.getPlacements().get(0).getSharesWeightsWith()).containsExactly("team-a/chat#1");
        assertThat(s.getPlacements().get(0).getBytes()
                        - s.getPlacements().get(1).getBytes())
                .isEqualTo(p.memory().weightBytes());
        assertThat(s.getPlacements().get(0).getHost()).isEqualTo(HOST);
        assertThat(ArgoHealth.of(got).status()).isEqualTo("Healthy");
    }

    @Test
    void aMovingReplicaCountsAsReadyWhileItsOldCopyServesAndNoReplicaIsCountedTwice() {
        LlmDeployment d = apply("chat", 1);
        PlacementLoop.Planned p = planned(d);
        // The replica's new host on DEVICE still loads it; its old copy on a cordoned node serves.
        onOneHost(p, 1, 0, ModelPhase.LOADING, null);
        String old = "node-b/gpu-0";
        String digest = p.deployment().model().digest();
        reports.put(
                old,
                new PlacementLoop.HostReport(
                        new HostState(
                                1,
                                null,
                                List.of(new ModelState(digest, URI, ModelPhase.LOADED, null, 0, 0, 1_000_000, 4096)),
                                List.of(new ReplicaState(
                                        d.key() + "#0", d.key(), "chat", digest, true, 1 << 20, 0, 0, 0)),
                                0,
                                0),
                        null));

        aggregator(T0)
                .write(
                        d,
                        p,
                        null,
                        deviceOf,
                        devices,
                        assignments,
                        hostPods,
                        reports,
                        refusals,
                        Map.of(new ReplicaId(d.key(), 0), old),
                        null);

        LlmDeploymentStatus s = read("chat").getStatus();
        assertThat(s.getReadyReplicas()).isEqualTo(1);
        assertThat(s.getReplicas()).isEqualTo(1);
        assertThat(s.getPlacements()).singleElement().satisfies(pl -> {
            assertThat(pl.getDevice())
                    .as("the replica's place is its new device")
                    .isEqualTo(DEVICE);
            assertThat(pl.getReady()).isFalse();
        });
        assertThat(conditions(read("chat")).get("Ready").getStatus()).isEqualTo("True");

        // Without the stand-in the same pass reads 0/1: the old copy alone is not a placement.
        write(aggregator(T0), d, p, null);
        assertThat(read("chat").getStatus().getReadyReplicas()).isZero();
    }

    @Test
    void aNewGenerationIsObservedWhileUnchangedConditionsKeepTheirTransitionTime() {
        LlmDeployment d = apply("chat", 1);
        PlacementLoop.Planned p = planned(d);
        onOneHost(p, 1, 1, ModelPhase.LOADED, null);
        write(aggregator(T0), d, p, null);
        LlmDeployment edited = read("chat");
        edited.getSpec().setServedModelName("chat-v2");
        edited = client.resource(edited).update();
        assertThat(edited.getMetadata().getGeneration()).isEqualTo(2L);

        write(aggregator(T0.plusSeconds(60)), edited, planned(edited), null);

        LlmDeployment got = read("chat");
        assertThat(got.getStatus().getObservedGeneration()).isEqualTo(2L);
        for (Condition x : got.getStatus().getConditions()) {
            assertThat(x.getObservedGeneration()).as(x.getType()).isEqualTo(2L);
            assertThat(x.getLastTransitionTime()).as(x.getType()).isEqualTo("2026-01-01T00:00:00Z");
        }
    }

    @Test
    void aStatusComputedFromAStaleCopyIsStillWrittenInTheSamePass() {
        LlmDeployment stale = apply("chat", 1);
        LlmDeployment newer = read("chat");
        newer.getMetadata().setLabels(Map.of("team", "a"));
        client.resource(newer).update();
        assertThat(read("chat").getMetadata().getResourceVersion())
                .isNotEqualTo(stale.getMetadata().getResourceVersion());
        PlacementLoop.Planned p = planned(stale);
        onOneHost(p, 1, 1, ModelPhase.LOADED, null);

        write(aggregator(T0), stale, p, null);

        // Written by patch, without the stale resourceVersion: no 409 and no wait for the next pass.
        LlmDeployment got = read("chat");
        assertThat(got.getStatus().getPhase()).isEqualTo("Ready");
        assertThat(got.getMetadata().getLabels()).containsEntry("team", "a");
    }

    @Test
    void anUnchangedStatusIsNotWrittenAgain() {
        LlmDeployment d = apply("chat", 1);
        PlacementLoop.Planned p = planned(d);
        onOneHost(p, 1, 1, ModelPhase.LOADED, null);
        write(aggregator(T0), d, p, null);
        LlmDeployment again = read("chat");
        int before = server.getRequestCount();

        write(aggregator(T0.plusSeconds(15)), again, planned(again), null);

        assertThat(server.getRequestCount()).isEqualTo(before);
    }

    @Test
    void aRefusedReplicaIsUnplaceableWithThePlannersNumbers() throws Exception {
        LlmDeployment d = apply("chat", 2);
        PlacementLoop.Planned p = planned(d);
        onOneHost(p, 1, 1, ModelPhase.LOADED, null);
        refusals.add(new Refusal(
                new ReplicaId("team-a/chat", 1),
                5L << 30,
                0.25,
                DEVICE,
                3L << 30,
                0.75,
                "needs 5.0 GiB; the best eligible GPU has 3.0 GiB free"));

        write(aggregator(T0), d, p, null);

        LlmDeployment got = read("chat");
        Map<String, Condition> c = conditions(got);
        assertThat(got.getStatus().getPhase()).isEqualTo("Unplaceable");
        assertThat(c.get("Placed").getStatus()).isEqualTo("False");
        assertThat(c.get("Placed").getReason()).isEqualTo("Unplaceable");
        assertThat(c.get("Placed").getMessage())
                .isEqualTo("1/2 replicas placed; replica #1 needs 5.0 GiB; the best eligible GPU has 3.0 GiB free");
        assertThat(c.get("Ready").getReason()).isEqualTo("ReplicasNotReady");
        assertThat(ArgoHealth.of(got))
                .isEqualTo(new ArgoHealth.Health("Degraded", c.get("Placed").getMessage()));
    }

    @Test
    void aModelBeingInspectedIsNeitherPlacedNorDegraded() throws Exception {
        LlmDeployment d = apply("chat", 1);

        write(
                aggregator(T0),
                d,
                null,
                new StatusAggregator.Problem("InspectingModel", "the probe pod reads the header", false));

        LlmDeployment got = read("chat");
        Map<String, Condition> c = conditions(got);
        assertThat(got.getStatus().getPhase()).isEqualTo("Inspecting");
        assertThat(c.get("Placed").getReason()).isEqualTo("InspectingModel");
        assertThat(c.get("Ready").getStatus()).isEqualTo("False");
        assertThat(c.get("Degraded").getStatus()).isEqualTo("False");
        assertThat(ArgoHealth.of(got))
                .isEqualTo(new ArgoHealth.Health("Progressing", "the probe pod reads the header"));
    }

    @Test
    void aModelThatFailedToLoadDegradesTheDeploymentNamingTheHostAndTheReason() throws Exception {
        LlmDeployment d = apply("chat", 1);
        PlacementLoop.Planned p = planned(d);
        onOneHost(p, 1, 0, ModelPhase.FAILED, "download refused: 401 Unauthorized");

        write(aggregator(T0), d, p, null);

        LlmDeployment got = read("chat");
        Map<String, Condition> c = conditions(got);
        assertThat(got.getStatus().getPhase()).isEqualTo("Degraded");
        assertThat(c.get("Degraded").getStatus()).isEqualTo("True");
        assertThat(c.get("Degraded").getReason()).isEqualTo("ModelLoadFailed");
        assertThat(c.get("Degraded").getMessage()).isEqualTo(HOST + ": download refused: 401 Unauthorized");
        assertThat(c.get("Ready").getStatus()).isEqualTo("False");
        assertThat(ArgoHealth.of(got))
                .isEqualTo(new ArgoHealth.Health("Degraded", HOST + ": download refused: 401 Unauthorized"));
    }

    @Test
    void anInvalidSpecIsAFailureTheUserMustFix() throws Exception {
        LlmDeployment d = apply("chat", 1);

        write(
                aggregator(T0),
                d,
                null,
                new StatusAggregator.Problem("InvalidContext", "spec.context.maxTokens: too long", true));

        Map<String, Condition> c = conditions(read("chat"));
        assertThat(read("chat").getStatus().getPhase()).isEqualTo("Invalid");
        assertThat(c.get("Degraded").getReason()).isEqualTo("InvalidContext");
        assertThat(c.get("Degraded").getMessage()).isEqualTo("spec.context.maxTokens: too long");
        assertThat(ArgoHealth.of(read("chat")).status()).isEqualTo("Degraded");
    }

    @Test
    void theStatusOfADeletedDeploymentIsDroppedQuietly() {
        LlmDeployment d = apply("chat", 1);
        client.resource(d).delete();

        write(aggregator(T0), d, null, new StatusAggregator.Problem("InspectingModel", "reading", false));

        assertThat(read("chat")).isNull();
    }
}
