package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.inventory.InventoryConfig;
import io.stowage.placement.memory.MemoryParameters;
import java.time.Duration;
import java.util.List;

/**
 * Everything the reconciliation is configured by (Helm values reach it through application properties).
 *
 * @param runtimeImage the runtime host image of CPU hosts and model probe pods (runtime-image/Dockerfile, cpu)
 * @param runtimeCudaImage the runtime host image of GPU hosts (the same Dockerfile's cuda variant)
 * @param modelCacheHostPath a node directory for model files, only when a user opts in (empty: none); it must exist
 *     and be writable by uid/gid 10001, and Pod Security baseline and restricted refuse it
 * @param modelCachePvc a PVC (in each deployment's namespace) holding model files; wins over the other two
 * @param modelCacheSizeLimit the size limit of the default model cache, an emptyDir (a quantity such as
 *     {@code 50Gi}; empty: none). Not derived from the models: a pod's volumes cannot change, and a host gains and
 *     loses models without a restart
 * @param allowedModelHosts hosts the operator may read GGUF headers from over http(s); the host pods download
 *     models from the same hosts ({@link #allowedModelHostsEnv()})
 * @param namespaces the namespaces whose LlmDeployments the operator manages; empty means all
 * @param dcgmService {@code namespace/name} of the dcgm-exporter Service, or empty to skip DCGM
 * @param disruption how host pods live through cordons, NotReady nodes, drains and replacements
 */
public record OperatorConfig(
        String runtimeImage,
        String runtimeCudaImage,
        String imagePullPolicy,
        String modelCacheHostPath,
        String modelCachePvc,
        String modelCacheSizeLimit,
        List<String> allowedModelHosts,
        Duration httpTimeout,
        int maxHeaderBytes,
        String dcgmService,
        int dcgmPort,
        InventoryConfig inventory,
        MemoryParameters memory,
        String serviceDomain,
        List<String> namespaces,
        Disruption disruption) {

    /**
     * How host pods live through disruption (see operator/README.md, "Disruption").
     *
     * @param notReadyGrace how long a NotReady node keeps its replicas untouched before they are planned elsewhere
     * @param cordonGrace how long a cordoned node's replicas wait before they start moving (make before break)
     * @param terminationGrace the host pods' {@code terminationGracePeriodSeconds}: in-flight requests drain
     * @param preStopSleep how long a deleted host keeps serving before SIGTERM, while endpoints forget it (a
     *     {@code preStop} sleep, Kubernetes 1.30+; zero: none)
     * @param priorityClassName the host pods' priority class; empty: none
     * @param disruptionBudget whether each namespace with hosts gets a PodDisruptionBudget for them
     * @param maxUnavailable the budget's {@code maxUnavailable} (0: only the operator, after a replacement serves,
     *     removes a host; an unhealthy host may always be evicted)
     */
    public record Disruption(
            Duration notReadyGrace,
            Duration cordonGrace,
            Duration terminationGrace,
            Duration preStopSleep,
            String priorityClassName,
            boolean disruptionBudget,
            int maxUnavailable) {
        public static final Disruption DEFAULTS = new Disruption(
                Duration.ofSeconds(60), Duration.ZERO, Duration.ofSeconds(30), Duration.ofSeconds(5), "", true, 0);

        public Disruption {
            priorityClassName = priorityClassName == null ? "" : priorityClassName.strip();
            for (var e : java.util.Map.of(
                            "the NotReady node grace", notReadyGrace,
                            "the cordon grace", cordonGrace,
                            "the host termination grace", terminationGrace,
                            "the host preStop sleep", preStopSleep)
                    .entrySet()) {
                if (e.getValue() == null || e.getValue().isNegative()) {
                    throw new IllegalArgumentException(e.getKey() + " must be zero or more, not " + e.getValue()
                            + "; give a duration such as 60s");
                }
            }
            if (preStopSleep.compareTo(terminationGrace) >= 0 && !preStopSleep.isZero()) {
                throw new IllegalArgumentException("the host preStop sleep (" + preStopSleep
                        + ") must be shorter than the host termination grace (" + terminationGrace
                        + "), or the host is killed before it drains");
            }
            if (maxUnavailable < 0) {
                throw new IllegalArgumentException(
                        "the host disruption budget's maxUnavailable must be 0 or more, not " + maxUnavailable);
            }
        }
    }

    /** Without disruption settings ({@link Disruption#DEFAULTS}); GPU hosts on {@link #cudaImageFor} of the image. */
    public OperatorConfig(
            String runtimeImage,
            String imagePullPolicy,
            String modelCacheHostPath,
            String modelCachePvc,
            String modelCacheSizeLimit,
            List<String> allowedModelHosts,
            Duration httpTimeout,
            int maxHeaderBytes,
            String dcgmService,
            int dcgmPort,
            InventoryConfig inventory,
            MemoryParameters memory,
            String serviceDomain,
            List<String> namespaces) {
        this(
                runtimeImage,
                cudaImageFor(runtimeImage),
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                allowedModelHosts,
                httpTimeout,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                Disruption.DEFAULTS);
    }

    public OperatorConfig {
        runtimeCudaImage =
                runtimeCudaImage == null || runtimeCudaImage.isBlank() ? cudaImageFor(runtimeImage) : runtimeCudaImage;
        namespaces = namespaces == null ? List.of() : List.copyOf(namespaces);
        disruption = disruption == null ? Disruption.DEFAULTS : disruption;
        if (modelCacheSizeLimit != null && !modelCacheSizeLimit.isBlank()) {
            try {
                Quantity.getAmountInBytes(new Quantity(modelCacheSizeLimit));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("the model cache size limit \"" + modelCacheSizeLimit
                        + "\" is not a Kubernetes quantity; give one such as 50Gi, or none");
            }
        }
    }

    /**
     * The CUDA variant's name beside a runtime image, as the chart and docs/install.md name it: {@code -cuda} after the
     * repository, the same tag ({@code ghcr.io/stowage/runtime:0.1.0} gives {@code ghcr.io/stowage/runtime-cuda:0.1.0}).
     * An image pinned by digest names one build, so it is kept as it is.
     */
    public static String cudaImageFor(String runtimeImage) {
        if (runtimeImage == null || runtimeImage.isBlank() || runtimeImage.contains("@")) {
            return runtimeImage;
        }
        int slash = runtimeImage.lastIndexOf('/');
        int colon = runtimeImage.lastIndexOf(':');
        return colon > slash
                ? runtimeImage.substring(0, colon) + "-cuda" + runtimeImage.substring(colon)
                : runtimeImage + "-cuda";
    }

    /** The image a host of this kind of device runs. */
    public String runtimeImageFor(io.stowage.placement.plan.DeviceKind kind) {
        return kind == io.stowage.placement.plan.DeviceKind.GPU ? runtimeCudaImage : runtimeImage;
    }

    /** Whether LlmDeployments of this namespace are ours (an empty list manages every namespace). */
    public boolean manages(String namespace) {
        return namespaces.isEmpty() || namespaces.contains(namespace);
    }

    /**
     * The allowlist as the host pods get it ({@code HostApi.MODEL_HOSTS_ENV}): comma-separated; a lone comma when
     * it is empty, because an empty variable would leave the runtime's own default list in force.
     */
    public String allowedModelHostsEnv() {
        return allowedModelHosts == null || allowedModelHosts.isEmpty() ? "," : String.join(",", allowedModelHosts);
    }

    /** Defaults for tests and local runs. */
    public static OperatorConfig defaults() {
        MemoryParameters m = MemoryParameters.defaults();
        return new OperatorConfig(
                "ghcr.io/stowage/runtime:0.1.0",
                "IfNotPresent",
                "",
                "",
                "",
                List.of(),
                Duration.ofSeconds(5),
                64 << 20,
                "",
                9400,
                new InventoryConfig(0.05, 256L << 20, 0.0, m.hostOverheadGpuBytes(), m.hostOverheadCpuBytes()),
                m,
                "svc.cluster.local",
                List.of());
    }

    public OperatorConfig withAllowedModelHosts(List<String> hosts) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                hosts,
                httpTimeout,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                disruption);
    }

    /** The model cache: a PVC, else a node directory (opt-in), else an emptyDir with an optional size limit. */
    public OperatorConfig withModelCache(String hostPath, String pvc, String sizeLimit) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                hostPath,
                pvc,
                sizeLimit,
                allowedModelHosts,
                httpTimeout,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                disruption);
    }

    public OperatorConfig withHttpTimeout(Duration t) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                allowedModelHosts,
                t,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                disruption);
    }

    public OperatorConfig withDcgm(String service, int port) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                allowedModelHosts,
                httpTimeout,
                maxHeaderBytes,
                service,
                port,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                disruption);
    }

    public OperatorConfig withInventory(InventoryConfig inv) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                allowedModelHosts,
                httpTimeout,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inv,
                memory,
                serviceDomain,
                namespaces,
                disruption);
    }

    public OperatorConfig withDisruption(Disruption d) {
        return new OperatorConfig(
                runtimeImage,
                runtimeCudaImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
                modelCacheSizeLimit,
                allowedModelHosts,
                httpTimeout,
                maxHeaderBytes,
                dcgmService,
                dcgmPort,
                inventory,
                memory,
                serviceDomain,
                namespaces,
                d);
    }
}
