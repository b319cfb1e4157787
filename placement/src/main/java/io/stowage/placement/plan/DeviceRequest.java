package io.stowage.placement.plan;

/** Which kind of device a deployment accepts. */
public enum DeviceRequest {
    GPU,
    CPU,
    ANY;

    public boolean accepts(DeviceKind kind) {
        return switch (this) {
            case GPU -> kind == DeviceKind.GPU;
            case CPU -> kind == DeviceKind.CPU;
            case ANY -> true;
        };
    }
}
