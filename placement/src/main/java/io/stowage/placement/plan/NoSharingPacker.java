package io.stowage.placement.plan;

/**
 * Baseline: memory-fraction best fit without weight sharing, as separate engines per replica would
 * need: each replica pays its own W + A + K, each device pays O_host once; the same eligibility,
 * compute and spread rules as Stowage.
 *
 * <p>It plans from scratch (current placements, rebalance and preemption are ignored), which is what
 * the side-by-side reports compare.
 */
public final class NoSharingPacker implements Packer {
    @Override
    public PlanResult plan(PlanRequest request) {
        return new PlanEngine(PlanEngine.Mode.NO_SHARING, request, false).run();
    }
}
