package io.stowage.placement.plan;

/** A placement strategy: the Stowage planner or one of the baselines it is compared with. */
public interface Packer {

    /** Decides where every replica of the request runs; pure, deterministic, never throws for a full fleet. */
    PlanResult plan(PlanRequest request);
}
