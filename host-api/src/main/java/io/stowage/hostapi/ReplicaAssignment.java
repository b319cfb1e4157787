package io.stowage.hostapi;

/**
 * One replica: an admission partition with its own KV budget and sequence slots.
 *
 * @param id stable replica id, {@code namespace/name#index}
 * @param deployment {@code namespace/name} of its LlmDeployment
 * @param servedModelName the OpenAI {@code model} name that selects it
 * @param modelDigest the {@link ModelAssignment#digest()} it serves
 * @param maxTokens context budget of one sequence: 1 to {@link #MAX_TOKENS}, and at most the model's context length
 * @param maxSequences concurrent sequences: 1 to {@link #MAX_SEQUENCES}
 * @param kvCacheType f16, q8_0 or f32
 * @param kvBytes K_r as planned, {@code >= 0} (0: the host computes it once the model is loaded)
 */
public record ReplicaAssignment(
        String id,
        String deployment,
        String servedModelName,
        String modelDigest,
        int maxTokens,
        int maxSequences,
        String kvCacheType,
        long kvBytes) {
    /** The most tokens of one sequence a host accepts: the manifest reader's ceiling (the CRD's is lower). */
    public static final int MAX_TOKENS = 1 << 24;

    /** The most concurrent sequences of one replica a host accepts, as the CRD and the manifest reader allow. */
    public static final int MAX_SEQUENCES = 4096;

    /** What is out of range in this replica's numbers, as one line naming the field, the range and the value; or null. */
    public String rangeProblem() {
        if (maxTokens < 1 || maxTokens > MAX_TOKENS) {
            return "maxTokens must be in 1.." + MAX_TOKENS + ", got " + maxTokens;
        }
        if (maxSequences < 1 || maxSequences > MAX_SEQUENCES) {
            return "maxSequences must be in 1.." + MAX_SEQUENCES + ", got " + maxSequences;
        }
        if (kvBytes < 0) {
            return "kvBytes must be >= 0, got " + kvBytes;
        }
        return null;
    }
}
