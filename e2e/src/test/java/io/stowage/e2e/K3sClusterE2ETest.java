package io.stowage.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.LocalPortForward;
import io.stowage.operator.crd.LlmDeployment;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.images.builder.ImageFromDockerfile;
import org.testcontainers.k3s.K3sContainer;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.MountableFile;

/**
 * The cluster e2e's first scenarios on K3s through Testcontainers, for machines with a Docker daemon and a registry:
 * both images built from the project's Dockerfiles on a public JRE base, loaded into a K3s node, helm/stowage
 * installed with the real helm library, examples/k8s/cpu-serving.yaml served through its Service (port-forwarded to
 * 127.0.0.1) with stories260K's golden greedy text, scaled through the scale subresource, and deleted with nothing
 * left.
 *
 * <p>Off unless {@code STOWAGE_K3S_E2E=1}: it pulls {@code rancher/k3s} and the base image from their registries,
 * which the project's build machines cannot reach. There {@code ./stowage test --cluster} runs these scenarios and
 * more on a node built from upstream sources (e2e/cluster). {@code STOWAGE_K3S_IMAGE} and
 * {@code STOWAGE_JRE_BASE_IMAGE} override the images.
 */
class K3sClusterE2ETest {
    static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    static final String K3S_IMAGE = System.getenv().getOrDefault("STOWAGE_K3S_IMAGE", "rancher/k3s:v1.35.4-k3s1");
    static final String JRE_BASE = System.getenv().getOrDefault("STOWAGE_JRE_BASE_IMAGE", "eclipse-temurin:21-jre");
    static final String NS = "default";
    static final String STORE = "/var/lib/stowage-e2e/model-store";
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void needsDockerAndARegistry() {
        String why = "K3s variant of the cluster e2e skipped: it needs a Docker daemon and a registry to pull "
                + K3S_IMAGE + " and " + JRE_BASE + " from (set STOWAGE_K3S_E2E=1 where both exist); on this kind"
                + " of machine ./stowage test --cluster runs the scenarios on a node built from upstream sources";
        if (!"1".equals(System.getenv("STOWAGE_K3S_E2E"))) {
            System.out.println(why);
        }
        assumeTrue("1".equals(System.getenv("STOWAGE_K3S_E2E")), why);
        assumeTrue(
                DockerClientFactory.instance().isDockerAvailable(),
                "K3s variant skipped: STOWAGE_K3S_E2E=1 but no Docker daemon answers");
    }

    @Test
    void theChartServesTheCpuExampleScalesItAndLeavesNothingOnK3s() throws Exception {
        String operator = new ImageFromDockerfile("stowage.local/stowage/operator:k3s-e2e", false)
                .withDockerfile(ROOT.resolve("Dockerfile"))
                .withBuildArg("BASE_IMAGE", JRE_BASE)
                .get(20, TimeUnit.MINUTES);
        String runtime = new ImageFromDockerfile("stowage.local/stowage/runtime:k3s-e2e", false)
                .withDockerfile(ROOT.resolve("runtime-image/Dockerfile"))
                .withBuildArg("BASE_IMAGE", JRE_BASE)
                .get(20, TimeUnit.MINUTES);
        try (K3sContainer k3s = new K3sContainer(DockerImageName.parse(K3S_IMAGE))) {
            k3s.start();
            load(k3s, operator);
            load(k3s, runtime);
            k3s.copyFileToContainer(
                    MountableFile.forHostPath(
                            ROOT.resolve("runtime-image/src/test/resources/models/stories260K-q8_0.gguf")),
                    STORE + "/stories260K-q8_0.gguf");
            k3s.execInContainer("chown", "-R", "10001:10001", STORE);
            Config config = Config.fromKubeconfig(k3s.getKubeConfigYaml());
            try (KubernetesClient client =
                    new KubernetesClientBuilder().withConfig(config).build()) {
                install(k3s, client, operator, runtime);
                serve(client);
                scale(client);
                deleteAll(client);
            }
        }
    }

    /** docker save of a built image, imported into the K3s node's containerd. */
    private static void load(K3sContainer k3s, String image) throws Exception {
        Path tar = Files.createTempFile("stowage-image", ".tar");
        try (InputStream in =
                DockerClientFactory.instance().client().saveImageCmd(image).exec()) {
            Files.copy(in, tar, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            k3s.copyFileToContainer(MountableFile.forHostPath(tar), "/tmp/image.tar");
            var r = k3s.execInContainer("ctr", "-n", "k8s.io", "images", "import", "/tmp/image.tar");
            assertThat(r.getExitCode())
                    .as("ctr import %s: %s", image, r.getStderr())
                    .isZero();
        } finally {
            Files.deleteIfExists(tar);
        }
    }

    private static void install(K3sContainer k3s, KubernetesClient client, String operator, String runtime) {
        String[] op = operator.split(":");
        String[] rt = runtime.split(":");
        new Helm(ROOT.resolve("helm/stowage"))
                .install()
                .withName("stowage")
                .withNamespace("stowage-system")
                .createNamespace()
                .withKubeConfigContents(k3s.getKubeConfigYaml())
                .set("image.repository", op[0])
                .set("image.tag", op[1])
                .set("image.pullPolicy", "Never")
                .set("runtimeImage.repository", rt[0])
                .set("runtimeImage.tag", rt[1])
                .set("runtimeImage.pullPolicy", "Never")
                .set("cpuFraction", "0.5")
                .waitReady()
                .withTimeout(300)
                .call();
        for (String ns : List.of("stowage-system", NS)) {
            client.namespaces().withName(ns).edit(n -> {
                n.getMetadata().getLabels().put("pod-security.kubernetes.io/enforce", "restricted");
                return n;
            });
        }
        // The model store: a PersistentVolume on the node, bound to the claim of examples/k8s/model-store.yaml.
        client.persistentVolumes()
                .resource(new PersistentVolumeBuilder()
                        .withNewMetadata()
                        .withName("e2e-model-store")
                        .endMetadata()
                        .withNewSpec()
                        .withCapacity(Map.of("storage", new Quantity("1Gi")))
                        .withAccessModes("ReadWriteOnce")
                        .withStorageClassName("")
                        .withNewClaimRef()
                        .withNamespace(NS)
                        .withName("model-store")
                        .endClaimRef()
                        .withNewHostPath()
                        .withPath(STORE)
                        .withType("Directory")
                        .endHostPath()
                        .endSpec()
                        .build())
                .create();
    }

    private static void serve(KubernetesClient client) throws Exception {
        try (InputStream in = Files.newInputStream(ROOT.resolve("examples/k8s/model-store.yaml"))) {
            for (HasMetadata o : client.load(in).items()) {
                if (o.getKind().equals("PersistentVolumeClaim")) {
                    client.resource(o).create(); // the loader pod needs an image from a registry: not used
                }
            }
        }
        try (InputStream in = Files.newInputStream(ROOT.resolve("examples/k8s/cpu-serving.yaml"))) {
            client.load(in).create();
        }
        awaitReady(client, "stories-cpu", 1);
        JsonNode golden = JSON.readTree(ROOT.resolve("runtime-image/src/test/resources/models/stories260K.golden.json")
                .toFile());
        try (LocalPortForward pf =
                client.services().inNamespace(NS).withName("stories-cpu").portForward(80)) {
            String body = JSON.writeValueAsString(Map.of(
                    "model",
                    "stories-cpu",
                    "prompt",
                    golden.get("prompt").asText(),
                    "max_tokens",
                    golden.get("n_generated").asInt(),
                    "temperature",
                    0));
            HttpResponse<String> r = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(
                                            URI.create("http://127.0.0.1:" + pf.getLocalPort() + "/v1/completions"))
                                    .timeout(Duration.ofSeconds(60))
                                    .header("content-type", "application/json")
                                    .POST(HttpRequest.BodyPublishers.ofString(body))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(JSON.readTree(r.body()).at("/choices/0/text").asText())
                    .isEqualTo(golden.get("generated_text").asText());
        }
    }

    private static void scale(KubernetesClient client) {
        client.resources(LlmDeployment.class)
                .inNamespace(NS)
                .withName("stories-cpu")
                .scale(2);
        awaitReady(client, "stories-cpu", 2);
        assertThat(client.pods()
                        .inNamespace(NS)
                        .withLabel("app.kubernetes.io/component", "runtime-host")
                        .list()
                        .getItems())
                .as("two replicas of one model on one CPU device: one host")
                .hasSize(1);
    }

    private static void deleteAll(KubernetesClient client) throws InterruptedException {
        client.resources(LlmDeployment.class).inNamespace(NS).delete();
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!client.pods()
                .inNamespace(NS)
                .withLabel("app.kubernetes.io/managed-by", "stowage-operator")
                .list()
                .getItems()
                .isEmpty()) {
            assertThat(System.nanoTime()).as("host pods gone within 3 minutes").isLessThan(deadline);
            Thread.sleep(1000);
        }
        assertThat(client.services()
                        .inNamespace(NS)
                        .withLabel("app.kubernetes.io/managed-by", "stowage-operator")
                        .list()
                        .getItems())
                .isEmpty();
        assertThat(client.secrets()
                        .inNamespace(NS)
                        .withLabel("app.kubernetes.io/managed-by", "stowage-operator")
                        .list()
                        .getItems())
                .isEmpty();
    }

    private static void awaitReady(KubernetesClient client, String name, int replicas) {
        client.resources(LlmDeployment.class)
                .inNamespace(NS)
                .withName(name)
                .waitUntilCondition(
                        d -> d != null
                                && d.getStatus() != null
                                && Integer.valueOf(replicas)
                                        .equals(d.getStatus().getReadyReplicas()),
                        5,
                        TimeUnit.MINUTES);
    }
}
