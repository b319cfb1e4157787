package io.stowage.placement.bench;

/** The GPU models of bench fleets, with the memory GPU Feature Discovery reports for each (MiB). */
public enum GpuType {
    T4_16("T4-16", 15_360),
    L4_24("L4-24", 23_034),
    A100_40("A100-40", 40_960),
    A100_80("A100-80", 81_920),
    H100_80("H100-80", 81_559);

    public final String label;
    public final long memoryMib;

    GpuType(String label, long memoryMib) {
        this.label = label;
        this.memoryMib = memoryMib;
    }

    public long memoryBytes() {
        return memoryMib << 20;
    }
}
