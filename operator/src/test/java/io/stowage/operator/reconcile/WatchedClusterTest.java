package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.crd.LlmDeployment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The operator's watches and its pushes: informer caches instead of LISTs, a pass asked for only by changes that
 * matter, idle passes that do not touch the API server, bounded parallel pushes with a per-host timeout, and
 * per-model readiness on shared hosts.
 */
@EnableKubernetesMockClient(crud = true)
class WatchedClusterTest {
    KubernetesClient client;

    KubernetesMockServer server;

    TestCluster cluster;

    @AfterEach
    void tearDown() {
        if (cluster != null) {
            cluster.close();
        }
    }

    /** Every request the mock API server received since the last call. */
    private List<RecordedRequest> drainRequests() throws InterruptedException {
        List<RecordedRequest> out = new ArrayList<>();
        RecordedRequest r;
        while ((r = server.takeRequest(50, TimeUnit.MILLISECONDS)) != null) {
            out.add(r);
        }
        return out;
    }

    private static List<String> writes(List<RecordedRequest> requests) {
        return requests.stream()
                .filter(r -> !"GET".equals(r.getMethod()))
                .map(r -> r.getMethod() + " " + r.getPath())
                .toList();
    }

    /** Waits (bounded) for what a watch delivers a moment later. */
    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 20 s: " + what);
            }
            Thread.sleep(20);
        }
    }

    private Map<String, String> twoGpuNodeLabels() throws Exception {
        Map<String, String> one = new HashMap<>(TestCluster.a100Labels());
        one.put("nvidia.com/gpu.count", "1");
        return one;
    }

    @Test
    void anIdlePassThroughTheCachesSendsNoRequestToTheApiServer() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults()).watched();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 2, s -> {});
        cluster.apply("team-a", "extract", 1, s -> {});
        cluster.converge();
        assertThat(cluster.get("team-a", "chat").getStatus().getReady()).isEqualTo("2/2");

        cluster.awaitCaughtUp();
        drainRequests();
        cluster.loop.runPass();
        List<RecordedRequest> during = drainRequests();

        assertThat(writes(during)).as("an idle pass writes nothing").isEmpty();
        assertThat(during)
                .as("and reads nothing: LlmDeployments, nodes, pods and Services come from the caches")
                .extracting(RecordedRequest::getPath)
                .isEmpty();
    }

    @Test
    void anIdlePassOfTheOldReadPathWritesNothingButListsTheCluster() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        drainRequests();
        cluster.loop.runPass();
        List<RecordedRequest> during = drainRequests();

        assertThat(writes(during)).isEmpty();
        assertThat(during)
                .extracting(RecordedRequest::getPath)
                .anySatisfy(p -> assertThat(p).startsWith("/api/v1/pods"))
                .anySatisfy(p -> assertThat(p).startsWith("/api/v1/nodes"))
                .anySatisfy(p -> assertThat(p).startsWith("/api/v1/namespaces/team-a/services/chat"));
    }

    @Test
    void theCachesAskForAPassOnlyForChangesThatMatterToPlacement() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults()).watched();
        cluster.view.nodes();
        int start = cluster.changes.get();

        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        await(() -> cluster.changes.get() == start + 1, "a new node asks for a pass");

        // A node's annotations change all the time (heartbeats, other controllers): no pass; then a new label, which
        // the same informer delivers after it.
        client.nodes().withName("gpu-a").edit(n -> {
            n.getMetadata().setAnnotations(Map.of("example.com/heartbeat", "1"));
            return n;
        });
        client.nodes().withName("gpu-a").edit(n -> {
            n.getMetadata().getLabels().put("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3");
            return n;
        });
        await(() -> cluster.changes.get() == start + 2, "a changed label asks for a pass");
        assertThat(cluster.changes.get())
                .as("the annotation alone asked for none")
                .isEqualTo(start + 2);
        assertThat(cluster.view.nodes())
                .singleElement()
                .satisfies(n -> assertThat(n.getMetadata().getAnnotations())
                        .as("kept trimmed")
                        .isNullOrEmpty());

        // A pod that holds no GPU is neither kept nor a reason for a pass; one that holds a GPU is both.
        client.pods().inNamespace("apps").resource(pod("web", null)).create();
        client.pods().inNamespace("apps").resource(pod("trainer", "2")).create();
        await(() -> cluster.changes.get() == start + 3, "a GPU pod asks for a pass");
        await(() -> !cluster.view.pods().isEmpty(), "the GPU pod is cached");
        assertThat(cluster.view.pods()).singleElement().satisfies(p -> {
            assertThat(p.getMetadata().getName()).isEqualTo("trainer");
            assertThat(p.getSpec().getContainers().get(0).getImage())
                    .as("trimmed to node, phase and GPUs")
                    .isNull();
        });

        // The status that the loop writes is no reason for another pass; a spec edit is.
        LlmDeployment d = cluster.apply("team-a", "chat", 1, s -> {});
        await(() -> cluster.changes.get() == start + 4, "a new deployment asks for a pass");
        d.setStatus(new io.stowage.operator.crd.LlmDeploymentStatus());
        d.getStatus().setPhase("Placing");
        client.resource(d).updateStatus();
        cluster.apply("team-a", "chat", 2, s -> {});
        await(() -> cluster.changes.get() == start + 5, "a scale asks for a pass");
        assertThat(cluster.changes.get()).isEqualTo(start + 5);

        // What a pass is given is its own: a status it sets and fails to write is not taken for the cluster's.
        cluster.view.deployments().get(0).getStatus().setPhase("Unwritten");
        assertThat(cluster.view.deployments().get(0).getStatus().getPhase()).isEqualTo("Placing");
    }

    private static Pod pod(String name, String gpus) {
        PodBuilder b = new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace("apps")
                .endMetadata()
                .withNewSpec()
                .withNodeName("gpu-a")
                .addNewContainer()
                .withName("main")
                .withImage("example.com/" + name + ":1")
                .withNewResources()
                .endResources()
                .endContainer()
                .endSpec();
        Pod p = b.build();
        if (gpus != null) {
            p.getSpec().getContainers().get(0).getResources().setLimits(Map.of("nvidia.com/gpu", new Quantity(gpus)));
        }
        return p;
    }

    @Test
    void aSlowHostIsReportedAfterItsTimeoutWhileTheOtherHostsArePushedInTheSamePass() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults().withHttpTimeout(Duration.ofSeconds(20)));
        cluster.pushOptions = new PlacementLoop.PushOptions(4, Duration.ofMillis(500));
        cluster.watched();
        cluster.addGpuNode("gpu-a", twoGpuNodeLabels());
        cluster.addGpuNode("gpu-b", twoGpuNodeLabels());
        cluster.apply("team-a", "chat", 1, s -> s.getPlacement().setComputeShare(1.0));
        cluster.apply("team-a", "extract", 1, s -> s.getPlacement().setComputeShare(1.0));
        cluster.converge();
        assertThat(cluster.hostPods("team-a")).hasSize(2);
        String chatHost =
                cluster.get("team-a", "chat").getStatus().getPlacements().get(0).getHost();
        FakeHost slow = cluster.hosts.get(chatHost);

        // The chat host hangs; extract's new context reaches the other host in the same pass.
        slow.delayMillis = 5_000;
        cluster.apply("team-a", "extract", 1, s -> {
            s.getPlacement().setComputeShare(1.0);
            s.getContext().setMaxSequences(8);
        });
        cluster.pass();

        var chat = cluster.get("team-a", "chat").getStatus();
        assertThat(chat.condition("Degraded").getReason()).isEqualTo("HostUnavailable");
        assertThat(chat.condition("Degraded").getMessage())
                .contains(chatHost)
                .contains("did not answer its admin API within 500 ms");
        var extract = cluster.get("team-a", "extract").getStatus();
        assertThat(extract.condition("Degraded").getStatus()).isEqualTo("False");
        assertThat(extract.getReady()).isEqualTo("1/1");
        FakeHost other = cluster.hosts.values().stream()
                .filter(h -> h != slow)
                .findFirst()
                .orElseThrow();
        assertThat(other.assignment.replicas())
                .singleElement()
                .satisfies(r -> assertThat(r.maxSequences()).isEqualTo(8));
        assertThat(cluster.events("team-a", PlacementLoop.HOST_TIMEOUT)).isNotEmpty();
        slow.delayMillis = 0;
    }

    @Test
    void theHostPodIsReadyWhenItsServerIsUpNotWhenEveryModelIsLoaded() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults()).watched();
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        Pod host = cluster.hostPods("team-a").get(0);
        assertThat(host.getSpec()
                        .getContainers()
                        .get(0)
                        .getReadinessProbe()
                        .getHttpGet()
                        .getPath())
                .isEqualTo(HostApi.LIVE_PATH)
                .isNotEqualTo(HostApi.READY_PATH);
    }

    @Test
    void aModelLoadingOrFailingOnASharedHostNeverRemovesAnotherModelsEndpoint() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults()).watched();
        byte[] gguf = ModelServer.resource("/models/stories260K-q8_0.gguf");
        cluster.models.files.put("/other.gguf", gguf);
        cluster.models.files.put("/third.gguf", gguf);
        cluster.addGpuNode("gpu-a", twoGpuNodeLabels());
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        Pod host = cluster.hostPods("team-a").get(0);
        FakeHost fake = cluster.hosts.get(host.getMetadata().getName());

        // A second model joins the host and is still loading: chat keeps its endpoint, extract has none yet.
        fake.loadingUris.add("/other.gguf");
        cluster.apply("team-a", "extract", 1, s -> s.getModel().setUri(cluster.models.url("/other.gguf")));
        cluster.converge();
        assertThat(cluster.hostPods("team-a"))
                .singleElement()
                .satisfies(p -> assertThat(p.getMetadata().getLabels())
                        .containsEntry(Labels.readyLabel("chat"), "true")
                        .doesNotContainKey(Labels.readyLabel("extract")));
        assertThat(cluster.get("team-a", "chat").getStatus().getReady()).isEqualTo("1/1");
        assertThat(cluster.get("team-a", "extract").getStatus().getReady()).isEqualTo("0/1");
        assertThat(cluster.pass().settling())
                .as("a loading model asks for a look soon: its readiness comes without a Kubernetes event")
                .isTrue();

        // It loads: both endpoints.
        fake.loadingUris.clear();
        assertThat(cluster.pass().settling()).isFalse();
        assertThat(cluster.hostPods("team-a").get(0).getMetadata().getLabels())
                .containsEntry(Labels.readyLabel("chat"), "true")
                .containsEntry(Labels.readyLabel("extract"), "true");

        // A third model fails on the host: it gets no endpoint, the other two keep theirs, and the Service of chat
        // still selects the host.
        fake.failingUris.add("/third.gguf");
        cluster.apply("team-a", "summarize", 1, s -> s.getModel().setUri(cluster.models.url("/third.gguf")));
        cluster.converge();
        Pod now = cluster.hostPods("team-a").get(0);
        assertThat(now.getMetadata().getLabels())
                .containsEntry(Labels.readyLabel("chat"), "true")
                .containsEntry(Labels.readyLabel("extract"), "true")
                .doesNotContainKey(Labels.readyLabel("summarize"));
        assertThat(cluster.get("team-a", "summarize")
                        .getStatus()
                        .condition("Degraded")
                        .getReason())
                .isEqualTo("ModelLoadFailed");
        Map<String, String> selector = client.services()
                .inNamespace("team-a")
                .withName("chat")
                .get()
                .getSpec()
                .getSelector();
        assertThat(now.getMetadata().getLabels()).containsAllEntriesOf(selector);

        // Scaled to zero, a deployment's label goes.
        cluster.apply("team-a", "summarize", 0, s -> s.getModel().setUri(cluster.models.url("/third.gguf")));
        cluster.converge();
        assertThat(cluster.hostPods("team-a").get(0).getMetadata().getLabels())
                .doesNotContainKey(Labels.readyLabel("summarize"))
                .containsKey(Labels.readyLabel("chat"));
    }

    @Test
    void aPassNeverPlansFromAViewOlderThanItsOwnLastCommit() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
        cluster.loop.close();
        // A view whose pods lag behind: it shows them as they were before the first pass.
        ClusterView listing = ClusterView.listing(client);
        java.util.concurrent.atomic.AtomicReference<List<Pod>> frozen =
                new java.util.concurrent.atomic.AtomicReference<>();
        ClusterView lagging = new ClusterView() {
            @Override
            public List<LlmDeployment> deployments() {
                return listing.deployments();
            }

            @Override
            public List<io.fabric8.kubernetes.api.model.Node> nodes() {
                return listing.nodes();
            }

            @Override
            public List<Pod> pods() {
                List<Pod> f = frozen.get();
                return f != null ? f : listing.pods();
            }

            @Override
            public io.fabric8.kubernetes.api.model.Service service(String namespace, String name) {
                return listing.service(namespace, name);
            }
        };
        java.time.Clock clock = java.time.Clock.systemUTC();
        cluster.loop = new PlacementLoop(
                client,
                cluster.config,
                new io.stowage.operator.model.ModelResolver(client, cluster.config, clock),
                new io.stowage.placement.plan.StowagePlanner()::plan,
                new io.stowage.operator.host.HostAdminClient(cluster.config.httpTimeout()),
                pod -> {
                    FakeHost h = cluster.hosts.get(pod.getMetadata().getName());
                    return h == null ? null : h.uri();
                },
                List::of,
                new EventRecorder(client, clock),
                clock,
                null,
                lagging,
                PlacementLoop.PushOptions.DEFAULTS);
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
        cluster.apply("team-a", "chat", 1, s -> {});
        frozen.set(listing.pods());

        cluster.loop.runPass();
        assertThat(cluster.hostPods("team-a")).hasSize(1);
        drainRequests();
        cluster.loop.runPass();

        assertThat(writes(drainRequests()))
                .as("the host pod the first pass created is not created again from a view without it")
                .noneMatch(w -> w.startsWith("POST /api/v1/namespaces/team-a/pods"));
        assertThat(cluster.hostPods("team-a")).hasSize(1);
        assertThat(cluster.get("team-a", "chat").getStatus().condition("Placed").getStatus())
                .isEqualTo("True");
    }
}
