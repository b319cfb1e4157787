package io.stowage.operator.app;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** The operator's settings, from application properties or {@code STOWAGE_*} environment variables (Helm values). */
@ConfigMapping(prefix = "stowage")
public interface StowageSettings {
    /** The runtime host image of CPU hosts (also runs the model probe's {@code inspect}). */
    @WithDefault("ghcr.io/stowage/runtime:0.1.0")
    String runtimeImage();

    /**
     * The runtime host image of GPU hosts (the Dockerfile's cuda variant); unset: the runtime image's repository with
     * {@code -cuda}, the same tag.
     */
    Optional<String> runtimeCudaImage();

    @WithDefault("IfNotPresent")
    String imagePullPolicy();

    /**
     * A node directory to cache models in, only when set (it must exist, writable by uid/gid 10001; Pod Security
     * baseline and restricted refuse it). Unset, hosts cache in an emptyDir.
     */
    Optional<String> modelCacheHostPath();

    /** A PVC name (in each deployment's namespace) to cache models on; wins over the other caches. */
    Optional<String> modelCachePvc();

    /** The default (emptyDir) model cache's size limit, a quantity such as {@code 50Gi}; unset: none. */
    Optional<String> modelCacheSizeLimit();

    /** Hosts the operator may read GGUF headers from over http(s); others need a probe pod. */
    Optional<List<String>> allowedModelHosts();

    @WithDefault("5s")
    Duration httpTimeout();

    /** Fraction of each GPU's memory kept free. */
    @WithDefault("0.05")
    double reserveFraction();

    /** The least memory kept free on each GPU, in MiB. */
    @WithDefault("256")
    long reserveFloorMib();

    /** Share of a node's allocatable memory offered for CPU serving; 0 disables CPU hosts. */
    @WithDefault("0")
    double cpuFraction();

    /**
     * How long a host pod may stay Pending before it is reported; one the scheduler cannot place is then released,
     * its replicas planned elsewhere and its device left out for as long again.
     */
    @WithDefault("5m")
    Duration hostPendingTimeout();

    /** {@code namespace/name} of the dcgm-exporter Service; empty disables DCGM. */
    Optional<String> dcgmService();

    @WithDefault("9400")
    int dcgmPort();

    /**
     * Prometheus' base URL (e.g. {@code http://prometheus.monitoring:9090}) to read DCGM's framebuffer metrics with one
     * query per pass; when set, it is used instead of scraping each dcgm-exporter pod.
     */
    Optional<String> dcgmPrometheusUrl();

    /**
     * Watch the cluster through informer caches (true), or LIST LlmDeployments, Nodes and Pods every pass (false:
     * the old read path, kept for comparison).
     */
    @WithDefault("true")
    boolean watch();

    /** How many hosts' admin APIs a pass talks to at once. */
    @WithDefault("32")
    int hostPushParallelism();

    /** How long one host's push (state, assignment and retries) may take before the pass reports it unavailable. */
    @WithDefault("15s")
    Duration hostPushTimeout();

    /** How often the placement loop runs without a change to trigger it (a safety net under the watches). */
    @WithDefault("15s")
    Duration resyncInterval();

    /**
     * How often the hosts with a deployment that scales to zero are asked for their state between passes (a GET per
     * such host, no Kubernetes request): a deployment going idle, or a request held for a dormant one, starts a pass.
     * It bounds how long a dormant deployment's first request waits before it is placed again.
     */
    @WithDefault("1s")
    Duration scalingPollInterval();

    /** Namespaces whose LlmDeployments this operator manages (its RBAC covers them); empty means all. */
    Optional<List<String>> namespaces();

    @WithDefault("svc.cluster.local")
    String serviceDomain();

    /** How long a NotReady node keeps its replicas untouched before they are placed elsewhere. */
    @WithDefault("60s")
    Duration nodeNotReadyGrace();

    /** How long a cordoned node's replicas wait before they start moving (make before break). */
    @WithDefault("0s")
    Duration nodeCordonGrace();

    /** The host pods' termination grace: the runtime drains its in-flight requests within it. */
    @WithDefault("30s")
    Duration hostTerminationGrace();

    /** The host pods' preStop sleep before SIGTERM (Kubernetes 1.30+); 0s for none. */
    @WithDefault("5s")
    Duration hostPreStopSleep();

    /** The host pods' PriorityClass; unset: none. */
    Optional<String> hostPriorityClassName();

    /** The PodDisruptionBudget of each namespace's host pods. */
    HostDisruptionBudget hostDisruptionBudget();

    interface HostDisruptionBudget {
        @WithDefault("true")
        boolean enabled();

        /** 0: no eviction takes a serving host; the operator moves replicas off a cordoned node itself. */
        @WithDefault("0")
        int maxUnavailable();
    }

    /** The hosts' admin API over TLS, with a CA the operator keeps (see operator/README.md). */
    AdminTls adminTls();

    /** The operator's own namespace, where the admin CA's Secret lives; defaults to the client's namespace. */
    Optional<String> operatorNamespace();

    interface AdminTls {
        /** Off only for clusters whose hosts predate TLS; hosts then get the token over plain HTTP. */
        @WithDefault("true")
        boolean enabled();

        /** A host certificate's life (90 days); renewed after two thirds of it. */
        @WithDefault("2160h")
        Duration certValidity();

        /** The CA's life (10 years); renewed after two thirds of it, the old one trusted until it expires. */
        @WithDefault("87600h")
        Duration caValidity();
    }
}
