package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.Taint;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * How each node's devices take part in a pass: serving, holding (cordoned or NotReady within its grace: replicas
 * stay, nothing new goes there) or moving (past the grace: replicas move elsewhere, make before break).
 */
final class NodeStates {
    /** The taint a pass puts on the devices of a node that is not serving: the planner places nothing new there. */
    static final String UNAVAILABLE_TAINT = "stowage.io/node-unavailable";

    enum State {
        /** Ready and schedulable. */
        SERVING,
        /** Cordoned or NotReady within its grace: its replicas stay where they are, untouched. */
        HOLDING,
        /** Cordoned or NotReady past its grace: its replicas are placed elsewhere, then leave. */
        MOVING
    }

    /**
     * One node's state.
     *
     * @param ready whether its Ready condition is True (a cordoned Ready node still serves while its replicas move)
     * @param why what the node is, for events and conditions ("node gpu-a is cordoned")
     */
    record NodeState(State state, boolean ready, String why, boolean replacing) {
        NodeState(State state, boolean ready, String why) {
            this(state, ready, why, false);
        }

        /** A host pod that must be replaced (its volumes or memory cannot change): its replicas move first. */
        static NodeState replacing(String host, String reason) {
            return new NodeState(State.MOVING, true, "host " + host + " is replaced: " + reason, true);
        }
    }

    private final Duration notReadyGrace;
    private final Duration cordonGrace;
    private final Clock clock;
    /** When this operator first saw a node cordoned (a cordon carries no time of its own). */
    private final Map<String, Instant> cordonedSince = new ConcurrentHashMap<>();
    /** When this operator first saw a node NotReady whose Ready condition has no transition time. */
    private final Map<String, Instant> notReadySince = new ConcurrentHashMap<>();

    NodeStates(OperatorConfig.Disruption cfg, Clock clock) {
        this.notReadyGrace = cfg.notReadyGrace();
        this.cordonGrace = cfg.cordonGrace();
        this.clock = clock;
    }

    /** The state of every node that is not simply serving, by name; a node absent from the map serves. */
    Map<String, NodeState> read(Collection<Node> nodes) {
        Instant now = clock.instant();
        Map<String, NodeState> out = new HashMap<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (Node n : nodes) {
            String name = n.getMetadata().getName();
            seen.add(name);
            boolean cordoned =
                    n.getSpec() != null && Boolean.TRUE.equals(n.getSpec().getUnschedulable());
            NodeCondition ready = readyCondition(n);
            boolean isReady = ready == null || "True".equals(ready.getStatus());
            if (!cordoned) {
                cordonedSince.remove(name);
            }
            if (isReady) {
                notReadySince.remove(name);
            }
            if (!cordoned && isReady) {
                continue;
            }
            if (!isReady) {
                Instant since = transitionTime(ready);
                if (since == null) {
                    since = notReadySince.computeIfAbsent(name, k -> now);
                }
                boolean past = Duration.between(since, now).compareTo(notReadyGrace) >= 0;
                // Stable words (no running count of seconds): events are recorded once per message.
                String why = "node " + name + " is NotReady (" + ready.getStatus() + ") " + (past ? "past" : "within")
                        + " its " + notReadyGrace.toSeconds() + " s grace";
                out.put(name, new NodeState(past ? State.MOVING : State.HOLDING, false, why));
                continue;
            }
            Instant since = cordonedSince.computeIfAbsent(name, k -> now);
            boolean past = Duration.between(since, now).compareTo(cordonGrace) >= 0;
            out.put(name, new NodeState(past ? State.MOVING : State.HOLDING, true, "node " + name + " is cordoned"));
        }
        cordonedSince.keySet().retainAll(seen);
        notReadySince.keySet().retainAll(seen);
        return out;
    }

    /**
     * The devices as the planner sees them: those of a node that is not serving carry a NoSchedule taint, so that
     * the replicas there stay (until they move) and nothing new is placed there.
     */
    static List<Device> unavailableTainted(List<Device> devices, Map<String, NodeState> byDevice) {
        if (byDevice.isEmpty()) {
            return devices;
        }
        List<Device> out = new ArrayList<>(devices.size());
        for (Device d : devices) {
            NodeState s = byDevice.get(d.id());
            if (s == null) {
                out.add(d);
                continue;
            }
            List<Taint> taints = new ArrayList<>(d.taints());
            taints.add(new Taint(
                    UNAVAILABLE_TAINT,
                    s.replacing() ? "replacing" : s.ready() ? "cordoned" : "not-ready",
                    "NoSchedule"));
            out.add(new Device(
                    d.id(),
                    d.node(),
                    d.kind(),
                    d.totalBytes(),
                    d.reserveBytes(),
                    d.foreignBytes(),
                    d.hostOverheadBytes(),
                    d.computeCapacity(),
                    d.labels(),
                    taints));
        }
        return out;
    }

    private static NodeCondition readyCondition(Node n) {
        if (n.getStatus() == null || n.getStatus().getConditions() == null) {
            return null;
        }
        for (NodeCondition c : n.getStatus().getConditions()) {
            if ("Ready".equals(c.getType())) {
                return c;
            }
        }
        return null;
    }

    private static Instant transitionTime(NodeCondition c) {
        if (c.getLastTransitionTime() == null || c.getLastTransitionTime().isBlank()) {
            return null;
        }
        try {
            return Instant.parse(c.getLastTransitionTime());
        } catch (DateTimeParseException e) {
            return null;
        }
    }
}
