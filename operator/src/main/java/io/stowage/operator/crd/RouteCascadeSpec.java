package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** The cascade rule of a route tier: when its answer stands. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "self.threshold > 0.0", message = "cascade.threshold must be a probability in (0, 1]")
public class RouteCascadeSpec {
    /** How the tier's token log-probabilities become one confidence. */
    public enum Confidence {
        mean,
        min,
        mix
    }

    @JsonPropertyDescription("mean (default): exp of the mean token logprob, the geometric mean of the generated"
            + " tokens' probabilities; min: the least likely token's probability; mix: exp((mean + min) / 2), so one"
            + " doubtful token lowers the confidence without deciding alone.")
    private Confidence confidence = Confidence.mean;

    @Required
    @Max(1)
    @JsonPropertyDescription("The confidence, a probability in (0, 1], at or above which the answer stands.")
    private Double threshold;

    public RouteCascadeSpec() {}

    public RouteCascadeSpec(Confidence confidence, double threshold) {
        this.confidence = confidence;
        this.threshold = threshold;
    }

    public Confidence getConfidence() {
        return confidence;
    }

    public void setConfidence(Confidence confidence) {
        this.confidence = confidence;
    }

    public Double getThreshold() {
        return threshold;
    }

    public void setThreshold(Double threshold) {
        this.threshold = threshold;
    }
}
