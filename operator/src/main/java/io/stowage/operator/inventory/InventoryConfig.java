package io.stowage.operator.inventory;

/**
 * How the operator turns node resources into device capacity.
 *
 * @param reserveFraction headroom kept free on each GPU, as a fraction of its memory
 * @param reserveFloorBytes the least headroom kept free on each GPU
 * @param cpuFraction the share of a node's allocatable memory offered for CPU serving (0 disables it)
 */
public record InventoryConfig(
        double reserveFraction,
        long reserveFloorBytes,
        double cpuFraction,
        long gpuHostOverheadBytes,
        long cpuHostOverheadBytes) {}
