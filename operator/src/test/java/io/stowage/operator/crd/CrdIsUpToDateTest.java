package io.stowage.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.crdv2.generator.CRDGenerator;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CRD in crds/ is generated from the Java model; this fails when the checked-in file is stale.
 * Regenerate with {@code -Dcrd.update=true}.
 */
class CrdIsUpToDateTest {
    static final String FILE = LlmDeployment.CRD_NAME + "-v1.yml";

    static Path repoRoot() {
        return Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    }

    /**
     * Generates the CRD YAML from the model into {@code dir}. The generator sorts printer columns by
     * JSON path; they are put back in the order the class declares them, which is how kubectl shows them.
     */
    static Path generate(Path dir) throws IOException {
        // Conditions are a map keyed by type (the Kubernetes API conventions; server-side apply and strategic
        // merges then treat them per type). The generator has no annotation for list types, so it is set here;
        // the API server wants the key required.
        return generate(
                LlmDeployment.class,
                FILE,
                "CrdIsUpToDateTest",
                dir,
                crd -> crd.getSpec().getVersions().forEach(v -> {
                    JSONSchemaProps conditions = v.getSchema()
                            .getOpenAPIV3Schema()
                            .getProperties()
                            .get("status")
                            .getProperties()
                            .get("conditions");
                    conditions.setXKubernetesListType("map");
                    conditions.setXKubernetesListMapKeys(List.of("type"));
                    conditions.getItems().getSchema().setRequired(List.of("status", "type"));
                }));
    }

    /**
     * Generates the CRD YAML of {@code kind} into {@code dir} as {@code file}. The generator sorts printer columns
     * by JSON path; they are put back in the order the class declares them, which is how kubectl shows them;
     * {@code adjust} then sets what the generator has no annotation for.
     */
    static Path generate(
            Class<?> kind,
            String file,
            String by,
            Path dir,
            java.util.function.Consumer<CustomResourceDefinition> adjust)
            throws IOException {
        @SuppressWarnings("unchecked")
        Class<? extends io.fabric8.kubernetes.api.model.HasMetadata> resource =
                (Class<? extends io.fabric8.kubernetes.api.model.HasMetadata>) kind;
        new CRDGenerator()
                .inOutputDir(dir.toFile())
                .forCRDVersions(List.of("v1"))
                .customResourceClasses(resource)
                .generate();
        Path out = dir.resolve(file);
        CustomResourceDefinition crd = Serialization.unmarshal(Files.readString(out), CustomResourceDefinition.class);
        List<String> order = Arrays.stream(kind.getAnnotationsByType(AdditionalPrinterColumn.class))
                .map(AdditionalPrinterColumn::name)
                .toList();
        crd.getSpec()
                .getVersions()
                .forEach(v ->
                        v.getAdditionalPrinterColumns().sort(Comparator.comparingInt(c -> order.indexOf(c.getName()))));
        adjust.accept(crd);
        Files.writeString(
                out,
                "# Generated from " + kind.getName() + " by " + by + "; do not edit.\n" + Serialization.asYaml(crd));
        return out;
    }

    @Test
    void checkedInCrdMatchesTheJavaModel(@TempDir Path tmp) throws IOException {
        String generated = Files.readString(generate(tmp));
        Path checkedIn = repoRoot().resolve("crds").resolve(FILE);
        if (Boolean.getBoolean("crd.update")) {
            Files.createDirectories(checkedIn.getParent());
            Files.writeString(checkedIn, generated);
            // The chart ships the same file (HelmChartTest checks that it is a copy).
            Files.writeString(repoRoot().resolve("helm/stowage/crds").resolve(FILE), generated);
        }
        assertThat(checkedIn)
                .as("crds/%s exists (generate it with -Dcrd.update=true)", FILE)
                .exists();
        assertThat(Files.readString(checkedIn))
                .as("crds/%s is stale: rerun the operator tests with -Dcrd.update=true and commit it", FILE)
                .isEqualTo(generated);
    }

    @Test
    void crdHasStatusAndScaleSubresourcesPrinterColumnsAndCelRules(@TempDir Path tmp) throws IOException {
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generate(tmp)), CustomResourceDefinition.class);
        var v = crd.getSpec().getVersions().get(0);
        assertThat(crd.getSpec().getScope()).isEqualTo("Namespaced");
        assertThat(v.getName()).isEqualTo(LlmDeployment.VERSION);
        assertThat(v.getSubresources().getStatus()).isNotNull();
        assertThat(v.getSubresources().getScale().getSpecReplicasPath()).isEqualTo(".spec.replicas");
        assertThat(v.getSubresources().getScale().getStatusReplicasPath()).isEqualTo(".status.replicas");
        assertThat(v.getAdditionalPrinterColumns())
                .extracting(c -> c.getName())
                .containsExactly("Ready", "Replicas", "Model", "Quant", "Mem/Replica", "Status", "Age");
        var spec = v.getSchema().getOpenAPIV3Schema().getProperties().get("spec");
        var model = spec.getProperties().get("model");
        assertThat(model.getXKubernetesValidations()).isNotEmpty();
        assertThat(model.getXKubernetesValidations().get(0).getMessage()).contains("https://", "hf://");
        assertThat(model.getProperties().get("sha256").getPattern()).isEqualTo("^[a-f0-9]{64}$");
        assertThat(spec.getProperties().get("replicas").getMinimum()).isEqualTo(0.0);
        assertThat(spec.getProperties().get("replicas").getDescription()).isNotBlank();
        assertThat(spec.getRequired()).contains("model");
        var conditions = v.getSchema()
                .getOpenAPIV3Schema()
                .getProperties()
                .get("status")
                .getProperties()
                .get("conditions");
        assertThat(conditions.getXKubernetesListType()).isEqualTo("map");
        assertThat(conditions.getXKubernetesListMapKeys()).containsExactly("type");
        assertThat(conditions.getItems().getSchema().getRequired()).contains("type");
        assertThat(conditions.getItems().getSchema().getProperties()).containsKey("observedGeneration");
    }

    @Test
    void scalingIsValidatedAtApplyTimeAndReadWithTheManifestRules(@TempDir Path tmp) throws IOException {
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generate(tmp)), CustomResourceDefinition.class);
        var spec = crd.getSpec()
                .getVersions()
                .get(0)
                .getSchema()
                .getOpenAPIV3Schema()
                .getProperties()
                .get("spec");
        var scaling = spec.getProperties().get("scaling");
        assertThat(scaling.getProperties().get("minReplicas").getMinimum()).isEqualTo(0.0);
        assertThat(scaling.getProperties().get("idleTimeout").getPattern())
                .isEqualTo(io.stowage.placement.manifest.Scaling.DURATION_PATTERN);
        assertThat(spec.getXKubernetesValidations())
                .extracting(r -> r.getMessage())
                .contains("scaling.minReplicas must be <= replicas (the replicas an active deployment runs)");

        LlmDeployment d = new LlmDeployment("team", "chat", new LlmDeploymentSpec("https://example.com/m.gguf", 2));
        d.getSpec().setScaling(new ScalingSpec(0, "90s"));
        assertThat(io.stowage.operator.reconcile.SpecInput.manifest(d).scaling())
                .isEqualTo(new io.stowage.placement.manifest.Scaling(0, java.time.Duration.ofSeconds(90)));
    }

    @Test
    void replicasDefaultsToOneInTheSchemaSoTheScaleSubresourceNeverReadsZeroForAnUnsetField(@TempDir Path tmp)
            throws IOException {
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generate(tmp)), CustomResourceDefinition.class);
        var replicas = crd.getSpec()
                .getVersions()
                .get(0)
                .getSchema()
                .getOpenAPIV3Schema()
                .getProperties()
                .get("spec")
                .getProperties()
                .get("replicas");
        assertThat(replicas.getDefault()).as("spec.replicas default").isNotNull();
        assertThat(replicas.getDefault().asInt()).isEqualTo(1);
        assertThat(new LlmDeploymentSpec().getReplicas())
                .as("the Java default agrees")
                .isEqualTo(1);
    }

    /**
     * The API server estimates each CEL rule's cost from the bounds of what it reads and refuses the CRD when the
     * estimate is over its limit; an unbounded string or list is priced at the request size (megabytes). Every
     * field a rule names must therefore be bounded.
     */
    @Test
    void everyFieldACelRuleReadsIsBounded(@TempDir Path tmp) throws IOException {
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generate(tmp)), CustomResourceDefinition.class);
        List<String> unbounded = new java.util.ArrayList<>();
        int[] rules = {0};
        walk(crd.getSpec().getVersions().get(0).getSchema().getOpenAPIV3Schema(), "", unbounded, rules);
        assertThat(rules[0]).as("CEL rules in the CRD").isPositive();
        assertThat(unbounded)
                .as("fields read by CEL rules without maxLength/maxItems/maxProperties")
                .isEmpty();
    }

    private static void walk(
            io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps s,
            String path,
            List<String> unbounded,
            int[] rules) {
        if (s == null) {
            return;
        }
        if (s.getXKubernetesValidations() != null) {
            for (var v : s.getXKubernetesValidations()) {
                rules[0]++;
                var m = java.util.regex.Pattern.compile("self\\.([A-Za-z0-9_]+)")
                        .matcher(v.getRule());
                boolean named = false;
                while (m.find()) {
                    named = true;
                    var field =
                            s.getProperties() == null ? null : s.getProperties().get(m.group(1));
                    if (field != null && !bounded(field)) {
                        unbounded.add(path + "." + m.group(1) + " (rule " + v.getRule() + ")");
                    }
                }
                if (!named && !bounded(s)) {
                    unbounded.add(path + " (rule " + v.getRule() + ")");
                }
            }
        }
        if (s.getProperties() != null) {
            s.getProperties().forEach((k, p) -> walk(p, path + "." + k, unbounded, rules));
        }
        if (s.getItems() != null) {
            walk(s.getItems().getSchema(), path + "[]", unbounded, rules);
        }
    }

    private static boolean bounded(io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps s) {
        return switch (s.getType() == null ? "" : s.getType()) {
            case "string" ->
                s.getMaxLength() != null || (s.getEnum() != null && !s.getEnum().isEmpty());
            case "array" -> s.getMaxItems() != null;
            case "object" -> s.getAdditionalProperties() == null || s.getMaxProperties() != null;
            default -> true;
        };
    }
}
