package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link NodeStates}: which nodes' replicas stay, which move, and when, from cordons, Ready and the graces. */
class NodeStatesTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    /** A clock a test moves by hand. */
    private static final class TestClock extends Clock {
        Instant now = T0;

        @Override
        public ZoneId getZone() {
            return ZoneId.of("UTC");
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    private final TestClock clock = new TestClock();

    private static OperatorConfig.Disruption graces(Duration notReady, Duration cordon) {
        OperatorConfig.Disruption d = OperatorConfig.Disruption.DEFAULTS;
        return new OperatorConfig.Disruption(
                notReady,
                cordon,
                d.terminationGrace(),
                d.preStopSleep(),
                d.priorityClassName(),
                d.disruptionBudget(),
                d.maxUnavailable());
    }

    private static Node node(String name, boolean cordoned, String ready, Instant since) {
        return new NodeBuilder()
                .withNewMetadata()
                .withName(name)
                .endMetadata()
                .withNewSpec()
                .withUnschedulable(cordoned)
                .endSpec()
                .withNewStatus()
                .addNewCondition()
                .withType("Ready")
                .withStatus(ready)
                .withLastTransitionTime(since == null ? null : since.toString())
                .endCondition()
                .endStatus()
                .build();
    }

    @Test
    void aReadySchedulableNodeServesAndIsNotListed() {
        NodeStates states = new NodeStates(graces(Duration.ofSeconds(60), Duration.ZERO), clock);

        assertThat(states.read(List.of(node("a", false, "True", T0)))).isEmpty();
    }

    @Test
    void aNotReadyNodeHoldsItsReplicasWithinTheGraceAndMovesThemPastIt() {
        NodeStates states = new NodeStates(graces(Duration.ofSeconds(60), Duration.ZERO), clock);
        clock.now = T0.plusSeconds(59);

        var within = states.read(List.of(node("a", false, "False", T0))).get("a");
        assertThat(within.state()).isEqualTo(NodeStates.State.HOLDING);
        assertThat(within.ready()).isFalse();
        assertThat(within.why()).isEqualTo("node a is NotReady (False) within its 60 s grace");

        clock.now = T0.plusSeconds(60);
        var past = states.read(List.of(node("a", false, "Unknown", T0))).get("a");
        assertThat(past.state()).isEqualTo(NodeStates.State.MOVING);
        assertThat(past.why()).isEqualTo("node a is NotReady (Unknown) past its 60 s grace");
    }

    @Test
    void aNotReadyNodeWithoutATransitionTimeCountsItsGraceFromWhenTheOperatorSawIt() {
        NodeStates states = new NodeStates(graces(Duration.ofSeconds(60), Duration.ZERO), clock);
        clock.now = T0.plusSeconds(3600);
        assertThat(states.read(List.of(node("a", false, "False", null)))
                        .get("a")
                        .state())
                .isEqualTo(NodeStates.State.HOLDING);

        clock.now = T0.plusSeconds(3660);
        assertThat(states.read(List.of(node("a", false, "False", null)))
                        .get("a")
                        .state())
                .isEqualTo(NodeStates.State.MOVING);

        // Back, and down again: a new grace.
        assertThat(states.read(List.of(node("a", false, "True", null)))).isEmpty();
        assertThat(states.read(List.of(node("a", false, "False", null)))
                        .get("a")
                        .state())
                .isEqualTo(NodeStates.State.HOLDING);
    }

    @Test
    void aCordonedNodesReplicasMoveAfterTheCordonGraceAndStayWhenItIsLifted() {
        NodeStates states = new NodeStates(graces(Duration.ofSeconds(60), Duration.ofSeconds(30)), clock);

        var held = states.read(List.of(node("a", true, "True", T0))).get("a");
        assertThat(held.state()).isEqualTo(NodeStates.State.HOLDING);
        assertThat(held.ready()).as("a cordoned node still serves").isTrue();
        assertThat(held.why()).isEqualTo("node a is cordoned");

        clock.now = T0.plusSeconds(30);
        assertThat(states.read(List.of(node("a", true, "True", T0))).get("a").state())
                .isEqualTo(NodeStates.State.MOVING);

        assertThat(states.read(List.of(node("a", false, "True", T0)))).isEmpty();
    }

    @Test
    void devicesOfANodeThatDoesNotServeGetATaintNothingNewTolerates() {
        Device a = new Device("a/gpu-0", "a", DeviceKind.GPU, 1L << 30, 0, 0, 0, 1.0, Map.of(), List.of());
        Device b = new Device(
                "b/gpu-0",
                "b",
                DeviceKind.GPU,
                1L << 30,
                0,
                0,
                0,
                1.0,
                Map.of(),
                List.of(new Taint("nvidia.com/gpu", "present", "NoSchedule")));

        List<Device> out = NodeStates.unavailableTainted(
                List.of(a, b),
                Map.of("b/gpu-0", new NodeStates.NodeState(NodeStates.State.HOLDING, true, "node b is cordoned")));

        assertThat(out.get(0)).isEqualTo(a);
        assertThat(out.get(1).taints())
                .containsExactly(
                        new Taint("nvidia.com/gpu", "present", "NoSchedule"),
                        new Taint(NodeStates.UNAVAILABLE_TAINT, "cordoned", "NoSchedule"));
        assertThat(out.get(1).capacityBytes()).isEqualTo(b.capacityBytes());
    }

    @Test
    void badDisruptionSettingsAreRefusedWithWhatAndWhy() {
        assertThatThrownBy(() -> graces(Duration.ofSeconds(-1), Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("the NotReady node grace must be zero or more, not PT-1S; give a duration such as 60s");
        OperatorConfig.Disruption d = OperatorConfig.Disruption.DEFAULTS;
        assertThatThrownBy(() -> new OperatorConfig.Disruption(
                        d.notReadyGrace(), d.cordonGrace(), Duration.ofSeconds(5), Duration.ofSeconds(5), "", true, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be shorter than the host termination grace");
        assertThatThrownBy(() -> new OperatorConfig.Disruption(
                        d.notReadyGrace(), d.cordonGrace(), d.terminationGrace(), d.preStopSleep(), "", true, -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxUnavailable must be 0 or more, not -1");
    }
}
