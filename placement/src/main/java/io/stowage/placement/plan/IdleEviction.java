package io.stowage.placement.plan;

/**
 * An idle copy whose weights a plan drops from its device, and why: the replicas placed there need its memory (the
 * least recently used idle copies go first), or the device is gone. Unlike an {@link Eviction}, no replica stops: the
 * copy served nobody; its deployment starts from the model file on its next request.
 */
public record IdleEviction(IdleCopy copy, String reason) {
    public String deviceId() {
        return copy.deviceId();
    }

    public long bytes() {
        return copy.bytes();
    }
}
