package io.stowage.placement.plan;

import static io.stowage.placement.plan.Fixtures.deployment;
import static io.stowage.placement.plan.Fixtures.gib;
import static io.stowage.placement.plan.Fixtures.gpus;
import static io.stowage.placement.plan.Fixtures.withShare;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
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
}
