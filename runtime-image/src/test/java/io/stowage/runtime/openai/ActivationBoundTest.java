package io.stowage.runtime.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.manifest.Scaling;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.host.ModelSourcePolicy;
import io.stowage.runtime.scaling.Scaler;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The front door's bound on a held request: a deployment scaled to zero whose model never arrives (its download
 * stalls) is answered 503 with Retry-After once the activation timeout has passed, and the request's hold on the
 * deployment ends with it.
 */
class ActivationBoundTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path cache;

    private HttpServer stalling;
    private final CountDownLatch release = new CountDownLatch(1);
    private Host host;
    private Scaler scaler;
    private Vertx vertx;
    private int port;

    @BeforeEach
    void setUp() throws Exception {
        // a model server that takes the request and never answers (until the test ends)
        stalling = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        stalling.createContext("/slow.gguf", exchange -> {
            try {
                release.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            exchange.sendResponseHeaders(503, -1);
            exchange.close();
        });
        stalling.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
        stalling.start();
        ModelSourcePolicy policy =
                ModelSourcePolicy.defaults(cache).withSchemes(List.of("http")).withHosts(List.of("127.0.0.1"));
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 30, 64L << 20, cache, 1, 64, 8, 4),
                new ModelFetcher(cache, Map.of(), policy));
        scaler = new Scaler(host);
        String uri = "http://127.0.0.1:" + stalling.getAddress().getPort() + "/slow.gguf";
        scaler.apply(
                new HostAssignment(
                        1,
                        0,
                        List.of(new ModelAssignment("sha256:slow", uri, null, 1 << 20, 0)),
                        List.of(new ReplicaAssignment("ns/slow#0", "ns/slow", "slow", "sha256:slow", 64, 1, "f16", 0))),
                Map.of("ns/slow", new Scaling(0, Duration.ofHours(1))),
                Set.of("ns/slow"));

        vertx = Vertx.vertx();
        port = ScaledFrontDoor.serve(vertx, host, scaler, JSON, 3, Duration.ofMillis(300));
    }

    @AfterEach
    void tearDown() throws Exception {
        release.countDown();
        vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        scaler.close();
        host.close();
        stalling.stop(0);
    }

    @Test
    void aHeldRequestPastTheActivationTimeoutIsAnswered503WithRetryAfterAndReleasesItsHold() throws Exception {
        assertThat(scaler.idleServedNames()).containsExactly("slow");

        HttpResponse<String> r =
                ScaledFrontDoor.complete(port, "slow", Duration.ofSeconds(30)).get(60, TimeUnit.SECONDS);

        assertThat(r.statusCode()).as(r.body()).isEqualTo(503);
        assertThat(r.headers().firstValue("Retry-After")).hasValue("3");
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertThat(error.get("code").asText()).isEqualTo("model_activating");
        assertThat(error.get("message").asText())
                .isEqualTo("model 'slow' was scaled to zero and is activating; it did not serve within 300 ms"
                        + " (stowage.scaling.activation-timeout); retry after 3 s");
        // the activation goes on (the download may still come); the request no longer holds the deployment
        assertThat(scaler.idleDeployments()).isEmpty();
        assertThat(scaler.requestsInFlight("ns/slow")).isZero();
    }
}
