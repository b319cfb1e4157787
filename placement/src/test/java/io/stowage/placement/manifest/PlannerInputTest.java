package io.stowage.placement.manifest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import io.stowage.placement.plan.DeviceRequest;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link PlannerInput#of}: the one place an LlmDeployment's defaults and checks become the planner's input. */
class PlannerInputTest {
    /** A llama-like shape with a 2048-token context; KV row width 4·64 = 256. */
    private static final ModelShape SHAPE = new ModelShape("llama", 4, 256, 512, 4, 4, 64, 64, 1000, 2048, 10_000_000);

    private static LlmDeploymentManifest read(String spec) {
        String yaml = """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: m, namespace: ns}
                spec:
                  model: {uri: "hf://org/repo/m.gguf"}
                """ + spec;
        return ManifestReader.parse("d.yaml", null, yaml).deployments().getFirst();
    }

    @Test
    void unsetFieldsTakeTheOneSetOfDefaults() {
        PlannerInput in = PlannerInput.of(read(""), SHAPE, MemoryModel.withDefaults());

        assertThat(in.maxTokens()).isEqualTo(2048); // 4096 capped at the model's context
        assertThat(in.manifest().maxSequences()).isEqualTo(4);
        assertThat(in.deployment().computeShare()).isEqualTo(0.25);
        assertThat(in.deployment().device()).isEqualTo(DeviceRequest.GPU);
        assertThat(in.deployment().replicas()).isEqualTo(1);
        assertThat(in.deployment().kvBytesPerReplica())
                .isEqualTo(MemoryModel.withDefaults()
                        .estimate(SHAPE, 2048, 4, in.manifest().kvCacheType(), io.stowage.placement.plan.DeviceKind.GPU)
                        .kvBytesPerReplica());
    }

    @Test
    void aCpuDeploymentTakesTheSameComputeShareAsAGpuOne() {
        PlannerInput in = PlannerInput.of(read("  placement: {device: cpu}\n"), SHAPE, MemoryModel.withDefaults());

        assertThat(in.deployment().computeShare()).isEqualTo(0.25);
        assertThat(in.deployment().device()).isEqualTo(DeviceRequest.CPU);
    }

    @Test
    void explicitValuesPassThroughUnchanged() {
        PlannerInput in = PlannerInput.of(read("""
                          replicas: 3
                          context: {maxTokens: 1000, maxSequences: 2, kvCacheType: q8_0}
                          placement:
                            priority: 9
                            computeShare: 0.5
                            maxReplicasPerNode: 1
                            nodeSelector: {zone: a}
                            tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
                        """), SHAPE, MemoryModel.withDefaults());

        assertThat(in.maxTokens()).isEqualTo(1000);
        assertThat(in.deployment().replicas()).isEqualTo(3);
        assertThat(in.deployment().priority()).isEqualTo(9);
        assertThat(in.deployment().computeShare()).isEqualTo(0.5);
        assertThat(in.deployment().maxReplicasPerNode()).isEqualTo(1);
        assertThat(in.deployment().nodeSelector()).isEqualTo(Map.of("zone", "a"));
        assertThat(in.deployment().tolerations()).hasSize(1);
        assertThat(in.manifest().kvCacheType().label()).isEqualTo("q8_0");
    }

    @Test
    void maxTokensAboveTheModelsContextIsRefusedWithTheLimitAndTheWayOut() {
        assertThatThrownBy(() ->
                        PlannerInput.of(read("  context: {maxTokens: 4096}\n"), SHAPE, MemoryModel.withDefaults()))
                .isInstanceOf(ManifestException.class)
                .hasMessage(
                        "d.yaml doc 1: spec.context.maxTokens: must be <= the model's context length 2048, got 4096;"
                                + " lower it to at most 2048 or leave it unset (then 2048)");
    }

    @Test
    void weightsAreKeyedByPinnedContentElseByTheUriAsWritten() {
        String sha = "ab".repeat(32);
        assertThat(PlannerInput.modelKey("hf://a/b/c.gguf", sha)).isEqualTo("sha256:" + sha);
        assertThat(PlannerInput.modelKey("hf://a/b/c.gguf", null))
                .isEqualTo(PlannerInput.modelKey("hf://a/b/c.gguf", ""))
                .startsWith("uri:")
                .hasSize(36)
                .isNotEqualTo(PlannerInput.modelKey("hf://a/b/d.gguf", null));
        // Stable across releases: hosts record it, and a changed key would replace every running replica.
        assertThat(PlannerInput.modelKey("hf://a/b/c.gguf", null))
                .isEqualTo("uri:"
                        + java.util.HexFormat.of()
                                .formatHex(sha256("hf://a/b/c.gguf"))
                                .substring(0, 32));
    }

    private static byte[] sha256(String s) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256")
                    .digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void aContextTheMemoryModelCannotSizeIsAManifestError() {
        // q8_0 needs a row width that is a multiple of 32; 4 heads of 4 → 16.
        ModelShape narrow = new ModelShape("llama", 2, 64, 128, 4, 4, 4, 4, 100, 512, 1000);
        assertThatThrownBy(() -> PlannerInput.of(
                        read("  context: {maxTokens: 256, kvCacheType: q8_0}\n"), narrow, MemoryModel.withDefaults()))
                .isInstanceOf(ManifestException.class)
                .hasMessageStartingWith("d.yaml doc 1: spec.context: ")
                .hasMessageContaining("q8_0");
    }
}
