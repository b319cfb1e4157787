package io.stowage.runtime.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.metrics.HostMetrics;
import io.stowage.runtime.scaling.Scaler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.ext.web.Router;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** The OpenAI API of a host with a scaler, on 127.0.0.1, for the activation tests; and their one request. */
final class ScaledFrontDoor {
    private ScaledFrontDoor() {}

    /** Serves the host's OpenAI routes through the scaler on an ephemeral port of 127.0.0.1; returns the port. */
    static int serve(Vertx vertx, Host host, Scaler scaler, ObjectMapper json, int queuePerReplica, Duration timeout)
            throws Exception {
        Router router = Router.router(vertx);
        new OpenAiRoutes(
                        host,
                        new HostMetrics(new SimpleMeterRegistry(), host),
                        json,
                        queuePerReplica,
                        new OpenAiRoutes.Limits(1 << 20, 1 << 20))
                .withScaler(scaler, timeout)
                .register(router);
        return vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1"))
                .requestHandler(router)
                .listen(0)
                .toCompletionStage()
                .toCompletableFuture()
                .get(30, TimeUnit.SECONDS)
                .actualPort();
    }

    /** A 4-token completion of "Once" for {@code model}. */
    static CompletableFuture<HttpResponse<String>> complete(int port, String model, Duration timeout) {
        return HttpClient.newHttpClient()
                .sendAsync(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                                .header("Content-Type", "application/json")
                                .timeout(timeout)
                                .POST(HttpRequest.BodyPublishers.ofString(
                                        "{\"model\": \"" + model + "\", \"prompt\": \"Once\", \"max_tokens\": 4}"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }
}
