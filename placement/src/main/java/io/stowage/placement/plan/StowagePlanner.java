package io.stowage.placement.plan;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The sharing-aware planner: packs replicas by memory and compute, one copy of a model's weights per
 * device, keeps running replicas where they are, preempts strictly lower priorities and explains every
 * refusal with numbers (docs/design.md "Placement").
 *
 * <p>Pure and deterministic: the same request gives the same result whatever the order of its lists.
 *
 * <p>Greedy packing is not monotone: on rare inputs, best fit without sharing ends with fewer devices
 * than the sharing-aware order. A placement without sharing is also valid with sharing (it only costs
 * less), so a fresh plan (nothing running yet) also computes the no-sharing packing and adopts it when
 * it refuses no replica that the sharing plan places and refuses fewer or uses fewer devices. Stowage
 * therefore never does worse than the {@link NoSharingPacker} baseline.
 */
public final class StowagePlanner implements Packer {
    private final boolean linearSearchOnly;
    // What the last request's device list gave (sorted, checked, eligibility sets): reused while the
    // caller passes the same list, as an operator re-planning one ledger does; a pure cache.
    private volatile Inventory lastInventory;

    public StowagePlanner() {
        this(false);
    }

    /** {@code linearSearchOnly}: skip the sorted indexes (the reference search the tests compare against). */
    StowagePlanner(boolean linearSearchOnly) {
        this.linearSearchOnly = linearSearchOnly;
    }

    @Override
    public PlanResult plan(PlanRequest request) {
        return planKeepingLedger(request).result();
    }

    /** A plan and the engine whose ledger holds it (for {@link PlannerState}), or null if none may be kept. */
    record Planned(PlanResult result, PlanEngine engine) {}

    Planned planKeepingLedger(PlanRequest request) {
        Inventory inv = Inventory.reuse(lastInventory, request.devices());
        lastInventory = inv;
        PlanEngine engine = new PlanEngine(PlanEngine.Mode.SHARING, request, linearSearchOnly, true, inv);
        PlanResult shared = engine.run();
        if (!request.current().isEmpty() || (shared.refusals().isEmpty() && shared.devicesUsed() <= 1)) {
            return new Planned(shared, engine);
        }
        PlanResult separate = new PlanEngine(PlanEngine.Mode.NO_SHARING, request, linearSearchOnly, true, inv).run();
        if (!better(separate, shared)) {
            return new Planned(shared, engine);
        }
        // Re-cost the no-sharing placement with sharing; its refused replicas get one more try, where
        // the memory that sharing saved may now hold them (no preemption: nothing was running).
        PlanRequest adopt = new PlanRequest(request.devices(), request.deployments(), separate.placements(), false, 0);
        // its ledger is not kept: it planned without preemption and from another request
        return new Planned(new PlanEngine(PlanEngine.Mode.SHARING, adopt, linearSearchOnly, false, inv).run(), null);
    }

    private static boolean better(PlanResult candidate, PlanResult incumbent) {
        Set<ReplicaId> refusedBefore = new HashSet<>();
        incumbent.refusals().forEach(f -> refusedBefore.add(f.replica()));
        List<Refusal> refusedNow = candidate.refusals();
        for (Refusal f : refusedNow) {
            if (!refusedBefore.contains(f.replica())) return false;
        }
        return refusedNow.size() < refusedBefore.size() || candidate.devicesUsed() < incumbent.devicesUsed();
    }
}
