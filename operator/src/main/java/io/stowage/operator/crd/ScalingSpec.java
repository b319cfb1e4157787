package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;

/**
 * Scale to zero and back: how many replicas stay when no request comes, and after how long the others are released.
 * Read with the same rules as a manifest ({@code io.stowage.placement.manifest.Scaling}).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ScalingSpec {
    @Min(0)
    @Max(1024)
    @JsonPropertyDescription("Replicas kept when idle; 0 scales to zero (the first request activates the deployment"
            + " and waits for it). At most spec.replicas; default spec.replicas (nothing is released).")
    private Integer minReplicas;

    // Scaling.DURATION_PATTERN: the operator module must not reach into placement for an annotation constant's value
    @Pattern("^([0-9]+(ms|s|m|h))+$")
    @JsonPropertyDescription("How long without a request before the replicas above minReplicas are released (their"
            + " KV memory returns to the host; the model's weights stay resident until the memory is needed), e.g."
            + " 30s, 5m, 1h30m. Default 5m, at most 168h.")
    private String idleTimeout;

    public ScalingSpec() {}

    public ScalingSpec(Integer minReplicas, String idleTimeout) {
        this.minReplicas = minReplicas;
        this.idleTimeout = idleTimeout;
    }

    public Integer getMinReplicas() {
        return minReplicas;
    }

    public void setMinReplicas(Integer minReplicas) {
        this.minReplicas = minReplicas;
    }

    public String getIdleTimeout() {
        return idleTimeout;
    }

    public void setIdleTimeout(String idleTimeout) {
        this.idleTimeout = idleTimeout;
    }
}
