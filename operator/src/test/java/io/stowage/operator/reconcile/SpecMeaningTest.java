package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.placement.cli.Main;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ModelCatalog;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Toleration;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * One meaning of a spec: the same manifests, fed through {@code ./stowage plan} and through the operator's way
 * from an LlmDeployment resource to the planner, give the same planner input.
 */
class SpecMeaningTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();

    @Test
    void theOperatorPlansThePlanExamplesAsPlanDoes() throws IOException {
        Path dir = ROOT.resolve("examples/plan");

        Map<String, PlannerInput> operator = operatorInputs(dir);
        Map<String, JsonNode> plan = planDeployments(dir, dir.resolve("devices.yaml"));

        assertThat(operator).hasSize(6);
        assertThat(plan.keySet()).isEqualTo(operator.keySet());
        operator.forEach((id, in) -> assertSamePlannerInput(id, plan.get(id), in));
    }

    @Test
    void everyDefaultMeansTheSameInPlanAndInTheOperator() throws Exception {
        Path dir = fixtures();

        Map<String, PlannerInput> operator = operatorInputs(dir);
        Map<String, JsonNode> plan = planDeployments(dir, dir.resolve("devices.yaml"));

        assertThat(plan.keySet()).isEqualTo(operator.keySet());
        operator.forEach((id, in) -> assertSamePlannerInput(id, plan.get(id), in));
        // The rules themselves: maxTokens capped at the model's 2048, 4 sequences, a quarter of any device.
        PlannerInput small = operator.get("team-a/small");
        assertThat(small.maxTokens()).isEqualTo(2048);
        assertThat(small.manifest().maxSequences()).isEqualTo(4);
        assertThat(small.deployment().computeShare()).isEqualTo(0.25);
        assertThat(small.deployment().replicas()).isEqualTo(1);
        assertThat(small.deployment().model().digest()).startsWith("uri:");
        PlannerInput cpu = operator.get("team-a/on-cpu");
        assertThat(cpu.deployment().computeShare()).isEqualTo(0.25);
        assertThat(cpu.manifest().kvCacheType().label()).isEqualTo("q8_0");
        // Two deployments of one unpinned URI share one copy of the weights; a pinned one is keyed by content.
        assertThat(cpu.deployment().model().digest())
                .isEqualTo(small.deployment().model().digest());
        assertThat(operator.get("team-b/pinned").deployment().model().digest())
                .isEqualTo("sha256:0f343b0931126a20f133d67c2b018a3b7f1ac8e0b1f1b6e1a0b0f0a4e8c2d1a9");
    }

    @Test
    void aMaxTokensAboveTheModelsContextIsRefusedByPlanAndByTheOperatorAlike() throws Exception {
        Path dir = Files.createTempDirectory("spec-meaning");
        try {
            String yaml = Files.readString(fixtures().resolve("deployments.yaml"))
                    .replace("    maxTokens: 1024", "    maxTokens: 4096");
            Files.writeString(dir.resolve("deployments.yaml"), yaml);
            Files.copy(fixtures().resolve("models.yaml"), dir.resolve("models.yaml"));
            LlmDeployment cr = resources(dir.resolve("deployments.yaml")).get(1);
            ModelCatalog catalog = ModelCatalog.read(dir.resolve("models.yaml"));

            assertThatThrownBy(() -> SpecInput.of(
                            cr, catalog.get(cr.getSpec().getModel().getUri()).shape(), MemoryModel.withDefaults()))
                    .isInstanceOf(ManifestException.class)
                    .hasMessage("LlmDeployment team-a/on-cpu: spec.context.maxTokens: must be <= the model's context"
                            + " length 2048, got 4096; lower it to at most 2048 or leave it unset (then 2048)");
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int rc = Main.run(
                    new String[] {
                        "plan",
                        "-f",
                        dir.resolve("deployments.yaml").toString(),
                        "--devices",
                        fixtures().resolve("devices.yaml").toString()
                    },
                    new PrintStream(out, true, StandardCharsets.UTF_8),
                    new PrintStream(err, true, StandardCharsets.UTF_8));
            assertThat(rc).isEqualTo(1);
            assertThat(err.toString(StandardCharsets.UTF_8))
                    .contains("spec.context.maxTokens: must be <= the model's context length 2048, got 4096");
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(dir);
        }
    }

    private static void assertSamePlannerInput(String id, JsonNode plan, PlannerInput operator) {
        Deployment d = operator.deployment();
        Map<String, Object> fromPlan = new LinkedHashMap<>();
        Map<String, Object> fromOperator = new LinkedHashMap<>();
        fromPlan.put("digest", plan.get("digest").asText());
        fromOperator.put("digest", d.model().digest());
        fromPlan.put("weightBytes", plan.get("weightBytes").asLong());
        fromOperator.put("weightBytes", d.model().weightBytes());
        fromPlan.put("workspaceBytes", plan.get("workspaceBytes").asLong());
        fromOperator.put("workspaceBytes", d.model().workspaceBytes());
        fromPlan.put("kvBytesPerReplica", plan.get("kvBytesPerReplica").asLong());
        fromOperator.put("kvBytesPerReplica", d.kvBytesPerReplica());
        fromPlan.put("maxTokens", plan.get("maxTokens").asLong());
        fromOperator.put("maxTokens", operator.maxTokens());
        fromPlan.put("maxSequences", plan.get("maxSequences").asInt());
        fromOperator.put("maxSequences", operator.manifest().maxSequences());
        fromPlan.put("kvCacheType", plan.get("kvCacheType").asText());
        fromOperator.put("kvCacheType", operator.manifest().kvCacheType().label());
        fromPlan.put("replicas", plan.get("replicas").asInt());
        fromOperator.put("replicas", d.replicas());
        fromPlan.put("priority", plan.get("priority").asInt());
        fromOperator.put("priority", d.priority());
        fromPlan.put("computeShare", plan.get("computeShare").asDouble());
        fromOperator.put("computeShare", d.computeShare());
        fromPlan.put("maxReplicasPerNode", plan.get("maxReplicasPerNode").asInt());
        fromOperator.put("maxReplicasPerNode", d.maxReplicasPerNode());
        fromPlan.put("device", plan.get("device").asText());
        fromOperator.put("device", d.device().name().toLowerCase(java.util.Locale.ROOT));
        fromPlan.put("nodeSelector", JSON.convertValue(plan.get("nodeSelector"), Map.class));
        fromOperator.put("nodeSelector", d.nodeSelector());
        List<Map<String, String>> tolerations = new ArrayList<>();
        for (Toleration t : d.tolerations()) {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("key", t.key());
            m.put("operator", t.operator());
            m.put("value", t.value());
            m.put("effect", t.effect());
            tolerations.add(m);
        }
        fromPlan.put("tolerations", JSON.convertValue(plan.get("tolerations"), List.class));
        fromOperator.put("tolerations", tolerations);
        assertThat(fromOperator).as(id).isEqualTo(fromPlan);
    }

    /** The operator's way: each LlmDeployment as the API server hands it over, sized from the catalog's shape. */
    private static Map<String, PlannerInput> operatorInputs(Path dir) throws IOException {
        ModelCatalog catalog = ModelCatalog.read(dir.resolve("models.yaml"));
        Map<String, PlannerInput> out = new LinkedHashMap<>();
        for (LlmDeployment cr : resources(dir.resolve("deployments.yaml"))) {
            var entry = catalog.get(cr.getSpec().getModel().getUri());
            out.put(cr.key(), SpecInput.of(cr, entry.shape(), MemoryModel.withDefaults()));
        }
        return out;
    }

    private static List<LlmDeployment> resources(Path file) throws IOException {
        List<LlmDeployment> out = new ArrayList<>();
        for (String doc : Files.readString(file).split("(?m)^---\\s*$")) {
            if (doc.contains("kind: LlmDeployment")) {
                out.add(Serialization.unmarshal(doc, LlmDeployment.class));
            }
        }
        return out;
    }

    /** The plan's way: {@code ./stowage plan --json}, in process. */
    private static Map<String, JsonNode> planDeployments(Path dir, Path devices) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Main.run(
                new String[] {
                    "plan", "-f", dir.resolve("deployments.yaml").toString(), "--devices", devices.toString(), "--json"
                },
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertThat(rc).as(err.toString(StandardCharsets.UTF_8)).isIn(0, 3);
        Map<String, JsonNode> byId = new LinkedHashMap<>();
        for (JsonNode d : JSON.readTree(out.toByteArray()).get("deployments")) {
            byId.put(d.get("id").asText(), d);
        }
        return byId;
    }

    private static Path fixtures() throws URISyntaxException {
        return Path.of(SpecMeaningTest.class
                        .getResource("/spec-meaning/deployments.yaml")
                        .toURI())
                .getParent();
    }
}
