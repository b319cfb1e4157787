package io.stowage.placement.plan;

/** What a device is: a GPU's memory, or a share of a host's RAM for CPU serving. */
public enum DeviceKind {
    GPU,
    CPU
}
