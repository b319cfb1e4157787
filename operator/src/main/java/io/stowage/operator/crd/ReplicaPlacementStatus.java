package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.ArrayList;
import java.util.List;

/** Where one replica runs. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ReplicaPlacementStatus {
    @JsonPropertyDescription("Replica index, 0-based.")
    private Integer replica;

    @JsonPropertyDescription("The node.")
    private String node;

    @JsonPropertyDescription("The device, e.g. node-a/gpu-0.")
    private String device;

    @JsonPropertyDescription("The runtime host pod serving it.")
    private String host;

    @JsonPropertyDescription("Bytes this replica adds on its device (KV only when it shares weights).")
    private Long bytes;

    @JsonPropertyDescription("Other replicas (namespace/name#index) on the same device using the same weights.")
    private List<String> sharesWeightsWith = new ArrayList<>();

    @JsonPropertyDescription("Whether the host reports the replica ready.")
    private Boolean ready;

    public Integer getReplica() {
        return replica;
    }

    public void setReplica(Integer replica) {
        this.replica = replica;
    }

    public String getNode() {
        return node;
    }

    public void setNode(String node) {
        this.node = node;
    }

    public String getDevice() {
        return device;
    }

    public void setDevice(String device) {
        this.device = device;
    }

    public String getHost() {
        return host;
    }

    public void setHost(String host) {
        this.host = host;
    }

    public Long getBytes() {
        return bytes;
    }

    public void setBytes(Long bytes) {
        this.bytes = bytes;
    }

    public List<String> getSharesWeightsWith() {
        return sharesWeightsWith;
    }

    public void setSharesWeightsWith(List<String> sharesWeightsWith) {
        this.sharesWeightsWith = sharesWeightsWith;
    }

    public Boolean getReady() {
        return ready;
    }

    public void setReady(Boolean ready) {
        this.ready = ready;
    }
}
