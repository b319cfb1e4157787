package io.stowage.operator.app;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import io.stowage.operator.dcgm.DcgmScraper;
import io.stowage.operator.dcgm.GpuMemory;
import io.stowage.operator.dcgm.PrometheusDcgm;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.inventory.InventoryConfig;
import io.stowage.operator.model.ModelResolver;
import io.stowage.operator.reconcile.ClusterView;
import io.stowage.operator.reconcile.EventRecorder;
import io.stowage.operator.reconcile.OperatorConfig;
import io.stowage.operator.reconcile.PlacementLoop;
import io.stowage.operator.reconcile.WatchedCluster;
import io.stowage.operator.tls.HostTlsSecrets;
import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.plan.StowagePlanner;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;

/** Wires the plain-Java reconciliation into Quarkus from {@link StowageSettings}. */
public class OperatorBeans {

    @Produces
    @Singleton
    OperatorConfig operatorConfig(StowageSettings s) {
        MemoryParameters m = MemoryParameters.defaults();
        return new OperatorConfig(
                s.runtimeImage(),
                s.runtimeCudaImage().orElse(""),
                s.imagePullPolicy(),
                s.modelCacheHostPath().orElse(""),
                s.modelCachePvc().orElse(""),
                s.modelCacheSizeLimit().orElse(""),
                s.allowedModelHosts().orElse(List.of()),
                s.httpTimeout(),
                64 << 20,
                s.dcgmService().orElse(""),
                s.dcgmPort(),
                new InventoryConfig(
                        s.reserveFraction(),
                        s.reserveFloorMib() << 20,
                        s.cpuFraction(),
                        m.hostOverheadGpuBytes(),
                        m.hostOverheadCpuBytes(),
                        s.hostPendingTimeout()),
                m,
                s.serviceDomain(),
                s.namespaces().orElse(List.of()),
                new OperatorConfig.Disruption(
                        s.nodeNotReadyGrace(),
                        s.nodeCordonGrace(),
                        s.hostTerminationGrace(),
                        s.hostPreStopSleep(),
                        s.hostPriorityClassName().orElse(""),
                        s.hostDisruptionBudget().enabled(),
                        s.hostDisruptionBudget().maxUnavailable()));
    }

    @Produces
    @Singleton
    ChangeSignal changeSignal() {
        return new ChangeSignal();
    }

    @Produces
    @Singleton
    PlacementLoop placementLoop(KubernetesClient client, OperatorConfig cfg, StowageSettings s, ChangeSignal changes) {
        Clock clock = Clock.systemUTC();
        HostTlsSecrets tls = null;
        if (s.adminTls().enabled()) {
            String ns = s.operatorNamespace().filter(n -> !n.isBlank()).orElse(client.getNamespace());
            tls = new HostTlsSecrets(
                    client,
                    new HostTlsSecrets.Settings(
                            ns, s.adminTls().certValidity(), s.adminTls().caValidity(), Duration.ofMinutes(10)),
                    clock);
        }
        boolean https = tls != null;
        Supplier<List<GpuMemory>> dcgm = () -> List.of();
        if (s.dcgmPrometheusUrl().filter(u -> !u.isBlank()).isPresent()) {
            dcgm = new PrometheusDcgm(URI.create(s.dcgmPrometheusUrl().get()), cfg.httpTimeout())::read;
        } else if (!cfg.dcgmService().isBlank() && cfg.dcgmService().contains("/")) {
            String[] ns = cfg.dcgmService().split("/", 2);
            dcgm = new DcgmScraper(client, ns[0], ns[1], cfg.dcgmPort(), cfg.httpTimeout())::scrape;
        }
        // Events from the caches ask for a pass; the scheduler only acts on them once this replica leads.
        ClusterView view = s.watch() ? new WatchedCluster(client, changes, Duration.ofMinutes(2)) : null;
        return new PlacementLoop(
                client,
                cfg,
                new ModelResolver(client, cfg, clock),
                new StowagePlanner()::plan,
                new HostAdminClient(cfg.httpTimeout()),
                pod -> PlacementLoop.podAdminUri(pod, https),
                dcgm,
                new EventRecorder(client, clock),
                clock,
                tls,
                view,
                new PlacementLoop.PushOptions(s.hostPushParallelism(), s.hostPushTimeout()));
    }

    /** One placement loop per cluster: only the lease holder reconciles. */
    @Produces
    @Singleton
    LeaderElectionConfiguration leaderElection() {
        return new LeaderElectionConfiguration("stowage-operator-lease");
    }
}
