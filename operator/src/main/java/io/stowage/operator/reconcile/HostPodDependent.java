package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.EnvVarBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.inventory.Inventory;
import io.stowage.operator.model.SourceMount;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The desired runtime host pod of one device: pure, from the device, its assignment and its owners. */
public final class HostPodDependent {
    private HostPodDependent() {}

    /**
     * The host pod for {@code device} in {@code namespace}.
     *
     * @param assignmentJson the host's {@code HostAssignment}, recorded on the pod as the ledger
     * @param owners the deployments with replicas on it: deleting the last one lets the GC remove the pod
     * @param budgetBytes what the planner planned for the host's contents: O_host + max A + sum W + sum K
     *     (CPU hosts request and are limited to it)
     * @param sourceUris the models' URIs as the deployments give them: pvc:// and file:// ones are mounted
     */
    public static Pod desired(
            OperatorConfig cfg,
            String namespace,
            Device device,
            String assignmentJson,
            List<LlmDeployment> owners,
            long budgetBytes,
            Map<String, String> readyLabels,
            List<String> sourceUris) {
        return desired(cfg, namespace, device, assignmentJson, owners, budgetBytes, readyLabels, sourceUris, false);
    }

    /**
     * The host pod, with its admin API over TLS when {@code adminTls}: the namespace's Secret
     * {@link Labels#HOST_TLS_SECRET} mounted read-only and named to the runtime.
     */
    public static Pod desired(
            OperatorConfig cfg,
            String namespace,
            Device device,
            String assignmentJson,
            List<LlmDeployment> owners,
            long budgetBytes,
            Map<String, String> readyLabels,
            List<String> sourceUris,
            boolean adminTls) {
        String name = Labels.hostPodName(device.id());
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE);
        labels.put(Labels.COMPONENT, Labels.COMPONENT_HOST);
        labels.put("app.kubernetes.io/name", "stowage-runtime");
        labels.put(Labels.NODE_LABEL, Labels.hash(device.node(), 16));
        labels.putAll(readyLabels);
        // Every deployment on the host owns it (the garbage collector removes it with the last one); the first is
        // its controller, so that `kubectl drain` (which refuses pods with no controller unless --force) and the
        // cluster autoscaler see a managed pod. Only one owner may be the controller.
        List<OwnerReference> refs = new ArrayList<>();
        for (LlmDeployment d : owners) {
            refs.add(new OwnerReferenceBuilder()
                    .withApiVersion(LlmDeployment.API_VERSION)
                    .withKind(LlmDeployment.KIND)
                    .withName(d.getMetadata().getName())
                    .withUid(d.getMetadata().getUid())
                    .withBlockOwnerDeletion(false)
                    .withController(refs.isEmpty())
                    .build());
        }
        OperatorConfig.Disruption life = cfg.disruption();
        List<io.fabric8.kubernetes.api.model.EnvVar> shutdownEnv = new ArrayList<>();
        // The runtime (Quarkus) answers in-flight requests for this long after SIGTERM before it stops: what is
        // left of the termination grace after the preStop sleep, less a margin for the JVM's exit.
        long drainSeconds = Math.max(
                1, life.terminationGrace().toSeconds() - life.preStopSleep().toSeconds() - SHUTDOWN_MARGIN_SECONDS);
        shutdownEnv.add(env(SHUTDOWN_TIMEOUT_ENV, drainSeconds + "s"));
        Map<String, Quantity> requests = new LinkedHashMap<>();
        Map<String, Quantity> limits = new LinkedHashMap<>();
        if (device.kind() == DeviceKind.GPU) {
            limits.put(Inventory.GPU_RESOURCE, new Quantity("1"));
            requests.put(Inventory.GPU_RESOURCE, new Quantity("1"));
            requests.put("memory", new Quantity("1Gi"));
        } else {
            // A CPU host's weights and KV live in its RAM: request what it was planned.
            requests.put("memory", new Quantity(Long.toString(budgetBytes)));
            limits.put("memory", new Quantity(Long.toString(budgetBytes)));
        }
        Volume cache = cacheVolume(cfg);
        Map<String, SourceMount> sources = new java.util.TreeMap<>();
        for (String uri : sourceUris) {
            SourceMount m = SourceMount.of(uri);
            if (m != null) {
                sources.putIfAbsent(m.volumeName(), m);
            }
        }
        List<Volume> volumes = new ArrayList<>();
        volumes.add(cache);
        volumes.add(new VolumeBuilder()
                .withName("tmp")
                .withNewEmptyDir()
                .endEmptyDir()
                .build());
        List<io.fabric8.kubernetes.api.model.VolumeMount> mounts = new ArrayList<>();
        mounts.add(new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
                .withName("model-cache")
                .withMountPath(HostApi.CACHE_MOUNT)
                .build());
        mounts.add(new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
                .withName("tmp")
                .withMountPath("/tmp")
                .build());
        for (SourceMount m : sources.values()) {
            volumes.add(m.volume());
            mounts.add(m.volumeMount());
        }
        // The admin token and certificate as files of read-only Secret volumes: the kubelet updates them in place
        // when the Secrets change, and the runtime re-reads them (an environment variable would need a restart).
        List<io.fabric8.kubernetes.api.model.EnvVar> adminEnv = new ArrayList<>();
        volumes.add(secretVolume("admin-token", Labels.TOKEN_SECRET));
        mounts.add(readOnlyMount("admin-token", HostApi.TOKEN_MOUNT));
        adminEnv.add(env(HostApi.TOKEN_FILE_ENV, HostApi.TOKEN_MOUNT + "/" + Labels.TOKEN_KEY));
        // The runtime's `host` command checks this variable at start; the file above wins over it, so a rotated
        // token applies although the variable keeps the value the pod started with.
        adminEnv.add(new EnvVarBuilder()
                .withName(HostApi.TOKEN_ENV)
                .withNewValueFrom()
                .withNewSecretKeyRef(Labels.TOKEN_KEY, Labels.TOKEN_SECRET, false)
                .endValueFrom()
                .build());
        if (adminTls) {
            volumes.add(secretVolume("admin-tls", Labels.HOST_TLS_SECRET));
            mounts.add(readOnlyMount("admin-tls", HostApi.TLS_MOUNT));
            adminEnv.add(env(HostApi.TLS_CERT_FILE_ENV, HostApi.TLS_MOUNT + "/tls.crt"));
            adminEnv.add(env(HostApi.TLS_KEY_FILE_ENV, HostApi.TLS_MOUNT + "/tls.key"));
        }
        return new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .withLabels(labels)
                .addToAnnotations(Labels.DEVICE_ANNOTATION, device.id())
                .addToAnnotations(Labels.ASSIGNMENT_ANNOTATION, assignmentJson)
                // The emptyDirs hold a model cache and /tmp, nothing to keep: they do not stop the cluster
                // autoscaler (its disruption budget and controller rules still do; docs/design.md, "Disruption").
                .addToAnnotations(
                        AUTOSCALER_LOCAL_VOLUMES,
                        String.join(
                                ",",
                                volumes.stream()
                                        .filter(v -> v.getEmptyDir() != null)
                                        .map(Volume::getName)
                                        .toList()))
                .withOwnerReferences(refs)
                .endMetadata()
                .withNewSpec()
                .withRestartPolicy("Always")
                .withTerminationGracePeriodSeconds(life.terminationGrace().toSeconds())
                .withPriorityClassName(life.priorityClassName().isEmpty() ? null : life.priorityClassName())
                .withAutomountServiceAccountToken(false)
                .withNewAffinity()
                .withNewNodeAffinity()
                .withNewRequiredDuringSchedulingIgnoredDuringExecution()
                .addNewNodeSelectorTerm()
                .addNewMatchField()
                .withKey("metadata.name")
                .withOperator("In")
                .withValues(device.node())
                .endMatchField()
                .endNodeSelectorTerm()
                .endRequiredDuringSchedulingIgnoredDuringExecution()
                .endNodeAffinity()
                .endAffinity()
                .withTolerations(device.taints().stream()
                        // Our own mark of a node that is not serving is no node taint: nothing to tolerate.
                        .filter(t -> !t.key().equals(NodeStates.UNAVAILABLE_TAINT))
                        .map(t -> new io.fabric8.kubernetes.api.model.TolerationBuilder()
                                .withKey(t.key())
                                .withOperator("Equal")
                                .withValue(t.value())
                                .withEffect(t.effect())
                                .build())
                        .toList())
                .withNewSecurityContext()
                .withRunAsNonRoot(true)
                .withRunAsUser(10001L)
                .withFsGroup(10001L)
                .withNewSeccompProfile()
                .withType("RuntimeDefault")
                .endSeccompProfile()
                .endSecurityContext()
                .withContainers(new ContainerBuilder()
                        .withName("runtime")
                        // GPU hosts run the image's CUDA variant; inside the container the one GPU the device plugin
                        // allocated is CUDA device 0, whatever its index on the node, so "cuda" names it. Its UUID
                        // comes back in the host's state, and GpuBinding records it on the pod.
                        .withImage(cfg.runtimeImageFor(device.kind()))
                        .withImagePullPolicy(cfg.imagePullPolicy())
                        // The runtime's last words (e.g. no CUDA device visible) reach the pod status and our events.
                        .withTerminationMessagePolicy("FallbackToLogsOnError")
                        .withArgs(
                                HostApi.HOST_COMMAND,
                                HostApi.DEVICE_OPTION,
                                device.kind() == DeviceKind.GPU ? "cuda" : "cpu")
                        .withEnv(adminEnv)
                        .addAllToEnv(shutdownEnv)
                        .withLifecycle(preStop(life))
                        // The host downloads the model too (the probe only reads its header): a gated hf:// or a
                        // private s3:// model needs the same credentials here.
                        .addNewEnvFrom()
                        .withNewSecretRef(Labels.MODEL_CREDENTIALS_SECRET, true)
                        .endEnvFrom()
                        .addToEnv(
                                new EnvVarBuilder()
                                        .withName(HostApi.CACHE_DIR_ENV)
                                        .withValue(HostApi.CACHE_MOUNT)
                                        .build(),
                                new EnvVarBuilder()
                                        .withName(HostApi.DEVICE_ID_ENV)
                                        .withValue(device.id())
                                        .build(),
                                new EnvVarBuilder()
                                        .withName(HostApi.MODEL_HOSTS_ENV)
                                        .withValue(cfg.allowedModelHostsEnv())
                                        .build(),
                                new EnvVarBuilder()
                                        .withName(HostApi.MODEL_ROOTS_ENV)
                                        .withValue(modelRoots(sources.values()))
                                        .build())
                        .addNewPort()
                        .withName("http")
                        .withContainerPort(HostApi.DEFAULT_API_PORT)
                        .endPort()
                        .addNewPort()
                        .withName("admin")
                        .withContainerPort(HostApi.DEFAULT_ADMIN_PORT)
                        .endPort()
                        .withNewResources()
                        .withRequests(requests)
                        .withLimits(limits)
                        .endResources()
                        .withNewSecurityContext()
                        .withAllowPrivilegeEscalation(false)
                        .withReadOnlyRootFilesystem(true)
                        .withNewCapabilities()
                        .withDrop("ALL")
                        .endCapabilities()
                        .endSecurityContext()
                        .withNewLivenessProbe()
                        .withNewHttpGet()
                        .withPath(HostApi.LIVE_PATH)
                        .withNewPort("http")
                        .endHttpGet()
                        .withPeriodSeconds(10)
                        .withFailureThreshold(6)
                        .endLivenessProbe()
                        // Ready means the server is up (its scheduler runs), not that every model on it is: each
                        // deployment's Service selects the host by that model's ready label, which the operator sets,
                        // so one model loading or failing never takes the host out of another model's Service.
                        .withNewReadinessProbe()
                        .withNewHttpGet()
                        .withPath(HostApi.LIVE_PATH)
                        .withNewPort("http")
                        .endHttpGet()
                        .withPeriodSeconds(5)
                        .endReadinessProbe()
                        .withVolumeMounts(mounts)
                        .build())
                .withVolumes(volumes)
                .endSpec()
                .build();
    }

    /** The cluster autoscaler's list of a pod's local volumes it may drop when it evicts the pod. */
    static final String AUTOSCALER_LOCAL_VOLUMES = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

    /** The runtime's graceful shutdown timeout (Quarkus {@code quarkus.shutdown.timeout}, a run-time property). */
    static final String SHUTDOWN_TIMEOUT_ENV = "QUARKUS_SHUTDOWN_TIMEOUT";

    /** Seconds of the termination grace kept for the JVM's own exit after the requests drained. */
    static final long SHUTDOWN_MARGIN_SECONDS = 3;

    /**
     * A sleep before SIGTERM, so that a deleted host keeps answering while its endpoint leaves the Services
     * (EndpointSlices, kube-proxy): the kubelet's own sleep (Kubernetes 1.30+), as the image has no shell. None when
     * the sleep is zero.
     */
    static io.fabric8.kubernetes.api.model.Lifecycle preStop(OperatorConfig.Disruption life) {
        if (life.preStopSleep().isZero()) {
            return null;
        }
        return new io.fabric8.kubernetes.api.model.LifecycleBuilder()
                .withNewPreStop()
                .withNewSleep(life.preStopSleep().toSeconds())
                .endPreStop()
                .build();
    }

    /**
     * The directories the host may read {@code file://} models from: the cache, the claims' mounts below
     * {@link SourceMount#ROOT}, and each node directory mounted at its own path.
     */
    static String modelRoots(java.util.Collection<SourceMount> sources) {
        java.util.Set<String> roots = new java.util.LinkedHashSet<>(List.of(HostApi.CACHE_MOUNT, SourceMount.ROOT));
        for (SourceMount m : sources) {
            if (!m.mountPath().startsWith(SourceMount.ROOT + "/")) {
                roots.add(m.mountPath());
            }
        }
        return String.join(",", roots);
    }

    /**
     * The model cache: the configured PVC, else the node directory a user opted into, else an emptyDir (the default:
     * writable by the host's fsGroup, admissible under Pod Security restricted, gone with the pod). A hostPath is
     * never created here: it must exist (type Directory), since one the kubelet creates is root 0755 and the
     * uid-10001 host cannot write it.
     */
    static Volume cacheVolume(OperatorConfig cfg) {
        VolumeBuilder b = new VolumeBuilder().withName("model-cache");
        if (cfg.modelCachePvc() != null && !cfg.modelCachePvc().isBlank()) {
            return b.withNewPersistentVolumeClaim()
                    .withClaimName(cfg.modelCachePvc())
                    .endPersistentVolumeClaim()
                    .build();
        }
        if (cfg.modelCacheHostPath() != null && !cfg.modelCacheHostPath().isBlank()) {
            return b.withNewHostPath()
                    .withPath(cfg.modelCacheHostPath())
                    .withType("Directory")
                    .endHostPath()
                    .build();
        }
        return b.withNewEmptyDir()
                .withSizeLimit(
                        cfg.modelCacheSizeLimit() == null
                                        || cfg.modelCacheSizeLimit().isBlank()
                                ? null
                                : new Quantity(cfg.modelCacheSizeLimit()))
                .endEmptyDir()
                .build();
    }

    private static Volume secretVolume(String name, String secret) {
        // Owner and group read (0440): the runtime runs as a non-root user in the pod's fsGroup.
        return new VolumeBuilder()
                .withName(name)
                .withNewSecret()
                .withSecretName(secret)
                .withDefaultMode(0440)
                .endSecret()
                .build();
    }

    private static io.fabric8.kubernetes.api.model.VolumeMount readOnlyMount(String name, String path) {
        return new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
                .withName(name)
                .withMountPath(path)
                .withReadOnly(true)
                .build();
    }

    private static io.fabric8.kubernetes.api.model.EnvVar env(String name, String value) {
        return new EnvVarBuilder().withName(name).withValue(value).build();
    }
}
