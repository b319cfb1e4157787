package io.stowage.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.hostapi.HostApi;
import io.stowage.hostapi.HostState;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.crd.PlacementSpec;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.inventory.Inventory;
import io.stowage.operator.inventory.InventoryConfig;
import io.stowage.operator.model.ModelResolver;
import io.stowage.operator.reconcile.EventRecorder;
import io.stowage.operator.reconcile.Labels;
import io.stowage.operator.reconcile.OperatorConfig;
import io.stowage.operator.reconcile.PlacementLoop;
import io.stowage.operator.tls.HostTlsSecrets;
import io.stowage.placement.plan.StowagePlanner;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The end-to-end scenario on a machine without Docker: the operator's placement loop against Fabric8's mock API
 * server, with a fake kubelet that runs the runtime image's real {@code quarkus-run.jar} for the probe and host pods.
 */
@EnableKubernetesMockClient(crud = true)
class LocalProcessE2ETest {
    private static final String NS = "team-a";
    private static final String NAME = "stories";
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    KubernetesClient client;

    @TempDir
    Path work;

    private final Path root =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    private ProcessKubelet kubelet;
    private PlacementLoop loop;
    private HostTlsSecrets tls;
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeEach
    void setUp() throws Exception {
        Path jar = Path.of(System.getProperty(
                "stowage.runtime.jar",
                root.resolve("runtime-image/target/quarkus-app/quarkus-run.jar").toString()));
        assertThat(jar)
                .as("the runtime host (build it with ./mvnw -pl e2e -am verify, which packages runtime-image first)")
                .isRegularFile();
        client.apiextensions()
                .v1()
                .customResourceDefinitions()
                .resource(Serialization.unmarshal(
                        Files.readString(root.resolve("crds/" + LlmDeployment.CRD_NAME + "-v1.yml")),
                        CustomResourceDefinition.class))
                .create();
        kubelet = new ProcessKubelet(client, jar, work);
        OperatorConfig defaults = OperatorConfig.defaults();
        InventoryConfig inv = defaults.inventory();
        // Half of a node's allocatable memory serves models on its CPU (off by default in the operator).
        OperatorConfig config = defaults.withInventory(new InventoryConfig(
                inv.reserveFraction(),
                inv.reserveFloorBytes(),
                0.5,
                inv.gpuHostOverheadBytes(),
                inv.cpuHostOverheadBytes()));
        Clock clock = Clock.systemUTC();
        // As in a cluster: the hosts' admin API over TLS with the operator's CA.
        tls = new HostTlsSecrets(
                client,
                new HostTlsSecrets.Settings(
                        "stowage-system", Duration.ofDays(90), Duration.ofDays(3650), Duration.ofMinutes(10)),
                clock);
        loop = new PlacementLoop(
                client,
                config,
                new ModelResolver(client, config, clock),
                new StowagePlanner()::plan,
                new HostAdminClient(Duration.ofSeconds(5)),
                kubelet::adminUri,
                List::of,
                new EventRecorder(client, clock),
                clock,
                tls);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (kubelet != null) {
            for (var h : kubelet.started) {
                if (h.process().isAlive() || Files.exists(h.log())) {
                    System.out.println("--- log of host " + h.pod() + " (tail) ---");
                    List<String> lines = Files.readAllLines(h.log());
                    lines.subList(Math.max(0, lines.size() - 20), lines.size()).forEach(System.out::println);
                }
            }
            kubelet.close();
        }
    }

    @Test
    void aCpuDeploymentIsProbedServedScaledOnOneCopyOfTheWeightsAndCleanedUp() throws Exception {
        addCpuNode("cpu-a");
        Path model = root.resolve("examples/local/models/stories260K-q8_0.gguf");
        LlmDeploymentSpec spec = new LlmDeploymentSpec(model.toUri().toString(), 1);
        spec.getContext().setMaxTokens(256);
        spec.getContext().setMaxSequences(2);
        spec.getPlacement().setDevice(PlacementSpec.DeviceKindSpec.cpu);
        spec.getPlacement().setComputeShare(0.25);
        client.resource(new LlmDeployment(NS, NAME, spec)).create();

        await("Ready with 1 replica", () -> readyReplicas() == 1);

        // The header came from the real runtime's inspect in a probe pod.
        assertThat(kubelet.probes).containsExactly(model.toUri().toString());
        LlmDeployment d = get();
        assertThat(d.getStatus().getModel().getArchitecture()).isEqualTo("llama");
        assertThat(d.getStatus().getModel().getQuantization()).isEqualTo("Q8_0");
        List<Pod> hosts = hostPods();
        assertThat(hosts).hasSize(1);
        Pod host = hosts.get(0);
        assertThat(host.getMetadata().getAnnotations())
                .containsEntry(Labels.DEVICE_ANNOTATION, Inventory.cpuId("cpu-a"));
        ProcessKubelet.HostProcess process =
                kubelet.hosts.get(host.getMetadata().getName());
        HostState state = state(process);
        assertThat(state.device().name())
                .as("the host reports the device the operator named in %s", HostApi.DEVICE_ID_ENV)
                .isEqualTo(Inventory.cpuId("cpu-a"));

        String answer = chatThroughTheService("Once upon a time");
        assertThat(answer).isNotBlank();

        client.resources(LlmDeployment.class).inNamespace(NS).withName(NAME).edit(x -> {
            x.getSpec().setReplicas(2);
            return x;
        });
        await("Ready with 2 replicas", () -> readyReplicas() == 2);
        // The mock API server has no pods/resize: a CPU host whose memory grew is replaced make before break (a
        // new pod serves both replicas before the old one goes), so wait for the one host left and ask it.
        await("one host pod left", () -> hostPods().size() == 1);
        List<Pod> grown = hostPods();
        assertThat(grown).as("both replicas on the one CPU device").hasSize(1);
        ProcessKubelet.HostProcess serving =
                kubelet.hosts.get(grown.get(0).getMetadata().getName());
        HostState two = state(serving);
        assertThat(two.replicas()).hasSize(2);
        assertThat(two.models()).as("the weights stay one copy").hasSize(1);
        assertThat(two.models().get(0).weightBytes())
                .isEqualTo(state.models().get(0).weightBytes());
        assertThat(chatThroughTheService("The dog")).isNotBlank();

        client.resources(LlmDeployment.class).inNamespace(NS).withName(NAME).delete();
        await(
                "the deployment and its host gone",
                () -> get() == null && hostPods().isEmpty());
        assertThat(client.services().inNamespace(NS).withName(NAME).get()).isNull();
        await(
                "the host processes stopped",
                () -> !process.process().isAlive() && !serving.process().isAlive());
        assertThat(kubelet.hosts).isEmpty();
    }

    /** Sends a chat completion to a pod the deployment's Service selects (its loopback port stands in for the IP). */
    private String chatThroughTheService(String prompt) throws Exception {
        Service svc = client.services().inNamespace(NS).withName(NAME).get();
        assertThat(svc).as("the deployment's Service").isNotNull();
        List<Pod> selected = client.pods()
                .inNamespace(NS)
                .withLabels(svc.getSpec().getSelector())
                .list()
                .getItems();
        assertThat(selected).as("pods behind the Service").isNotEmpty();
        ProcessKubelet.HostProcess h =
                kubelet.hosts.get(selected.get(0).getMetadata().getName());
        String body = JSON.writeValueAsString(java.util.Map.of(
                "model",
                get().servedModelName(),
                "messages",
                List.of(java.util.Map.of("role", "user", "content", prompt)),
                "max_tokens",
                16,
                "temperature",
                0));
        HttpResponse<String> r = http.send(
                HttpRequest.newBuilder(h.api().resolve("/v1/chat/completions"))
                        .timeout(Duration.ofSeconds(30))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode j = JSON.readTree(r.body());
        assertThat(j.at("/usage/completion_tokens").asInt()).isBetween(1, 16);
        return j.at("/choices/0/message/content").asText();
    }

    private HostState state(ProcessKubelet.HostProcess h) throws Exception {
        String token = new String(
                java.util.Base64.getDecoder()
                        .decode(client.secrets()
                                .inNamespace(NS)
                                .withName(Labels.TOKEN_SECRET)
                                .get()
                                .getData()
                                .get(Labels.TOKEN_KEY)),
                java.nio.charset.StandardCharsets.UTF_8);
        assertThat(h.admin().getScheme())
                .as("the admin API of a host speaks TLS")
                .isEqualTo("https");
        return new HostAdminClient(Duration.ofSeconds(5)).state(h.admin(), token, tls.ensure(NS));
    }

    /** Operator passes and kubelet rounds until the condition holds; fails with the status after WAIT. */
    private void await(String what, BooleanSupplier condition) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            loop.runPass();
            kubelet.sync();
            if (condition.getAsBoolean()) {
                return;
            }
            Thread.sleep(200);
        }
        LlmDeployment d = get();
        throw new AssertionError("not reached in " + WAIT.toSeconds() + " s: " + what + "; status: "
                + (d == null ? "deleted" : Serialization.asYaml(d.getStatus())) + "; host pods: "
                + hostPods().stream().map(p -> p.getMetadata().getName()).toList());
    }

    private int readyReplicas() {
        LlmDeployment d = get();
        return d == null || d.getStatus() == null || d.getStatus().getReadyReplicas() == null
                ? 0
                : d.getStatus().getReadyReplicas();
    }

    private LlmDeployment get() {
        return client.resources(LlmDeployment.class)
                .inNamespace(NS)
                .withName(NAME)
                .get();
    }

    private List<Pod> hostPods() {
        return client.pods()
                .inNamespace(NS)
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .list()
                .getItems();
    }

    private Node addCpuNode(String name) {
        return client.nodes()
                .resource(new NodeBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .addToLabels("kubernetes.io/hostname", name)
                        .endMetadata()
                        .withNewSpec()
                        .endSpec()
                        .withNewStatus()
                        .addToAllocatable("memory", new Quantity("8Gi"))
                        .addNewCondition()
                        .withType("Ready")
                        .withStatus("True")
                        .endCondition()
                        .endStatus()
                        .build())
                .create();
    }
}
