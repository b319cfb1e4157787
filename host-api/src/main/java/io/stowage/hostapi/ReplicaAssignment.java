package io.stowage.hostapi;

/**
 * One replica: an admission partition with its own KV budget and sequence slots.
 *
 * @param id stable replica id, {@code namespace/name#index}
 * @param deployment {@code namespace/name} of its LlmDeployment
 * @param servedModelName the OpenAI {@code model} name that selects it
 * @param modelDigest the {@link ModelAssignment#digest()} it serves
 * @param maxTokens context budget of one sequence
 * @param maxSequences concurrent sequences
 * @param kvCacheType f16, q8_0 or f32
 * @param kvBytes K_r as planned
 */
public record ReplicaAssignment(
        String id,
        String deployment,
        String servedModelName,
        String modelDigest,
        int maxTokens,
        int maxSequences,
        String kvCacheType,
        long kvBytes) {}
