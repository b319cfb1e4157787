package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelHeader;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentStatus;
import io.stowage.operator.crd.MemoryStatus;
import io.stowage.operator.crd.ModelStatus;
import io.stowage.operator.crd.ReplicaPlacementStatus;
import io.stowage.operator.crd.ScalingStatus;
import io.stowage.operator.model.Units;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.ReplicaId;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/** Builds an LlmDeployment's status in one place, keeps the conditions truthful, and owns its Service. */
public final class StatusAggregator {
    public static final String PLACED = "Placed";
    public static final String READY = "Ready";
    public static final String DEGRADED = "Degraded";

    /**
     * A deployment scaled to zero: {@code state} Idle (replicas released, weights resident) or Dormant (evicted),
     * with the bytes its idle copies hold and the devices where it is idle or held.
     */
    public record ScalingView(String state, long reclaimableBytes, String devices) {}

    /** Why a deployment is not (fully) planned; {@code failure} marks a spec or model the user must fix. */
    public record Problem(String reason, String message, boolean failure) {}

    private final KubernetesClient client;
    private final OperatorConfig config;
    private final Clock clock;

    StatusAggregator(KubernetesClient client, OperatorConfig config, Clock clock) {
        this.client = client;
        this.config = config;
        this.clock = clock;
    }

    /** The Service of a deployment: selects the hosts on which its model is ready. */
    public static Service desiredService(LlmDeployment d) {
        String name = d.getMetadata().getName();
        return new ServiceBuilder()
                .withNewMetadata()
                .withName(serviceName(d))
                .withNamespace(d.getMetadata().getNamespace())
                .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .addToLabels(Labels.DEPLOYMENT_LABEL, name.length() <= 63 ? name : Labels.hash(name, 16))
                .withOwnerReferences(new OwnerReferenceBuilder()
                        .withApiVersion(LlmDeployment.API_VERSION)
                        .withKind(LlmDeployment.KIND)
                        .withName(name)
                        .withUid(d.getMetadata().getUid())
                        .withController(true)
                        .withBlockOwnerDeletion(true)
                        .build())
                .endMetadata()
                .withNewSpec()
                .addToSelector(Labels.readyLabel(name), "true")
                .addToSelector(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .addNewPort()
                .withName("http")
                .withPort(80)
                .withTargetPort(new IntOrString("http"))
                .endPort()
                .endSpec()
                .build();
    }

    /** The Service of a deployment: its name made a DNS-1035 label. */
    public static String serviceName(LlmDeployment d) {
        return serviceName(d.getMetadata().getName());
    }

    /**
     * {@code name} (a CR name: a DNS-1123 subdomain, dots allowed) as a DNS-1035 label: lower case letters,
     * digits and '-', starting with a letter, ending with a letter or digit, at most 63 characters; a name that had
     * to change ends with a hash of the whole name so that two names never share a Service. Deterministic.
     */
    public static String serviceName(String name) {
        String s = name.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
        if (s.isEmpty() || !Character.isLetter(s.charAt(0))) {
            s = "llm-" + s;
        }
        s = trimDashes(s);
        if (s.equals(name) && s.length() <= 63) {
            return s;
        }
        // Changed or shortened: the hash of the whole name keeps apart names that map to the same text
        // (llama-3.1 and llama-3-1).
        return trimDashes(s.substring(0, Math.min(s.length(), 50))) + "-" + Labels.hash(name, 12);
    }

    private static String trimDashes(String s) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == '-') {
            end--;
        }
        return s.substring(0, end);
    }

    /**
     * Creates or corrects the deployment's Service.
     *
     * @param have the Service as the pass's view of the cluster holds it, null when there is none
     */
    void ensureService(LlmDeployment d, Service have) {
        Service want = desiredService(d);
        if (have == null) {
            try {
                client.services()
                        .inNamespace(d.getMetadata().getNamespace())
                        .resource(want)
                        .create();
            } catch (KubernetesClientException e) {
                // A cache a moment behind the server: the Service is there, and the next pass compares it.
                if (e.getCode() != 409) {
                    throw e;
                }
            }
        } else if (!Objects.equals(have.getSpec().getSelector(), want.getSpec().getSelector())
                || have.getSpec().getPorts().size() != 1) {
            client.services()
                    .inNamespace(d.getMetadata().getNamespace())
                    .withName(serviceName(d))
                    .edit(s -> {
                        s.getSpec().setSelector(want.getSpec().getSelector());
                        s.getSpec().setPorts(want.getSpec().getPorts());
                        return s;
                    });
        }
    }

    void write(
            LlmDeployment d,
            PlacementLoop.Planned planned,
            Problem problem,
            Map<ReplicaId, String> deviceOf,
            Map<String, Device> devices,
            Map<String, HostAssignment> assignments,
            Map<String, Pod> hostPods,
            Map<String, PlacementLoop.HostReport> reports,
            List<Refusal> refusals) {
        write(d, planned, problem, deviceOf, devices, assignments, hostPods, reports, refusals, Map.of(), null);
    }

    /**
     * Builds and, when it changed, patches the deployment's status.
     *
     * @param standIns per replica that is moving, the device of its old copy, which serves until the replica's new
     *     device does: a replica whose copy reports ready counts as ready (its Service has that endpoint)
     * @param scaling the deployment's scale-to-zero view when it may be Idle or Dormant, else null
     */
    void write(
            LlmDeployment d,
            PlacementLoop.Planned planned,
            Problem problem,
            Map<ReplicaId, String> deviceOf,
            Map<String, Device> devices,
            Map<String, HostAssignment> assignments,
            Map<String, Pod> hostPods,
            Map<String, PlacementLoop.HostReport> reports,
            List<Refusal> refusals,
            Map<ReplicaId, String> standIns,
            ScalingView scaling) {
        LlmDeploymentStatus old = d.getStatus() == null ? new LlmDeploymentStatus() : d.getStatus();
        LlmDeploymentStatus s = new LlmDeploymentStatus();
        int want = d.getSpec() == null ? 0 : d.getSpec().replicasOrZero();
        s.setObservedGeneration(d.getMetadata().getGeneration());
        s.setSelector(Labels.readyLabel(d.getMetadata().getName()) + "=true");
        s.setEndpoint("http://" + serviceName(d) + "." + d.getMetadata().getNamespace() + "." + config.serviceDomain()
                + "/v1");
        if (planned != null && planned.header() != null) {
            s.setModel(
                    modelStatus(planned.header(), planned.deployment().model().digest()));
            s.setMemory(memoryStatus(planned));
        } else {
            s.setModel(old.getModel());
            s.setMemory(old.getMemory());
        }
        int placed = 0;
        int ready = 0;
        List<String> hostErrors = new ArrayList<>();
        String hostReason = "HostUnavailable";
        List<String> modelFailures = new ArrayList<>();
        List<ReplicaPlacementStatus> ps = new ArrayList<>();
        for (int i = 0; planned != null && i < want; i++) {
            ReplicaId r = new ReplicaId(d.key(), i);
            String dev = deviceOf.get(r);
            if (dev == null) {
                continue;
            }
            placed++;
            Pod pod = hostPods.get(dev);
            PlacementLoop.HostReport rep = reports.get(dev);
            ReplicaPlacementStatus p = new ReplicaPlacementStatus();
            p.setReplica(i);
            p.setDevice(dev);
            p.setNode(devices.get(dev) == null ? null : devices.get(dev).node());
            p.setHost(pod == null ? null : pod.getMetadata().getName());
            String digest = planned.deployment().model().digest();
            List<String> sharing = new ArrayList<>();
            boolean first = true;
            for (ReplicaAssignment a : assignments.get(dev).replicas()) {
                if (a.modelDigest().equals(digest) && !a.id().equals(r.toString())) {
                    sharing.add(a.id());
                    if (a.id().compareTo(r.toString()) < 0) {
                        first = false;
                    }
                }
            }
            p.setSharesWeightsWith(sharing);
            p.setBytes(planned.memory().kvBytesPerReplica()
                    + (first ? planned.memory().weightBytes() : 0));
            boolean isReady = false;
            if (rep != null && rep.state() != null) {
                isReady = rep.state().replicas().stream().anyMatch(x -> x.id().equals(r.toString()) && x.ready());
                for (ModelState m : rep.state().models()) {
                    if (m.phase() == ModelPhase.FAILED && m.digest().equals(digest)) {
                        modelFailures.add(p.getHost() + ": " + m.reason());
                    }
                }
            } else if (rep != null && rep.error() != null) {
                hostErrors.add(rep.error().getMessage());
                if (PlacementLoop.HOST_FAILED.equals(rep.error().reason())) {
                    hostReason = PlacementLoop.HOST_FAILED;
                }
            }
            p.setReady(isReady);
            String standIn = standIns.get(r);
            if (isReady || (standIn != null && readyOn(reports.get(standIn), r))) {
                ready++;
            }
            ps.add(p);
        }
        s.setPlacements(ps);
        s.setReplicas(placed);
        s.setReadyReplicas(ready);
        s.setReady(ready + "/" + want);

        Long gen = d.getMetadata().getGeneration();
        List<Condition> conds = new ArrayList<>();
        String phase;
        boolean dormant = scaling != null && "Dormant".equals(scaling.state());
        if (dormant && problem == null) {
            conds.add(cond(
                    gen,
                    old,
                    PLACED,
                    "False",
                    "Dormant",
                    "scaled to zero and evicted (its idle copy gave its memory to another deployment); the host on "
                            + scaling.devices() + " holds its next request while the operator places it again"));
            phase = "Dormant";
        } else if (problem != null && (planned == null || planned.header() == null)) {
            conds.add(cond(gen, old, PLACED, "False", problem.reason(), problem.message()));
            phase = "InspectingModel".equals(problem.reason()) ? "Inspecting" : "Invalid";
        } else if (placed < want) {
            String why = refusals.stream()
                    .filter(r -> r.replica().deployment().equals(d.key()))
                    .map(r -> "replica #" + r.replica().index() + " " + r.reason())
                    .findFirst()
                    .orElse("waiting for the next placement pass");
            conds.add(cond(gen, old, PLACED, "False", "Unplaceable", placed + "/" + want + " replicas placed; " + why));
            phase = "Unplaceable";
        } else {
            long devs = ps.stream()
                    .map(ReplicaPlacementStatus::getDevice)
                    .distinct()
                    .count();
            conds.add(cond(
                    gen,
                    old,
                    PLACED,
                    "True",
                    "Placed",
                    placed + "/" + want + " replicas placed on " + devs + " device(s)"));
            phase = "Placing";
        }
        if (want > 0 && ready == want) {
            conds.add(cond(gen, old, READY, "True", "AllReplicasReady", ready + "/" + want + " replicas ready"));
            phase = "Ready";
        } else if (scaling != null && "Idle".equals(scaling.state())) {
            conds.add(cond(
                    gen,
                    old,
                    READY,
                    "False",
                    "ScaledToZero",
                    ready + "/" + want + " replicas active: released after spec.scaling.idleTimeout (KV given back);"
                            + " the weights stay resident on " + scaling.devices() + " ("
                            + Units.bytes(scaling.reclaimableBytes())
                            + " reclaimable) and the next request re-activates it"));
            phase = "Idle";
        } else if (dormant) {
            conds.add(cond(
                    gen,
                    old,
                    READY,
                    "False",
                    "Dormant",
                    "0/" + want + " replicas: evicted while idle; the next request places it again"));
        } else {
            conds.add(cond(
                    gen,
                    old,
                    READY,
                    "False",
                    want == 0 ? "ScaledToZero" : "ReplicasNotReady",
                    ready + "/" + want + " replicas ready"));
        }
        if (!modelFailures.isEmpty()) {
            conds.add(cond(gen, old, DEGRADED, "True", "ModelLoadFailed", String.join("; ", modelFailures)));
            phase = "Degraded";
        } else if (!hostErrors.isEmpty()) {
            conds.add(cond(gen, old, DEGRADED, "True", hostReason, String.join("; ", hostErrors)));
            phase = "Degraded";
        } else if (problem != null && problem.failure()) {
            conds.add(cond(gen, old, DEGRADED, "True", problem.reason(), problem.message()));
        } else {
            conds.add(cond(gen, old, DEGRADED, "False", "AsExpected", "no host or model errors"));
        }
        s.setConditions(conds);
        s.setPhase(phase);
        if (scaling != null) {
            ScalingStatus ss = new ScalingStatus();
            ss.setState(scaling.state());
            ss.setReclaimableBytes(scaling.reclaimableBytes());
            ss.setReclaimable(Units.bytes(scaling.reclaimableBytes()));
            ss.setDevices(scaling.devices());
            s.setScaling(ss);
        }
        if (!sameStatus(old, s)) {
            patchStatus(d, s);
        }
    }

    private static boolean readyOn(PlacementLoop.HostReport rep, ReplicaId r) {
        return rep != null
                && rep.state() != null
                && rep.state().replicas().stream().anyMatch(x -> x.id().equals(r.toString()) && x.ready());
    }

    /** Attempts at a status patch that the API server answers with 409 Conflict. */
    static final int STATUS_ATTEMPTS = 3;

    /**
     * Writes {@code s} as d's status by a JSON patch of the status subresource: no resourceVersion travels
     * with it, so a spec change or another status write since d was read does not make it fail, and the status
     * (which only this operator writes, and which carries the generation it describes) is never lost for a pass.
     * A 409 (an admission webhook or an API server that still insists) is retried at once; a deleted resource
     * needs no status.
     */
    void patchStatus(LlmDeployment d, LlmDeploymentStatus s) {
        // "add" of /status replaces the whole member whether or not it exists (RFC 6902), lists included.
        String body =
                client.getKubernetesSerialization().asJson(List.of(Map.of("op", "add", "path", "/status", "value", s)));
        for (int attempt = 1; ; attempt++) {
            try {
                // On the object itself (not by name), so that the client sends the patch without a GET first.
                client.resource(d).subresource("status").patch(PatchContext.of(PatchType.JSON), body);
                d.setStatus(s);
                return;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 404) {
                    return;
                }
                if (e.getCode() != 409 || attempt >= STATUS_ATTEMPTS) {
                    throw e;
                }
            }
        }
    }

    private static boolean sameStatus(LlmDeploymentStatus a, LlmDeploymentStatus b) {
        var json = io.stowage.operator.host.HostAdminClient.JSON;
        return json.valueToTree(a).equals(json.valueToTree(b));
    }

    private Condition cond(
            Long generation, LlmDeploymentStatus old, String type, String status, String reason, String message) {
        Condition prev = old.condition(type);
        String since = prev != null && status.equals(prev.getStatus()) && prev.getLastTransitionTime() != null
                ? prev.getLastTransitionTime()
                : EventRecorder.time(clock.instant());
        return new ConditionBuilder()
                .withType(type)
                .withStatus(status)
                .withReason(conditionReason(reason))
                .withMessage(conditionMessage(message))
                .withLastTransitionTime(since)
                .withObservedGeneration(generation)
                .build();
    }

    /** metav1.Condition's reason: a CamelCase word of at most 1024 characters. */
    private static final java.util.regex.Pattern REASON =
            java.util.regex.Pattern.compile("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$");

    /** metav1.Condition's message limit, in characters. */
    static final int MAX_MESSAGE = 32_768;

    /**
     * {@code reason} as a real API server's condition schema accepts it: characters outside the allowed set are
     * dropped (a reason is an identifier, not prose); an empty result reads "Unknown".
     */
    static String conditionReason(String reason) {
        if (reason != null && reason.length() <= 1024 && REASON.matcher(reason).matches()) {
            return reason;
        }
        String r = reason == null ? "" : reason.replaceAll("[^A-Za-z0-9_,:]", "");
        r = r.replaceFirst("^[^A-Za-z]+", "").replaceFirst("[,:]+$", "");
        if (r.length() > 1024) {
            r = r.substring(0, 1024).replaceFirst("[,:]+$", "");
        }
        return r.isEmpty() ? "Unknown" : r;
    }

    /** {@code message} cut to {@link #MAX_MESSAGE} characters, saying that it was. */
    static String conditionMessage(String message) {
        if (message == null) {
            return "";
        }
        if (message.length() <= MAX_MESSAGE) {
            return message;
        }
        String tail = " ... (cut; kubectl get events has the rest)";
        return message.substring(0, MAX_MESSAGE - tail.length()) + tail;
    }

    private static ModelStatus modelStatus(ModelHeader h, String digest) {
        ModelStatus m = new ModelStatus();
        m.setArchitecture(h.architecture());
        m.setName(h.name());
        m.setParameters(h.parameters());
        m.setParametersHuman(Units.count(h.parameters()));
        m.setQuantization(h.quantization());
        m.setContextLength(h.shape().contextLength());
        m.setDigest(digest);
        m.setSummary(h.architecture() + " " + Units.count(h.parameters()));
        return m;
    }

    private static MemoryStatus memoryStatus(PlacementLoop.Planned p) {
        MemoryStatus m = new MemoryStatus();
        var b = p.memory();
        long total = b.totalForOneReplica();
        m.setWeightsBytes(b.weightBytes());
        m.setKvPerReplicaBytes(b.kvBytesPerReplica());
        m.setWorkspaceBytes(b.workspaceBytes());
        m.setOverheadBytes(b.hostOverheadBytes());
        m.setTotalPerReplicaBytes(total);
        m.setPerReplica(Units.bytes(total));
        m.setSummary("weights " + Units.bytes(b.weightBytes()) + " + KV " + Units.bytes(b.kvBytesPerReplica())
                + " + workspace " + Units.bytes(b.workspaceBytes()) + " + overhead "
                + Units.bytes(b.hostOverheadBytes())
                + " = " + Units.bytes(total) + " for the first replica on a device; each further replica sharing the"
                + " weights adds " + Units.bytes(b.kvBytesPerReplica()));
        return m;
    }
}
