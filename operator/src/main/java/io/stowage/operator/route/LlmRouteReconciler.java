package io.stowage.operator.route;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.stowage.operator.crd.LlmRoute;
import io.stowage.operator.crd.LlmRouteStatus;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * The Java Operator SDK entry point for LlmRoute events: writes the route's status and, when the chart runs a router
 * fed by the operator, the router's route table (a ConfigMap it watches) from every LlmRoute in the informer cache.
 * A deleted route leaves the table through {@link #cleanup}.
 */
@ControllerConfiguration(name = "llmroute")
public class LlmRouteReconciler implements Reconciler<LlmRoute>, Cleaner<LlmRoute> {
    /** Looked at again this often, so a tier's LlmDeployment created after its route is seen without an event. */
    static final Duration RESYNC = Duration.ofMinutes(1);

    private final RouteSync sync;

    @Inject
    LlmRouteReconciler(
            KubernetesClient client,
            @ConfigProperty(name = "stowage.router.routes-configmap") Optional<String> table,
            @ConfigProperty(name = "stowage.router.endpoint") Optional<String> endpoint) {
        this(new RouteSync(client, table.orElse(null), endpoint.orElse(null)));
    }

    LlmRouteReconciler(RouteSync sync) {
        this.sync = sync;
    }

    @Override
    public UpdateControl<LlmRoute> reconcile(LlmRoute route, Context<LlmRoute> context) {
        return reconcile(route, routes(context, null));
    }

    /** One pass: the route's status, and the table of {@code all} (the informer cache's routes). */
    UpdateControl<LlmRoute> reconcile(LlmRoute route, List<LlmRoute> all) {
        LlmRouteStatus status = sync.status(route);
        sync.writeTable(all);
        if (sameStatus(status, route.getStatus())) {
            return UpdateControl.<LlmRoute>noUpdate().rescheduleAfter(RESYNC);
        }
        route.setStatus(status);
        return UpdateControl.patchStatus(route).rescheduleAfter(RESYNC);
    }

    @Override
    public DeleteControl cleanup(LlmRoute route, Context<LlmRoute> context) {
        return cleanup(route, routes(context, route));
    }

    /** A route being deleted: the table of the others. */
    DeleteControl cleanup(LlmRoute route, List<LlmRoute> others) {
        sync.writeTable(others);
        return DeleteControl.defaultDelete();
    }

    /** The routes of the informer cache, less one being deleted. */
    private static List<LlmRoute> routes(Context<LlmRoute> context, LlmRoute without) {
        return context.getPrimaryCache()
                .list()
                .filter(r -> without == null
                        || !(Objects.equals(
                                        r.getMetadata().getNamespace(),
                                        without.getMetadata().getNamespace())
                                && Objects.equals(
                                        r.getMetadata().getName(),
                                        without.getMetadata().getName())))
                .filter(r -> r.getMetadata().getDeletionTimestamp() == null)
                .toList();
    }

    static boolean sameStatus(LlmRouteStatus a, LlmRouteStatus b) {
        return b != null
                && Objects.equals(a.getObservedGeneration(), b.getObservedGeneration())
                && Objects.equals(a.getPhase(), b.getPhase())
                && Objects.equals(a.getTiers(), b.getTiers())
                && Objects.equals(a.getMessage(), b.getMessage())
                && Objects.equals(a.getEndpoint(), b.getEndpoint());
    }
}
