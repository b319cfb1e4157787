package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** What one replica needs on a device, in bytes and in human units (IEC). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class MemoryStatus {
    @JsonPropertyDescription("W_m: the weights, paid once per device however many replicas share it.")
    private Long weightsBytes;

    @JsonPropertyDescription("K_r: the KV cache of one replica.")
    private Long kvPerReplicaBytes;

    @JsonPropertyDescription("A_m: the workspace of the model's largest step (shared on a device: the maximum).")
    private Long workspaceBytes;

    @JsonPropertyDescription("O_host: the runtime's fixed cost on a device.")
    private Long overheadBytes;

    @JsonPropertyDescription("Weights + KV + workspace + overhead: what the first replica on a device needs.")
    private Long totalPerReplicaBytes;

    @JsonPropertyDescription("The same figures in human units.")
    private String summary;

    @JsonPropertyDescription("totalPerReplicaBytes in human units, for kubectl.")
    private String perReplica;

    public Long getWeightsBytes() {
        return weightsBytes;
    }

    public void setWeightsBytes(Long weightsBytes) {
        this.weightsBytes = weightsBytes;
    }

    public Long getKvPerReplicaBytes() {
        return kvPerReplicaBytes;
    }

    public void setKvPerReplicaBytes(Long kvPerReplicaBytes) {
        this.kvPerReplicaBytes = kvPerReplicaBytes;
    }

    public Long getWorkspaceBytes() {
        return workspaceBytes;
    }

    public void setWorkspaceBytes(Long workspaceBytes) {
        this.workspaceBytes = workspaceBytes;
    }

    public Long getOverheadBytes() {
        return overheadBytes;
    }

    public void setOverheadBytes(Long overheadBytes) {
        this.overheadBytes = overheadBytes;
    }

    public Long getTotalPerReplicaBytes() {
        return totalPerReplicaBytes;
    }

    public void setTotalPerReplicaBytes(Long totalPerReplicaBytes) {
        this.totalPerReplicaBytes = totalPerReplicaBytes;
    }

    public String getSummary() {
        return summary;
    }

    public void setSummary(String summary) {
        this.summary = summary;
    }

    public String getPerReplica() {
        return perReplica;
    }

    public void setPerReplica(String perReplica) {
        this.perReplica = perReplica;
    }
}
