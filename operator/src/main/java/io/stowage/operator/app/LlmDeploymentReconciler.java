package io.stowage.operator.app;

import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.stowage.operator.crd.LlmDeployment;
import java.time.Duration;

/**
 * The Java Operator SDK entry point for LlmDeployment events: every change asks the cluster-wide
 * placement loop for a pass, which plans all deployments together and writes their statuses.
 */
@ControllerConfiguration(name = "llmdeployment")
public class LlmDeploymentReconciler implements Reconciler<LlmDeployment> {
    private final PlacementScheduler scheduler;

    LlmDeploymentReconciler(PlacementScheduler scheduler) {
        this.scheduler = scheduler;
    }

    @Override
    public UpdateControl<LlmDeployment> reconcile(LlmDeployment resource, Context<LlmDeployment> context) {
        scheduler.requestPass();
        // The loop owns the status; reschedule so that a quiet deployment is still looked at.
        return UpdateControl.<LlmDeployment>noUpdate().rescheduleAfter(Duration.ofMinutes(5));
    }
}
