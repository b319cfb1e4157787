package io.stowage.operator.inventory;

import java.time.Duration;

/**
 * How the operator turns node resources into device capacity.
 *
 * @param reserveFraction headroom kept free on each GPU, as a fraction of its memory
 * @param reserveFloorBytes the least headroom kept free on each GPU
 * @param cpuFraction the share of a node's allocatable memory offered for CPU serving (0 disables it)
 * @param hostPendingTimeout how long a host pod may stay Pending before it is reported; one the scheduler cannot
 *     place is then released, its replicas planned elsewhere and its device left out for as long again
 */
public record InventoryConfig(
        double reserveFraction,
        long reserveFloorBytes,
        double cpuFraction,
        long gpuHostOverheadBytes,
        long cpuHostOverheadBytes,
        Duration hostPendingTimeout) {
    public static final Duration DEFAULT_HOST_PENDING_TIMEOUT = Duration.ofMinutes(5);

    public InventoryConfig {
        if (hostPendingTimeout == null) {
            hostPendingTimeout = DEFAULT_HOST_PENDING_TIMEOUT;
        }
        if (hostPendingTimeout.isNegative() || hostPendingTimeout.isZero()) {
            throw new IllegalArgumentException("the host pending timeout must be above zero, got " + hostPendingTimeout
                    + "; give a duration such as 5m");
        }
    }

    /** With the default host pending timeout. */
    public InventoryConfig(
            double reserveFraction,
            long reserveFloorBytes,
            double cpuFraction,
            long gpuHostOverheadBytes,
            long cpuHostOverheadBytes) {
        this(
                reserveFraction,
                reserveFloorBytes,
                cpuFraction,
                gpuHostOverheadBytes,
                cpuHostOverheadBytes,
                DEFAULT_HOST_PENDING_TIMEOUT);
    }
}
