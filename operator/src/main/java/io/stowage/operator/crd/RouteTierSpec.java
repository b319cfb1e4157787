package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;

/** One tier of an LlmRoute: an LlmDeployment, when to try it and when its answer stands. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RouteTierSpec {
    @Required
    @Size(max = 253)
    @Pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    @JsonPropertyDescription("The LlmDeployment (metadata.name, same namespace) this tier sends requests to.")
    private String deployment;

    @Min(0)
    @Max(1_000_000)
    @JsonPropertyDescription("What one second of this tier's serving costs, in the unit of the router's cost metrics;"
            + " default 1.0, i.e. GPU-seconds (the time a request held the tier). Set the tier's device count, its"
            + " share of a device or a price per second to compare in those units.")
    private Double costWeight;

    @JsonPropertyDescription("When to try this tier; every rule given must hold, else the tier is skipped.")
    private RouteMatchSpec match;

    @JsonPropertyDescription("When this tier's answer stands: its confidence reaches the threshold; else the next"
            + " tier is tried. Without it the answer always stands.")
    private RouteCascadeSpec cascade;

    public RouteTierSpec() {}

    public RouteTierSpec(String deployment, RouteMatchSpec match, RouteCascadeSpec cascade) {
        this.deployment = deployment;
        this.match = match;
        this.cascade = cascade;
    }

    public String getDeployment() {
        return deployment;
    }

    public void setDeployment(String deployment) {
        this.deployment = deployment;
    }

    public Double getCostWeight() {
        return costWeight;
    }

    public void setCostWeight(Double costWeight) {
        this.costWeight = costWeight;
    }

    public RouteMatchSpec getMatch() {
        return match;
    }

    public void setMatch(RouteMatchSpec match) {
        this.match = match;
    }

    public RouteCascadeSpec getCascade() {
        return cascade;
    }

    public void setCascade(RouteCascadeSpec cascade) {
        this.cascade = cascade;
    }
}
