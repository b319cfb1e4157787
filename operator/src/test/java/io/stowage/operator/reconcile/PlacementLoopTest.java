package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.stowage.hostapi.HostAssignment;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.dcgm.GpuMemory;
import io.stowage.operator.host.HostAdminClient;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The placement loop against the mock API server with real hosts' admin APIs and a real GGUF over Range. */
@EnableKubernetesMockClient(crud = true)
class PlacementLoopTest {
    KubernetesClient client;

    KubernetesMockServer server;

    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = cluster(OperatorConfig.defaults());
    }

    /** The cluster the tests run on: the operator reads it by LISTs here, through informer caches in a subclass. */
    TestCluster cluster(OperatorConfig config) throws Exception {
        return new TestCluster(client, config);
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

    @Test
    void twoDeploymentsOfTheSameModelShareOneGpuAndItsWeights() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());

        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.apply("team-a", "chat-long", 1, s -> s.getContext().setMaxSequences(8));
        cluster.converge();

        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(cluster.hostPods("team-a")).hasSize(1);
        HostAssignment a = assignmentOf(host);
        assertThat(a.models()).as("one copy of the weights").hasSize(1);
        assertThat(a.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0", "team-a/chat-long#0");
        var chat = cluster.get("team-a", "chat").getStatus().getPlacements().get(0);
        var longer =
                cluster.get("team-a", "chat-long").getStatus().getPlacements().get(0);
        assertThat(chat.getSharesWeightsWith()).containsExactly("team-a/chat-long#0");
        assertThat(longer.getSharesWeightsWith()).containsExactly("team-a/chat#0");
        long weights = cluster.get("team-a", "chat").getStatus().getMemory().getWeightsBytes();
        // Only the first replica of the model on the device pays for the weights.
        assertThat(chat.getBytes() + longer.getBytes())
                .isEqualTo(weights
                        + cluster.get("team-a", "chat").getStatus().getMemory().getKvPerReplicaBytes()
                        + cluster.get("team-a", "chat-long")
                                .getStatus()
                                .getMemory()
                                .getKvPerReplicaBytes());
        assertThat(host.getMetadata().getLabels())
                .containsEntry(Labels.readyLabel("chat"), "true")
                .containsEntry(Labels.readyLabel("chat-long"), "true");
    }

    @Test
    void scaleUpAddsReplicasAndScaleDownRemovesThemAndEmptyHosts() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        // 0.5 compute per replica: at most two replicas per GPU.
        cluster.apply("team-a", "chat", 1, s -> s.getPlacement().setComputeShare(0.5));
        cluster.converge();
        assertThat(cluster.hostPods("team-a")).hasSize(1);

        cluster.apply("team-a", "chat", 4, s -> s.getPlacement().setComputeShare(0.5));
        cluster.converge();
        assertThat(cluster.hostPods("team-a")).hasSize(2);
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(4);

        cluster.apply("team-a", "chat", 1, s -> s.getPlacement().setComputeShare(0.5));
        cluster.converge();
        assertThat(cluster.hostPods("team-a")).hasSize(1);
        HostAssignment a = assignmentOf(cluster.hostPods("team-a").get(0));
        assertThat(a.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0");
        FakeHost fake = cluster.hosts.get(
                cluster.hostPods("team-a").get(0).getMetadata().getName());
        assertThat(fake.assignment.replicas()).hasSize(1);
        assertThat(cluster.get("team-a", "chat").getStatus().getReady()).isEqualTo("1/1");
    }

    @Test
    void deleteUnassignsRemovesHostsAndReleasesTheFinalizer() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.apply("team-a", "extract", 1, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.get(
                cluster.hostPods("team-a").get(0).getMetadata().getName());
        assertThat(fake.assignment.replicas()).hasSize(2);

        client.resources(LlmDeployment.class)
                .inNamespace("team-a")
                .withName("chat")
                .delete();
        cluster.converge();
        assertThat(cluster.get("team-a", "chat"))
                .as("finalizer released, object gone")
                .isNull();
        assertThat(fake.assignment.replicas()).extracting(r -> r.id()).containsExactly("team-a/extract#0");
        assertThat(client.services().inNamespace("team-a").withName("chat").get())
                .isNull();

        client.resources(LlmDeployment.class)
                .inNamespace("team-a")
                .withName("extract")
                .delete();
        assertThat(client.secrets()
                        .inNamespace("team-a")
                        .withName(Labels.TOKEN_SECRET)
                        .get())
                .as("the admin token stays while a deployment is left")
                .isNotNull();
        cluster.converge();
        assertThat(cluster.get("team-a", "extract")).isNull();
        assertThat(cluster.hostPods("team-a")).isEmpty();
        assertThat(client.secrets().inNamespace("team-a").list().getItems())
                .as("the namespace's last deployment takes the admin Secrets with it")
                .isEmpty();

        // A deployment created there later gets a new token and is served.
        cluster.apply("team-a", "again", 1, s -> {});
        cluster.converge();
        assertThat(client.secrets()
                        .inNamespace("team-a")
                        .withName(Labels.TOKEN_SECRET)
                        .get())
                .isNotNull();
        assertThat(cluster.get("team-a", "again").getStatus().getReadyReplicas())
                .isEqualTo(1);
    }

    @Test
    void anUnplaceableDeploymentSaysWhyWithNumbers() throws Exception {
        // The real GRID-A100-4C vGPU nodes: 4096 MiB each.
        cluster.addGpuNode(
                "vgpu-small",
                TestCluster.vksLabels().stream()
                        .filter(l -> "4096".equals(l.get("nvidia.com/gpu.memory")))
                        .findFirst()
                        .orElseThrow());
        // 4096 sequences x 512 tokens x 640 B = 1.25 GiB of KV per replica.
        cluster.apply("team-a", "wide", 3, s -> {
            s.getContext().setMaxSequences(4096);
            s.getPlacement().setComputeShare(0.1);
        });
        cluster.converge();

        var st = cluster.get("team-a", "wide").getStatus();
        assertThat(st.getReplicas()).isEqualTo(2);
        var placed = st.condition("Placed");
        assertThat(placed.getStatus()).isEqualTo("False");
        assertThat(placed.getReason()).isEqualTo("Unplaceable");
        assertThat(placed.getMessage()).contains("2/3 replicas placed", "1.3 GiB", "vgpu-small/gpu-0");
        assertThat(cluster.events("team-a", "Unplaceable"))
                .anySatisfy(e -> assertThat(e.getMessage()).contains("1.3 GiB"));
    }

    @Test
    void aHigherPriorityDeploymentPreemptsALowerOne() throws Exception {
        cluster.addGpuNode(
                "vgpu-small",
                TestCluster.vksLabels().stream()
                        .filter(l -> "4096".equals(l.get("nvidia.com/gpu.memory")))
                        .findFirst()
                        .orElseThrow());
        cluster.apply("team-a", "batch", 2, s -> {
            s.getContext().setMaxSequences(4096);
            s.getPlacement().setComputeShare(0.1);
        });
        cluster.converge();
        assertThat(cluster.get("team-a", "batch").getStatus().getReplicas()).isEqualTo(2);

        cluster.apply("team-a", "urgent", 1, s -> {
            s.getContext().setMaxSequences(4096);
            s.getContext().setMaxTokens(400);
            s.getPlacement().setComputeShare(0.1);
            s.getPlacement().setPriority(100);
        });
        cluster.converge();

        assertThat(cluster.get("team-a", "urgent").getStatus().getReplicas()).isEqualTo(1);
        assertThat(cluster.get("team-a", "batch").getStatus().getReplicas()).isEqualTo(1);
        assertThat(cluster.events("team-a", "Preempted")).isNotEmpty();
        assertThat(cluster.get("team-a", "batch")
                        .getStatus()
                        .condition("Placed")
                        .getReason())
                .isEqualTo("Unplaceable");
    }

    @Test
    void foreignUsageReportedByDcgmShrinksCapacity() throws Exception {
        cluster.addGpuNode(
                "vgpu-small",
                TestCluster.vksLabels().stream()
                        .filter(l -> "4096".equals(l.get("nvidia.com/gpu.memory")))
                        .findFirst()
                        .orElseThrow());
        // Another workload holds 3500 MiB of the 4096 MiB GPU, as dcgm-exporter reports it.
        cluster.dcgm.add(new GpuMemory(
                "vgpu-small", "GPU-1", 0, "GRID A100-4C", "other", "some-training-job", 3500L << 20, 596L << 20));
        cluster.apply("team-a", "chat", 1, s -> s.getContext().setMaxSequences(512));
        cluster.converge();

        var st = cluster.get("team-a", "chat").getStatus();
        assertThat(st.getReplicas()).isZero();
        assertThat(st.condition("Placed").getMessage()).contains("vgpu-small/gpu-0");

        cluster.dcgm.clear();
        cluster.converge();
        assertThat(cluster.get("team-a", "chat").getStatus().getReplicas()).isEqualTo(1);
    }

    @Test
    void aRemovedNodesReplicasArePlacedElsewhere() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        assertThat(cluster.get("team-a", "chat")
                        .getStatus()
                        .getPlacements()
                        .get(0)
                        .getNode())
                .isEqualTo("gpu-a");

        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        client.nodes().withName("gpu-a").delete();
        cluster.converge();

        var st = cluster.get("team-a", "chat").getStatus();
        assertThat(st.getPlacements())
                .singleElement()
                .satisfies(p -> assertThat(p.getNode()).isEqualTo("gpu-b"));
        assertThat(st.getReadyReplicas()).isEqualTo(1);
        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getAnnotations().get(Labels.DEVICE_ANNOTATION))
                        .isEqualTo("gpu-b/gpu-0"));
    }

    @Test
    void aRestartedOperatorRebuildsItsLedgerFromTheHostsAndMovesNothing() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 3, s -> s.getPlacement().setComputeShare(0.5));
        cluster.apply("team-a", "extract", 1, s -> {});
        cluster.converge();
        Map<String, String> before = new TreeMap<>();
        for (Pod p : cluster.hostPods("team-a")) {
            before.put(
                    p.getMetadata().getName(), p.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION));
        }
        int puts = cluster.hosts.values().stream().mapToInt(h -> h.puts.get()).sum();

        cluster.restartOperator();
        cluster.converge();

        Map<String, String> after = new TreeMap<>();
        for (Pod p : cluster.hostPods("team-a")) {
            after.put(
                    p.getMetadata().getName(), p.getMetadata().getAnnotations().get(Labels.ASSIGNMENT_ANNOTATION));
        }
        assertThat(after).isEqualTo(before);
        assertThat(cluster.hosts.values().stream().mapToInt(h -> h.puts.get()).sum())
                .as("no assignment pushed again")
                .isEqualTo(puts);
    }

    @Test
    void aCrashedHostGetsItsAssignmentPushedAgain() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 2, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.values().iterator().next();
        int puts = fake.puts.get();

        fake.crash();
        cluster.pass();

        assertThat(fake.puts.get()).isEqualTo(puts + 1);
        assertThat(fake.assignment.replicas()).hasSize(2);
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(2);
    }

    @Test
    void aBadUriGivesAConditionAndAnEventNotACrash() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        // The CRD's CEL rule rejects this at apply time on a real API server; the mock does not validate.
        cluster.apply("team-a", "ftp", 1, s -> s.getModel().setUri("ftp://example.com/model.gguf"));
        cluster.apply("team-a", "elsewhere", 1, s -> s.getModel().setUri("https://evil.example.com/model.gguf"));
        cluster.apply("team-a", "good", 1, s -> {});
        cluster.converge();

        var ftp = cluster.get("team-a", "ftp").getStatus();
        assertThat(ftp.condition("Placed").getStatus()).isEqualTo("False");
        assertThat(ftp.condition("Placed").getReason()).isEqualTo("InvalidModelUri");
        assertThat(ftp.condition("Placed").getMessage()).contains("ftp");
        var elsewhere = cluster.get("team-a", "elsewhere").getStatus();
        assertThat(elsewhere.condition("Placed").getReason()).isEqualTo("ModelHostNotAllowed");
        assertThat(elsewhere.condition("Placed").getMessage()).contains("evil.example.com", "allowlist");
        assertThat(cluster.events("team-a", "InvalidModelUri")).isNotEmpty();
        assertThat(cluster.get("team-a", "good").getStatus().getReadyReplicas())
                .as("the others are unaffected")
                .isEqualTo(1);
    }

    @Test
    void aModelServerThatReturnsGarbageGivesInvalidModel() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.models.files.put(
                "/garbage.gguf", "<html>this is not a model</html>".repeat(100).getBytes());
        cluster.apply("team-a", "garbage", 1, s -> s.getModel().setUri(cluster.models.url("/garbage.gguf")));
        cluster.apply("team-a", "missing", 1, s -> s.getModel().setUri(cluster.models.url("/missing.gguf")));
        cluster.converge();

        var garbage = cluster.get("team-a", "garbage").getStatus();
        assertThat(garbage.condition("Placed").getStatus()).isEqualTo("False");
        assertThat(garbage.condition("Placed").getReason()).isEqualTo("InvalidModel");
        assertThat(garbage.condition("Degraded").getStatus()).isEqualTo("True");
        var missing = cluster.get("team-a", "missing").getStatus();
        assertThat(missing.condition("Placed").getStatus()).isEqualTo("False");
        assertThat(missing.condition("Placed").getMessage()).contains("404");
        assertThat(cluster.hostPods("team-a")).isEmpty();
    }

    @Test
    void aHostWhoseAdminApiTimesOutMakesTheDeploymentDegraded() throws Exception {
        cluster.config = cluster.config.withHttpTimeout(java.time.Duration.ofMillis(300));
        cluster.restartOperator();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.values().iterator().next();

        fake.delayMillis = 1500;
        cluster.pass();

        var st = cluster.get("team-a", "chat").getStatus();
        assertThat(st.condition("Degraded").getStatus()).isEqualTo("True");
        assertThat(st.condition("Degraded").getReason()).isEqualTo("HostUnavailable");
        assertThat(st.condition("Degraded").getMessage()).contains("timed out");
        assertThat(cluster.events("team-a", "HostTimeout")).isNotEmpty();
        assertThat(cluster.hostPods("team-a").get(0).getMetadata().getLabels())
                .as("a host whose admin API is slow keeps its endpoints: its readiness probe judges whether it serves")
                .containsEntry(Labels.readyLabel("chat"), "true");

        fake.delayMillis = 0;
        fake.garbage = true;
        cluster.pass();
        assertThat(cluster.get("team-a", "chat")
                        .getStatus()
                        .condition("Degraded")
                        .getMessage())
                .contains("unparseable");
    }

    @Test
    void aModelThatFailsToLoadOnItsHostIsReported() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.values().iterator().next();

        fake.failModelReason = "sha256 mismatch: expected abc, found def";
        cluster.pass();

        var st = cluster.get("team-a", "chat").getStatus();
        assertThat(st.condition("Degraded").getReason()).isEqualTo("ModelLoadFailed");
        assertThat(st.condition("Degraded").getMessage()).contains("sha256 mismatch");
        assertThat(st.condition("Ready").getStatus()).isEqualTo("False");
        assertThat(cluster.events("team-a", "ModelLoadFailed")).isNotEmpty();
    }

    @Test
    void aPvcModelIsInspectedByAProbePodOnceAndThenPlaced() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "from-pvc", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));

        cluster.pass();
        var inspecting = cluster.get("team-a", "from-pvc").getStatus().condition("Placed");
        assertThat(inspecting.getStatus()).isEqualTo("False");
        assertThat(inspecting.getReason()).isEqualTo("InspectingModel");
        Pod probe = client.pods()
                .inNamespace("team-a")
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_PROBE)
                .list()
                .getItems()
                .get(0);
        assertThat(probe.getSpec()
                        .getVolumes()
                        .get(0)
                        .getPersistentVolumeClaim()
                        .getClaimName())
                .isEqualTo("models");
        assertThat(probe.getSpec().getContainers().get(0).getArgs()).containsSequence("inspect", "--json");
        assertThat(probe.getMetadata().getOwnerReferences())
                .as("the garbage collector removes the probe with the deployment, read or not")
                .singleElement()
                .satisfies(o -> {
                    assertThat(o.getUid())
                            .isEqualTo(cluster.get("team-a", "from-pvc")
                                    .getMetadata()
                                    .getUid());
                    assertThat(o.getController()).isNotEqualTo(Boolean.TRUE);
                });

        cluster.kubelet();
        cluster.converge();
        var st = cluster.get("team-a", "from-pvc").getStatus();
        assertThat(st.condition("Placed").getStatus()).isEqualTo("True");
        assertThat(st.getModel().getArchitecture()).isEqualTo("llama");
        assertThat(client.pods()
                        .inNamespace("team-a")
                        .withLabel(Labels.COMPONENT, Labels.COMPONENT_PROBE)
                        .list()
                        .getItems())
                .as("the probe pod is removed once read")
                .isEmpty();

        cluster.apply("team-a", "same-file", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        cluster.converge();
        assertThat(cluster.probes)
                .as("the summary is cached per URI and digest")
                .hasSize(1);
        assertThat(cluster.get("team-a", "same-file").getStatus().getReadyReplicas())
                .isEqualTo(1);
    }

    @Test
    void pvcAndFileModelsAreMountedReadOnlyIntoTheHostPodWhichIsGivenFilePaths() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "from-pvc", 1, s -> s.getModel().setUri("pvc://models/llm/stories260K-q8_0.gguf"));
        cluster.apply("team-a", "from-node", 1, s -> s.getModel().setUri("file:///data/models/stories260K-q8_0.gguf"));
        cluster.converge();
        cluster.converge();

        List<Pod> hosts = cluster.hostPods("team-a");
        assertThat(hosts).hasSize(1);
        Pod host = hosts.get(0);
        var volumes = host.getSpec().getVolumes();
        var claim = volumes.stream()
                .filter(v -> v.getPersistentVolumeClaim() != null
                        && "models".equals(v.getPersistentVolumeClaim().getClaimName()))
                .findFirst()
                .orElseThrow();
        assertThat(claim.getPersistentVolumeClaim().getReadOnly()).isTrue();
        var dir = volumes.stream()
                .filter(v -> v.getHostPath() != null
                        && "/data/models".equals(v.getHostPath().getPath()))
                .findFirst()
                .orElseThrow();
        var mounts = host.getSpec().getContainers().get(0).getVolumeMounts();
        var claimMount = mounts.stream()
                .filter(m -> m.getName().equals(claim.getName()))
                .findFirst()
                .orElseThrow();
        var dirMount = mounts.stream()
                .filter(m -> m.getName().equals(dir.getName()))
                .findFirst()
                .orElseThrow();
        assertThat(claimMount.getReadOnly()).isTrue();
        assertThat(dirMount.getReadOnly()).isTrue();
        assertThat(claimMount.getMountPath()).startsWith("/source/");
        assertThat(dirMount.getMountPath())
                .as("a node directory appears at its own path")
                .isEqualTo("/data/models");

        HostAssignment a = assignmentOf(host);
        assertThat(a.models())
                .extracting(m -> m.uri())
                .containsExactlyInAnyOrder(
                        "file://" + claimMount.getMountPath() + "/llm/stories260K-q8_0.gguf",
                        "file:///data/models/stories260K-q8_0.gguf");
        assertThat(cluster.hosts.get(host.getMetadata().getName()).assignment).isEqualTo(a);
    }

    @Test
    void aHostPodRewrittenAfterAnOperatorRestartMountsItsClaimNotTheHostsInnerPathAsAHostPath() throws Exception {
        // Found on a real node: the restarted operator knows the model only from the ledger, whose URI is the one
        // inside the host pod (file:///source/...); a host pod written then mounted that path as a hostPath, which
        // Pod Security "restricted" refuses (403), so the host stayed as it was.
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "from-pvc", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        cluster.loop.runPass();
        cluster.kubelet();
        cluster.converge();
        List<io.fabric8.kubernetes.api.model.Volume> before =
                cluster.hostPods("team-a").get(0).getSpec().getVolumes();

        cluster.restartOperator();
        cluster.apply("team-a", "from-pvc", 2, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        // The probe pod of the restarted operator has not run yet: the deployment is planned from the ledger,
        // and the host pod is written again for the second replica.
        cluster.loop.runPass();

        List<Pod> hosts = cluster.hostPods("team-a");
        assertThat(hosts).hasSize(1);
        assertThat(hosts.get(0).getSpec().getVolumes())
                .as("no hostPath for a pvc:// model")
                .allSatisfy(v -> assertThat(v.getHostPath()).isNull())
                .isEqualTo(before);
        cluster.kubelet();
        cluster.converge();
        assertThat(cluster.get("team-a", "from-pvc").getStatus().getReadyReplicas())
                .isEqualTo(2);
    }

    @Test
    void anHttpModelIsGivenToTheHostAsItsUriWithNoSourceVolume() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(host.getSpec().getVolumes())
                .extracting(v -> v.getName())
                .containsExactly("model-cache", "tmp", "admin-token");
        assertThat(assignmentOf(host).models().get(0).uri())
                .isEqualTo(cluster.get("team-a", "chat").getSpec().getModel().getUri());
    }

    @Test
    void aDottedNameGetsAValidServiceNamedInTheEndpoint() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "llama-3.1-8b", 1, s -> {});
        cluster.converge();
        String service = "llama-3-1-8b-" + Labels.hash("llama-3.1-8b", 12);
        assertThat(client.services().inNamespace("team-a").withName(service).get())
                .isNotNull();
        assertThat(cluster.get("team-a", "llama-3.1-8b").getStatus().getEndpoint())
                .isEqualTo("http://" + service + ".team-a.svc.cluster.local/v1");
    }

    @Test
    void aServiceThatCannotBeWrittenDegradesOnlyItsDeployment() throws Exception {
        server.expect()
                .post()
                .withPath("/api/v1/namespaces/team-b/services")
                .andReturn(
                        422,
                        "{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":422,"
                                + "\"message\":\"Service \\\"bad\\\" is invalid\"}")
                .always();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-b", "bad", 1, s -> {});
        cluster.apply("team-a", "good", 1, s -> {});
        cluster.converge();

        assertThat(client.services().inNamespace("team-a").withName("good").get())
                .isNotNull();
        assertThat(cluster.get("team-a", "good").getStatus().getReadyReplicas()).isEqualTo(1);
        var bad = cluster.get("team-b", "bad").getStatus();
        assertThat(bad.condition("Degraded").getStatus()).isEqualTo("True");
        assertThat(bad.condition("Degraded").getReason()).isEqualTo("ServiceFailed");
        assertThat(bad.condition("Degraded").getMessage()).contains("Service bad");
        assertThat(cluster.events("team-b", "ServiceFailed")).isNotEmpty();
    }

    @Test
    void aFailedHostPodIsReplacedWithTheSameAssignment() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 2, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        HostAssignment before = assignmentOf(host);
        String uid = host.getMetadata().getUid();

        // The kubelet evicts it.
        host.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder()
                .withPhase("Failed")
                .withReason("Evicted")
                .withMessage("The node was low on resource: memory.")
                .build());
        client.pods().inNamespace("team-a").resource(host).updateStatus();
        cluster.hosts.remove(host.getMetadata().getName()).close();

        cluster.pass();
        // Deleted with its grace period; its successor of the same name comes once it is gone.
        assertThat(cluster.hostPods("team-a"))
                .noneSatisfy(p -> assertThat(p.getMetadata().getUid()).isEqualTo(uid));
        cluster.pass();
        List<Pod> after = cluster.hostPods("team-a");
        assertThat(after).singleElement().satisfies(p -> {
            assertThat(p.getMetadata().getUid()).isNotEqualTo(uid);
            assertThat(p.getMetadata().getName()).isEqualTo(host.getMetadata().getName());
            assertThat(p.getStatus() == null || p.getStatus().getPhase() == null)
                    .as("a new pod, not yet run")
                    .isTrue();
            assertThat(assignmentOf(p).replicas()).isEqualTo(before.replicas());
            assertThat(assignmentOf(p).models()).isEqualTo(before.models());
        });
        cluster.converge();
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(2);
    }

    /** A cluster with one CPU node of 64 GiB, half of it offered to CPU hosts. */
    private void cpuCluster() throws Exception {
        cluster.close();
        OperatorConfig d = OperatorConfig.defaults();
        var inv = d.inventory();
        cluster = cluster(new OperatorConfig(
                d.runtimeImage(),
                d.imagePullPolicy(),
                d.modelCacheHostPath(),
                d.modelCachePvc(),
                d.modelCacheSizeLimit(),
                d.allowedModelHosts(),
                d.httpTimeout(),
                d.maxHeaderBytes(),
                d.dcgmService(),
                d.dcgmPort(),
                new io.stowage.operator.inventory.InventoryConfig(
                        inv.reserveFraction(),
                        inv.reserveFloorBytes(),
                        0.5,
                        inv.gpuHostOverheadBytes(),
                        inv.cpuHostOverheadBytes()),
                d.memory(),
                d.serviceDomain(),
                d.namespaces()));
        client.nodes()
                .resource(new io.fabric8.kubernetes.api.model.NodeBuilder()
                        .withNewMetadata()
                        .withName("cpu-a")
                        .addToLabels("kubernetes.io/hostname", "cpu-a")
                        .endMetadata()
                        .withNewStatus()
                        .addToAllocatable("memory", new io.fabric8.kubernetes.api.model.Quantity("64Gi"))
                        .addNewCondition()
                        .withType("Ready")
                        .withStatus("True")
                        .endCondition()
                        .endStatus()
                        .build())
                .create();
    }

    @Test
    void aCpuHostWhoseMemoryGrowsIsResizedInPlaceWhereTheApiServerCan() throws Exception {
        // Found on a real node: a second model on a CPU host grew its planned memory and the host pod was
        // replaced, so the model it served lost its endpoint. Kubernetes 1.33+ resizes a pod in place.
        cpuCluster();
        cluster.apply("team-a", "on-cpu", 1, s -> {
            s.getPlacement().setDevice(io.stowage.operator.crd.PlacementSpec.DeviceKindSpec.cpu);
            s.getContext().setMaxTokens(256);
        });
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        String name = host.getMetadata().getName();
        long before = memoryLimit(host);
        List<String> patches = new java.util.concurrent.CopyOnWriteArrayList<>();
        server.expect()
                .patch()
                .withPath("/api/v1/namespaces/team-a/pods/" + name + "/resize")
                .andReply(200, req -> {
                    // As the API server does: the JSON patch applied to the pod's container resources. The mock
                    // answers on its one thread, so the stored pod is updated after the answer.
                    String body = req.getUtf8Body();
                    patches.add(body);
                    try {
                        var resources = HostAdminClient.JSON.treeToValue(
                                HostAdminClient.JSON.readTree(body).get(0).get("value"),
                                io.fabric8.kubernetes.api.model.ResourceRequirements.class);
                        Pod p = new io.fabric8.kubernetes.api.model.PodBuilder(host).build();
                        p.getSpec().getContainers().get(0).setResources(resources);
                        Thread.ofVirtual()
                                .start(() -> client.pods()
                                        .inNamespace("team-a")
                                        .withName(name)
                                        .edit(x -> {
                                            x.getSpec().getContainers().get(0).setResources(resources);
                                            return x;
                                        }));
                        return p;
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                })
                .always();

        cluster.apply("team-a", "on-cpu", 1, s -> {
            s.getPlacement().setDevice(io.stowage.operator.crd.PlacementSpec.DeviceKindSpec.cpu);
            s.getContext().setMaxTokens(512);
        });
        cluster.converge();

        Pod grown = cluster.hostPods("team-a").get(0);
        assertThat(grown.getMetadata().getUid())
                .as("the same pod")
                .isEqualTo(host.getMetadata().getUid());
        assertThat(memoryLimit(grown)).isGreaterThan(before);
        assertThat(patches)
                .isNotEmpty()
                .first()
                .satisfies(b -> assertThat(b).contains("\"op\":\"replace\"").contains("/spec/containers/0/resources"));
        assertThat(cluster.get("team-a", "on-cpu").getStatus().getReadyReplicas())
                .isEqualTo(1);
        int resizes = patches.size();
        cluster.converge();
        assertThat(patches).as("an idle pass resizes nothing").hasSize(resizes);
    }

    @Test
    void aCpuHostAsksForTheMemoryPlannedForItsContentsNotTheWholeShare() throws Exception {
        cpuCluster();
        cluster.apply("team-a", "on-cpu", 1, s -> {
            s.getPlacement().setDevice(io.stowage.operator.crd.PlacementSpec.DeviceKindSpec.cpu);
            s.getContext().setMaxTokens(256);
        });
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(host.getMetadata().getAnnotations()).containsEntry(Labels.DEVICE_ANNOTATION, "cpu-a/cpu");
        var mem = cluster.get("team-a", "on-cpu").getStatus().getMemory();
        long one =
                mem.getOverheadBytes() + mem.getWorkspaceBytes() + mem.getWeightsBytes() + mem.getKvPerReplicaBytes();
        assertThat(memoryLimit(host)).isEqualTo(one).isLessThan(32L << 30);
        assertThat(host.getSpec()
                        .getContainers()
                        .get(0)
                        .getResources()
                        .getRequests()
                        .get("memory"))
                .isEqualTo(host.getSpec()
                        .getContainers()
                        .get(0)
                        .getResources()
                        .getLimits()
                        .get("memory"));

        // A longer context needs more KV: the mock API server has no resize subresource, so the host is replaced.
        cluster.apply("team-a", "on-cpu", 1, s -> {
            s.getPlacement().setDevice(io.stowage.operator.crd.PlacementSpec.DeviceKindSpec.cpu);
            s.getContext().setMaxTokens(512);
        });
        cluster.converge();
        Pod grown = cluster.hostPods("team-a").get(0);
        var mem2 = cluster.get("team-a", "on-cpu").getStatus().getMemory();
        assertThat(mem2.getKvPerReplicaBytes()).isEqualTo(2 * mem.getKvPerReplicaBytes());
        assertThat(memoryLimit(grown)).isEqualTo(one + mem.getKvPerReplicaBytes());
        assertThat(cluster.get("team-a", "on-cpu").getStatus().getReadyReplicas())
                .isEqualTo(1);
    }

    static long memoryLimit(Pod p) {
        return io.fabric8.kubernetes.api.model.Quantity.getAmountInBytes(p.getSpec()
                        .getContainers()
                        .get(0)
                        .getResources()
                        .getLimits()
                        .get("memory"))
                .longValue();
    }

    /** runAsNonRoot, a read-only root, no privilege escalation, no capabilities, the runtime's seccomp profile. */
    static void assertHardened(Pod p) {
        var podSc = p.getSpec().getSecurityContext();
        var c = p.getSpec().getContainers().get(0).getSecurityContext();
        assertThat(podSc.getRunAsNonRoot()).as("runAsNonRoot").isTrue();
        assertThat(podSc.getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
        assertThat(c.getReadOnlyRootFilesystem()).as("readOnlyRootFilesystem").isTrue();
        assertThat(c.getAllowPrivilegeEscalation())
                .as("allowPrivilegeEscalation")
                .isFalse();
        assertThat(c.getCapabilities().getDrop()).containsExactly("ALL");
        assertThat(c.getCapabilities().getAdd()).isNullOrEmpty();
    }

    @Test
    void probeAndHostPodsHaveTheSameHardenedSecurityContext() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "from-pvc", 1, s -> s.getModel().setUri("pvc://models/stories260K-q8_0.gguf"));
        cluster.pass();
        Pod probe = client.pods()
                .inNamespace("team-a")
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_PROBE)
                .list()
                .getItems()
                .get(0);
        assertHardened(probe);
        cluster.kubelet();
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        assertHardened(host);
        assertThat(probe.getSpec().getContainers().get(0).getSecurityContext().getCapabilities())
                .isEqualTo(host.getSpec()
                        .getContainers()
                        .get(0)
                        .getSecurityContext()
                        .getCapabilities());
    }

    @Test
    void aHostWhoseContainerKeepsFailingDegradesWithItsTerminationMessage() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        String last = "stowage host: device cuda is not available: this runtime has no CUDA backend yet";
        // The kubelet: the runtime exits at once, again and again.
        host.setStatus(new io.fabric8.kubernetes.api.model.PodStatusBuilder()
                .withPhase("Running")
                .withPodIP("127.0.0.1")
                .addNewContainerStatus()
                .withName("runtime")
                .withReady(false)
                .withRestartCount(4)
                .withNewState()
                .withNewWaiting()
                .withReason("CrashLoopBackOff")
                .withMessage("back-off 1m20s restarting failed container")
                .endWaiting()
                .endState()
                .withNewLastState()
                .withNewTerminated()
                .withExitCode(2)
                .withReason("Error")
                .withMessage(last + "\n")
                .endTerminated()
                .endLastState()
                .endContainerStatus()
                .build());
        client.pods().inNamespace("team-a").resource(host).updateStatus();

        cluster.pass();
        var degraded = cluster.get("team-a", "chat").getStatus().condition("Degraded");
        assertThat(degraded.getStatus()).isEqualTo("True");
        assertThat(degraded.getReason()).isEqualTo("HostFailed");
        assertThat(degraded.getMessage())
                .contains(host.getMetadata().getName())
                .contains("exited with code 2")
                .contains("CrashLoopBackOff")
                .contains(last);
        assertThat(cluster.events("team-a", "HostFailed"))
                .singleElement()
                .satisfies(e -> assertThat(e.getMessage()).contains(last));
        assertThat(host.getSpec().getContainers().get(0).getTerminationMessagePolicy())
                .isEqualTo("FallbackToLogsOnError");
    }

    @Test
    void aProbeThatFailsSaysWhy() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "nope", 1, s -> s.getModel().setUri("s3://bucket/absent.gguf"));
        cluster.converge();

        var placed = cluster.get("team-a", "nope").getStatus().condition("Placed");
        assertThat(placed.getReason()).isEqualTo("InvalidModel");
        assertThat(placed.getMessage()).contains("exit 1", "no such file");
    }

    @Test
    void aDeletedHostPodOrServiceComesBack() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        client.pods()
                .inNamespace("team-a")
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .delete();
        client.services().inNamespace("team-a").withName("chat").delete();

        cluster.converge();

        assertThat(cluster.hostPods("team-a")).hasSize(1);
        assertThat(client.services().inNamespace("team-a").withName("chat").get())
                .isNotNull();
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    @Test
    void maxTokensAboveTheModelsContextIsRefusedWithTheLimit() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "too-long", 1, s -> s.getContext().setMaxTokens(4096));
        cluster.converge();

        var placed = cluster.get("team-a", "too-long").getStatus().condition("Placed");
        assertThat(placed.getStatus()).isEqualTo("False");
        assertThat(placed.getReason()).isEqualTo("InvalidContext");
        assertThat(placed.getMessage()).contains("4096", "512");
        assertThat(cluster.hostPods("team-a")).isEmpty();
    }

    @Test
    void anUnsetMaxTokensIsTheDefaultCappedAtTheModelsContextAsInPlan() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        // stories260K's context is 512, below the default 4096: plan and local mode cap it, and so does the operator.
        cluster.apply("team-a", "chat", 1, s -> s.getContext().setMaxTokens(null));
        cluster.converge();

        assertThat(cluster.get("team-a", "chat").getStatus().condition("Placed").getStatus())
                .isEqualTo("True");
        FakeHost fake = cluster.hosts.values().iterator().next();
        assertThat(fake.assignment.replicas().get(0).maxTokens()).isEqualTo(512);
        assertThat(fake.assignment.replicas().get(0).maxSequences()).isEqualTo(4);
    }

    @Test
    void aChangedContextIsPushedToTheHostWithANewGeneration() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.values().iterator().next();
        long generation = fake.assignment.generation();
        long kv = fake.assignment.replicas().get(0).kvBytes();

        cluster.apply("team-a", "chat", 1, s -> s.getContext().setMaxSequences(16));
        cluster.converge();

        assertThat(fake.assignment.generation()).isGreaterThan(generation);
        assertThat(fake.assignment.replicas()).singleElement().satisfies(r -> {
            assertThat(r.maxSequences()).isEqualTo(16);
            assertThat(r.kvBytes()).isEqualTo(kv * 4);
        });
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(1);
    }

    @Test
    void aNewModelVersionStartsBesideTheOldOneWhichLeavesOnceTheNewIsReady() throws Exception {
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.addGpuNode("gpu-b", TestCluster.a100Labels());
        byte[] gguf = ModelServer.resource("/models/stories260K-q8_0.gguf");
        cluster.models.files.put("/v1.gguf", gguf);
        cluster.models.files.put("/v2.gguf", gguf);
        // Two replicas of 0.5 compute fill one GPU; the new version must start on the other.
        cluster.apply("team-a", "chat", 2, s -> {
            s.getModel().setUri(cluster.models.url("/v1.gguf"));
            s.getPlacement().setComputeShare(0.5);
        });
        cluster.converge();
        Pod v1Host = cluster.hostPods("team-a").get(0);
        String v1Digest = assignmentOf(v1Host).models().get(0).digest();

        cluster.apply("team-a", "chat", 2, s -> {
            s.getModel().setUri(cluster.models.url("/v2.gguf"));
            s.getPlacement().setComputeShare(0.5);
        });
        cluster.pass();

        Pod stillThere = client.pods()
                .inNamespace("team-a")
                .withName(v1Host.getMetadata().getName())
                .get();
        assertThat(assignmentOf(stillThere).replicas())
                .as("the old version keeps serving while the new one starts")
                .extracting(r -> r.modelDigest())
                .containsExactly(v1Digest, v1Digest);
        assertThat(stillThere.getMetadata().getLabels()).containsEntry(Labels.readyLabel("chat"), "true");
        assertThat(cluster.hostPods("team-a")).hasSize(2);

        cluster.converge();

        assertThat(cluster.hostPods("team-a")).singleElement().satisfies(p -> {
            assertThat(p.getMetadata().getName())
                    .isNotEqualTo(v1Host.getMetadata().getName());
            assertThat(assignmentOf(p).models()).singleElement().satisfies(m -> {
                assertThat(m.digest()).isNotEqualTo(v1Digest);
                assertThat(m.uri()).endsWith("/v2.gguf");
            });
        });
        assertThat(cluster.get("team-a", "chat").getStatus().getReadyReplicas()).isEqualTo(2);
    }

    @Test
    void deploymentsOutsideTheManagedNamespacesAreLeftAlone() throws Exception {
        OperatorConfig d = cluster.config;
        cluster.config = new OperatorConfig(
                d.runtimeImage(),
                d.imagePullPolicy(),
                d.modelCacheHostPath(),
                d.modelCachePvc(),
                d.modelCacheSizeLimit(),
                d.allowedModelHosts(),
                d.httpTimeout(),
                d.maxHeaderBytes(),
                d.dcgmService(),
                d.dcgmPort(),
                d.inventory(),
                d.memory(),
                d.serviceDomain(),
                List.of("team-a"));
        cluster.restartOperator();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "mine", 1, s -> {});
        cluster.apply("team-b", "not-mine", 1, s -> {});
        cluster.converge();

        assertThat(cluster.get("team-a", "mine").getStatus().getReadyReplicas()).isEqualTo(1);
        LlmDeployment other = cluster.get("team-b", "not-mine");
        assertThat(other.getStatus() == null
                        || other.getStatus().getConditions().isEmpty())
                .as("no status written")
                .isTrue();
        assertThat(other.getMetadata().getFinalizers()).isEmpty();
        assertThat(cluster.hostPods("team-b")).isEmpty();
    }
}
