package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.placement.memory.MemoryParameters;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.local.LocalPlan;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host and the planner count a device's memory the same way, to the byte: O_host + the largest A_m + every
 * model's W + every replica's K (one workspace per device, shared by its models, not one per model).
 */
class BudgetAgreementTest {
    @TempDir
    Path dir;

    private static final String MANIFESTS = """
            apiVersion: stowage.io/v1alpha1
            kind: LlmDeployment
            metadata:
              name: tales
            spec:
              model:
                uri: %s
              replicas: 2
              context:
                maxTokens: 256
                maxSequences: 2
            ---
            apiVersion: stowage.io/v1alpha1
            kind: LlmDeployment
            metadata:
              name: fables
            spec:
              model:
                uri: %s
              replicas: 1
              context:
                maxTokens: 128
                maxSequences: 3
                kvCacheType: f32
            """;

    /** O_host + max A_m + sum W_m + sum K_r of an assignment as the planner made it. */
    private static long demand(HostAssignment a) {
        long weights =
                a.models().stream().mapToLong(ModelAssignment::weightBytes).sum();
        long workspace = a.models().stream()
                .mapToLong(ModelAssignment::workspaceBytes)
                .max()
                .orElse(0);
        long kv = a.replicas().stream().mapToLong(ReplicaAssignment::kvBytes).sum();
        return MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES + weights + workspace + kv;
    }

    @Test
    void aPlanPackedExactlyToTheBudgetIsAcceptedAndLoadsAndOneByteLessIsRefusedWithTheNumbers() throws Exception {
        Path manifests = dir.resolve("two-models.yaml");
        Files.writeString(manifests, MANIFESTS.formatted(TestModels.q8(), TestModels.f32()));
        ManifestSet set = ManifestReader.read(manifests);
        Path cache = Files.createDirectories(dir.resolve("cache"));
        ModelFetcher fetcher = new ModelFetcher(cache, Map.of());

        // Arrange: the planner's demand for both deployments, then a device of exactly that size
        LocalPlan roomy = LocalPlan.of(set, dir, 1L << 34, "n", fetcher);
        assertThat(roomy.refusals()).isEmpty();
        long exact = demand(roomy.assignment());
        LocalPlan tight = LocalPlan.of(set, dir, exact, "n", fetcher);
        LocalPlan short1 = LocalPlan.of(set, dir, exact - 1, "n", fetcher);
        assertThat(tight.refusals()).as(tight.table()).isEmpty();
        assertThat(tight.assignment().replicas()).hasSize(3);
        assertThat(tight.assignment().models()).hasSize(2);
        assertThat(short1.refusals())
                .as("the planner itself refuses one byte less")
                .isNotEmpty();
        HostAssignment a = tight.assignment();
        long budget = a.budgetBytes(); // the device less O_host
        assertThat(budget).isEqualTo(exact - MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES);

        // the host's step sizes are the memory model's (B = 512, L = 64), so its A_m are the planner's
        try (Host host = new Host(
                new HostSettings(
                        "cpu",
                        "n/cpu",
                        1L << 34,
                        1L << 33,
                        cache,
                        1,
                        MemoryParameters.DEFAULT_PREFILL_CHUNK_TOKENS,
                        MemoryParameters.DEFAULT_LOGIT_ROWS,
                        1),
                fetcher)) {
            // Act: the plan packed to the byte is accepted...
            host.apply(a);
            HostState s = awaitReady(host, 3);

            // ...and what the host then holds is the plan, to the byte: one workspace (the larger A_m), not two
            assertThat(s.models()).allSatisfy(m -> assertThat(m.phase()).isEqualTo(ModelPhase.LOADED));
            assertThat(s.device().usedBytes()).isEqualTo(budget);
            long maxWorkspace = a.models().stream()
                    .mapToLong(ModelAssignment::workspaceBytes)
                    .max()
                    .orElseThrow();
            assertThat(s.device().backend().workspaceBytes()).isEqualTo(maxWorkspace);
            // measured by the backend: the CPU maps the weights, and allocates one workspace and the three pools
            long kv =
                    a.replicas().stream().mapToLong(ReplicaAssignment::kvBytes).sum();
            assertThat(s.device().backend().allocatedBytes()).isEqualTo(maxWorkspace + kv);
            assertThat(s.models()).allSatisfy(m -> assertThat(m.deviceBytes()).isGreaterThanOrEqualTo(m.weightBytes()));
            assertThat(s.replicas())
                    .allSatisfy(r -> assertThat(r.kvReservedBytes()).isEqualTo(r.kvPlannedBytes()));

            // ...and the same assignment with one byte less of budget is refused, with the numbers
            HostAssignment over = new HostAssignment(a.generation() + 1, budget - 1, a.models(), a.replicas());
            assertThatThrownBy(() -> host.apply(over))
                    .isInstanceOfSatisfying(
                            AssignmentException.class,
                            e -> assertThat(e.httpStatus()).isEqualTo(409))
                    .hasMessageContaining("needs " + budget + " bytes")
                    .hasMessageContaining("workspace " + maxWorkspace + " (the largest A_m of 2 models)")
                    .hasMessageContaining("budget is " + (budget - 1) + " bytes");
            assertThat(host.state().generation()).isEqualTo(a.generation()); // nothing was changed
        }
    }

    private static HostState awaitReady(Host host, int replicas) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        HostState s = host.state();
        while (s.replicas().size() != replicas || !s.replicas().stream().allMatch(r -> r.ready())) {
            assertThat(s.models()).noneMatch(m -> m.phase() == ModelPhase.FAILED);
            assertThat(System.nanoTime()).as("replicas ready in time: %s", s).isLessThan(deadline);
            Thread.sleep(5);
            s = host.state();
        }
        return s;
    }
}
