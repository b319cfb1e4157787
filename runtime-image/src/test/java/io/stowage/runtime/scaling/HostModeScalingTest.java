package io.stowage.runtime.scaling;

import static io.stowage.runtime.scaling.ScalerTest.await;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.hostapi.DeploymentScalingState;
import io.stowage.hostapi.DormantDeployment;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ScalingPolicy;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.host.AssignmentException;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scale to zero in a host pod: the policy and the dormant deployments come with the operator's assignment, the host
 * releases and re-activates its own replicas, reports its scaling state, and holds a dormant deployment's requests as
 * demand until an assignment brings its replica back. Real host, real stories260K model.
 */
class HostModeScalingTest {
    private static final String FILE = TestModels.q8().toString();

    @TempDir
    Path cache;

    private Host host;
    private Scaler scaler;

    @BeforeEach
    void setUp() {
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 34, 256L << 20, cache, 1, 64, 8, 16),
                new ModelFetcher(cache, Map.of()));
        scaler = new Scaler(host);
    }

    @AfterEach
    void tearDown() {
        scaler.close();
        host.close();
    }

    private static ModelAssignment model(String name) {
        return new ModelAssignment("sha256:" + name, FILE, null, 0, 0);
    }

    private static ReplicaAssignment replica(String name) {
        return new ReplicaAssignment("ns/" + name + "#0", "ns/" + name, name, "sha256:" + name, 64, 2, "f16", 0);
    }

    private static HostAssignment withPolicy(long generation, int minActive, long idleMillis) {
        return new HostAssignment(
                generation,
                0,
                List.of(model("a")),
                List.of(replica("a")),
                List.of(new ScalingPolicy("ns/a", minActive, idleMillis)),
                List.of());
    }

    @Test
    void theAssignmentsPolicyReleasesAnIdleReplicaReportsItsReclaimableBytesAndARequestReactivatesIt()
            throws Exception {
        scaler.applyHost(withPolicy(1, 0, 100));
        await(() -> host.route("a") != null, "a serves");
        HostState active = scaler.state();
        long kv = active.replicas().getFirst().kvReservedBytes();
        long modelBytes = active.models().getFirst().weightBytes()
                + active.models().getFirst().workspaceBytes();
        assertThat(kv).isPositive();

        await(
                () -> DeploymentScalingState.IDLE.equals(
                        scaler.state().scalingOf("ns/a").state()),
                "a idle");

        HostState idle = scaler.state();
        DeploymentScalingState s = idle.scalingOf("ns/a");
        assertThat(s.releasedReplicas()).containsExactly("ns/a#0");
        assertThat(s.reclaimableBytes()).isEqualTo(modelBytes);
        assertThat(s.heldRequests()).isZero();
        assertThat(s.lastUsedMillis()).isPositive();
        assertThat(idle.replicas()).as("the released replica gave its KV back").isEmpty();
        // the KV pool is closed when the replica's last sequence has ended (on a busy machine a moment after the
        // release is reported): until then the device still counts it, and then exactly the KV comes off
        long expectedUsed = active.device().usedBytes() - kv;
        await(() -> scaler.state().device().usedBytes() == expectedUsed, "the released replica's KV off the device");
        assertThat(scaler.state().device().usedBytes()).isEqualTo(expectedUsed);

        // the operator pushes the same assignment again (level-based): the replica stays released
        scaler.applyHost(withPolicy(1, 0, 100));
        assertThat(scaler.state().scalingOf("ns/a").state()).isEqualTo(DeploymentScalingState.IDLE);

        try (Scaler.Lease lease = scaler.acquire("a")) {
            assertThat(lease).isNotNull();
            scaler.whenServing("a").get(30, TimeUnit.SECONDS);
        }
        assertThat(host.route("a")).isNotNull();
        assertThat(scaler.state().scalingOf("ns/a").state()).isEqualTo(DeploymentScalingState.ACTIVE);
        assertThat(scaler.events().getLast().detail()).contains("(weights resident)");
    }

    @Test
    void minActiveKeepsTheReplicaAndAPolicyTakenAwayActivatesAReleasedOne() throws Exception {
        scaler.applyHost(withPolicy(1, 1, 50));
        await(() -> host.route("a") != null, "a serves");
        Thread.sleep(300); // six idle timeouts: a replica under minActive is never released
        assertThat(scaler.state().scalingOf("ns/a").state()).isEqualTo(DeploymentScalingState.ACTIVE);

        scaler.applyHost(withPolicy(2, 0, 50));
        await(
                () -> DeploymentScalingState.IDLE.equals(
                        scaler.state().scalingOf("ns/a").state()),
                "a idle");

        scaler.applyHost(new HostAssignment(3, 0, List.of(model("a")), List.of(replica("a"))));
        await(() -> host.route("a") != null, "a serves again without its policy");
        assertThat(scaler.state().scaling()).as("no policy, no scaling state").isEmpty();
    }

    @Test
    void aDormantDeploymentsRequestIsHeldAsDemandAndServedWhenAnAssignmentBringsItsReplica() throws Exception {
        HostAssignment dormant =
                new HostAssignment(1, 0, List.of(), List.of(), List.of(), List.of(new DormantDeployment("ns/a", "a")));
        scaler.applyHost(dormant);
        assertThat(scaler.servableNames()).containsExactly("a");
        assertThat(scaler.state().scalingOf("ns/a").state()).isEqualTo(DeploymentScalingState.DORMANT);
        assertThat(scaler.state().scalingOf("ns/a").heldRequests()).isZero();

        long before = System.currentTimeMillis();
        Scaler.Lease lease = scaler.acquire("a");
        assertThat(lease)
                .as("a dormant deployment's request is held, not refused")
                .isNotNull();
        CompletableFuture<Void> ready = scaler.whenServing("a");
        Thread.sleep(50);
        assertThat(ready).isNotDone();
        DeploymentScalingState demand = scaler.state().scalingOf("ns/a");
        assertThat(demand.heldRequests()).isEqualTo(1);
        assertThat(demand.demandSinceMillis()).isBetween(before, System.currentTimeMillis());

        scaler.applyHost(withPolicy(2, 0, 60_000));
        ready.get(30, TimeUnit.SECONDS);
        assertThat(host.route("a")).isNotNull();
        lease.close();
        DeploymentScalingState after = scaler.state().scalingOf("ns/a");
        assertThat(after.state()).isEqualTo(DeploymentScalingState.ACTIVE);
        assertThat(after.heldRequests()).isZero();
        assertThat(after.demandSinceMillis()).isZero();
    }

    @Test
    void aHeldRequestWhoseDeploymentLeavesTheHostIsAnsweredAtOnce() throws Exception {
        scaler.applyHost(
                new HostAssignment(1, 0, List.of(), List.of(), List.of(), List.of(new DormantDeployment("ns/a", "a"))));
        try (Scaler.Lease lease = scaler.acquire("a")) {
            CompletableFuture<Void> ready = scaler.whenServing("a");

            scaler.applyHost(new HostAssignment(2, 0, List.of(), List.of()));

            assertThatThrownBy(() -> ready.get(5, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause()
                    .isInstanceOf(Scaler.ActivationException.class)
                    .hasMessageContaining("no longer activates on this host");
        }
        assertThat(scaler.acquire("a"))
                .as("not dormant any more: nothing to hold")
                .isNull();
    }

    @Test
    void aBadPolicyIsRefusedWithTheFieldAndChangesNothing() {
        scaler.applyHost(withPolicy(1, 0, 60_000));

        assertThatThrownBy(() -> scaler.applyHost(withPolicy(2, -1, 100)))
                .isInstanceOf(AssignmentException.class)
                .hasMessage("scaling ns/a: minActive must be >= 0, got -1");
        assertThatThrownBy(() -> scaler.applyHost(new HostAssignment(
                        3,
                        0,
                        List.of(model("a")),
                        List.of(replica("a")),
                        List.of(),
                        List.of(new DormantDeployment("ns/a", "a")))))
                .isInstanceOf(AssignmentException.class)
                .hasMessageContaining("is dormant but has replica ns/a#0");
        assertThat(scaler.state().generation()).isEqualTo(1);
    }
}
