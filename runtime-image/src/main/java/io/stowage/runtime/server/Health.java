package io.stowage.runtime.server;

import io.stowage.runtime.host.Host;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Liveness;
import org.eclipse.microprofile.health.Readiness;

/** Liveness (the device scheduler runs) and readiness (every assigned replica is ready) of the host. */
public final class Health {
    private Health() {}

    /** Live while the device's scheduler thread is alive. */
    @Liveness
    @ApplicationScoped
    public static class Live implements HealthCheck {
        @Inject
        HostService service;

        @Override
        public HealthCheckResponse call() {
            Host h = service.host();
            return HealthCheckResponse.named("scheduler")
                    .status(h.device().alive())
                    .withData("steps", h.device().steps())
                    .build();
        }
    }

    /** Ready when every replica of the current assignment serves; its data names the served models that failed. */
    @Readiness
    @ApplicationScoped
    public static class Ready implements HealthCheck {
        @Inject
        HostService service;

        @Override
        public HealthCheckResponse call() {
            Host h = service.host();
            return HealthCheckResponse.named("replicas")
                    .status(h.allReady())
                    .withData("served", String.join(",", h.servedModelNames()))
                    .withData("failed", String.join(",", h.failedModelNames()))
                    .build();
        }
    }
}
