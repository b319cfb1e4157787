package io.stowage.operator.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.host.HostTrust;
import io.stowage.operator.reconcile.Labels;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The CA and per-namespace host Secrets against the mock API server: created once, reused, renewed in time. */
@EnableKubernetesMockClient(crud = true)
class HostTlsSecretsTest {
    static final String OPERATOR_NS = "stowage-system";
    static final Duration CERT = Duration.ofDays(90);
    static final Duration CA = Duration.ofDays(3650);
    static final Duration RECHECK = Duration.ofMinutes(10);

    KubernetesClient client;

    /** A clock the test moves. */
    static final class TestClock extends Clock {
        // Whole seconds, as certificates store their dates.
        Instant now = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS);

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    TestClock clock;

    @BeforeEach
    void setUp() {
        clock = new TestClock();
    }

    HostTlsSecrets operator() {
        return new HostTlsSecrets(client, new HostTlsSecrets.Settings(OPERATOR_NS, CERT, CA, RECHECK), clock);
    }

    Secret secret(String ns, String name) {
        return client.secrets().inNamespace(ns).withName(name).get();
    }

    static X509Certificate cert(Secret s, String key) throws Exception {
        return Pem.parseCertificates(
                        new String(Base64.getDecoder().decode(s.getData().get(key)), StandardCharsets.US_ASCII))
                .get(0);
    }

    @Test
    void theCaAndTheHostSecretAreCreatedOnceAndReusedAcrossPassesAndRestarts() throws Exception {
        HostTrust trust = operator().ensure("team-a");

        Secret ca = secret(OPERATOR_NS, Labels.CA_SECRET);
        Secret host = secret("team-a", Labels.HOST_TLS_SECRET);
        assertThat(ca.getData()).containsKeys(HostTlsSecrets.CA_CERT, HostTlsSecrets.CA_KEY);
        assertThat(host.getType()).isEqualTo("kubernetes.io/tls");
        assertThat(host.getData())
                .containsKeys(HostTlsSecrets.TLS_CERT, HostTlsSecrets.TLS_KEY, HostTlsSecrets.CA_CERT);
        assertThat(host.getData().get(HostTlsSecrets.CA_CERT))
                .isEqualTo(ca.getData().get(HostTlsSecrets.CA_CERT));
        X509Certificate leaf = cert(host, HostTlsSecrets.TLS_CERT);
        assertThat(trust.serverName()).isEqualTo("stowage-host.team-a.svc");
        assertThat(trust.authorities()).containsExactly(cert(ca, HostTlsSecrets.CA_CERT));
        trust.verify(new X509Certificate[] {leaf}, clock.now);
        assertThat(leaf.getNotAfter().toInstant()).isEqualTo(clock.now.plus(CERT));
        assertThat(client.secrets().inNamespace("team-a").list().getItems()).hasSize(1);

        // Later passes, past the recheck, and a restarted operator (a new leader) reuse both Secrets.
        HostTlsSecrets same = operator();
        clock.now = clock.now.plus(Duration.ofDays(1));
        operator().ensure("team-a");
        same.ensure("team-a");
        clock.now = clock.now.plus(RECHECK.multipliedBy(2));
        same.ensure("team-a");
        assertThat(secret(OPERATOR_NS, Labels.CA_SECRET).getMetadata().getResourceVersion())
                .isEqualTo(ca.getMetadata().getResourceVersion());
        assertThat(secret("team-a", Labels.HOST_TLS_SECRET).getData()).isEqualTo(host.getData());
        assertThat(secret("team-a", Labels.HOST_TLS_SECRET).getMetadata().getResourceVersion())
                .isEqualTo(host.getMetadata().getResourceVersion());

        // Another namespace gets its own certificate from the same CA, for its own name only.
        HostTrust b = same.ensure("team-b");
        X509Certificate leafB = cert(secret("team-b", Labels.HOST_TLS_SECRET), HostTlsSecrets.TLS_CERT);
        b.verify(new X509Certificate[] {leafB}, clock.now);
        assertThatThrownBy(() -> trust.verify(new X509Certificate[] {leafB}, clock.now))
                .isInstanceOf(CertificateException.class)
                .hasMessageContaining("not stowage-host.team-a.svc");
    }

    @Test
    void aHostCertificateIsRenewedAtTwoThirdsOfItsLifeUnderTheSameCa() throws Exception {
        HostTlsSecrets tls = operator();
        tls.ensure("team-a");
        Map<String, String> first = secret("team-a", Labels.HOST_TLS_SECRET).getData();
        String caRv = secret(OPERATOR_NS, Labels.CA_SECRET).getMetadata().getResourceVersion();

        clock.now = clock.now.plus(Duration.ofDays(59));
        tls.ensure("team-a");
        assertThat(secret("team-a", Labels.HOST_TLS_SECRET).getData()).isEqualTo(first);

        clock.now = clock.now.plus(Duration.ofDays(2));
        HostTrust trust = tls.ensure("team-a");
        Secret renewed = secret("team-a", Labels.HOST_TLS_SECRET);
        assertThat(renewed.getData().get(HostTlsSecrets.TLS_CERT)).isNotEqualTo(first.get(HostTlsSecrets.TLS_CERT));
        assertThat(renewed.getData().get(HostTlsSecrets.TLS_KEY)).isNotEqualTo(first.get(HostTlsSecrets.TLS_KEY));
        X509Certificate leaf = cert(renewed, HostTlsSecrets.TLS_CERT);
        assertThat(leaf.getNotAfter().toInstant()).isEqualTo(clock.now.plus(CERT));
        assertThat(secret(OPERATOR_NS, Labels.CA_SECRET).getMetadata().getResourceVersion())
                .isEqualTo(caRv);
        trust.verify(new X509Certificate[] {leaf}, clock.now);
    }

    @Test
    void aRenewedCaReissuesTheHostCertificatesAndStillTrustsThePreviousCa() throws Exception {
        HostTlsSecrets tls = operator();
        tls.ensure("team-a");
        X509Certificate oldCa = cert(secret(OPERATOR_NS, Labels.CA_SECRET), HostTlsSecrets.CA_CERT);
        // Two thirds of the CA's 3650 days end after day 2433; the host was renewed shortly before, by the old CA.
        clock.now = clock.now.plus(Duration.ofDays(2430));
        tls.ensure("team-a");
        X509Certificate oldLeaf = cert(secret("team-a", Labels.HOST_TLS_SECRET), HostTlsSecrets.TLS_CERT);
        oldLeaf.verify(oldCa.getPublicKey());

        clock.now = clock.now.plus(Duration.ofDays(4));
        HostTrust trust = tls.ensure("team-a");

        Secret ca = secret(OPERATOR_NS, Labels.CA_SECRET);
        X509Certificate newCa = cert(ca, HostTlsSecrets.CA_CERT);
        assertThat(newCa).isNotEqualTo(oldCa);
        assertThat(cert(ca, HostTlsSecrets.PREVIOUS_CA_CERT)).isEqualTo(oldCa);
        assertThat(trust.authorities()).containsExactly(newCa, oldCa);
        Secret host = secret("team-a", Labels.HOST_TLS_SECRET);
        assertThat(cert(host, HostTlsSecrets.CA_CERT)).isEqualTo(newCa);
        X509Certificate newLeaf = cert(host, HostTlsSecrets.TLS_CERT);
        newLeaf.verify(newCa.getPublicKey());
        // A host that has not reloaded its files yet still presents the old certificate: still trusted.
        assertThat(List.of(newLeaf, oldLeaf)).allSatisfy(c -> trust.verify(new X509Certificate[] {c}, clock.now));
    }

    @Test
    void aHostSecretThatWasTamperedWithIsReissuedAtTheNextRecheck() throws Exception {
        HostTlsSecrets tls = operator();
        tls.ensure("team-a");
        CertificateAuthority stranger = CertificateAuthority.generate("stranger", clock.now, Duration.ofDays(30));
        CertificateAuthority.Issued forged = stranger.issue("stowage-host.team-a.svc", clock.now, Duration.ofDays(1));
        client.secrets().inNamespace("team-a").withName(Labels.HOST_TLS_SECRET).edit(s -> {
            s.getData().put(HostTlsSecrets.TLS_CERT, b64(Pem.certificates(List.of(forged.certificate()))));
            s.getData().put(HostTlsSecrets.TLS_KEY, b64(Pem.privateKey(forged.key())));
            return s;
        });

        clock.now = clock.now.plus(RECHECK).plusSeconds(1);
        tls.ensure("team-a");

        X509Certificate leaf = cert(secret("team-a", Labels.HOST_TLS_SECRET), HostTlsSecrets.TLS_CERT);
        assertThat(leaf).isNotEqualTo(forged.certificate());
        leaf.verify(cert(secret(OPERATOR_NS, Labels.CA_SECRET), HostTlsSecrets.CA_CERT)
                .getPublicKey());
    }

    @Test
    void aDeletedCaSecretIsMadeAgainAndTheHostsReissued() throws Exception {
        HostTlsSecrets tls = operator();
        tls.ensure("team-a");
        X509Certificate oldCa = cert(secret(OPERATOR_NS, Labels.CA_SECRET), HostTlsSecrets.CA_CERT);
        client.secrets().inNamespace(OPERATOR_NS).withName(Labels.CA_SECRET).delete();

        clock.now = clock.now.plus(RECHECK).plusSeconds(1);
        HostTrust trust = tls.ensure("team-a");

        X509Certificate newCa = cert(secret(OPERATOR_NS, Labels.CA_SECRET), HostTlsSecrets.CA_CERT);
        assertThat(newCa).isNotEqualTo(oldCa);
        assertThat(trust.authorities()).containsExactly(newCa);
        assertThat(cert(secret("team-a", Labels.HOST_TLS_SECRET), HostTlsSecrets.CA_CERT))
                .isEqualTo(newCa);
    }

    @Test
    void settingsRefuseAMissingNamespaceAndACaShorterThanItsCertificates() {
        assertThatThrownBy(() -> new HostTlsSecrets.Settings("", CERT, CA, RECHECK))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("STOWAGE_OPERATOR_NAMESPACE");
        assertThatThrownBy(() -> new HostTlsSecrets.Settings(OPERATOR_NS, CERT, Duration.ofDays(30), RECHECK))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the CA longer than it");
        assertThat(HostApi.adminServerName("team-a")).isEqualTo("stowage-host.team-a.svc");
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.US_ASCII));
    }
}
