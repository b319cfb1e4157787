package io.stowage.hostapi;

/**
 * A deployment's {@code spec.scaling} as one host applies it: the replicas of the deployment on this host above
 * {@code minActive} are released once it is idle for {@code idleTimeoutMillis} (their KV returns to the host, the
 * weights stay resident), and a request re-activates them on the host.
 *
 * @param deployment {@code namespace/name} of its LlmDeployment
 * @param minActive how many of its replicas on this host stay active when idle, {@code >= 0} (the operator splits
 *     {@code minReplicas} over the hosts: the lowest replica indices stay active)
 * @param idleTimeoutMillis how long without a request before the replicas above {@code minActive} are released,
 *     {@code > 0}
 */
public record ScalingPolicy(String deployment, int minActive, long idleTimeoutMillis) {
    /** What is out of range in this policy, as one line naming the field and the value; or null. */
    public String rangeProblem() {
        if (deployment == null || deployment.isBlank()) {
            return "scaling[].deployment must be namespace/name, got " + deployment;
        }
        if (minActive < 0) {
            return "scaling " + deployment + ": minActive must be >= 0, got " + minActive;
        }
        if (idleTimeoutMillis <= 0) {
            return "scaling " + deployment + ": idleTimeoutMillis must be > 0, got " + idleTimeoutMillis;
        }
        return null;
    }
}
