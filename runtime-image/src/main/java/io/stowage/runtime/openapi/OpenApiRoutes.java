package io.stowage.runtime.openapi;

import io.vertx.ext.web.Router;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/**
 * Mounts the OpenAI-compatible API's document on the host's main HTTP server (beside the OpenAI routes); the admin
 * API's document is mounted by AdminRoutes on the admin server.
 */
@ApplicationScoped
public class OpenApiRoutes {
    public void routes(@Observes Router router) {
        OpenApiDocument.openAi().register(router);
    }
}
