package io.stowage.placement.manifest;

import io.stowage.placement.plan.Device;
import java.util.List;

/** The devices read from an inventory file, with warnings about what was ignored. */
public record Inventory(List<Device> devices, List<String> warnings) {
    public Inventory {
        devices = List.copyOf(devices);
        warnings = List.copyOf(warnings);
    }
}
