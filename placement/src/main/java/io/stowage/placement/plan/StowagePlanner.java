package io.stowage.placement.plan;

/**
 * The sharing-aware planner: packs replicas by memory and compute, one copy of a model's weights per
 * device, keeps running replicas where they are, preempts strictly lower priorities and explains every
 * refusal with numbers (DESIGN.md "Placement").
 *
 * <p>Pure and deterministic: the same request gives the same result whatever the order of its lists.
 */
public final class StowagePlanner implements Packer {
    private final boolean linearSearchOnly;

    public StowagePlanner() {
        this(false);
    }

    /** {@code linearSearchOnly}: skip the sorted indexes (the reference search the tests compare against). */
    StowagePlanner(boolean linearSearchOnly) {
        this.linearSearchOnly = linearSearchOnly;
    }

    @Override
    public PlanResult plan(PlanRequest request) {
        return new PlanEngine(PlanEngine.Mode.SHARING, request, linearSearchOnly).run();
    }
}
