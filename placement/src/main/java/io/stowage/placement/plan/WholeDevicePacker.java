package io.stowage.placement.plan;

/**
 * Baseline: one whole device per replica, like a pod asking for {@code nvidia.com/gpu: 1}; the
 * replica must fit the device alone (O_host + W + A + K) and the device's compute is all its own.
 *
 * <p>It plans from scratch (current placements, rebalance and preemption are ignored).
 */
public final class WholeDevicePacker implements Packer {
    @Override
    public PlanResult plan(PlanRequest request) {
        return new PlanEngine(PlanEngine.Mode.WHOLE_DEVICE, request, false).run();
    }
}
