package io.stowage.placement.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class FleetGeneratorTest {

    private static final FleetSpec SPEC = BenchCommand.specs(true).get(1); // medium, tiny size

    @Test
    void theSameSeedGivesTheSameFleet() {
        Fleet a = new FleetGenerator().generate(SPEC, 42);
        Fleet b = new FleetGenerator().generate(SPEC, 42);
        assertThat(a).isEqualTo(b);
        Fleet c = new FleetGenerator().generate(SPEC, 43);
        assertThat(c.deployments()).isNotEqualTo(a.deployments());
    }

    @Test
    void cappedAndUncappedInstancesOfOneRecipeDifferOnlyInComputeShare() {
        Fleet capped = new FleetGenerator().generate(SPEC.withComputeShare("m/cap", 0.25), 7);
        Fleet free = new FleetGenerator().generate(SPEC.withComputeShare("m/nocap", 0), 7);
        assertThat(free.devices()).isEqualTo(capped.devices());
        assertThat(free.deployments()).hasSameSizeAs(capped.deployments());
        for (int i = 0; i < free.deployments().size(); i++) {
            assertThat(free.deployments().get(i))
                    .isEqualTo(BenchCommand.withReplicas(
                            withShare(capped.deployments().get(i), 0),
                            capped.deployments().get(i).id(),
                            capped.deployments().get(i).replicas()));
        }
        assertThat(capped.deployments()).allMatch(d -> d.computeShare() == 0.25);
    }

    @Test
    void fleetsHitTheirReplicaTargetAndEveryReplicaFitsAnEligibleGpu() {
        for (FleetSpec spec : BenchCommand.specs(true)) {
            Fleet f = new FleetGenerator().generate(spec, 1);
            assertThat(f.replicas()).as(spec.name()).isEqualTo(spec.targetReplicas());
            assertThat(f.devices()).hasSize(spec.nodes() * spec.gpusPerNode());
            for (Deployment d : f.deployments()) {
                long need = MemoryParameters.DEFAULT_HOST_OVERHEAD_GPU_BYTES
                        + d.model().workspaceBytes()
                        + d.model().weightBytes()
                        + d.kvBytesPerReplica();
                List<Device> eligible = f.devices().stream()
                        .filter(dev -> dev.labels()
                                .entrySet()
                                .containsAll(d.nodeSelector().entrySet()))
                        .filter(dev -> dev.capacityBytes() >= need)
                        .toList();
                assertThat(eligible).as(d.id()).isNotEmpty();
            }
        }
    }

    @Test
    void popularityRepeatsModelsAcrossDeployments() {
        Fleet f = new FleetGenerator().generate(BenchCommand.specs(false).get(1), BenchCommand.DEFAULT_SEED);
        Set<String> digests =
                f.deployments().stream().map(d -> d.model().digest()).collect(Collectors.toSet());
        // Zipf: far fewer distinct model files than deployments
        assertThat(digests.size()).isLessThan(f.deployments().size() / 2);
        assertThat(f.deployments().stream().filter(d -> !d.nodeSelector().isEmpty()))
                .isNotEmpty();
        assertThat(f.deployments().stream().filter(d -> d.maxReplicasPerNode() > 0))
                .isNotEmpty();
        assertThat(f.devices().stream().filter(d -> d.foreignBytes() > 0)).isNotEmpty();
    }

    @Test
    void knownModelTablesReproduceThePublishedParameterCounts() {
        for (KnownModel m : KnownModel.ALL) {
            double error =
                    Math.abs(m.tensorClasses().total() - m.publishedParameters()) / (double) m.publishedParameters();
            assertThat(error).as(m.name()).isLessThan(0.01);
        }
        KnownModel llama = KnownModel.ALL.getFirst();
        // Llama-3.1-8B: 8,030,261,248 parameters; F16 = 2 bytes each except 65 norms of 4096 F32 (2 extra bytes each)
        assertThat(llama.tensorClasses().total()).isEqualTo(8_030_261_248L);
        assertThat(llama.weightBytes(KnownModel.Quant.F16)).isEqualTo(2 * 8_030_261_248L + 2L * 65 * 4096);
        // Q8_0 is 34 bytes per 32 weights
        long matrices = 8_030_261_248L - 65L * 4096;
        assertThat(llama.weightBytes(KnownModel.Quant.Q8_0)).isEqualTo(matrices / 32 * 34 + 4L * 65 * 4096);
    }

    private static Deployment withShare(Deployment d, double share) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                d.replicas(),
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                share);
    }
}
