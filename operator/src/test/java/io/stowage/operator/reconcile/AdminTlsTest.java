package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.tls.CertificateAuthority;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The hosts' admin API over TLS: host pods mount their namespace's certificate, the operator talks to them over
 * https trusting only its CA and the namespace's name, and a rotated token is picked up without a restart.
 */
@EnableKubernetesMockClient(crud = true)
class AdminTlsTest {
    static final String OPERATOR_NS = "stowage-system";

    KubernetesClient client;

    TestCluster cluster;

    @BeforeEach
    void setUp() throws Exception {
        cluster = new TestCluster(client, OperatorConfig.defaults());
        cluster.enableAdminTls(OPERATOR_NS);
        cluster.addGpuNode("gpu-a", TestCluster.a100Labels());
    }

    @AfterEach
    void tearDown() {
        cluster.close();
    }

    private Pod onlyHost() {
        List<Pod> hosts = cluster.hostPods("team-a");
        assertThat(hosts).hasSize(1);
        return hosts.get(0);
    }

    @Test
    void hostPodsMountTheirNamespacesCertificateAndGetTheirAssignmentOverTls() throws Exception {
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        Pod host = onlyHost();
        Map<String, Volume> volumes =
                host.getSpec().getVolumes().stream().collect(Collectors.toMap(Volume::getName, v -> v));
        assertThat(volumes.get("admin-tls").getSecret().getSecretName()).isEqualTo(Labels.HOST_TLS_SECRET);
        assertThat(volumes.get("admin-token").getSecret().getSecretName()).isEqualTo(Labels.TOKEN_SECRET);
        Container c = host.getSpec().getContainers().get(0);
        assertThat(c.getVolumeMounts())
                .filteredOn(m -> m.getName().startsWith("admin-"))
                .extracting(m -> m.getMountPath() + (Boolean.TRUE.equals(m.getReadOnly()) ? " ro" : " rw"))
                .containsExactlyInAnyOrder(HostApi.TLS_MOUNT + " ro", HostApi.TOKEN_MOUNT + " ro");
        Map<String, String> env = c.getEnv().stream()
                .filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(EnvVar::getName, EnvVar::getValue));
        assertThat(env)
                .containsEntry(HostApi.TLS_CERT_FILE_ENV, HostApi.TLS_MOUNT + "/tls.crt")
                .containsEntry(HostApi.TLS_KEY_FILE_ENV, HostApi.TLS_MOUNT + "/tls.key")
                .containsEntry(HostApi.TOKEN_FILE_ENV, HostApi.TOKEN_MOUNT + "/token");
        // The start check of the runtime's host command reads the variable; the file wins over it.
        assertThat(c.getEnv())
                .filteredOn(e -> e.getName().equals(HostApi.TOKEN_ENV))
                .singleElement()
                .satisfies(e ->
                        assertThat(e.getValueFrom().getSecretKeyRef().getName()).isEqualTo(Labels.TOKEN_SECRET));

        FakeHost fake = cluster.hosts.get(host.getMetadata().getName());
        assertThat(fake.uri().getScheme()).isEqualTo("https");
        assertThat(fake.assignment.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0");
        assertThat(cluster.get("team-a", "chat").getStatus().condition("Ready").getStatus())
                .isEqualTo("True");
        assertThat(client.secrets()
                        .inNamespace(OPERATOR_NS)
                        .withName(Labels.CA_SECRET)
                        .get())
                .isNotNull();
    }

    @Test
    void theLastDeploymentOfANamespaceTakesItsSecretsAndTheNextOneGetsNewOnes() throws Exception {
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        String oldCert = new String(client.secrets()
                .inNamespace("team-a")
                .withName(Labels.HOST_TLS_SECRET)
                .get()
                .getData()
                .get("tls.crt"));

        client.resources(io.stowage.operator.crd.LlmDeployment.class)
                .inNamespace("team-a")
                .withName("chat")
                .delete();
        cluster.converge();
        assertThat(client.secrets().inNamespace("team-a").list().getItems()).isEmpty();
        assertThat(client.secrets()
                        .inNamespace(OPERATOR_NS)
                        .withName(Labels.CA_SECRET)
                        .get())
                .as("the CA is the operator's, not the namespace's")
                .isNotNull();

        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        assertThat(new String(client.secrets()
                        .inNamespace("team-a")
                        .withName(Labels.HOST_TLS_SECRET)
                        .get()
                        .getData()
                        .get("tls.crt")))
                .isNotEqualTo(oldCert);
        assertThat(cluster.get("team-a", "chat").getStatus().condition("Ready").getStatus())
                .isEqualTo("True");
    }

    @Test
    void aHostWithACertificateFromAnotherCaGetsNothing() throws Exception {
        CertificateAuthority stranger = CertificateAuthority.generate("stranger", Instant.now(), Duration.ofDays(30));
        CertificateAuthority.Issued forged =
                stranger.issue(HostApi.adminServerName("team-a"), Instant.now(), Duration.ofDays(1));
        cluster.nextHostTls = TestCluster.serverContext(List.of(forged.certificate()), forged.key());

        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        FakeHost fake = cluster.hosts.get(onlyHost().getMetadata().getName());
        assertThat(fake.puts.get())
                .as("no assignment (nor token) reaches an untrusted host")
                .isZero();
        assertThat(cluster.events("team-a", "HostUntrusted"))
                .isNotEmpty()
                .allSatisfy(e -> assertThat(e.getMessage()).contains("is not one the operator's admin CA issued"));
        assertThat(cluster.get("team-a", "chat").getStatus().condition("Ready").getStatus())
                .isEqualTo("False");
    }

    @Test
    void aHostWithAnotherNamespacesCertificateGetsNothing() throws Exception {
        cluster.tls.ensure("team-b");
        cluster.nextHostTls = TestCluster.serverContext(client.secrets()
                .inNamespace("team-b")
                .withName(Labels.HOST_TLS_SECRET)
                .get());

        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();

        FakeHost fake = cluster.hosts.get(onlyHost().getMetadata().getName());
        assertThat(fake.puts.get()).isZero();
        assertThat(cluster.events("team-a", "HostUntrusted"))
                .isNotEmpty()
                .allSatisfy(e -> assertThat(e.getMessage())
                        .contains("names [stowage-host.team-b.svc], not stowage-host.team-a.svc"));
    }

    @Test
    void aRotatedTokenReachesTheHostsWithoutRestartingTheOperator() throws Exception {
        cluster.apply("team-a", "chat", 1, s -> {});
        cluster.converge();
        FakeHost fake = cluster.hosts.get(onlyHost().getMetadata().getName());
        int puts = fake.puts.get();

        // The Secret gets a new token, and the host re-reads its mounted file; the host restarts empty, too.
        rotateToken("rotated-1");
        fake.token = "rotated-1";
        fake.crash();
        cluster.converge();
        assertThat(fake.puts.get()).isGreaterThan(puts);
        assertThat(fake.assignment.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0");

        // Rotated again, but this host's file is not updated yet: the previous token still works for it.
        rotateToken("rotated-2");
        fake.crash();
        int before = fake.puts.get();
        cluster.converge();
        assertThat(fake.puts.get()).isGreaterThan(before);
        assertThat(fake.assignment.replicas()).extracting(r -> r.id()).containsExactly("team-a/chat#0");
        assertThat(cluster.events("team-a", "HostUnauthorized")).isEmpty();
    }

    @Test
    void withoutTlsTheTokenIsStillAFileAndNoCertificateIsMounted() {
        Pod p = HostPodDependent.desired(
                OperatorConfig.defaults(),
                "team-a",
                new Device("n/gpu-0", "n", DeviceKind.GPU, 16L << 30, 0, 0, 0, 1.0, Map.of(), List.of()),
                "{}",
                List.of(),
                1L << 30,
                Map.of(),
                List.of());
        assertThat(p.getSpec().getVolumes()).extracting(Volume::getName).contains("admin-token");
        assertThat(p.getSpec().getVolumes()).extracting(Volume::getName).doesNotContain("admin-tls");
        assertThat(p.getSpec().getContainers().get(0).getEnv())
                .extracting(EnvVar::getName)
                .contains(HostApi.TOKEN_FILE_ENV)
                .doesNotContain(HostApi.TLS_CERT_FILE_ENV);
        assertThat(PlacementLoop.podAdminUri(
                        new io.fabric8.kubernetes.api.model.PodBuilder()
                                .withNewStatus()
                                .withPodIP("fd00::7")
                                .endStatus()
                                .build(),
                        true))
                .hasToString("https://[fd00::7]:" + HostApi.DEFAULT_ADMIN_PORT);
    }

    private void rotateToken(String token) {
        client.secrets().inNamespace("team-a").withName(Labels.TOKEN_SECRET).edit(s -> {
            s.getData()
                    .put(Labels.TOKEN_KEY, Base64.getEncoder().encodeToString(token.getBytes(StandardCharsets.UTF_8)));
            return s;
        });
    }
}
