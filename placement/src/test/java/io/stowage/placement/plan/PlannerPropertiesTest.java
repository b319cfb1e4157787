package io.stowage.placement.plan;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Properties of the planner and the baselines over seeded random fleets (see {@link RandomFleets}),
 * on plain JUnit 5: each property runs once per seed, and a failure names its seed.
 *
 * <p>The seeds are fixed (a CI run is repeatable); {@code -Dplanner.seeds=N} runs N other seeds drawn
 * from {@code -Dplanner.seedBase=B}, and {@code -Dplanner.seed=S} runs only seed S, which is how a
 * failure is reproduced: the failing seed's fleet is {@code RandomFleets.request(S)}.
 */
class PlannerPropertiesTest {
    private final StowagePlanner planner = new StowagePlanner();
    private final NoSharingPacker noSharing = new NoSharingPacker();
    private final WholeDevicePacker wholeDevice = new WholeDevicePacker();

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void capacityComputeSelectorsTaintsAndSpreadAreNeverViolated(long seed) {
        property(seed, () -> {
            PlanRequest req = RandomFleets.request(seed);
            PlanResult r = planner.plan(req);
            new PlanChecker(req, r).assertValid();
            new PlanChecker(req, noSharing.plan(req), false).assertValid();
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void everyRefusalsNumbersAreTrue(long seed) {
        property(seed, () -> {
            PlanRequest req = RandomFleets.request(seed);
            new PlanChecker(req, planner.plan(req)).assertRefusalsTrue();
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void refusalsStayTrueAfterPreemptionEvictionsAndRebalance(long seed) {
        property(seed, () -> {
            PlanRequest req = withCurrentAndChange(seed);
            new PlanChecker(req, planner.plan(req)).assertRefusalsTrue();
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void theSameInputGivesTheSameOutputInAnyOrder(long seed) {
        property(seed, () -> {
            PlanRequest req = withCurrentAndChange(seed);
            PlanResult r = planner.plan(req);
            assertThat(planner.plan(req)).isEqualTo(r);
            assertThat(planner.plan(RandomFleets.shuffled(req, seed + 1))).isEqualTo(r);
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void aPlannerThatKeptTheInventoryOfAnotherRequestPlansLikeAFreshOne(long seed) {
        property(seed, () -> {
            PlanRequest req = withCurrentAndChange(seed);
            StowagePlanner used = new StowagePlanner();
            // another request on the very same device list: its inventory (and eligibility sets) is kept
            used.plan(new PlanRequest(
                    req.devices(), RandomFleets.deployments(new Random(seed), 8, "other/"), List.of(), false, 0));
            assertThat(used.plan(req)).isEqualTo(new StowagePlanner().plan(req));
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void theKeptLedgerPlansEveryChangeLikeAFreshPlanner(long seed) {
        property(seed, () -> {
            Random rnd = new Random(seed * 17 + 3);
            PlanRequest req = RandomFleets.request(seed);
            PlannerState state = new PlannerState();
            PlanResult r = state.plan(req);
            assertThat(r).isEqualTo(new StowagePlanner().plan(req));
            List<Device> devices = req.devices();
            List<Deployment> deps = new ArrayList<>(req.deployments());
            for (int step = 0; step < 8; step++) {
                List<Placement> current = new ArrayList<>(r.placements());
                boolean rebalance = false;
                int kind = rnd.nextInt(12);
                if (kind < 5) { // scale one deployment; the removed replicas may still be listed as running
                    int i = rnd.nextInt(deps.size());
                    Deployment d = deps.get(i);
                    int n = rnd.nextInt(8);
                    deps.set(i, Fixtures.withReplicas(d, n));
                    if (rnd.nextBoolean())
                        current.removeIf(p -> p.replica().deployment().equals(d.id())
                                && p.replica().index() >= n);
                } else if (kind < 8) { // new deployments
                    deps.addAll(RandomFleets.deployments(rnd, 3, "s" + step + "/"));
                } else if (kind == 8) { // a device leaves
                    devices = new ArrayList<>(devices);
                    if (!devices.isEmpty()) devices.remove(rnd.nextInt(devices.size()));
                } else if (kind == 9) {
                    rebalance = true;
                } else if (kind == 10) { // an edit other than replicas
                    int i = rnd.nextInt(deps.size());
                    deps.set(i, Fixtures.withPriority(deps.get(i), rnd.nextInt(4)));
                } else { // the operator lists the running replicas in another order
                    java.util.Collections.shuffle(current, rnd);
                }
                // an equal device list that is another object half of the time
                List<Device> listed = rnd.nextBoolean() ? devices : new ArrayList<>(devices);
                PlanRequest next = new PlanRequest(listed, deps, current, rebalance, rnd.nextInt(3));
                PlanResult got = state.plan(next);
                assertThat(got).as("step %d (change %d)", step, kind).isEqualTo(new StowagePlanner().plan(next));
                new PlanChecker(next, got).assertValid();
                r = got;
            }
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void theIndexedSearchAgreesWithTheLinearReferenceSearch(long seed) {
        property(seed, () -> {
            PlanRequest req = withCurrentAndChange(seed);
            assertThat(planner.plan(req)).isEqualTo(new StowagePlanner(true).plan(req));
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seedsLarge")
    void onLargerFleetsTheIndexedPlanIsValidTrueAndEqualToTheLinearOne(long seed) {
        property(seed, () -> {
            Random rnd = new Random(seed);
            PlanRequest req = PlanRequest.of(RandomFleets.devices(rnd, 40), RandomFleets.deployments(rnd, 40, "ns/"));
            PlanResult r = planner.plan(req);
            PlanChecker check = new PlanChecker(req, r);
            check.assertValid();
            check.assertRefusalsTrue();
            assertThat(new StowagePlanner(true).plan(req)).isEqualTo(r);
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void replanningAnUnchangedFleetMovesNothing(long seed) {
        property(seed, () -> {
            PlanRequest req = RandomFleets.request(seed);
            PlanResult first = planner.plan(req);
            PlanResult again =
                    planner.plan(new PlanRequest(req.devices(), req.deployments(), first.placements(), false, 0));
            assertThat(again.evictions()).isEmpty();
            assertThat(again.placements()).containsAll(first.placements());
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void sharingNeverUsesMoreDevicesThanNoSharing(long seed) {
        property(seed, () -> {
            PlanRequest req = RandomFleets.request(seed);
            PlanResult shared = planner.plan(req);
            PlanResult separate = noSharing.plan(req);
            if (separate.refusals().isEmpty()) {
                assertThat(shared.refusals()).isEmpty();
                assertThat(shared.devicesUsed()).isLessThanOrEqualTo(separate.devicesUsed());
            }
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void noPackerBeatsTheLowerBound(long seed) {
        property(seed, () -> {
            PlanRequest req = RandomFleets.request(seed);
            int bound = LowerBound.combined(req);
            for (Packer p : List.of(planner, noSharing, wholeDevice)) {
                PlanResult r = p.plan(req);
                if (r.refusals().isEmpty()) {
                    assertThat(r.devicesUsed()).as(p.getClass().getSimpleName()).isGreaterThanOrEqualTo(bound);
                }
            }
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void preemptionOnlyEvictsStrictlyLowerPriorityReplicasThatWereRunningThere(long seed) {
        property(seed, () -> {
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
                    assertThat(where.get(p.replica()))
                            .as("%s stays", p.replica())
                            .isEqualTo(p.deviceId());
                }
            }
        });
    }

    /** The fixed seeds of a CI run, or the ones asked for on the command line (see the class comment). */
    static LongStream seeds() {
        return seeds(200);
    }

    static LongStream seedsLarge() {
        return seeds(60);
    }

    private static LongStream seeds(int count) {
        String one = System.getProperty("planner.seed");
        if (one != null) return LongStream.of(Long.parseLong(one));
        int n = Integer.getInteger("planner.seeds", count);
        SplittableRandom rnd = new SplittableRandom(Long.getLong("planner.seedBase", 20_260_101L));
        return LongStream.generate(rnd::nextLong).limit(n);
    }

    /** Runs one property for one seed; a failure's message names the seed and how to run it alone. */
    private static void property(long seed, Runnable body) {
        try {
            body.run();
        } catch (AssertionError | RuntimeException e) {
            throw new AssertionError(
                    "property failed for seed " + seed + " (run only it: ./mvnw -o -pl placement test"
                            + " -Dtest=PlannerPropertiesTest -Dplanner.seed=" + seed + "): " + e.getMessage(),
                    e);
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
