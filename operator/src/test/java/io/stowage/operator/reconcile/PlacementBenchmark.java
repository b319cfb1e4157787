package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The target: 1,000 LlmDeployments over 2,000 GPU nodes against the mock API server, timed
 * until every one is Placed. Not a unit test (timing): run it with
 * {@code ./mvnw -pl operator -am test -Dstowage.excludedGroups=none -Dtest=PlacementBenchmark
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
@Tag("benchmark")
@EnableKubernetesMockClient(crud = true)
class PlacementBenchmark {
    KubernetesClient client;

    @Test
    void thousandDeploymentsOverTwoThousandGpuNodes() throws Exception {
        int nodes = Integer.getInteger("bench.nodes", 2000);
        int deployments = Integer.getInteger("bench.deployments", 1000);
        int models = 10;
        try (TestCluster cluster = new TestCluster(client, OperatorConfig.defaults())) {
            byte[] gguf = ModelServer.resource("/models/stories260K-q8_0.gguf");
            for (int m = 0; m < models; m++) {
                cluster.models.files.put("/m" + m + ".gguf", gguf);
            }
            Map<String, String> a100 = new HashMap<>(TestCluster.a100Labels());
            for (int i = 0; i < nodes; i++) {
                cluster.addGpuNode(String.format("gpu-%04d", i), a100);
            }
            for (int i = 0; i < deployments; i++) {
                LlmDeploymentSpec spec =
                        new LlmDeploymentSpec(cluster.models.url("/m" + (i % models) + ".gguf"), 1 + i % 3);
                spec.getContext().setMaxTokens(512);
                // A wide mix of KV budgets: 2 to 2,048 sequences, 1.25 MiB to 1.25 GiB per replica.
                spec.getContext().setMaxSequences(2 << (i % 11));
                client.resource(new LlmDeployment("ns-" + (i % 20), String.format("llm-%04d", i), spec))
                        .create();
            }

            long start = System.nanoTime();
            int passes = 0;
            long placed;
            do {
                var r = cluster.loop.runPass();
                passes++;
                placed = client.resources(LlmDeployment.class).inAnyNamespace().list().getItems().stream()
                        .filter(d -> d.getStatus() != null
                                && d.getStatus().condition("Placed") != null
                                && "True"
                                        .equals(d.getStatus()
                                                .condition("Placed")
                                                .getStatus()))
                        .count();
                System.out.printf(
                        "pass %d: %d replicas placed, %d pending, %d hosts; %d/%d deployments Placed; ms per phase %s%n",
                        passes,
                        r.placedReplicas(),
                        r.pendingReplicas(),
                        r.hosts(),
                        placed,
                        deployments,
                        r.phaseMillis());
            } while (placed < deployments && passes < 5);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf(
                    "BENCHMARK: %d LlmDeployments over %d GPU nodes: all Placed after %d pass(es) in %.1f s%n",
                    deployments, nodes, passes, seconds);
            assertThat(placed).isEqualTo(deployments);
        }
    }
}
