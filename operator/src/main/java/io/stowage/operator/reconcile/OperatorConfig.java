package io.stowage.operator.reconcile;

import io.stowage.operator.inventory.InventoryConfig;
import io.stowage.placement.memory.MemoryParameters;
import java.time.Duration;
import java.util.List;

/**
 * Everything the reconciliation is configured by (Helm values reach it through application properties).
 *
 * @param modelCacheHostPath node-local directory for model files, used when modelCachePvc is empty
 * @param modelCachePvc a PVC (in each deployment's namespace) holding model files instead of a hostPath
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
                "/var/cache/stowage/models",
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

    public OperatorConfig withHttpTimeout(Duration t) {
        return new OperatorConfig(
                runtimeImage,
                imagePullPolicy,
                modelCacheHostPath,
                modelCachePvc,
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
