package io.stowage.placement.plan;

import static io.stowage.placement.plan.Fixtures.deployment;
import static io.stowage.placement.plan.Fixtures.gib;
import static io.stowage.placement.plan.Fixtures.gpus;
import static io.stowage.placement.plan.Fixtures.withPriority;
import static io.stowage.placement.plan.Fixtures.withReplicas;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PlannerStateTest {
    private final List<Device> devices = gpus(2, 4, gib(24));
    private final Deployment a = deployment("ns/a", new ModelRef("sha256:a", gib(8), gib(1)), gib(2), 3);
    private final Deployment b = deployment("ns/b", new ModelRef("sha256:b", gib(4), gib(1)), gib(1), 2);

    @Test
    void aScaleUpAndANewDeploymentApplyToTheKeptLedger() {
        PlannerState state = new PlannerState();
        PlanResult first = state.plan(PlanRequest.of(devices, List.of(a, b)));

        Deployment c = deployment("ns/c", new ModelRef("sha256:a", gib(8), gib(1)), gib(1), 1);
        PlanRequest next = new PlanRequest(devices, List.of(withReplicas(a, 4), b, c), first.placements(), false, 0);
        PlanResult r = state.plan(next);

        assertThat(state.plansFromScratch()).isEqualTo(1);
        assertThat(r).isEqualTo(new StowagePlanner().plan(next));
        assertThat(r.placements()).containsAll(first.placements());
        assertThat(r.placements()).hasSize(first.placements().size() + 2);
    }

    @Test
    void aScaleDownDropsTheHighestReplicaWhetherOrNotTheCallerStillListsIt() {
        PlannerState state = new PlannerState();
        PlanResult first = state.plan(PlanRequest.of(devices, List.of(a, b)));

        PlanRequest next = new PlanRequest(devices, List.of(withReplicas(a, 2), b), first.placements(), false, 0);
        PlanResult r = state.plan(next);

        assertThat(state.plansFromScratch()).isEqualTo(1);
        assertThat(r).isEqualTo(new StowagePlanner().plan(next));
        assertThat(r.placements()).noneMatch(p -> p.replica().equals(new ReplicaId("ns/a", 2)));
    }

    @Test
    void anyOtherChangeIsPlannedFromScratch() {
        PlannerState state = new PlannerState();
        PlanResult first = state.plan(PlanRequest.of(devices, List.of(a, b)));

        // an edit other than replicas
        PlanRequest edited = new PlanRequest(devices, List.of(withPriority(a, 5), b), first.placements(), false, 0);
        assertThat(state.plan(edited)).isEqualTo(new StowagePlanner().plan(edited));
        assertThat(state.plansFromScratch()).isEqualTo(2);

        // another device list
        List<Device> fewer = new ArrayList<>(devices.subList(0, 6));
        PlanRequest shrunk = new PlanRequest(fewer, List.of(withPriority(a, 5), b), first.placements(), false, 0);
        assertThat(state.plan(shrunk)).isEqualTo(new StowagePlanner().plan(shrunk));
        assertThat(state.plansFromScratch()).isEqualTo(3);
    }

    @Test
    void aDeploymentListedTwiceFailsAsInAFreshPlan() {
        PlannerState state = new PlannerState();
        PlanResult first = state.plan(PlanRequest.of(devices, List.of(a, b)));

        PlanRequest twice = new PlanRequest(devices, List.of(a, a), first.placements(), false, 0);
        assertThatThrownBy(() -> state.plan(twice)).hasMessageContaining("ns/a appears twice");
        // and the state still plans (from scratch) afterwards
        PlanRequest next = new PlanRequest(devices, List.of(a, withReplicas(b, 3)), first.placements(), false, 0);
        assertThat(state.plan(next)).isEqualTo(new StowagePlanner().plan(next));
    }
}
