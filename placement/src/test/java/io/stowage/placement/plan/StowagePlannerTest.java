package io.stowage.placement.plan;

import static io.stowage.placement.plan.Fixtures.GIB;
import static io.stowage.placement.plan.Fixtures.at;
import static io.stowage.placement.plan.Fixtures.deployment;
import static io.stowage.placement.plan.Fixtures.gib;
import static io.stowage.placement.plan.Fixtures.gpu;
import static io.stowage.placement.plan.Fixtures.gpus;
import static io.stowage.placement.plan.Fixtures.request;
import static io.stowage.placement.plan.Fixtures.withForeign;
import static io.stowage.placement.plan.Fixtures.withLabels;
import static io.stowage.placement.plan.Fixtures.withPriority;
import static io.stowage.placement.plan.Fixtures.withReplicas;
import static io.stowage.placement.plan.Fixtures.withSelector;
import static io.stowage.placement.plan.Fixtures.withShare;
import static io.stowage.placement.plan.Fixtures.withSpread;
import static io.stowage.placement.plan.Fixtures.withTaints;
import static io.stowage.placement.plan.Fixtures.withTolerations;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class StowagePlannerTest {
    private final StowagePlanner planner = new StowagePlanner();

    private static final ModelRef LLAMA = new ModelRef("sha256:llama", gib(10), gib(1));
    private static final ModelRef QWEN = new ModelRef("sha256:qwen", gib(6), gib(2));

    private static Map<ReplicaId, String> where(PlanResult r) {
        return r.placements().stream().collect(Collectors.toMap(Placement::replica, Placement::deviceId));
    }

    @Test
    void twoDeploymentsOfOneModelShareOneGpuAndPayTheWeightsOnce() {
        var devices = List.of(gpu("node-a", 0, gib(24)), gpu("node-a", 1, gib(24)));
        var chat = deployment("ns/chat", LLAMA, gib(2), 1);
        var code = deployment("ns/code", LLAMA, gib(2), 1);

        PlanResult r = planner.plan(PlanRequest.of(devices, List.of(chat, code)));

        assertThat(r.refusals()).isEmpty();
        assertThat(r.devicesUsed()).isEqualTo(1);
        DeviceUsage u = r.usage().get(0);
        assertThat(u.weightBytes()).isEqualTo(gib(10));
        assertThat(u.usedBytes()).isEqualTo(GIB + gib(1) + gib(10) + gib(2) + gib(2));
        assertThat(u.models()).containsExactly("sha256:llama");
        // Without sharing each replica pays 13 GiB: 1 + 13 + 13 > 24, so the baseline needs two GPUs.
        assertThat(new NoSharingPacker()
                        .plan(PlanRequest.of(devices, List.of(chat, code)))
                        .devicesUsed())
                .isEqualTo(2);
    }

    @Test
    void aReplicaGoesWhereItsModelsWeightsAlreadyAre() {
        var devices = List.of(gpu("node-a", 0, gib(40)), gpu("node-a", 1, gib(40)));
        var qwen = deployment("ns/qwen", QWEN, gib(1), 1);
        var llama = deployment("ns/llama", LLAMA, gib(1), 1);
        var first = planner.plan(PlanRequest.of(devices, List.of(qwen, llama)));
        assertThat(first.devicesUsed()).isEqualTo(1);

        // A new deployment of llama must join the device that has llama's weights (costs K only).
        var more = deployment("ns/llama-2", LLAMA, gib(1), 1);
        var devicesMore = List.of(gpu("node-a", 0, gib(40)), gpu("node-a", 1, gib(40)), gpu("node-a", 2, gib(40)));
        var r = planner.plan(request(devicesMore, List.of(qwen, llama, more), first.placements()));

        assertThat(where(r).get(new ReplicaId("ns/llama-2", 0)))
                .isEqualTo(where(first).get(new ReplicaId("ns/llama", 0)));
    }

    @Test
    void scaleDownRemovesTheHighestIndicesAndKeepsTheRest() {
        var devices = gpus(1, 4, gib(24));
        var chat = deployment("ns/chat", LLAMA, gib(2), 4);
        var before = planner.plan(PlanRequest.of(devices, List.of(chat)));
        assertThat(before.placements()).hasSize(4);

        var after = planner.plan(request(devices, List.of(withReplicas(chat, 2)), before.placements()));

        assertThat(after.placements())
                .containsExactly(before.placements().get(0), before.placements().get(1));
        assertThat(after.evictions()).isEmpty();
    }

    @Test
    void aTaintedDeviceIsUsedOnlyWithAToleration() {
        var tainted = withTaints(gpu("node-a", 0, gib(24)), new Taint("dedicated", "ml", "NoSchedule"));
        var plain = deployment("ns/chat", LLAMA, gib(2), 1);

        var refused = planner.plan(PlanRequest.of(List.of(tainted), List.of(plain)));
        assertThat(refused.placements()).isEmpty();
        assertThat(refused.refusals()).singleElement().satisfies(f -> {
            assertThat(f.bestDeviceId()).isNull();
            assertThat(f.reason()).isEqualTo("no eligible device: 1 GPU has untolerated taint dedicated=ml:NoSchedule");
        });

        var tolerant = withTolerations(plain, new Toleration("dedicated", "Equal", "ml", "NoSchedule"));
        var placed = planner.plan(PlanRequest.of(List.of(tainted), List.of(tolerant)));
        assertThat(placed.placements()).containsExactly(at("ns/chat", 0, "node-a/gpu-0"));
    }

    @Test
    void whenForeignUseGrowsTheLowestPriorityReplicaIsMovedAndTheOtherStays() {
        var g0 = gpu("node-a", 0, gib(24));
        var g1 = gpu("node-b", 0, gib(24));
        var high = withPriority(deployment("ns/high", LLAMA, gib(3), 1), 10);
        var low = withPriority(deployment("ns/low", LLAMA, gib(3), 1), 1);
        var current = List.of(at("ns/high", 0, g0.id()), at("ns/low", 0, g0.id()));
        // 1 + 1 + 10 + 3 + 3 = 18 GiB fit in 24; with 7 GiB foreign use only 17 GiB remain.
        var shrunk = withForeign(g0, gib(7));

        var r = planner.plan(request(List.of(shrunk, g1), List.of(high, low), current));

        assertThat(r.placements()).containsExactly(at("ns/high", 0, g0.id()), at("ns/low", 0, g1.id()));
        assertThat(r.evictions()).singleElement().satisfies(e -> {
            assertThat(e.victim()).isEqualTo(new ReplicaId("ns/low", 0));
            assertThat(e.deviceId()).isEqualTo(g0.id());
            assertThat(e.forReplica()).isNull();
            assertThat(e.reason()).contains("no longer fits", "18.0 GiB", "17.0 GiB");
        });
    }

    @Test
    void aHigherPriorityReplicaEvictsTheFewestLowerPriorityOnesAndSaysWhy() {
        var g0 = gpu("node-a", 0, gib(24));
        var low = withPriority(deployment("ns/low", QWEN, gib(4), 2), 1);
        var mid = withPriority(deployment("ns/mid", QWEN, gib(1), 1), 5);
        var current = List.of(at("ns/low", 0, g0.id()), at("ns/low", 1, g0.id()), at("ns/mid", 0, g0.id()));
        // In use: 1 + 2 + 6 + 4 + 4 + 1 = 18 GiB. "big" needs 10 + 2 = 12 GiB more (workspace stays 2).
        var big = withPriority(deployment("ns/big", LLAMA, gib(2), 1), 5);

        var r = planner.plan(request(List.of(g0), List.of(low, mid, big), current));

        assertThat(where(r)).containsEntry(new ReplicaId("ns/big", 0), g0.id());
        assertThat(where(r)).containsEntry(new ReplicaId("ns/mid", 0), g0.id());
        assertThat(r.evictions()).hasSize(2).allSatisfy(e -> {
            assertThat(e.victim().deployment()).isEqualTo("ns/low");
            assertThat(e.forReplica()).isEqualTo(new ReplicaId("ns/big", 0));
            assertThat(e.reason())
                    .startsWith(
                            "priority 1 < 5: ns/big#0 needs 12.0 GiB and 0.25 compute; device node-a/gpu-0 had 6.0 GiB");
        });
        assertThat(r.refusals())
                .extracting(Refusal::replica)
                .containsExactly(new ReplicaId("ns/low", 0), new ReplicaId("ns/low", 1));
    }

    @Test
    void equalPriorityNeverPreempts() {
        var g0 = gpu("node-a", 0, gib(24));
        var a = deployment("ns/a", QWEN, gib(10), 1);
        var b = deployment("ns/b", LLAMA, gib(10), 1);
        var r = planner.plan(request(List.of(g0), List.of(a, b), List.of(at("ns/a", 0, g0.id()))));
        assertThat(r.evictions()).isEmpty();
        assertThat(r.refusals()).extracting(Refusal::replica).containsExactly(new ReplicaId("ns/b", 0));
    }

    @Test
    void aRefusalGivesTheNumbersInHumanUnits() {
        var small = new Device(
                "node-a/gpu-0", "node-a", DeviceKind.GPU, gib(3.1), 0, 0, gib(0.2), 0.5, Map.of(), List.of());
        var model = new ModelRef("sha256:m", gib(4), 0);
        var r = planner.plan(PlanRequest.of(List.of(small), List.of(deployment("ns/m", model, gib(1), 1))));

        assertThat(r.refusals()).singleElement().satisfies(f -> {
            assertThat(f.neededBytes()).isEqualTo(gib(0.2) + gib(4) + gib(1));
            assertThat(f.bestFreeBytes()).isEqualTo(gib(3.1));
            assertThat(f.bestFreeCompute()).isEqualTo(0.5);
            assertThat(f.reason())
                    .isEqualTo("needs 5.2 GiB and 0.25 compute; best eligible device node-a/gpu-0 has 3.1 GiB and"
                            + " 0.50 compute free");
        });
    }

    @Test
    void noEligibleDeviceCountsEachReason() {
        var devices = new ArrayList<Device>();
        for (int i = 0; i < 3; i++) devices.add(withLabels(gpu("node-a", i, gib(80)), Map.of("gpu", "a100")));
        for (int i = 0; i < 2; i++) {
            devices.add(withTaints(
                    withLabels(gpu("node-b", i, gib(80)), Map.of("gpu", "h100")), new Taint("x", "y", "NoSchedule")));
        }
        var d = withSelector(deployment("ns/m", LLAMA, gib(1), 1), Map.of("gpu", "h100"));

        var r = planner.plan(PlanRequest.of(devices, List.of(d)));

        assertThat(r.refusals())
                .singleElement()
                .extracting(Refusal::reason)
                .isEqualTo(
                        "no eligible device: 3 GPUs fail nodeSelector gpu=h100, 2 GPUs have untolerated taint x=y:NoSchedule");
    }

    @Test
    void computeSharesCapHowManyReplicasPileOntoOneGpu() {
        var tiny = new ModelRef("sha256:tiny", gib(1), 0);
        var r = planner.plan(PlanRequest.of(gpus(1, 4, gib(80)), List.of(deployment("ns/t", tiny, gib(0.1), 8))));
        assertThat(r.devicesUsed()).isEqualTo(2);
        assertThat(r.usage()).allSatisfy(u -> assertThat(u.computeUsed()).isEqualTo(1.0));

        var uncapped = withShare(deployment("ns/t", tiny, gib(0.1), 8), 0);
        assertThat(planner.plan(PlanRequest.of(gpus(1, 4, gib(80)), List.of(uncapped)))
                        .devicesUsed())
                .isEqualTo(1);
    }

    @Test
    void spreadKeepsReplicasOnDistinctNodes() {
        var d = withSpread(deployment("ns/m", QWEN, gib(1), 3), 1);
        var r = planner.plan(PlanRequest.of(gpus(2, 2, gib(80)), List.of(d)));
        assertThat(r.placements()).hasSize(2);
        assertThat(r.placements().stream()
                        .map(p -> p.deviceId().substring(0, 6))
                        .distinct())
                .hasSize(2);
        assertThat(r.refusals())
                .singleElement()
                .satisfies(f -> assertThat(f.reason())
                        .isEqualTo("no eligible device: 4 GPUs are on nodes that already run 1 replicas"
                                + " (maxReplicasPerNode 1)"));
    }

    @Test
    void batchPlacementPutsTheLargestReplicasFirstWhateverTheArrivalOrder() {
        // Two GPUs with 24 GiB usable each. In id (arrival) order the two 10 GiB replicas would share one
        // GPU and leave one 14 GiB replica nowhere to go; largest first pairs 14 + 10 on each GPU.
        var devices = gpus(1, 2, gib(25));
        var smallA = deployment("ns/a-small", new ModelRef("sha256:s1", gib(9), 0), gib(1), 1);
        var smallB = deployment("ns/b-small", new ModelRef("sha256:s2", gib(9), 0), gib(1), 1);
        var bigY = deployment("ns/y-big", new ModelRef("sha256:b1", gib(13), 0), gib(1), 1);
        var bigZ = deployment("ns/z-big", new ModelRef("sha256:b2", gib(13), 0), gib(1), 1);

        var r = planner.plan(PlanRequest.of(devices, List.of(smallA, smallB, bigY, bigZ)));

        assertThat(r.refusals()).isEmpty();
        assertThat(r.usage()).extracting(DeviceUsage::freeBytes).containsOnly(0L);
    }

    @Test
    void rebalanceFreesAWholeDeviceWithinTheDisruptionBudget() {
        var devices = gpus(1, 2, gib(40));
        var a = deployment("ns/a", QWEN, gib(1), 1);
        var b = deployment("ns/b", LLAMA, gib(1), 1);
        var current = List.of(at("ns/a", 0, "node-a/gpu-0"), at("ns/b", 0, "node-a/gpu-1"));

        var kept = planner.plan(new PlanRequest(devices, List.of(a, b), current, false, 5));
        assertThat(kept.placements()).containsExactlyElementsOf(current);

        var noBudget = planner.plan(new PlanRequest(devices, List.of(a, b), current, true, 0));
        assertThat(noBudget.placements()).containsExactlyElementsOf(current);

        var r = planner.plan(new PlanRequest(devices, List.of(a, b), current, true, 1));
        assertThat(r.devicesUsed()).isEqualTo(1);
        assertThat(r.evictions()).singleElement().satisfies(e -> {
            assertThat(e.forReplica()).isNull();
            assertThat(e.reason()).startsWith("rebalance: moved to");
        });
    }

    @Test
    void aDeviceThatIsGoneSendsItsReplicasElsewhere() {
        var r = planner.plan(request(
                List.of(gpu("node-b", 0, gib(24))),
                List.of(deployment("ns/a", QWEN, gib(1), 1)),
                List.of(at("ns/a", 0, "node-a/gpu-0"))));
        assertThat(r.placements()).containsExactly(at("ns/a", 0, "node-b/gpu-0"));
        assertThat(r.evictions()).singleElement().extracting(Eviction::reason).isEqualTo("device node-a/gpu-0 is gone");
    }

    @Test
    void duplicateIdsAreRejectedWithTheirName() {
        var g = gpu("node-a", 0, gib(24));
        assertThatThrownBy(() -> planner.plan(PlanRequest.of(List.of(g, g), List.of())))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("device node-a/gpu-0 appears twice");
        var d = deployment("ns/a", QWEN, gib(1), 1);
        assertThatThrownBy(() -> planner.plan(PlanRequest.of(List.of(g), List.of(d, d))))
                .hasMessageContaining("deployment ns/a appears twice");
        var other = deployment("ns/b", new ModelRef("sha256:qwen", gib(7), 0), gib(1), 1);
        assertThatThrownBy(() -> planner.plan(PlanRequest.of(List.of(g), List.of(d, other))))
                .hasMessageContaining("model sha256:qwen")
                .hasMessageContaining(String.valueOf(gib(6)))
                .hasMessageContaining(String.valueOf(gib(7)));
    }

    @Test
    void theWholeDeviceBaselineGivesEachReplicaItsOwnGpu() {
        var tiny = new ModelRef("sha256:tiny", gib(1), 0);
        var r = new WholeDevicePacker()
                .plan(PlanRequest.of(gpus(1, 4, gib(24)), List.of(deployment("ns/t", tiny, gib(0.1), 5))));
        assertThat(r.devicesUsed()).isEqualTo(4);
        assertThat(r.refusals()).singleElement().satisfies(f -> {
            assertThat(f.neededCompute()).isEqualTo(1.0);
            assertThat(f.bestFreeCompute()).isEqualTo(0.0);
        });
    }

    @Test
    void aNoScheduleTaintAddedLaterKeepsRunningReplicasButNoExecuteMovesThem() {
        var g0 = gpu("node-a", 0, gib(24));
        var g1 = gpu("node-b", 0, gib(24));
        var d = deployment("ns/a", QWEN, gib(1), 1);
        var current = List.of(at("ns/a", 0, g0.id()));

        var cordoned = withTaints(g0, new Taint("maintenance", "", "NoSchedule"));
        assertThat(planner.plan(request(List.of(cordoned, g1), List.of(d), current))
                        .placements())
                .containsExactly(at("ns/a", 0, g0.id()));

        var drained = withTaints(g0, new Taint("maintenance", "", "NoExecute"));
        var r = planner.plan(request(List.of(drained, g1), List.of(d), current));
        assertThat(r.placements()).containsExactly(at("ns/a", 0, g1.id()));
        assertThat(r.evictions())
                .singleElement()
                .extracting(Eviction::reason)
                .asString()
                .contains("NoExecute");
    }

    @Test
    void theBaselinesPlanFromScratchWithTheSameRules() {
        var devices = List.of(
                withTaints(gpu("node-a", 0, gib(80)), new Taint("x", "y", "NoSchedule")), gpu("node-b", 0, gib(24)));
        var d = deployment("ns/a", QWEN, gib(1), 2);
        var current = List.of(at("ns/a", 0, "node-a/gpu-0"));
        for (Packer p : List.of(new NoSharingPacker(), new WholeDevicePacker())) {
            var r = p.plan(request(devices, List.of(d), current));
            assertThat(r.placements()).extracting(Placement::deviceId).doesNotContain("node-a/gpu-0");
            assertThat(r.evictions()).isEmpty();
        }
    }

    @Test
    void anAbsurdReplicaCountIsRejectedBeforeAnythingIsAllocated() {
        var d = deployment("ns/typo", QWEN, gib(1), Integer.MAX_VALUE);
        assertThatThrownBy(() -> planner.plan(PlanRequest.of(gpus(1, 1, gib(24)), List.of(d))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deployment ns/typo")
                .hasMessageContaining(String.valueOf(Integer.MAX_VALUE))
                .hasMessageContaining("limit of " + PlanEngine.MAX_REPLICAS);
    }

    @Test
    void byteFiguresBeyondOnePebibyteAreRejectedByName() {
        var d = deployment("ns/kv", QWEN, Long.MAX_VALUE, 1);
        assertThatThrownBy(() -> planner.plan(PlanRequest.of(gpus(1, 1, gib(24)), List.of(d))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("deployment ns/kv: kvBytesPerReplica is " + Long.MAX_VALUE);
    }

    @Test
    void anEvictedReplicaIsPlacedAgainWhereItStillFits() {
        var g0 = gpu("node-a", 0, gib(24));
        var g1 = gpu("node-b", 0, gib(16));
        var low = withPriority(deployment("ns/low", QWEN, gib(2), 1), 1);
        // 1 + 10 + 1 + 10 = 22 GiB: only the 24 GiB GPU can hold it, and only without "low" (11 GiB).
        var big = withPriority(deployment("ns/big", LLAMA, gib(10), 1), 5);

        var r = planner.plan(request(List.of(g0, g1), List.of(low, big), List.of(at("ns/low", 0, g0.id()))));

        assertThat(r.placements()).containsExactly(at("ns/big", 0, g0.id()), at("ns/low", 0, g1.id()));
        assertThat(r.evictions()).singleElement().satisfies(e -> {
            assertThat(e.victim()).isEqualTo(new ReplicaId("ns/low", 0));
            assertThat(e.forReplica()).isEqualTo(new ReplicaId("ns/big", 0));
        });
        assertThat(r.refusals()).isEmpty();
    }
}
