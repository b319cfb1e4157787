package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.model.annotation.LabelSelector;
import io.fabric8.kubernetes.model.annotation.StatusReplicas;
import java.util.ArrayList;
import java.util.List;

/** What the operator observed and decided for one LlmDeployment. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class LlmDeploymentStatus {
    @JsonPropertyDescription("The metadata.generation this status describes.")
    private Long observedGeneration;

    @JsonPropertyDescription("Placed, Ready and Degraded, each with a reason and a message.")
    private List<Condition> conditions = new ArrayList<>();

    @StatusReplicas
    @JsonPropertyDescription("Replicas placed on a device.")
    private Integer replicas = 0;

    @JsonPropertyDescription("Replicas whose host reports them ready.")
    private Integer readyReplicas = 0;

    @JsonPropertyDescription("readyReplicas/replicas asked for, for kubectl.")
    private String ready;

    @JsonPropertyDescription("One word for kubectl: Inspecting, Pending, Placing, Ready, Degraded, Unplaceable, Idle"
            + " (scaled to zero, weights resident) or Dormant (scaled to zero and evicted).")
    private String phase;

    @LabelSelector
    @JsonPropertyDescription("Label selector of the ready hosts (for the scale subresource).")
    private String selector;

    @JsonPropertyDescription("The model as read from its GGUF header.")
    private ModelStatus model;

    @JsonPropertyDescription("What one replica needs, in bytes and in human units.")
    private MemoryStatus memory;

    @JsonPropertyDescription("Where each replica runs.")
    private List<ReplicaPlacementStatus> placements = new ArrayList<>();

    @JsonPropertyDescription("The OpenAI-compatible base URL of the deployment's Service.")
    private String endpoint;

    @JsonPropertyDescription("Scale to zero (spec.scaling): set while the deployment is Idle or Dormant.")
    private ScalingStatus scaling;

    public ScalingStatus getScaling() {
        return scaling;
    }

    public void setScaling(ScalingStatus scaling) {
        this.scaling = scaling;
    }

    public Long getObservedGeneration() {
        return observedGeneration;
    }

    public void setObservedGeneration(Long observedGeneration) {
        this.observedGeneration = observedGeneration;
    }

    public List<Condition> getConditions() {
        return conditions;
    }

    public void setConditions(List<Condition> conditions) {
        this.conditions = conditions;
    }

    public Integer getReplicas() {
        return replicas;
    }

    public void setReplicas(Integer replicas) {
        this.replicas = replicas;
    }

    public Integer getReadyReplicas() {
        return readyReplicas;
    }

    public void setReadyReplicas(Integer readyReplicas) {
        this.readyReplicas = readyReplicas;
    }

    public String getReady() {
        return ready;
    }

    public void setReady(String ready) {
        this.ready = ready;
    }

    public String getPhase() {
        return phase;
    }

    public void setPhase(String phase) {
        this.phase = phase;
    }

    public String getSelector() {
        return selector;
    }

    public void setSelector(String selector) {
        this.selector = selector;
    }

    public ModelStatus getModel() {
        return model;
    }

    public void setModel(ModelStatus model) {
        this.model = model;
    }

    public MemoryStatus getMemory() {
        return memory;
    }

    public void setMemory(MemoryStatus memory) {
        this.memory = memory;
    }

    public List<ReplicaPlacementStatus> getPlacements() {
        return placements;
    }

    public void setPlacements(List<ReplicaPlacementStatus> placements) {
        this.placements = placements;
    }

    public String getEndpoint() {
        return endpoint;
    }

    public void setEndpoint(String endpoint) {
        this.endpoint = endpoint;
    }

    /** The condition of this type, or null. */
    public Condition condition(String type) {
        return conditions == null
                ? null
                : conditions.stream()
                        .filter(c -> type.equals(c.getType()))
                        .findFirst()
                        .orElse(null);
    }
}
