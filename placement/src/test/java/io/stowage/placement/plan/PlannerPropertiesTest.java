package io.stowage.placement.plan;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

/** Properties of the planner and the baselines over random fleets (see {@link RandomFleets}). */
class PlannerPropertiesTest {
    private final StowagePlanner planner = new StowagePlanner();
    private final NoSharingPacker noSharing = new NoSharingPacker();
    private final WholeDevicePacker wholeDevice = new WholeDevicePacker();

    @Property(tries = 200)
    void capacityComputeSelectorsTaintsAndSpreadAreNeverViolated(@ForAll long seed) {
        PlanRequest req = RandomFleets.request(seed);
        PlanResult r = planner.plan(req);
        new PlanChecker(req, r).assertValid();
        new PlanChecker(req, noSharing.plan(req), false).assertValid();
    }

    @Property(tries = 200)
    void everyRefusalsNumbersAreTrue(@ForAll long seed) {
        PlanRequest req = RandomFleets.request(seed);
        new PlanChecker(req, planner.plan(req)).assertRefusalsTrue();
    }

    @Property(tries = 200)
    void refusalsStayTrueAfterPreemptionEvictionsAndRebalance(@ForAll long seed) {
        PlanRequest req = withCurrentAndChange(seed);
        new PlanChecker(req, planner.plan(req)).assertRefusalsTrue();
    }

    @Property(tries = 200)
    void theSameInputGivesTheSameOutputInAnyOrder(@ForAll long seed) {
        PlanRequest req = withCurrentAndChange(seed);
        PlanResult r = planner.plan(req);
        assertThat(planner.plan(req)).isEqualTo(r);
        assertThat(planner.plan(RandomFleets.shuffled(req, seed + 1))).isEqualTo(r);
    }

    @Property(tries = 200)
    void theIndexedSearchAgreesWithTheLinearReferenceSearch(@ForAll long seed) {
        PlanRequest req = withCurrentAndChange(seed);
        assertThat(planner.plan(req)).isEqualTo(new StowagePlanner(true).plan(req));
    }

    @Property(tries = 60)
    void onLargerFleetsTheIndexedPlanIsValidTrueAndEqualToTheLinearOne(@ForAll long seed) {
        Random rnd = new Random(seed);
        PlanRequest req = PlanRequest.of(RandomFleets.devices(rnd, 40), RandomFleets.deployments(rnd, 40, "ns/"));
        PlanResult r = planner.plan(req);
        PlanChecker check = new PlanChecker(req, r);
        check.assertValid();
        check.assertRefusalsTrue();
        assertThat(new StowagePlanner(true).plan(req)).isEqualTo(r);
    }

    @Property(tries = 200)
    void replanningAnUnchangedFleetMovesNothing(@ForAll long seed) {
        PlanRequest req = RandomFleets.request(seed);
        PlanResult first = planner.plan(req);
        PlanResult again =
                planner.plan(new PlanRequest(req.devices(), req.deployments(), first.placements(), false, 0));
        assertThat(again.evictions()).isEmpty();
        assertThat(again.placements()).containsAll(first.placements());
    }

    @Property(tries = 200)
    void sharingNeverUsesMoreDevicesThanNoSharing(@ForAll long seed) {
        PlanRequest req = RandomFleets.request(seed);
        PlanResult shared = planner.plan(req);
        PlanResult separate = noSharing.plan(req);
        if (separate.refusals().isEmpty()) {
            assertThat(shared.refusals()).isEmpty();
            assertThat(shared.devicesUsed()).isLessThanOrEqualTo(separate.devicesUsed());
        }
    }

    @Property(tries = 200)
    void noPackerBeatsTheLowerBound(@ForAll long seed) {
        PlanRequest req = RandomFleets.request(seed);
        int bound = LowerBound.combined(req);
        for (Packer p : List.of(planner, noSharing, wholeDevice)) {
            PlanResult r = p.plan(req);
            if (r.refusals().isEmpty()) {
                assertThat(r.devicesUsed()).as(p.getClass().getSimpleName()).isGreaterThanOrEqualTo(bound);
            }
        }
    }

    @Property(tries = 200)
    void preemptionOnlyEvictsStrictlyLowerPriorityReplicasThatWereRunningThere(@ForAll long seed) {
        PlanRequest req = withCurrentAndChange(seed);
        PlanResult r = planner.plan(req);
        new PlanChecker(req, r).assertValid();
        Map<String, Deployment> deps = new HashMap<>();
        req.deployments().forEach(d -> deps.put(d.id(), d));
        Set<Placement> current = new HashSet<>(req.current());
        Map<ReplicaId, String> where = new HashMap<>();
        r.placements().forEach(p -> where.put(p.replica(), p.deviceId()));
        for (Eviction e : r.evictions()) {
            assertThat(current).contains(new Placement(e.victim(), e.deviceId()));
            if (e.forReplica() != null) {
                assertThat(deps.get(e.victim().deployment()).priority())
                        .isLessThan(deps.get(e.forReplica().deployment()).priority());
                assertThat(where.get(e.forReplica())).isEqualTo(e.deviceId());
            }
        }
        long moved = r.evictions().stream()
                .filter(e -> e.reason().startsWith("rebalance:"))
                .count();
        assertThat(moved).as("rebalance moves").isLessThanOrEqualTo(req.rebalance() ? req.maxDisruption() : 0);
        // A running replica that is neither evicted nor scaled away stays where it was.
        Set<ReplicaId> evicted = new HashSet<>();
        r.evictions().forEach(e -> evicted.add(e.victim()));
        for (Placement p : req.current()) {
            Deployment d = deps.get(p.replica().deployment());
            if (d != null && p.replica().index() < d.replicas() && !evicted.contains(p.replica())) {
                assertThat(where.get(p.replica())).as("%s stays", p.replica()).isEqualTo(p.deviceId());
            }
        }
    }

    /**
     * A fleet planned once (the result becomes the running state), then changed: more foreign use on some
     * devices, deployments scaled up or down, and new deployments of random priority.
     */
    static PlanRequest withCurrentAndChange(long seed) {
        PlanRequest base = RandomFleets.request(seed);
        PlanResult running = new StowagePlanner().plan(base);
        Random rnd = new Random(seed * 31 + 7);
        List<Device> devices = new ArrayList<>();
        for (Device d : base.devices()) {
            if (rnd.nextInt(10) == 0) continue; // a device is gone
            if (rnd.nextInt(8) == 0) {
                d = Fixtures.withForeign(d, d.foreignBytes() + (long) (d.totalBytes() * 0.3 * rnd.nextDouble()));
            }
            devices.add(d);
        }
        List<Deployment> deployments = new ArrayList<>();
        for (Deployment d : base.deployments()) {
            if (rnd.nextInt(4) == 0) d = Fixtures.withReplicas(d, rnd.nextInt(8));
            deployments.add(d);
        }
        deployments.addAll(RandomFleets.deployments(rnd, 4, "new/"));
        return new PlanRequest(devices, deployments, running.placements(), rnd.nextInt(4) == 0, rnd.nextInt(4));
    }
}
