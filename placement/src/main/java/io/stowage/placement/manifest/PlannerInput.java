package io.stowage.placement.manifest;

import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The one meaning of an LlmDeployment for the planner: what the operator, {@code ./stowage plan} and local mode
 * all hand to it, computed here only.
 *
 * <p>The rules: {@code context.maxTokens} unset is {@value LlmDeploymentManifest#DEFAULT_MAX_TOKENS} capped at
 * the model's trained context, and set above that context is refused; {@code context.maxSequences} unset is
 * {@value LlmDeploymentManifest#DEFAULT_MAX_SEQUENCES}; {@code placement.computeShare} unset is
 * {@value LlmDeploymentManifest#DEFAULT_COMPUTE_SHARE} on every device kind; the weights are keyed by
 * {@link #modelKey(String, String)}.
 *
 * @param maxTokens the token budget of one sequence, after the default and the cap
 * @param memory the per-replica memory breakdown on the requested device kind
 * @param deployment the planner's input
 */
public record PlannerInput(
        LlmDeploymentManifest manifest, long maxTokens, MemoryBreakdown memory, Deployment deployment) {

    /** Characters of the hex SHA-256 of an unpinned model's URI in its key. */
    static final int URI_KEY_CHARS = 32;

    /**
     * The planner input of {@code m} for a model of {@code shape}.
     *
     * @throws ManifestException naming the manifest and field when maxTokens is above the model's context or the
     *     context does not fit the memory model (e.g. q8_0 on a head width that is not a multiple of 32)
     */
    public static PlannerInput of(LlmDeploymentManifest m, ModelShape shape, MemoryModel memory) {
        long maxTokens = m.maxTokensFor(shape.contextLength());
        DeviceKind kind = m.device() == DeviceRequest.CPU ? DeviceKind.CPU : DeviceKind.GPU;
        MemoryBreakdown b;
        try {
            b = memory.estimate(shape, maxTokens, m.maxSequences(), m.kvCacheType(), kind);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new ManifestException(m.source() + ": spec.context: " + e.getMessage());
        }
        Deployment d = MemoryModel.deployment(
                m.id(),
                modelKey(m.model().uri(), m.model().sha256()),
                b,
                m.replicas(),
                m.priority(),
                m.nodeSelector(),
                m.tolerations(),
                m.maxReplicasPerNode(),
                m.device(),
                m.computeShare());
        return new PlannerInput(m, maxTokens, b, d);
    }

    /**
     * The key under which a model's weights are shared on a device: {@code sha256:<digest>} when the manifest
     * pins the content, else {@code uri:<first 32 hex digits of SHA-256(uri as written)>} (two deployments that
     * name the same URI share one copy; the operator has always keyed unpinned models this way, so hosts
     * running before an upgrade keep their keys).
     */
    public static String modelKey(String uri, String sha256) {
        if (sha256 != null && !sha256.isBlank()) {
            return "sha256:" + sha256;
        }
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(uri.getBytes(StandardCharsets.UTF_8));
            return "uri:" + HexFormat.of().formatHex(d).substring(0, URI_KEY_CHARS);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
