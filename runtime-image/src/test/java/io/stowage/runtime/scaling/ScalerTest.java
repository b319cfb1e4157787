package io.stowage.runtime.scaling;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.manifest.Scaling;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.host.Replica;
import io.stowage.runtime.host.TokenSink;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scale to zero and hot swap on a real host with the real stories260K model: every deployment here serves the same
 * file under its own digest, so each has its own copy of the weights and the memory arithmetic is exact.
 */
class ScalerTest {
    private static final String FILE = TestModels.q8().toString();
    private static final int[] PROMPT = {1, 403, 407, 261};
    private static final Duration SHORT = Duration.ofMillis(100);
    private static final Duration LONG = Duration.ofHours(1);

    /** Measured once: a model's weights + workspace, and one replica's KV. */
    private static long modelBytes;

    private static long kvBytes;

    @TempDir
    Path cache;

    private Host host;
    private Scaler scaler;

    @BeforeAll
    static void measure(@TempDir Path dir) throws Exception {
        try (Host probe = newHost(dir, 256L << 20)) {
            probe.apply(new HostAssignment(
                    1,
                    0,
                    List.of(new ModelAssignment("sha256:probe", FILE, null, 0, 0)),
                    List.of(replica("probe", 0))));
            await(probe::allReady, "the probe model loaded");
            HostState s = probe.state();
            modelBytes =
                    s.models().getFirst().weightBytes() + s.models().getFirst().workspaceBytes();
            kvBytes = s.replicas().getFirst().kvReservedBytes();
        }
        assertThat(modelBytes).isPositive();
        assertThat(kvBytes).isPositive();
    }

    private static Host newHost(Path dir, long budget) {
        return new Host(
                new HostSettings("cpu", "test/cpu", 1L << 34, budget, dir, 1, 64, 8, 16),
                new ModelFetcher(dir, Map.of()));
    }

    private static ReplicaAssignment replica(String name, long kv) {
        return new ReplicaAssignment("ns/" + name + "#0", "ns/" + name, name, "sha256:" + name, 64, 2, "f16", kv);
    }

    /** The model with its measured sizes, so that the host's budget check counts it before it loads. */
    private static ModelAssignment model(String name) {
        return new ModelAssignment("sha256:" + name, FILE, null, modelBytes, 0);
    }

    private static HostAssignment assignment(String... names) {
        List<ModelAssignment> models = new ArrayList<>();
        List<ReplicaAssignment> replicas = new ArrayList<>();
        for (String n : names) {
            models.add(model(n));
            replicas.add(replica(n, kvBytes));
        }
        return new HostAssignment(1, 0, models, replicas);
    }

    /** A host with room for {@code models} models, each with its replica, and half a replica's KV more. */
    private void start(int models, Map<String, Scaling> policies, Set<String> startIdle, String... names) {
        // the arithmetic below needs a model to outweigh one and a half replicas' KV
        assertThat(modelBytes).isGreaterThan(kvBytes * 3 / 2);
        host = newHost(cache, models * (modelBytes + kvBytes) + kvBytes / 2);
        scaler = new Scaler(host);
        scaler.apply(assignment(names), policies, startIdle);
    }

    @AfterEach
    void stop() {
        if (scaler != null) {
            scaler.close();
        }
        if (host != null) {
            host.close();
        }
    }

    /** What the front door does: take a lease, wait until the name serves, queue the request, close the lease. */
    private CompletableFuture<List<Integer>> request(String name) {
        Scaler.Lease lease = scaler.acquire(name);
        try {
            scaler.whenServing(name).get(30, TimeUnit.SECONDS);
            Replica r = host.route(name);
            Tokens sink = new Tokens();
            host.device().submit(r, new GenerationRequest(PROMPT, 6, SamplerParams.greedy(), List.of(), -1), sink);
            return sink.done;
        } catch (ExecutionException e) {
            return CompletableFuture.failedFuture(e.getCause());
        } catch (Exception e) {
            return CompletableFuture.failedFuture(e);
        } finally {
            lease.close();
        }
    }

    private static List<Integer> get(CompletableFuture<List<Integer>> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    @Test
    void anIdleReplicaIsReleasedItsKvReturnsToTheHostAndARequestActivatesItFromResidentWeights() throws Exception {
        start(1, Map.of("ns/a", new Scaling(0, SHORT)), Set.of(), "a");
        await(() -> host.route("a") != null, "a serves");
        List<Integer> before = get(request("a"));
        long usedActive = host.state().device().usedBytes();

        await(() -> scaler.idleDeployments().contains("ns/a"), "a released after its idle timeout");
        await(() -> host.state().device().usedBytes() == usedActive - kvBytes, "a's KV freed");

        HostState idle = host.state();
        assertThat(idle.replicas()).as("no replica of a").isEmpty();
        assertThat(idle.models()).singleElement().satisfies(m -> {
            assertThat(m.phase()).isEqualTo(ModelPhase.LOADED);
            assertThat(m.weightBytes() + m.workspaceBytes()).isEqualTo(modelBytes);
        });
        assertThat(scaler.idleServedNames()).containsExactly("a");

        List<Integer> after = get(request("a"));

        assertThat(after).as("the same greedy answer as before the release").isEqualTo(before);
        assertThat(host.state().device().usedBytes()).isEqualTo(usedActive);
        assertThat(scaler.events()).extracting(Scaler.Event::kind).containsSubsequence("released", "activated");
        assertThat(scaler.events().getLast().detail()).contains("(weights resident)");
    }

    @Test
    void aBurstArrivingWhileADeploymentLoadsFromDiskIsHeldThenEveryRequestIsServed() throws Exception {
        // z does not fit beside x and y: it starts idle, with no weights
        Map<String, Scaling> policies =
                Map.of("ns/x", new Scaling(0, SHORT), "ns/y", new Scaling(0, SHORT), "ns/z", new Scaling(0, LONG));
        start(2, policies, Set.of("ns/z"), "x", "y", "z");
        await(() -> host.route("x") != null && host.route("y") != null, "x and y serve");
        assertThat(scaler.droppedModels()).containsExactly("sha256:z");
        // x is used last: y becomes the least recently used idle model
        await(() -> scaler.idleDeployments().containsAll(Set.of("ns/x", "ns/y")), "x and y released");
        List<Integer> expected = get(request("x"));
        await(() -> scaler.idleDeployments().contains("ns/x"), "x released again");

        int burst = 8;
        ExecutorService pool = Executors.newFixedThreadPool(burst);
        try {
            List<Future<CompletableFuture<List<Integer>>>> sent = new ArrayList<>();
            for (int i = 0; i < burst; i++) {
                sent.add(pool.submit(() -> request("z")));
            }
            for (Future<CompletableFuture<List<Integer>>> f : sent) {
                assertThat(get(f.get(30, TimeUnit.SECONDS)))
                        .as("every held request is answered, the same as x's (one file)")
                        .isEqualTo(expected);
            }
        } finally {
            pool.shutdownNow();
        }

        assertThat(scaler.droppedModels())
                .as("y, the least recently used idle copy, was evicted")
                .containsExactly("sha256:y");
        assertThat(host.state().models())
                .extracting(ModelState::digest)
                .containsExactlyInAnyOrder("sha256:x", "sha256:z");
        assertThat(scaler.events())
                .filteredOn(e -> e.kind().equals("evicted"))
                .singleElement()
                .satisfies(e -> {
                    assertThat(e.subject()).isEqualTo("sha256:y");
                    assertThat(e.bytes()).isEqualTo(modelBytes);
                });
        assertThat(scaler.events().getLast().detail()).contains("(weights loaded from the file)");
    }

    @Test
    void aBusyModelIsNeverEvictedAndAnActivationWithNothingIdleToEvictFailsChangingNothing() throws Exception {
        Map<String, Scaling> policies =
                Map.of("ns/x", new Scaling(0, SHORT), "ns/y", new Scaling(0, SHORT), "ns/z", new Scaling(0, LONG));
        start(2, policies, Set.of("ns/z"), "x", "y", "z");
        await(() -> host.route("x") != null && host.route("y") != null, "x and y serve");
        // x has a request in flight (its lease is held); y goes idle
        Scaler.Lease xInFlight = scaler.acquire("x");
        await(
                () -> scaler.idleDeployments().equals(Set.of("ns/y", "ns/z")),
                "y released, x busy, z idle from the start");

        get(request("z")); // evicts y, the only idle model

        assertThat(scaler.droppedModels()).containsExactly("sha256:y");
        HostState before = host.state();

        // y needs room again: x is busy and z is active (its idle timeout is an hour): nothing may be evicted
        CompletableFuture<List<Integer>> refused = request("y");

        assertThat(refused).isCompletedExceptionally();
        Throwable cause = catchCause(refused);
        assertThat(cause).isInstanceOf(Scaler.ActivationException.class);
        assertThat(cause.getMessage())
                .startsWith("cannot activate 'y': ")
                .endsWith("; no idle model is left to evict (a model with a replica serving or a request in flight is"
                        + " never evicted)");
        HostState after = host.state();
        assertThat(after.models()).extracting(ModelState::digest).containsExactlyInAnyOrder("sha256:x", "sha256:z");
        assertThat(after.replicas()).extracting(r -> r.id()).containsExactlyInAnyOrder("ns/x#0", "ns/z#0");
        assertThat(after.device().usedBytes()).isEqualTo(before.device().usedBytes());
        assertThat(host.route("x")).as("x still serves").isNotNull();
        xInFlight.close();
    }

    private static Throwable catchCause(CompletableFuture<?> f) {
        try {
            f.get(1, TimeUnit.SECONDS);
            throw new AssertionError("expected a failure");
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(5);
        }
    }

    /** Collects the generated token ids. */
    private static final class Tokens implements TokenSink {
        final List<Integer> ids = new CopyOnWriteArrayList<>();
        final CompletableFuture<List<Integer>> done = new CompletableFuture<>();

        @Override
        public void onPiece(Piece piece) {
            ids.add(piece.tokenId());
        }

        @Override
        public void onFinish(String finishReason, int promptTokens, int completionTokens) {
            done.complete(List.copyOf(ids));
        }

        @Override
        public void onError(int httpStatus, String type, String message) {
            done.completeExceptionally(new AssertionError(httpStatus + " " + type + ": " + message));
        }
    }
}
