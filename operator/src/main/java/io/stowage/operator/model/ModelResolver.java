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
import io.stowage.hostapi.ModelHeader;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.reconcile.Labels;
import io.stowage.operator.reconcile.OperatorConfig;
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
    private static final Duration FAILURE_RETRY = Duration.ofSeconds(60);

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
        return sha256 != null && !sha256.isBlank() ? "sha256:" + sha256 : "uri:" + Labels.hash(uri, 32);
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
        if (cached instanceof Failed f && f.at().plus(FAILURE_RETRY).isAfter(clock.instant())) {
            return cached;
        }
        Resolution r = scheme.startsWith("http") ? readHttp(uri) : probe(d, uriText, key);
        if (!(r instanceof Pending)) {
            cache.put(key, r);
        }
        return r;
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
            client.pods().inNamespace(ns).resource(probePod(ns, name, uri)).create();
            return new Pending("probe pod " + ns + "/" + name + " started to read the model header");
        }
        ContainerStateTerminated t = terminated(pod);
        if (t == null) {
            String phase = pod.getStatus() == null ? "Pending" : pod.getStatus().getPhase();
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
                .withActiveDeadlineSeconds(300L)
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
                .withNewSecretRef("stowage-model-credentials", true)
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
