package io.stowage.operator.helm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.crd.LlmDeploymentStatus;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The chart's Argo CD health check for LlmDeployment, run in a Lua interpreter against sample statuses. The
 * statuses the operator itself writes are checked too, in StatusAggregatorTest.
 */
class ArgoHealthTest {
    private static LlmDeployment deployment(long generation, Long observed, String... conditions) {
        LlmDeployment d = new LlmDeployment("team-a", "chat", new LlmDeploymentSpec("hf://org/repo/m.gguf", 2));
        d.getMetadata().setGeneration(generation);
        if (observed == null) {
            d.setStatus(null);
            return d;
        }
        LlmDeploymentStatus s = new LlmDeploymentStatus();
        s.setObservedGeneration(observed);
        List<io.fabric8.kubernetes.api.model.Condition> cs = new ArrayList<>();
        // type/status/reason/message, four strings per condition
        for (int i = 0; i < conditions.length; i += 4) {
            cs.add(new ConditionBuilder()
                    .withType(conditions[i])
                    .withStatus(conditions[i + 1])
                    .withReason(conditions[i + 2])
                    .withMessage(conditions[i + 3])
                    .withObservedGeneration(observed)
                    .build());
        }
        s.setConditions(cs);
        d.setStatus(s);
        return d;
    }

    @Test
    void theChartDocsShipTheScriptTheTestRuns() throws Exception {
        String readme =
                Files.readString(ArgoHealth.script().getParent().getParent().resolve("README.md"));
        assertThat(readme).contains("resource.customizations.health.stowage.io_LlmDeployment");
        for (String line : Files.readString(ArgoHealth.script()).lines().toList()) {
            assertThat(readme).as("README carries the script line %s", line).contains(line);
        }
    }

    @Test
    void allReplicasReadyIsHealthy() throws Exception {
        var h = ArgoHealth.of(deployment(
                3,
                3L,
                "Placed",
                "True",
                "Placed",
                "2/2 replicas placed on 1 device(s)",
                "Ready",
                "True",
                "AllReplicasReady",
                "2/2 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h).isEqualTo(new ArgoHealth.Health("Healthy", "2/2 replicas ready"));
    }

    @Test
    void noStatusYetIsProgressing() throws Exception {
        assertThat(ArgoHealth.of(deployment(1, null)).status()).isEqualTo("Progressing");
    }

    @Test
    void aStatusOfAnOlderGenerationIsProgressingEvenWhenItSaysReady() throws Exception {
        var h = ArgoHealth.of(deployment(
                4,
                3L,
                "Placed",
                "True",
                "Placed",
                "2/2 replicas placed on 1 device(s)",
                "Ready",
                "True",
                "AllReplicasReady",
                "2/2 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h)
                .isEqualTo(new ArgoHealth.Health("Progressing", "Waiting for the operator to observe generation 4"));
    }

    @Test
    void aModelBeingInspectedIsProgressing() throws Exception {
        var h = ArgoHealth.of(deployment(
                1,
                1L,
                "Placed",
                "False",
                "InspectingModel",
                "the probe pod reads the model header",
                "Ready",
                "False",
                "ReplicasNotReady",
                "0/2 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h).isEqualTo(new ArgoHealth.Health("Progressing", "the probe pod reads the model header"));
    }

    @Test
    void replicasLoadingAreProgressing() throws Exception {
        var h = ArgoHealth.of(deployment(
                1,
                1L,
                "Placed",
                "True",
                "Placed",
                "2/2 replicas placed on 1 device(s)",
                "Ready",
                "False",
                "ReplicasNotReady",
                "1/2 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h).isEqualTo(new ArgoHealth.Health("Progressing", "1/2 replicas ready"));
    }

    @Test
    void unplaceableReplicasAreDegradedWithThePlannersReason() throws Exception {
        var h = ArgoHealth.of(deployment(
                1,
                1L,
                "Placed",
                "False",
                "Unplaceable",
                "1/2 replicas placed; replica #1 needs 5.0 GiB",
                "Ready",
                "False",
                "ReplicasNotReady",
                "1/2 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h).isEqualTo(new ArgoHealth.Health("Degraded", "1/2 replicas placed; replica #1 needs 5.0 GiB"));
    }

    @Test
    void aModelThatFailedToLoadIsDegraded() throws Exception {
        var h = ArgoHealth.of(deployment(
                2,
                2L,
                "Placed",
                "True",
                "Placed",
                "2/2 replicas placed on 1 device(s)",
                "Ready",
                "False",
                "ReplicasNotReady",
                "0/2 replicas ready",
                "Degraded",
                "True",
                "ModelLoadFailed",
                "stowage-host-a: download refused: 401"));

        assertThat(h).isEqualTo(new ArgoHealth.Health("Degraded", "stowage-host-a: download refused: 401"));
    }

    @Test
    void scaledToZeroIsHealthy() throws Exception {
        var h = ArgoHealth.of(deployment(
                5,
                5L,
                "Placed",
                "True",
                "Placed",
                "0/0 replicas placed on 0 device(s)",
                "Ready",
                "False",
                "ScaledToZero",
                "0/0 replicas ready",
                "Degraded",
                "False",
                "AsExpected",
                "no host or model errors"));

        assertThat(h.status()).isEqualTo("Healthy");
    }
}
