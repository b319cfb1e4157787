package io.stowage.hostapi;

/**
 * A deployment scaled to zero whose idle copy the operator evicted (no replica here, maybe no weights) and for which
 * this host stays the activation point: the host holds its requests and reports them as demand
 * ({@link DeploymentScalingState#heldRequests()}) instead of answering 404, until an assignment brings its replicas
 * back (the held requests are then served) or the activation timeout answers them 503 with Retry-After.
 *
 * @param deployment {@code namespace/name} of its LlmDeployment
 * @param servedModelName the OpenAI {@code model} name its requests carry
 */
public record DormantDeployment(String deployment, String servedModelName) {
    /** What is missing, as one line naming the field; or null. */
    public String rangeProblem() {
        if (deployment == null || deployment.isBlank()) {
            return "dormant[].deployment must be namespace/name, got " + deployment;
        }
        if (servedModelName == null || servedModelName.isBlank()) {
            return "dormant " + deployment + ": servedModelName must not be empty";
        }
        return null;
    }
}
