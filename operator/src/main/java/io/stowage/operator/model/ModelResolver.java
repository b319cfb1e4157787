package io.stowage.operator.model;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.stowage.hostapi.ModelHeader;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.reconcile.Labels;
import io.stowage.operator.reconcile.OperatorConfig;
import io.stowage.placement.manifest.PlannerInput;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds a deployment's model header: over http(s) from allowlisted hosts, otherwise with a short-lived
 * probe pod running the runtime image's {@code inspect --json}; results are cached per URI and digest.
 */
public final class ModelResolver {
    public static final Set<String> SCHEMES = Set.of("https", "http", "file", "pvc", "s3", "hf");
    private static final ObjectMapper JSON =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    /** The first retry of a source that failed; each further failure doubles it, up to {@link #RETRY_MAX}. */
    static final Duration RETRY_FIRST = Duration.ofSeconds(30);

    static final Duration RETRY_MAX = Duration.ofMinutes(10);

    /** The probe pod's own deadline (spec.activeDeadlineSeconds), which the kubelet enforces once it runs it. */
    static final long PROBE_DEADLINE_SECONDS = 300;

    /** How long a probe pod may stay unschedulable before its deployment is told. */
    static final Duration UNSCHEDULABLE_BOUND = Duration.ofMinutes(2);

    /**
     * How long a probe pod may exist without finishing, whatever holds it (no kubelet, a volume that never attaches,
     * such as a ReadWriteOnce claim in use on another node): its deadline and a minute.
     */
    static final Duration UNFINISHED_BOUND = Duration.ofSeconds(PROBE_DEADLINE_SECONDS + 60);

    /** The reason of a model source that no probe pod could read (it never ran, or ran out of time). */
    public static final String UNREADABLE = "ModelUnreadable";

    /** Container waiting reasons that do not clear by themselves: the probe has failed. */
    static final Set<String> FATAL_WAITING = Set.of(
            "ErrImagePull",
            "ImagePullBackOff",
            "InvalidImageName",
            "ErrImageNeverPull",
            "CreateContainerConfigError",
            "CreateContainerError",
            "RunContainerError");

    /** What is known about a model source. */
    public sealed interface Resolution {}

    /** The header is known. */
    public record Known(ModelHeader header) implements Resolution {}

    /** Still being read; {@code message} says by what. */
    public record Pending(String message) implements Resolution {}

    /** Cannot be read; {@code reason} is the Kubernetes reason. */
    public record Failed(String reason, String message, Instant at) implements Resolution {}

    private final KubernetesClient client;
    private final OperatorConfig config;
    private final HttpModelHeaderReader http;
    private final Clock clock;
    private final Map<String, Resolution> cache = new ConcurrentHashMap<>();
    /** Failures in a row per source key, for the backoff. */
    private final Map<String, Integer> failures = new ConcurrentHashMap<>();
    /** The generation each deployment (namespace/name) was last resolved at: a spec change retries at once. */
    private final Map<String, Long> generations = new ConcurrentHashMap<>();

    public ModelResolver(KubernetesClient client, OperatorConfig config, Clock clock) {
        this.client = client;
        this.config = config;
        this.clock = clock;
        this.http =
                new HttpModelHeaderReader(config.allowedModelHosts(), config.httpTimeout(), config.maxHeaderBytes());
    }

    /** The cache key of a source: URI and digest. */
    public static String sourceKey(String uri, String sha256) {
        return uri + "@" + (sha256 == null ? "" : sha256);
    }

    /** The content key the weights are shared by: the sha256 when given, else one derived from the URI. */
    public static String digest(String uri, String sha256) {
        return PlannerInput.modelKey(uri, sha256);
    }

    public Resolution resolve(LlmDeployment d) {
        String uriText =
                d.getSpec().getModel() == null ? null : d.getSpec().getModel().getUri();
        String sha =
                d.getSpec().getModel() == null ? null : d.getSpec().getModel().getSha256();
        if (uriText == null || uriText.isBlank()) {
            return new Failed("InvalidModelUri", "spec.model.uri is empty", clock.instant());
        }
        URI uri;
        try {
            uri = new URI(uriText);
        } catch (URISyntaxException e) {
            return new Failed(
                    "InvalidModelUri",
                    "spec.model.uri \"" + uriText + "\" is not a URI: " + e.getReason(),
                    clock.instant());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!SCHEMES.contains(scheme)) {
            return new Failed(
                    "InvalidModelUri",
                    "spec.model.uri scheme \"" + scheme + "\" is not one of " + SCHEMES,
                    clock.instant());
        }
        String key = sourceKey(uriText, sha);
        Resolution cached = cache.get(key);
        if (cached instanceof Known) {
            return cached;
        }
        if (generations.size() > 100_000) {
            generations.clear();
        }
        long generation =
                d.getMetadata().getGeneration() == null ? 0L : d.getMetadata().getGeneration();
        Long seen = generations.put(
                d.getMetadata().getNamespace() + "/" + d.getMetadata().getName(), generation);
        boolean specChanged = seen != null && seen != generation;
        if (cached instanceof Failed f
                && !specChanged
                && f.at().plus(retryAfter(key)).isAfter(clock.instant())) {
            return cached;
        }
        Resolution r = scheme.startsWith("http") ? readHttp(uri) : probe(d, uriText, key);
        if (r instanceof Known) {
            failures.remove(key);
        } else if (r instanceof Failed) {
            failures.merge(key, 1, Integer::sum);
        }
        if (r instanceof Pending) {
            // A retry is under way: the earlier failure no longer answers for this source.
            cache.remove(key);
        } else {
            cache.put(key, r);
        }
        return r;
    }

    /** The backoff after the failures of {@code key} so far: 30 s, 1 min, 2 min, ... up to 10 min. */
    Duration retryAfter(String key) {
        int n = Math.min(failures.getOrDefault(key, 1), 16);
        Duration d = RETRY_FIRST.multipliedBy(1L << Math.max(0, n - 1));
        return d.compareTo(RETRY_MAX) > 0 ? RETRY_MAX : d;
    }

    private Resolution readHttp(URI uri) {
        try {
            return new Known(http.read(uri));
        } catch (InvalidModelException e) {
            return new Failed(
                    http.allows(uri) ? "InvalidModel" : "ModelHostNotAllowed", e.getMessage(), clock.instant());
        } catch (Exception e) {
            return new Failed("ModelUnreachable", uri + ": " + e, clock.instant());
        }
    }

    private Resolution probe(LlmDeployment d, String uri, String key) {
        String ns = d.getMetadata().getNamespace();
        String name = Labels.probePodName(key);
        Pod pod = client.pods().inNamespace(ns).withName(name).get();
        if (pod == null) {
            // Owned by the deployment that asks (not controlled: another one of the same source may read the same
            // result), so that the garbage collector removes it when that deployment goes before the result is
            // read, or the pod never ran (found on a real node: probe pods outlived their deployments).
            Pod want = probePod(ns, name, uri);
            want.getMetadata()
                    .setOwnerReferences(List.of(new io.fabric8.kubernetes.api.model.OwnerReferenceBuilder()
                            .withApiVersion(LlmDeployment.API_VERSION)
                            .withKind(LlmDeployment.KIND)
                            .withName(d.getMetadata().getName())
                            .withUid(d.getMetadata().getUid())
                            .build()));
            try {
                client.pods().inNamespace(ns).resource(want).create();
            } catch (KubernetesClientException e) {
                if (e.getCode() == 400 || e.getCode() == 403 || e.getCode() == 422) {
                    return new Failed(UNREADABLE, refusal(ns, name, uri, e), clock.instant());
                }
                throw e;
            }
            return new Pending("probe pod " + ns + "/" + name + " started to read the model header");
        }
        if (pod.getMetadata().getDeletionTimestamp() != null) {
            return new Pending("probe pod " + ns + "/" + name + " is being deleted; a new one follows");
        }
        ContainerStateTerminated t = terminated(pod);
        if (t == null) {
            String stuck = stuck(pod, clock.instant());
            if (stuck != null) {
                client.pods().inNamespace(ns).withName(name).delete();
                return new Failed(
                        UNREADABLE,
                        "probe pod " + ns + "/" + name + " for " + uri + " " + stuck + "; retried with backoff, at"
                                + " once when the spec changes",
                        clock.instant());
            }
            String phase = pod.getStatus() == null || pod.getStatus().getPhase() == null
                    ? "Pending"
                    : pod.getStatus().getPhase();
            return new Pending("probe pod " + ns + "/" + name + " is " + phase);
        }
        client.pods().inNamespace(ns).withName(name).delete();
        if (t.getExitCode() != null && t.getExitCode() == 0) {
            try {
                return new Known(readSummary(t.getMessage()));
            } catch (Exception e) {
                return new Failed(
                        "InvalidModel",
                        "probe pod " + name + " wrote a summary the operator cannot read: " + e.getMessage(),
                        clock.instant());
            }
        }
        String msg = t.getMessage() == null ? t.getReason() : t.getMessage().strip();
        return new Failed(
                "InvalidModel",
                "inspecting " + uri + " failed (exit " + t.getExitCode() + "): " + msg,
                clock.instant());
    }

    /** Why the API server refused to create the probe pod, with the next step where it is known. */
    private static String refusal(String ns, String name, String uri, KubernetesClientException e) {
        String why = e.getStatus() != null && e.getStatus().getMessage() != null
                ? e.getStatus().getMessage()
                : e.getMessage();
        String hint = "";
        if (uri.startsWith("file:") && why != null && (why.contains("hostPath") || why.contains("PodSecurity"))) {
            hint = "; file:// sources are mounted from the node as hostPath, which Pod Security baseline and"
                    + " restricted refuse: copy the model to a PersistentVolumeClaim and use pvc://CLAIM/PATH";
        } else if (e.getCode() == 403 && why != null && why.contains("forbidden: User")) {
            hint = "; the operator's ServiceAccount may not create pods in " + ns + ": add " + ns
                    + " to the chart's managedNamespaces";
        }
        return "the API server refused probe pod " + ns + "/" + name + " for " + uri + " (HTTP " + e.getCode() + "): "
                + why + hint;
    }

    /**
     * Why a probe pod that has not terminated will not, or null while it may still: a container that cannot start,
     * a pod the kubelet failed (its deadline, an eviction), no node for it past {@link #UNSCHEDULABLE_BOUND}, or
     * no end past {@link #UNFINISHED_BOUND}.
     */
    static String stuck(Pod pod, Instant now) {
        var status = pod.getStatus();
        if (status != null && "Failed".equals(status.getPhase())) {
            return "failed before its container ran: " + orElse(status.getReason(), "Failed") + ": "
                    + orElse(status.getMessage(), "no message");
        }
        if (status != null && status.getContainerStatuses() != null) {
            for (ContainerStatus cs : status.getContainerStatuses()) {
                var w = cs.getState() == null ? null : cs.getState().getWaiting();
                if (w != null && w.getReason() != null && FATAL_WAITING.contains(w.getReason())) {
                    return "cannot start its container: " + w.getReason() + ": "
                            + orElse(w.getMessage(), "no message")
                            + (w.getReason().contains("Image") ? " (check the runtime image and its pull secret)" : "");
                }
            }
        }
        Instant created = instant(pod.getMetadata().getCreationTimestamp());
        if (status != null && status.getConditions() != null) {
            for (var c : status.getConditions()) {
                if ("PodScheduled".equals(c.getType())
                        && "False".equals(c.getStatus())
                        && "Unschedulable".equals(c.getReason())) {
                    Instant since = instant(c.getLastTransitionTime());
                    Instant from = since != null ? since : created;
                    if (from != null && !from.plus(UNSCHEDULABLE_BOUND).isAfter(now)) {
                        return "was unschedulable for over " + UNSCHEDULABLE_BOUND.toSeconds() + "s: "
                                + orElse(c.getMessage(), "no message");
                    }
                }
            }
        }
        if (created != null && !created.plus(UNFINISHED_BOUND).isAfter(now)) {
            String phase = status == null || status.getPhase() == null ? "Pending" : status.getPhase();
            return "did not finish within " + UNFINISHED_BOUND.toSeconds() + "s (phase " + phase
                    + "; e.g. a volume that cannot attach, such as a ReadWriteOnce claim in use on another node:"
                    + " kubectl describe pod shows why)";
        }
        return null;
    }

    private static String orElse(String s, String other) {
        return s == null || s.isBlank() ? other : s.strip();
    }

    private static Instant instant(String time) {
        if (time == null || time.isBlank()) {
            return null;
        }
        try {
            return Instant.parse(time);
        } catch (java.time.format.DateTimeParseException e) {
            return null;
        }
    }

    /**
     * Reads the probe's termination message: the {@link ModelHeader} JSON that the runtime's {@code inspect --json
     * --output FILE} writes.
     */
    public static ModelHeader readSummary(String message) throws IOException {
        if (message == null || message.isBlank()) {
            throw new InvalidModelException("empty summary");
        }
        ModelHeader h = JSON.readValue(message, ModelHeader.class);
        if (h == null || h.shape() == null) {
            throw new InvalidModelException("empty summary");
        }
        return h;
    }

    private static ContainerStateTerminated terminated(Pod pod) {
        if (pod.getStatus() == null || pod.getStatus().getContainerStatuses() == null) {
            return null;
        }
        for (ContainerStatus cs : pod.getStatus().getContainerStatuses()) {
            if (cs.getState() != null && cs.getState().getTerminated() != null) {
                return cs.getState().getTerminated();
            }
        }
        return null;
    }

    /** The probe pod: mounts the source read-only and prints the header summary to its termination message. */
    public Pod probePod(String ns, String name, String uri) {
        URI u = URI.create(uri);
        List<Volume> volumes = new ArrayList<>();
        String target = uri;
        String mountPath = null;
        String scheme = u.getScheme();
        if ("file".equals(scheme)) {
            String dir = u.getPath().substring(0, Math.max(1, u.getPath().lastIndexOf('/')));
            volumes.add(new VolumeBuilder()
                    .withName("source")
                    .withNewHostPath()
                    .withPath(dir)
                    .withType("Directory")
                    .endHostPath()
                    .build());
            mountPath = dir;
        } else if ("pvc".equals(scheme)) {
            volumes.add(new VolumeBuilder()
                    .withName("source")
                    .withNewPersistentVolumeClaim()
                    .withClaimName(u.getHost())
                    .withReadOnly(true)
                    .endPersistentVolumeClaim()
                    .build());
            mountPath = "/source";
            target = "file:///source" + u.getPath();
        }
        PodBuilder b = new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(ns)
                .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .addToLabels(Labels.COMPONENT, Labels.COMPONENT_PROBE)
                .endMetadata()
                .withNewSpec()
                .withRestartPolicy("Never")
                .withAutomountServiceAccountToken(false)
                .withActiveDeadlineSeconds(PROBE_DEADLINE_SECONDS)
                .withNewSecurityContext()
                .withRunAsNonRoot(true)
                .withRunAsUser(10001L)
                .withNewSeccompProfile()
                .withType("RuntimeDefault")
                .endSeccompProfile()
                .endSecurityContext()
                .addNewContainer()
                .withName("inspect")
                .withImage(config.runtimeImage())
                .withImagePullPolicy(config.imagePullPolicy())
                .withArgs("inspect", "--json", "--output", ModelHeader.PROBE_OUTPUT, target)
                .withTerminationMessagePath(ModelHeader.PROBE_OUTPUT)
                .withTerminationMessagePolicy("FallbackToLogsOnError")
                .addNewEnvFrom()
                .withNewSecretRef(Labels.MODEL_CREDENTIALS_SECRET, true)
                .endEnvFrom()
                .withNewSecurityContext()
                .withRunAsNonRoot(true)
                .withReadOnlyRootFilesystem(true)
                .withAllowPrivilegeEscalation(false)
                .withNewCapabilities()
                .withDrop("ALL")
                .endCapabilities()
                .withNewSeccompProfile()
                .withType("RuntimeDefault")
                .endSeccompProfile()
                .endSecurityContext()
                .withNewResources()
                .addToRequests("memory", new io.fabric8.kubernetes.api.model.Quantity("128Mi"))
                .addToLimits("memory", new io.fabric8.kubernetes.api.model.Quantity("512Mi"))
                .endResources()
                .endContainer()
                .withVolumes(volumes)
                .endSpec();
        Pod pod = b.build();
        if (mountPath != null) {
            pod.getSpec()
                    .getContainers()
                    .get(0)
                    .getVolumeMounts()
                    .add(new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
                            .withName("source")
                            .withMountPath(mountPath)
                            .withReadOnly(true)
                            .build());
        }
        return pod;
    }
}
