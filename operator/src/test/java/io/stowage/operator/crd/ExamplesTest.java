package io.stowage.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.placement.plan.Taint;
import io.stowage.placement.plan.Toleration;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The example manifests a newcomer applies are valid LlmDeployments under the generated CRD's rules. */
class ExamplesTest {
    static final Path ROOT = CrdIsUpToDateTest.repoRoot();

    static List<LlmDeployment> examples() throws IOException {
        List<LlmDeployment> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(ROOT.resolve("examples/k8s"))) {
            for (Path f :
                    files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                for (String doc : Files.readString(f).split("(?m)^---\\s*$")) {
                    if (doc.contains("kind: LlmDeployment")) {
                        out.add(Serialization.unmarshal(doc, LlmDeployment.class));
                    }
                }
            }
        }
        return out;
    }

    static JSONSchemaProps specSchema() throws IOException {
        var crd = Serialization.unmarshal(
                Files.readString(ROOT.resolve("crds").resolve(CrdIsUpToDateTest.FILE)),
                io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition.class);
        return crd.getSpec()
                .getVersions()
                .get(0)
                .getSchema()
                .getOpenAPIV3Schema()
                .getProperties()
                .get("spec");
    }

    @Test
    void everyExampleUnmarshalsAndPassesTheSchemaPatterns() throws IOException {
        JSONSchemaProps spec = specSchema();
        JSONSchemaProps model = spec.getProperties().get("model");
        Pattern uri = Pattern.compile(model.getProperties().get("uri").getPattern());
        Pattern sha = Pattern.compile(model.getProperties().get("sha256").getPattern());
        Pattern scheme = Pattern.compile("^(https|http|file|pvc|s3|hf)://");

        List<LlmDeployment> all = examples();

        assertThat(all).hasSizeGreaterThanOrEqualTo(5);
        for (LlmDeployment d : all) {
            String u = d.getSpec().getModel().getUri();
            assertThat(uri.matcher(u).find())
                    .as("%s: uri %s", d.getMetadata().getName(), u)
                    .isTrue();
            assertThat(scheme.matcher(u).find())
                    .as("%s: scheme of %s", d.getMetadata().getName(), u)
                    .isTrue();
            if (d.getSpec().getModel().getSha256() != null) {
                assertThat(sha.matcher(d.getSpec().getModel().getSha256()).find())
                        .isTrue();
            }
            assertThat(d.getSpec().getReplicas()).isBetween(0, 1024);
            Integer tokens = d.getSpec().contextOrDefault().getMaxTokens();
            if (tokens != null) {
                assertThat(tokens).isBetween(1, ContextSpec.MAX_TOKENS_LIMIT);
            }
        }
    }

    @Test
    void theSchemaRejectsWhatTheIssueNames() throws IOException {
        JSONSchemaProps spec = specSchema();
        JSONSchemaProps model = spec.getProperties().get("model");
        Pattern sha = Pattern.compile(model.getProperties().get("sha256").getPattern());
        Pattern scheme = Pattern.compile("^(https|http|file|pvc|s3|hf)://");

        assertThat(spec.getProperties().get("replicas").getMinimum())
                .as("negative replicas")
                .isEqualTo(0.0);
        assertThat(scheme.matcher("ftp://example.com/m.gguf").find())
                .as("unknown scheme")
                .isFalse();
        assertThat(model.getXKubernetesValidations().get(0).getRule()).contains("https|http|file|pvc|s3|hf");
        assertThat(sha.matcher("ABC123").find()).as("malformed sha256").isFalse();
        assertThat(sha.matcher("a".repeat(64)).find()).isTrue();
        JSONSchemaProps ctx = spec.getProperties().get("context");
        assertThat(ctx.getProperties().get("maxTokens").getMaximum()).isEqualTo((double) ContextSpec.MAX_TOKENS_LIMIT);
    }

    /** The label maps of real GPU nodes (GPU Feature Discovery): the GFD README's A100 and four VKS vGPU nodes. */
    static List<Map<String, String>> realGfdLabels() throws IOException {
        List<Map<String, String>> out = new ArrayList<>();
        try (InputStream in = ExamplesTest.class.getResourceAsStream("/gpu/gfd-readme-a100-sxm4-40gb.node.yaml")) {
            out.add(Serialization.unmarshal(in, io.fabric8.kubernetes.api.model.Node.class)
                    .getMetadata()
                    .getLabels());
        }
        try (InputStream in = ExamplesTest.class.getResourceAsStream("/gpu/vks-vgpu-4nodes.labels.json")) {
            out.addAll(new ObjectMapper().readValue(in, new TypeReference<List<Map<String, String>>>() {}));
        }
        return out;
    }

    @Test
    void gpuExamplesSelectProductsAsGpuFeatureDiscoveryNamesThemAndTolerateTheGpuTaint() throws IOException {
        List<Map<String, String>> nodes = realGfdLabels();
        Set<String> gfdKeys = new TreeSet<>();
        nodes.forEach(l -> gfdKeys.addAll(l.keySet()));
        // Drivers before R470 named the A100 "A100-SXM4-40GB" (the GFD README's node, driver 455); NVML, and so
        // GFD, has said "NVIDIA A100-SXM4-40GB" since, written with '-' for ' '. vGPU profiles are GRID-...
        Set<String> products = new TreeSet<>();
        for (Map<String, String> l : nodes) {
            String p = l.get("nvidia.com/gpu.product");
            products.add(p.startsWith("NVIDIA-") || p.startsWith("GRID-") ? p : "NVIDIA-" + p);
        }
        Taint gpuTaint = new Taint("nvidia.com/gpu", "present", "NoSchedule");
        int gpuExamples = 0;
        int productSelectors = 0;
        for (LlmDeployment d : examples()) {
            PlacementSpec pl = d.getSpec().placementOrDefault();
            if (pl.getDevice() == PlacementSpec.DeviceKindSpec.cpu) {
                continue;
            }
            gpuExamples++;
            String name = d.getMetadata().getName();
            assertThat(pl.getTolerations())
                    .as("%s tolerates the nvidia.com/gpu NoSchedule taint", name)
                    .anySatisfy(t -> assertThat(new Toleration(t.getKey(), t.getOperator(), t.getValue(), t.getEffect())
                                    .tolerates(gpuTaint))
                            .isTrue());
            for (Map.Entry<String, String> sel : pl.getNodeSelector().entrySet()) {
                if (sel.getKey().startsWith("nvidia.com/")) {
                    assertThat(gfdKeys)
                            .as("%s selects a label GFD writes", name)
                            .contains(sel.getKey());
                }
            }
            String product = pl.getNodeSelector().get("nvidia.com/gpu.product");
            if (product != null) {
                productSelectors++;
                assertThat(product)
                        .as("%s: %s as GFD writes it on current drivers", name, product)
                        .matches("NVIDIA-[A-Za-z0-9][A-Za-z0-9.-]*")
                        .isIn(products);
            }
        }
        assertThat(gpuExamples).isGreaterThanOrEqualTo(3);
        assertThat(productSelectors).isGreaterThanOrEqualTo(1);
    }
}
