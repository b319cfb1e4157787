package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.plan.Device;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * Notices host pods that stay Pending past a bound and says why, from the scheduler's {@code PodScheduled}
 * condition or the container's waiting reason.
 *
 * <p>A host pod the scheduler cannot place (its GPU taken by something the inventory did not see, a node whose
 * taints or resources changed) is released: the pod is deleted, its replicas are planned again on other devices in
 * the same pass, and its device is not offered again for as long as the bound. A pod that is scheduled but does not
 * start (an image that cannot be pulled, a volume that does not mount) is reported only: another device would not
 * cure it. The devices left out are remembered in memory; after an operator restart a device may be tried again
 * once, and is released again after the bound.
 */
final class PendingHosts {
    private static final Logger LOG = Logger.getLogger(PendingHosts.class);
    static final String UNSCHEDULABLE = "HostUnschedulable";
    static final String PENDING = "HostPending";

    /** A device left out until {@code until}, and what the deployments it carried are told meanwhile. */
    private record Released(Instant until, String message, Set<String> deployments) {}

    private final Duration bound;
    private final Clock clock;
    private final Map<String, Released> released = new ConcurrentHashMap<>();

    PendingHosts(Duration bound, Clock clock) {
        this.bound = bound;
        this.clock = clock;
    }

    /**
     * Releases the hosts of {@code ledger} that the scheduler could not place within the bound (removed from the
     * ledger, their pods deleted), reports them and the scheduled-but-stuck ones to the deployments they carry, and
     * adds to {@code problems} what each deployment is told while its host's device is left out.
     */
    void check(
            Map<String, PlacementLoop.Host> ledger,
            Map<String, PlacementLoop.Planned> planned,
            Map<String, StatusAggregator.Problem> problems,
            KubernetesClient client,
            EventRecorder events) {
        Instant now = clock.instant();
        released.values().removeIf(r -> !r.until().isAfter(now));
        for (PlacementLoop.Host h : List.copyOf(ledger.values())) {
            Pod pod = h.pod();
            Duration pending = pendingFor(pod, now);
            if (pending == null || pending.compareTo(bound) < 0) {
                continue;
            }
            String name =
                    pod.getMetadata().getNamespace() + "/" + pod.getMetadata().getName();
            Set<String> deployments = new TreeSet<>();
            h.assignment().replicas().stream()
                    .map(ReplicaAssignment::deployment)
                    .forEach(deployments::add);
            PodCondition scheduled = condition(pod, "PodScheduled");
            if (scheduled != null && "False".equals(scheduled.getStatus())) {
                String why = "host pod " + name + " for device " + h.deviceId() + " could not be scheduled for more"
                        + " than " + human(bound) + " (" + nonBlank(scheduled.getReason(), "Unschedulable")
                        + ": " + nonBlank(scheduled.getMessage(), "no message from the scheduler") + "); its"
                        + " replicas are planned again elsewhere and " + h.deviceId() + " is left out until "
                        + EventRecorder.time(now.plus(bound));
                LOG.warn(why);
                try {
                    client.pods()
                            .inNamespace(pod.getMetadata().getNamespace())
                            .withName(pod.getMetadata().getName())
                            .delete();
                } catch (KubernetesClientException e) {
                    // Left in the ledger: the next pass tries again, and nothing is planned twice meanwhile.
                    LOG.warnf("host pod %s not deleted: %s", name, e.getMessage());
                    continue;
                }
                ledger.remove(h.deviceId());
                released.put(h.deviceId(), new Released(now.plus(bound), why, deployments));
                tell(deployments, planned, events, UNSCHEDULABLE, why);
            } else {
                String why = "host pod " + name + " for device " + h.deviceId() + " is scheduled but has not"
                        + " started for more than " + human(bound) + " (" + waiting(pod) + ")";
                tell(deployments, planned, events, PENDING, why);
                deployments.forEach(d -> problems.putIfAbsent(d, new StatusAggregator.Problem(PENDING, why, true)));
            }
        }
        released.values()
                .forEach(r -> r.deployments()
                        .forEach(d -> problems.putIfAbsent(
                                d, new StatusAggregator.Problem(UNSCHEDULABLE, r.message(), true))));
    }

    /** Whether {@code device} is left out of planning now, its host pod having been unschedulable. */
    boolean leftOut(Device device) {
        Released r = released.get(device.id());
        return r != null && r.until().isAfter(clock.instant());
    }

    /**
     * How long the pod has been Pending, or null when it is not: since the scheduler last said it could not place
     * it, or since it was scheduled, or else since it was created.
     */
    static Duration pendingFor(Pod pod, Instant now) {
        if (pod.getStatus() == null || !"Pending".equals(pod.getStatus().getPhase())) {
            return null;
        }
        PodCondition scheduled = condition(pod, "PodScheduled");
        String since = scheduled == null ? null : scheduled.getLastTransitionTime();
        if (since == null) {
            since = pod.getMetadata().getCreationTimestamp();
        }
        if (since == null) {
            return null;
        }
        try {
            return Duration.between(Instant.parse(since), now);
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    private static void tell(
            Collection<String> deployments,
            Map<String, PlacementLoop.Planned> planned,
            EventRecorder events,
            String reason,
            String why) {
        for (String d : deployments) {
            PlacementLoop.Planned p = planned.get(d);
            if (p != null) {
                events.warning(p.cr(), reason, why);
            }
        }
    }

    private static PodCondition condition(Pod pod, String type) {
        if (pod.getStatus() == null || pod.getStatus().getConditions() == null) {
            return null;
        }
        for (PodCondition c : pod.getStatus().getConditions()) {
            if (type.equals(c.getType())) {
                return c;
            }
        }
        return null;
    }

    private static String waiting(Pod pod) {
        List<String> out = new ArrayList<>();
        if (pod.getStatus().getContainerStatuses() != null) {
            for (var cs : pod.getStatus().getContainerStatuses()) {
                var w = cs.getState() == null ? null : cs.getState().getWaiting();
                if (w != null) {
                    out.add("container " + cs.getName() + " waiting: " + nonBlank(w.getReason(), "?")
                            + (w.getMessage() == null || w.getMessage().isBlank() ? "" : ": " + w.getMessage()));
                }
            }
        }
        return out.isEmpty() ? "no container status yet" : String.join("; ", out);
    }

    /** A duration as people write it: {@code 5m}, {@code 90s}, {@code 1h30m}. */
    static String human(Duration d) {
        long s = d.toSeconds();
        if (s < 60 || s % 60 != 0) {
            return s + "s";
        }
        long m = s / 60;
        return m < 60 ? m + "m" : (m / 60) + "h" + (m % 60 == 0 ? "" : (m % 60) + "m");
    }

    private static String nonBlank(String s, String otherwise) {
        return s == null || s.isBlank() ? otherwise : s;
    }
}
