package io.stowage.placement.plan;

import static io.stowage.placement.plan.Fixtures.at;
import static io.stowage.placement.plan.Fixtures.deployment;
import static io.stowage.placement.plan.Fixtures.gib;
import static io.stowage.placement.plan.Fixtures.gpu;
import static io.stowage.placement.plan.Fixtures.request;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class ReclaimTest {
    private static final ModelRef BUSY = new ModelRef("sha256:busy", gib(4), gib(0.5));
    private static final ModelRef OLD = new ModelRef("sha256:old", gib(6), gib(0.5));
    private static final ModelRef RECENT = new ModelRef("sha256:recent", gib(3), gib(0.5));
    private static final ModelRef NEW = new ModelRef("sha256:new", gib(8), gib(0.5));

    /** One 24 GiB GPU with 1 GiB host overhead. */
    private static final Device GPU = gpu("n", 0, gib(24));

    private static PlanResult plan(List<Deployment> deployments, List<Placement> current) {
        return new StowagePlanner().plan(request(List.of(GPU), deployments, current));
    }

    @Test
    void aNewDeploymentThatNeedsTheSpaceEvictsTheLeastRecentlyUsedIdleCopyFirst() {
        List<IdleCopy> idle = List.of(new IdleCopy(GPU.id(), RECENT, 2_000), new IdleCopy(GPU.id(), OLD, 1_000));
        // busy 8 GiB (with overhead and workspace) + new 8 + 2 KV = 18 GiB: 6 GiB left, for RECENT (3.5) not both
        PlanResult result = plan(
                List.of(deployment("d/busy", BUSY, gib(2.5), 1), deployment("d/new", NEW, gib(2), 1)),
                List.of(at("d/busy", 0, GPU.id())));
        assertThat(result.refusals()).isEmpty();

        Reclaim r = Reclaim.of(result, List.of(GPU), idle);

        assertThat(r.evictions()).extracting(e -> e.copy().model()).containsExactly(OLD);
        assertThat(r.evictions().getFirst().bytes()).isEqualTo(gib(6.5));
        assertThat(r.evictions().getFirst().reason()).startsWith("least recently used idle copy on n/gpu-0");
        assertThat(r.kept()).extracting(IdleCopy::model).containsExactly(RECENT);
        assertThat(r.reclaimableBytes()).containsEntry(GPU.id(), gib(3.5));
    }

    @Test
    void theOrderOfUseDecidesWhichCopyGoesNotItsSize() {
        // the same copies, RECENT now the least recently used: it goes first, and OLD alone still does not fit
        List<IdleCopy> idle = List.of(new IdleCopy(GPU.id(), RECENT, 1_000), new IdleCopy(GPU.id(), OLD, 2_000));
        PlanResult result = plan(
                List.of(deployment("d/busy", BUSY, gib(2.5), 1), deployment("d/new", NEW, gib(2), 1)),
                List.of(at("d/busy", 0, GPU.id())));

        Reclaim r = Reclaim.of(result, List.of(GPU), idle);

        assertThat(r.evictions()).extracting(e -> e.copy().model()).containsExactly(RECENT, OLD);
        assertThat(r.kept()).isEmpty();
        assertThat(r.reclaimableBytes()).isEmpty();
    }

    @Test
    void aCopyWhoseModelThePlanPlacesAgainIsBusyAndNeverEvicted() {
        // BUSY is listed idle by mistake while its replica runs: it is the replica's own weights, not reclaimable
        List<IdleCopy> idle = List.of(new IdleCopy(GPU.id(), BUSY, 0), new IdleCopy(GPU.id(), OLD, 5));
        PlanResult result = plan(List.of(deployment("d/busy", BUSY, gib(14), 1)), List.of(at("d/busy", 0, GPU.id())));

        Reclaim r = Reclaim.of(result, List.of(GPU), idle);

        assertThat(r.reactivated()).extracting(IdleCopy::model).containsExactly(BUSY);
        assertThat(r.evictions()).extracting(e -> e.copy().model()).containsExactly(OLD);
        assertThat(result.placements()).containsExactly(at("d/busy", 0, GPU.id()));
    }

    @Test
    void idleCopiesThatFitStayAsReclaimableMemory() {
        List<IdleCopy> idle = List.of(new IdleCopy(GPU.id(), OLD, 1), new IdleCopy(GPU.id(), RECENT, 2));
        PlanResult result = plan(List.of(deployment("d/busy", BUSY, gib(2), 1)), List.of(at("d/busy", 0, GPU.id())));

        Reclaim r = Reclaim.of(result, List.of(GPU), idle);

        assertThat(r.evictions()).isEmpty();
        assertThat(r.kept()).extracting(IdleCopy::model).containsExactly(OLD, RECENT);
        assertThat(r.reclaimableBytes()).containsEntry(GPU.id(), gib(10));
        assertThat(r.keptOn(GPU.id())).containsExactly("sha256:old", "sha256:recent");
    }

    @Test
    void aDeviceWithNoReplicaStillPaysItsHostOverheadBesideItsIdleCopies() {
        Device small = gpu("m", 0, gib(8)); // 7 GiB beside the 1 GiB overhead
        List<IdleCopy> idle = List.of(new IdleCopy(small.id(), OLD, 1), new IdleCopy(small.id(), RECENT, 2));
        PlanResult empty = new StowagePlanner().plan(request(List.of(small), List.of(), List.of()));

        Reclaim r = Reclaim.of(empty, List.of(small), idle);

        assertThat(r.evictions()).extracting(e -> e.copy().model()).containsExactly(OLD);
        assertThat(r.kept()).extracting(IdleCopy::model).containsExactly(RECENT);
    }

    @Test
    void aCopyOnADeviceThatIsGoneIsEvictedAndTwoCopiesOfOneModelOnOneDeviceAreRefused() {
        PlanResult empty = new StowagePlanner().plan(request(List.of(GPU), List.of(), List.of()));
        Reclaim r = Reclaim.of(empty, List.of(GPU), List.of(new IdleCopy("x/gpu-9", OLD, 1)));
        assertThat(r.evictions())
                .singleElement()
                .satisfies(e -> assertThat(e.reason()).isEqualTo("device x/gpu-9 is gone"));

        assertThatThrownBy(() -> Reclaim.of(
                        empty, List.of(GPU), List.of(new IdleCopy(GPU.id(), OLD, 1), new IdleCopy(GPU.id(), OLD, 2))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("device n/gpu-0 lists the idle copy of model sha256:old twice (one copy per model and"
                        + " device)");
    }
}
