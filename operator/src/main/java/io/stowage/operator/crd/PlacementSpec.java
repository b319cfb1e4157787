package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Where a deployment's replicas may run and how they compete for devices. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class PlacementSpec {
    @Min(-1000000)
    @Max(1000000)
    @JsonPropertyDescription("A higher priority may evict replicas of lower-priority deployments when it does not"
            + " fit otherwise. Default 0.")
    private Integer priority = 0;

    @Min(0.01)
    @Max(1)
    @JsonPropertyDescription("The fraction of a device's compute one replica takes (shares on a device sum to at"
            + " most 1). Default 0.25 on every device kind.")
    private Double computeShare;

    @Min(0)
    @JsonPropertyDescription("The most replicas of this deployment on one node; 0 means no limit.")
    private Integer maxReplicasPerNode = 0;

    @JsonPropertyDescription("Node labels a node must carry to host a replica.")
    private Map<String, String> nodeSelector = new LinkedHashMap<>();

    @JsonPropertyDescription("Node taints the replicas tolerate (Kubernetes semantics).")
    private List<TolerationSpec> tolerations = new ArrayList<>();

    @JsonPropertyDescription("Which device serves: gpu (default), cpu (host RAM) or any.")
    private DeviceKindSpec device = DeviceKindSpec.gpu;

    public Integer getPriority() {
        return priority;
    }

    public void setPriority(Integer priority) {
        this.priority = priority;
    }

    public Double getComputeShare() {
        return computeShare;
    }

    public void setComputeShare(Double computeShare) {
        this.computeShare = computeShare;
    }

    public Integer getMaxReplicasPerNode() {
        return maxReplicasPerNode;
    }

    public void setMaxReplicasPerNode(Integer maxReplicasPerNode) {
        this.maxReplicasPerNode = maxReplicasPerNode;
    }

    public Map<String, String> getNodeSelector() {
        return nodeSelector;
    }

    public void setNodeSelector(Map<String, String> nodeSelector) {
        this.nodeSelector = nodeSelector;
    }

    public List<TolerationSpec> getTolerations() {
        return tolerations;
    }

    public void setTolerations(List<TolerationSpec> tolerations) {
        this.tolerations = tolerations;
    }

    public DeviceKindSpec getDevice() {
        return device;
    }

    public void setDevice(DeviceKindSpec device) {
        this.device = device;
    }

    /** Device kinds as users write them. */
    public enum DeviceKindSpec {
        gpu,
        cpu,
        any
    }
}
