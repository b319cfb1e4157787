package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** Where a deployment that scales to zero stands: scaled to zero with its weights resident, or evicted. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ScalingStatus {
    @JsonPropertyDescription("Idle (every replica released after spec.scaling.idleTimeout: KV given back, weights"
            + " resident, the next request re-activates it in milliseconds) or Dormant (its idle copy was evicted for"
            + " another deployment: its host holds the next request while the operator places it again).")
    private String state;

    @JsonPropertyDescription("Bytes its idle copies hold (weights and workspace) that a placement may reclaim.")
    private Long reclaimableBytes;

    @JsonPropertyDescription("reclaimableBytes in human units.")
    private String reclaimable;

    @JsonPropertyDescription("The devices of its idle copies, or of the hosts that hold its requests while dormant.")
    private String devices;

    public String getState() {
        return state;
    }

    public void setState(String state) {
        this.state = state;
    }

    public Long getReclaimableBytes() {
        return reclaimableBytes;
    }

    public void setReclaimableBytes(Long reclaimableBytes) {
        this.reclaimableBytes = reclaimableBytes;
    }

    public String getReclaimable() {
        return reclaimable;
    }

    public void setReclaimable(String reclaimable) {
        this.reclaimable = reclaimable;
    }

    public String getDevices() {
        return devices;
    }

    public void setDevices(String devices) {
        this.devices = devices;
    }
}
