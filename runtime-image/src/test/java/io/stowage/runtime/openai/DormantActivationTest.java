package io.stowage.runtime.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.DeploymentScalingState;
import io.stowage.hostapi.DormantDeployment;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ScalingPolicy;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.scaling.Scaler;
import io.vertx.core.Vertx;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A host pod's front door for a deployment the operator evicted (dormant here): its request is held and reported as
 * demand, answered once an assignment brings its replica back, and answered 503 with Retry-After past the activation
 * timeout when none comes.
 */
class DormantActivationTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path cache;

    private Host host;
    private Scaler scaler;
    private Vertx vertx;
    private int port;

    private void start(Duration activationTimeout) throws Exception {
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 34, 256L << 20, cache, 1, 64, 8, 4),
                new ModelFetcher(cache, Map.of()));
        scaler = new Scaler(host);
        scaler.applyHost(
                new HostAssignment(1, 0, List.of(), List.of(), List.of(), List.of(new DormantDeployment("ns/a", "a"))));
        vertx = Vertx.vertx();
        port = ScaledFrontDoor.serve(vertx, host, scaler, JSON, 2, activationTimeout);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (vertx != null) {
            vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        }
        if (scaler != null) {
            scaler.close();
        }
        if (host != null) {
            host.close();
        }
    }

    private CompletableFuture<HttpResponse<String>> complete() {
        return ScaledFrontDoor.complete(port, "a", Duration.ofSeconds(60));
    }

    @Test
    void aHeldRequestIsReportedAsDemandAndAnsweredOnceTheAssignmentBringsTheReplica() throws Exception {
        start(Duration.ofSeconds(30));
        CompletableFuture<HttpResponse<String>> pending = complete();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (scaler.state().scalingOf("ns/a").heldRequests() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        DeploymentScalingState demand = scaler.state().scalingOf("ns/a");
        assertThat(demand.state()).isEqualTo(DeploymentScalingState.DORMANT);
        assertThat(demand.heldRequests()).isEqualTo(1);
        assertThat(pending).as("held, not refused").isNotDone();

        // the operator places it again on this host
        scaler.applyHost(new HostAssignment(
                2,
                0,
                List.of(new ModelAssignment("sha256:a", TestModels.q8().toString(), null, 0, 0)),
                List.of(new ReplicaAssignment("ns/a#0", "ns/a", "a", "sha256:a", 64, 2, "f16", 0)),
                List.of(new ScalingPolicy("ns/a", 0, 60_000)),
                List.of()));

        HttpResponse<String> r = pending.get(60, TimeUnit.SECONDS);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(JSON.readTree(r.body()).at("/usage/completion_tokens").asInt())
                .isEqualTo(4);
        assertThat(scaler.requestsInFlight("ns/a")).isZero();
    }

    @Test
    void aHeldRequestWithNoReplicaComingIsAnswered503WithRetryAfterPastTheBound() throws Exception {
        start(Duration.ofMillis(300));

        HttpResponse<String> r = complete().get(30, TimeUnit.SECONDS);

        assertThat(r.statusCode()).as(r.body()).isEqualTo(503);
        assertThat(r.headers().firstValue("Retry-After")).hasValue("2");
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertThat(error.get("code").asText()).isEqualTo("model_activating");
        assertThat(scaler.requestsInFlight("ns/a"))
                .as("the hold ends with the answer")
                .isZero();
        assertThat(scaler.state().scalingOf("ns/a").heldRequests()).isZero();
    }
}
