package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Quantity;
import io.stowage.operator.inventory.InventoryConfig;
import io.stowage.placement.memory.MemoryParameters;
import java.time.Duration;
import java.util.List;

/**
 * Everything the reconciliation is configured by (Helm values reach it through application properties).
 *
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
 */
public record OperatorConfig(
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

    public OperatorConfig {
        namespaces = namespaces == null ? List.of() : List.copyOf(namespaces);
        if (modelCacheSizeLimit != null && !modelCacheSizeLimit.isBlank()) {
            try {
                Quantity.getAmountInBytes(new Quantity(modelCacheSizeLimit));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("the model cache size limit \"" + modelCacheSizeLimit
                        + "\" is not a Kubernetes quantity; give one such as 50Gi, or none");
            }
        }
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
                namespaces);
    }

    /** The model cache: a PVC, else a node directory (opt-in), else an emptyDir with an optional size limit. */
    public OperatorConfig withModelCache(String hostPath, String pvc, String sizeLimit) {
        return new OperatorConfig(
                runtimeImage,
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
                namespaces);
    }

    public OperatorConfig withHttpTimeout(Duration t) {
        return new OperatorConfig(
                runtimeImage,
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
                namespaces);
    }

    public OperatorConfig withDcgm(String service, int port) {
        return new OperatorConfig(
                runtimeImage,
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
                namespaces);
    }

    public OperatorConfig withInventory(InventoryConfig inv) {
        return new OperatorConfig(
                runtimeImage,
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
                namespaces);
    }
}
