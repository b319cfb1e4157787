package io.stowage.placement.plan;

import static io.stowage.placement.plan.Fixtures.deployment;
import static io.stowage.placement.plan.Fixtures.gib;
import static io.stowage.placement.plan.Fixtures.gpus;
import static io.stowage.placement.plan.Fixtures.withShare;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LowerBoundTest {

    @Test
    void theMemoryBoundCountsOneWeightCopyPerDeviceFullOfReplicas() {
        // 24 GiB GPUs with 1 GiB overhead: 23 usable. W = 20, K = 1: a copy serves at most 3 replicas,
        // so 9 replicas need 3 copies: 3·20 + 9·1 = 69 GiB = 3 devices (one copy alone would say 2).
        var d = withShare(deployment("ns/m", new ModelRef("sha256:m", gib(20), 0), gib(1), 9), 0);
        var req = PlanRequest.of(gpus(1, 8, gib(24)), List.of(d));

        assertThat(LowerBound.devices(req)).isEqualTo(3);
        assertThat(new StowagePlanner().plan(req).devicesUsed()).isEqualTo(3);
    }

    @Test
    void theComputeBoundWinsWhenSharesLimitThePacking() {
        // W = 10, A = 1, K = 2, 10 replicas: 2 copies, 2·10 + 10·2 = 40 GiB on 22 usable per device → 2;
        // but 10 × 0.25 compute needs 3 devices.
        var d = deployment("ns/m", new ModelRef("sha256:m", gib(10), gib(1)), gib(2), 10);
        var req = PlanRequest.of(gpus(1, 10, gib(24)), List.of(d));

        assertThat(LowerBound.devices(req)).isEqualTo(2);
        assertThat(LowerBound.computeDevices(req)).isEqualTo(3);
        assertThat(LowerBound.combined(req)).isEqualTo(3);
        assertThat(new StowagePlanner().plan(req).devicesUsed()).isEqualTo(3);
    }

    @Test
    void replicasThatFitNoDeviceAloneAreNotCounted() {
        var fits = withShare(deployment("ns/m", new ModelRef("sha256:m", gib(20), 0), gib(1), 9), 0);
        var huge = deployment("ns/huge", new ModelRef("sha256:h", gib(20), 0), gib(100), 5);
        var req = PlanRequest.of(gpus(1, 8, gib(24)), List.of(fits, huge));

        assertThat(LowerBound.devices(req)).isEqualTo(3);
        assertThat(LowerBound.devices(PlanRequest.of(gpus(1, 8, gib(24)), List.of(huge))))
                .isZero();
    }

    @Test
    void aFleetTooSmallForTheDemandBoundsAtItsOwnSize() {
        var d = withShare(deployment("ns/m", new ModelRef("sha256:m", gib(20), 0), gib(1), 30), 0);
        assertThat(LowerBound.devices(PlanRequest.of(gpus(1, 4, gib(24)), List.of(d))))
                .isEqualTo(4);
    }

    @Test
    void copiesLargerThanHalfADeviceEachNeedTheirOwnDevice() {
        // 24 GiB GPUs, 23 usable: three models of 12 GiB weights with one 1 GiB replica each. By volume
        // 3·13 = 39 GiB fits two devices, but no two of the copies fit one device together.
        List<Deployment> deps = List.of(
                withShare(deployment("ns/a", new ModelRef("sha256:a", gib(12), 0), gib(1), 1), 0),
                withShare(deployment("ns/b", new ModelRef("sha256:b", gib(12), 0), gib(1), 1), 0),
                withShare(deployment("ns/c", new ModelRef("sha256:c", gib(12), 0), gib(1), 1), 0));
        var req = PlanRequest.of(gpus(1, 8, gib(24)), deps);

        assertThat(LowerBound.devices(req)).isEqualTo(3);
        assertThat(new StowagePlanner().plan(req).devicesUsed()).isEqualTo(3);
    }

    @Test
    void demandPinnedToSmallDevicesIsCoveredByThem() {
        // Two 80 GiB GPUs (79 usable) labelled big, two 32 GiB (31 usable) labelled small. ns/x is pinned
        // to small: W = 10, K = 10, 3 replicas, two per copy: 2 copies, 50 GiB, two small GPUs. ns/y
        // (W = 1, K = 1, 100 replicas: 101 GiB) needs both big ones. By volume alone, 151 GiB would fit
        // the two big GPUs.
        List<Device> devices = List.of(
                Fixtures.withLabels(Fixtures.gpu("n0", 0, gib(80)), Map.of("size", "big")),
                Fixtures.withLabels(Fixtures.gpu("n0", 1, gib(80)), Map.of("size", "big")),
                Fixtures.withLabels(Fixtures.gpu("n1", 0, gib(32)), Map.of("size", "small")),
                Fixtures.withLabels(Fixtures.gpu("n1", 1, gib(32)), Map.of("size", "small")));
        var x = Fixtures.withSelector(
                withShare(deployment("ns/x", new ModelRef("sha256:x", gib(10), 0), gib(10), 3), 0),
                Map.of("size", "small"));
        var y = withShare(deployment("ns/y", new ModelRef("sha256:y", gib(1), 0), gib(1), 100), 0);
        var req = PlanRequest.of(devices, List.of(x, y));

        assertThat(LowerBound.devices(req)).isEqualTo(4);
        PlanResult plan = new StowagePlanner().plan(req);
        assertThat(plan.refusals()).isEmpty();
        assertThat(plan.devicesUsed()).isEqualTo(4);
    }
}
