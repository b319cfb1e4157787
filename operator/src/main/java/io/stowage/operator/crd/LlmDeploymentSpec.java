package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.model.annotation.SpecReplicas;

/** What a user asks for: a model, how many replicas, how long a context, and where they may run. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
        value = "!has(self.scaling) || !has(self.scaling.minReplicas) || !has(self.replicas)"
                + " || self.scaling.minReplicas <= self.replicas",
        message = "scaling.minReplicas must be <= replicas (the replicas an active deployment runs)")
public class LlmDeploymentSpec {
    @Required
    @JsonPropertyDescription("The model file to serve.")
    private ModelSource model;

    @Pattern("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$")
    @JsonPropertyDescription("The name clients put in the OpenAI `model` field; defaults to the LlmDeployment's name.")
    private String servedModelName;

    @SpecReplicas
    @Default("1") // in the schema, so the API server (and the scale subresource) sees 1 when it is unset
    @Min(0)
    @Max(1024)
    @JsonPropertyDescription(
            "How many replicas to run (each with its own KV cache); 0 keeps the object but frees the" + " memory.")
    private Integer replicas = 1;

    @JsonPropertyDescription("The context each replica serves: tokens per sequence, concurrent sequences, KV type.")
    private ContextSpec context = new ContextSpec();

    @JsonPropertyDescription("Where replicas may run: device kind, priority, compute share, spread and node filters.")
    private PlacementSpec placement = new PlacementSpec();

    @JsonPropertyDescription("Scale to zero: release idle replicas after idleTimeout down to minReplicas, and activate"
            + " on the next request. Unset: every replica runs whether requests come or not.")
    private ScalingSpec scaling;

    public LlmDeploymentSpec() {}

    public LlmDeploymentSpec(String uri, int replicas) {
        this.model = new ModelSource(uri, null);
        this.replicas = replicas;
    }

    public ModelSource getModel() {
        return model;
    }

    public void setModel(ModelSource model) {
        this.model = model;
    }

    public String getServedModelName() {
        return servedModelName;
    }

    public void setServedModelName(String servedModelName) {
        this.servedModelName = servedModelName;
    }

    public Integer getReplicas() {
        return replicas;
    }

    public void setReplicas(Integer replicas) {
        this.replicas = replicas;
    }

    public ContextSpec getContext() {
        return context;
    }

    public void setContext(ContextSpec context) {
        this.context = context;
    }

    public PlacementSpec getPlacement() {
        return placement;
    }

    public void setPlacement(PlacementSpec placement) {
        this.placement = placement;
    }

    public ScalingSpec getScaling() {
        return scaling;
    }

    public void setScaling(ScalingSpec scaling) {
        this.scaling = scaling;
    }

    /** Replicas asked for, 0 when unset. */
    public int replicasOrZero() {
        return replicas == null ? 0 : replicas;
    }

    /** The context, with defaults when unset. */
    public ContextSpec contextOrDefault() {
        return context == null ? new ContextSpec() : context;
    }

    /** The placement, with defaults when unset. */
    public PlacementSpec placementOrDefault() {
        return placement == null ? new PlacementSpec() : placement;
    }
}
