package io.stowage.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code e2e/cluster/apiserver.sh}, the bare etcd + kube-apiserver that {@code ./stowage bench-operator} runs on: it
 * starts without root, its kubeconfig reaches it, it takes the objects the bench creates, and {@code stop} ends it and
 * removes its directory. Skipped (with the reason) where build.sh has not cached the binaries.
 */
class ApiServerScriptTest {
    private static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    private static final Path SCRIPT = ROOT.resolve("e2e/cluster/apiserver.sh");

    @TempDir
    Path tmp;

    record Result(int code, String out) {}

    static Result script(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of(SCRIPT.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(360, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("apiserver.sh " + String.join(" ", args) + " did not end in 6 minutes");
        }
        return new Result(p.exitValue(), out);
    }

    @BeforeAll
    static void binariesCached() throws Exception {
        Result check = script("check");
        assumeTrue(
                check.code() == 0,
                "skipped: no real API server here (" + check.out().strip() + "); e2e/cluster/build.sh builds one");
    }

    @Test
    void startsTakesTheBenchsObjectsAndStopsClean() throws Exception {
        Path dir = tmp.resolve("apiserver");
        try {
            Result start = script("start", dir.toString());
            assertThat(start.code()).as(start.out()).isZero();
            assertThat(dir.resolve("admin.conf")).exists();
            String url = Files.readString(dir.resolve("url")).strip();
            assertThat(url).startsWith("https://127.0.0.1:");
            List<Long> pids = List.of(pid(dir, "etcd"), pid(dir, "kube-apiserver"));

            Config config = Config.fromKubeconfig(dir.resolve("admin.conf").toFile());
            try (KubernetesClient client =
                    new KubernetesClientBuilder().withConfig(config).build()) {
                assertThat(client.getMasterUrl().toString()).startsWith(url);
                CustomResourceDefinition crd = Serialization.unmarshal(
                        Files.readString(ROOT.resolve("crds/" + LlmDeployment.CRD_NAME + "-v1.yml")),
                        CustomResourceDefinition.class);
                client.apiextensions()
                        .v1()
                        .customResourceDefinitions()
                        .resource(crd)
                        .create();
                client.apiextensions()
                        .v1()
                        .customResourceDefinitions()
                        .withName(LlmDeployment.CRD_NAME)
                        .waitUntilCondition(
                                c -> c != null
                                        && c.getStatus() != null
                                        && c.getStatus().getConditions().stream()
                                                .anyMatch(x -> x.getType().equals("Established")
                                                        && x.getStatus().equals("True")),
                                60,
                                TimeUnit.SECONDS);

                // A GPU Node as the bench makes it: its status is kept, and no not-ready taint is added (no node
                // lifecycle controller would ever take it off).
                Node node = client.nodes()
                        .resource(new NodeBuilder()
                                .withNewMetadata()
                                .withName("gpu-00000")
                                .addToLabels("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB")
                                .endMetadata()
                                .withNewSpec()
                                .endSpec()
                                .withNewStatus()
                                .addToAllocatable("nvidia.com/gpu", new Quantity("1"))
                                .addNewCondition()
                                .withType("Ready")
                                .withStatus("True")
                                .endCondition()
                                .endStatus()
                                .build())
                        .create();
                assertThat(node.getStatus().getAllocatable()).containsKey("nvidia.com/gpu");
                assertThat(node.getSpec().getTaints()).isNullOrEmpty();

                // An LlmDeployment and a pod in a new namespace (no default service account is needed).
                client.namespaces()
                        .resource(new NamespaceBuilder()
                                .withNewMetadata()
                                .withName("ns-0")
                                .endMetadata()
                                .build())
                        .create();
                LlmDeploymentSpec spec = new LlmDeploymentSpec("http://127.0.0.1:1/m.gguf", 2);
                spec.getContext().setMaxTokens(512);
                client.resource(new LlmDeployment("ns-0", "llm-00000", spec)).create();
                assertThat(client.resources(LlmDeployment.class)
                                .inNamespace("ns-0")
                                .withName("llm-00000")
                                .get()
                                .getSpec()
                                .replicasOrZero())
                        .isEqualTo(2);
                client.pods()
                        .inNamespace("ns-0")
                        .resource(new PodBuilder()
                                .withNewMetadata()
                                .withName("p")
                                .endMetadata()
                                .withNewSpec()
                                .addNewContainer()
                                .withName("c")
                                .withImage("example.com/x:1")
                                .endContainer()
                                .endSpec()
                                .build())
                        .create();
                assertThat(client.pods().inNamespace("ns-0").list().getItems()).hasSize(1);
            }

            Result again = script("start", dir.toString());
            assertThat(again.code()).isNotZero();
            assertThat(again.out().strip()).contains("is not empty").doesNotContain("\n");

            Result stop = script("stop", dir.toString());
            assertThat(stop.code()).as(stop.out()).isZero();
            assertThat(dir).doesNotExist();
            for (long pid : pids) {
                assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))
                        .as("process %d after stop", pid)
                        .isFalse();
            }
        } finally {
            if (Files.exists(dir.resolve(".stowage-apiserver"))) {
                script("stop", dir.toString());
            }
        }
    }

    @Test
    void stopRefusesADirectoryItDidNotMake() throws Exception {
        Path other = Files.createDirectories(tmp.resolve("other"));
        Files.writeString(other.resolve("keep"), "x");
        Result stop = script("stop", other.toString());
        assertThat(stop.code()).isNotZero();
        assertThat(stop.out().strip()).contains("was not made by apiserver.sh start");
        assertThat(other.resolve("keep")).exists();
    }

    private static long pid(Path dir, String name) throws IOException {
        return Long.parseLong(
                Files.readString(dir.resolve("pids/" + name + ".pid")).strip());
    }
}
