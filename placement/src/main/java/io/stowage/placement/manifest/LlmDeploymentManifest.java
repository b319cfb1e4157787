package io.stowage.placement.manifest;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.Toleration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One {@code LlmDeployment} (stowage.io/v1alpha1) as written by a user, validated and with its
 * defaults applied; plain Java, shared by the {@code plan} command, the operator and local mode.
 *
 * @param source where it was read, e.g. {@code deployments.yaml doc 2}, for error messages
 * @param maxTokens context.maxTokens as written, or null: then {@link #maxTokensFor(long)} gives
 *     {@value #DEFAULT_MAX_TOKENS} capped at the model's context
 * @param maxSequences context.maxSequences, default {@value #DEFAULT_MAX_SEQUENCES}
 * @param computeShare placement.computeShare, default {@value #DEFAULT_COMPUTE_SHARE} for every device
 *     kind (a CPU host's cores are shared among replicas just as a GPU's SMs are)
 * @param maxReplicasPerNode placement.maxReplicasPerNode, 0 = no spread limit
 * @param scaling spec.scaling, or null: every replica runs whether requests come or not
 */
public record LlmDeploymentManifest(
        String source,
        String name,
        String namespace,
        ModelSource model,
        String servedModelName,
        int replicas,
        Integer maxTokens,
        int maxSequences,
        KvCacheType kvCacheType,
        int priority,
        double computeShare,
        int maxReplicasPerNode,
        Map<String, String> nodeSelector,
        List<Toleration> tolerations,
        DeviceRequest device,
        Scaling scaling) {

    public static final String API_VERSION = "stowage.io/v1alpha1";
    public static final String KIND = "LlmDeployment";
    public static final String DEFAULT_NAMESPACE = "default";
    public static final int DEFAULT_MAX_TOKENS = 4096;
    /** What the operator has always given a replica; {@code plan} and local mode said 1 before issue 9. */
    public static final int DEFAULT_MAX_SEQUENCES = 4;

    public static final double DEFAULT_COMPUTE_SHARE = 0.25;

    public LlmDeploymentManifest {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(model, "model");
        nodeSelector = Map.copyOf(nodeSelector);
        tolerations = List.copyOf(tolerations);
        if (scaling != null && scaling.minReplicas() > replicas) {
            throw new ManifestException(source + ": spec.scaling.minReplicas: must be <= spec.replicas " + replicas
                    + ", got " + scaling.minReplicas());
        }
    }

    /** A deployment that runs its replicas whether requests come or not (no {@code spec.scaling}). */
    public LlmDeploymentManifest(
            String source,
            String name,
            String namespace,
            ModelSource model,
            String servedModelName,
            int replicas,
            Integer maxTokens,
            int maxSequences,
            KvCacheType kvCacheType,
            int priority,
            double computeShare,
            int maxReplicasPerNode,
            Map<String, String> nodeSelector,
            List<Toleration> tolerations,
            DeviceRequest device) {
        this(
                source,
                name,
                namespace,
                model,
                servedModelName,
                replicas,
                maxTokens,
                maxSequences,
                kvCacheType,
                priority,
                computeShare,
                maxReplicasPerNode,
                nodeSelector,
                tolerations,
                device,
                null);
    }

    /** {@code namespace/name}: the planner's deployment id. */
    public String id() {
        return namespace + "/" + name;
    }

    /**
     * The token budget of one sequence: maxTokens as written (which must not exceed a known
     * context), else the default capped at the model's context; {@code modelContext} 0 = unknown.
     *
     * @throws ManifestException when maxTokens exceeds the model's context
     */
    public long maxTokensFor(long modelContext) {
        if (maxTokens != null) {
            if (modelContext > 0 && maxTokens > modelContext) {
                throw new ManifestException(source + ": spec.context.maxTokens: must be <= the model's context length "
                        + modelContext + ", got " + maxTokens + "; lower it to at most " + modelContext
                        + " or leave it unset (then " + Math.min(DEFAULT_MAX_TOKENS, modelContext) + ")");
            }
            return maxTokens;
        }
        return modelContext > 0 ? Math.min(DEFAULT_MAX_TOKENS, modelContext) : DEFAULT_MAX_TOKENS;
    }
}
