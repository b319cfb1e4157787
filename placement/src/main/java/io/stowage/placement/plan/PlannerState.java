package io.stowage.placement.plan;

/**
 * The planner as a long-running operator holds it: it keeps the ledger of its last plan, and plans the
 * next request by applying the difference when that is a scale change or new deployments on the same
 * devices with the last plan's placements running; any other request is planned from scratch.
 *
 * <p>Either way the result is exactly {@link StowagePlanner#plan} of the request (a property test
 * compares them over random change sequences): this is a speed-up, not another planner. Not for use
 * from several threads at once (calls are serialized).
 */
public final class PlannerState implements Packer {
    private final StowagePlanner planner = new StowagePlanner();
    private PlanEngine engine;
    private PlanResult last;
    private int fromScratch;

    @Override
    public synchronized PlanResult plan(PlanRequest request) {
        if (engine != null) {
            PlanResult r;
            try {
                r = engine.replan(request, last);
            } catch (RuntimeException e) {
                engine = null; // a half-applied change must not be built on
                last = null;
                throw e;
            }
            if (r != null) {
                last = r;
                return r;
            }
        }
        engine = null;
        last = null;
        fromScratch++;
        StowagePlanner.Planned p = planner.planKeepingLedger(request);
        engine = p.engine();
        last = p.result();
        return last;
    }

    /** How many calls were planned from scratch (the others applied a difference); for tests and benches. */
    public synchronized int plansFromScratch() {
        return fromScratch;
    }
}
