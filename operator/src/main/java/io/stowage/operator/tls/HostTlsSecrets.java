package io.stowage.operator.tls;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.host.HostTrust;
import io.stowage.operator.reconcile.Labels;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The hosts' admin TLS in a cluster: a CA kept in the Secret {@link Labels#CA_SECRET} of the operator's own
 * namespace, and in each namespace with hosts the Secret {@link Labels#HOST_TLS_SECRET} (a key and certificate for
 * {@link HostApi#adminServerName}, signed by the CA, and {@code ca.crt}) that host pods mount. Both are created when
 * absent, reused while valid and renewed at two thirds of their life; a renewed CA stays trusted beside the new one
 * until it expires, so hosts that have not reloaded yet keep working.
 */
public final class HostTlsSecrets {
    private static final Logger LOG = Logger.getLogger(HostTlsSecrets.class);

    public static final String CA_CERT = "ca.crt";
    public static final String CA_KEY = "ca.key";
    /** The CA before the last renewal, trusted until it expires. */
    public static final String PREVIOUS_CA_CERT = "previous-ca.crt";

    public static final String TLS_CERT = "tls.crt";
    public static final String TLS_KEY = "tls.key";

    /**
     * @param caNamespace the operator's namespace, where the CA Secret lives
     * @param certValidity a host certificate's life (renewed after two thirds of it)
     * @param caValidity the CA's life (renewed after two thirds of it)
     * @param recheck how long what was read stays trusted before the Secrets are read again (to notice one that was
     *     deleted or edited)
     */
    public record Settings(String caNamespace, Duration certValidity, Duration caValidity, Duration recheck) {
        public Settings {
            if (caNamespace == null || caNamespace.isBlank()) {
                throw new IllegalArgumentException(
                        "the operator's namespace (STOWAGE_OPERATOR_NAMESPACE) is required for admin TLS:"
                                + " the CA Secret lives there");
            }
            if (certValidity.compareTo(Duration.ofMinutes(30)) < 0 || caValidity.compareTo(certValidity) <= 0) {
                throw new IllegalArgumentException("admin TLS: a host certificate must live at least 30m and the CA"
                        + " longer than it; got certificate " + certValidity + ", CA " + caValidity);
            }
        }
    }

    /** What a namespace's host Secret holds, as last read or written. */
    private record HostEntry(X509Certificate certificate, X509Certificate issuer, Instant checkedAt) {}

    private final KubernetesClient client;
    private final Settings settings;
    private final Clock clock;
    private CertificateAuthority ca;
    private List<X509Certificate> trusted = List.of();
    private Instant caCheckedAt = Instant.MIN;
    private final Map<String, HostEntry> hosts = new HashMap<>();

    public HostTlsSecrets(KubernetesClient client, Settings settings, Clock clock) {
        this.client = client;
        this.settings = settings;
        this.clock = clock;
    }

    /**
     * Makes sure the CA and {@code namespace}'s host Secret exist and are current, and answers what the operator
     * trusts of that namespace's hosts. Reads the Secrets at most once per recheck period unless a renewal is due.
     *
     * @throws KubernetesClientException when a Secret cannot be read or written (the next pass retries)
     */
    public synchronized HostTrust ensure(String namespace) {
        Instant now = clock.instant();
        ensureCa(now);
        HostEntry h = hosts.get(namespace);
        if (h == null
                || !h.issuer().equals(ca.certificate())
                || now.isAfter(h.checkedAt().plus(settings.recheck()))
                || CertificateAuthority.renewalDue(h.certificate(), now)) {
            hosts.put(namespace, ensureHost(namespace, now));
        }
        return new HostTrust(HostApi.adminServerName(namespace), trusted);
    }

    /** Forgets what was read of {@code namespace}'s host Secret (it was deleted): the next ensure reads it again. */
    public synchronized void forget(String namespace) {
        hosts.remove(namespace);
    }

    private void ensureCa(Instant now) {
        if (ca != null
                && !now.isAfter(caCheckedAt.plus(settings.recheck()))
                && !CertificateAuthority.renewalDue(ca.certificate(), now)) {
            return;
        }
        String ns = settings.caNamespace();
        Secret s = client.secrets().inNamespace(ns).withName(Labels.CA_SECRET).get();
        CertificateAuthority found = readCa(s);
        if (found != null && !CertificateAuthority.renewalDue(found.certificate(), now)) {
            use(found, previousOf(s, now), now);
            return;
        }
        CertificateAuthority fresh = CertificateAuthority.generate("stowage-admin-ca", now, settings.caValidity());
        Map<String, String> data = new LinkedHashMap<>();
        data.put(CA_CERT, b64(Pem.certificates(List.of(fresh.certificate()))));
        data.put(CA_KEY, b64(Pem.privateKey(fresh.key())));
        X509Certificate previous = null;
        if (found != null && found.certificate().getNotAfter().toInstant().isAfter(now)) {
            previous = found.certificate();
            data.put(PREVIOUS_CA_CERT, b64(Pem.certificates(List.of(previous))));
        }
        Secret written = write(ns, Labels.CA_SECRET, s, "Opaque", data);
        if (written != null && written.getData() != null && !data.equals(written.getData())) {
            // Someone else (another operator replica, a moment ago) wrote a CA first: use theirs.
            CertificateAuthority theirs = readCa(written);
            if (theirs == null) {
                throw new IllegalStateException("Secret " + ns + "/" + Labels.CA_SECRET
                        + " holds no usable CA; delete it to let the operator" + " make a new one");
            }
            use(theirs, previousOf(written, now), now);
            return;
        }
        LOG.infof(
                found == null
                        ? "created the admin CA in Secret %s/%s, valid until %s"
                        : "renewed the admin CA in Secret %s/%s, valid until %s (the previous one stays trusted)",
                ns,
                Labels.CA_SECRET,
                fresh.certificate().getNotAfter().toInstant());
        use(fresh, previous, now);
    }

    private void use(CertificateAuthority found, X509Certificate previous, Instant now) {
        ca = found;
        List<X509Certificate> t = new ArrayList<>();
        t.add(found.certificate());
        if (previous != null && !previous.equals(found.certificate())) {
            t.add(previous);
        }
        trusted = List.copyOf(t);
        caCheckedAt = now;
    }

    private HostEntry ensureHost(String ns, Instant now) {
        String name = HostApi.adminServerName(ns);
        Secret s = client.secrets()
                .inNamespace(ns)
                .withName(Labels.HOST_TLS_SECRET)
                .get();
        X509Certificate current = currentHostCertificate(s, name, now);
        if (current != null) {
            return new HostEntry(current, ca.certificate(), now);
        }
        CertificateAuthority.Issued issued = ca.issue(name, now, settings.certValidity());
        Map<String, String> data = new LinkedHashMap<>();
        data.put(TLS_CERT, b64(Pem.certificates(List.of(issued.certificate()))));
        data.put(TLS_KEY, b64(Pem.privateKey(issued.key())));
        data.put(CA_CERT, b64(Pem.certificates(List.of(ca.certificate()))));
        Secret written = write(ns, Labels.HOST_TLS_SECRET, s, "kubernetes.io/tls", data);
        if (written != null && written.getData() != null && !data.equals(written.getData())) {
            X509Certificate theirs = currentHostCertificate(written, name, now);
            if (theirs != null) {
                return new HostEntry(theirs, ca.certificate(), now);
            }
        }
        LOG.infof(
                "%s the admin certificate of namespace %s (%s) in Secret %s, valid until %s",
                s == null ? "issued" : "renewed",
                ns,
                name,
                Labels.HOST_TLS_SECRET,
                issued.certificate().getNotAfter().toInstant());
        return new HostEntry(issued.certificate(), ca.certificate(), now);
    }

    /**
     * The Secret's host certificate when it is still good: its key matches, the current CA signed it, it names
     * {@code name}, its {@code ca.crt} is the current CA, and its renewal is not due; else null.
     */
    private X509Certificate currentHostCertificate(Secret s, String name, Instant now) {
        Map<String, String> d = s == null ? null : s.getData();
        if (d == null || d.get(TLS_CERT) == null || d.get(TLS_KEY) == null || d.get(CA_CERT) == null) {
            return null;
        }
        try {
            X509Certificate cert = Pem.parseCertificates(text(d.get(TLS_CERT))).get(0);
            PrivateKey key = Pem.parsePrivateKey(text(d.get(TLS_KEY)));
            X509Certificate caCert = Pem.parseCertificates(text(d.get(CA_CERT))).get(0);
            if (!caCert.equals(ca.certificate()) || CertificateAuthority.renewalDue(cert, now)) {
                return null;
            }
            cert.verify(ca.certificate().getPublicKey());
            cert.checkValidity(java.util.Date.from(now));
            if (!matches(key, cert) || !dnsNames(cert).contains(name)) {
                return null;
            }
            return cert;
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            LOG.warnf(
                    "Secret %s/%s does not hold a usable admin certificate (%s); issuing a new one",
                    s.getMetadata().getNamespace(), Labels.HOST_TLS_SECRET, e.getMessage());
            return null;
        }
    }

    private CertificateAuthority readCa(Secret s) {
        Map<String, String> d = s == null ? null : s.getData();
        if (d == null || d.get(CA_CERT) == null || d.get(CA_KEY) == null) {
            return null;
        }
        try {
            X509Certificate cert = Pem.parseCertificates(text(d.get(CA_CERT))).get(0);
            PrivateKey key = Pem.parsePrivateKey(text(d.get(CA_KEY)));
            if (!matches(key, cert) || cert.getBasicConstraints() < 0) {
                throw new GeneralSecurityException("ca.key does not belong to ca.crt, or ca.crt is no CA");
            }
            return new CertificateAuthority(cert, key);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            LOG.warnf(
                    "Secret %s/%s does not hold a usable CA (%s); making a new one",
                    s.getMetadata().getNamespace(), Labels.CA_SECRET, e.getMessage());
            return null;
        }
    }

    private static X509Certificate previousOf(Secret s, Instant now) {
        String p = s == null || s.getData() == null ? null : s.getData().get(PREVIOUS_CA_CERT);
        if (p == null) {
            return null;
        }
        try {
            X509Certificate c = Pem.parseCertificates(text(p)).get(0);
            return c.getNotAfter().toInstant().isAfter(now) ? c : null;
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * Creates the Secret, or replaces the data of {@code existing} (an update: it fails on a concurrent change);
     * answers what the API server holds afterwards, which is another writer's Secret after a lost race on create.
     */
    private Secret write(String ns, String name, Secret existing, String type, Map<String, String> data) {
        if (existing == null) {
            Secret s = new SecretBuilder()
                    .withNewMetadata()
                    .withName(name)
                    .withNamespace(ns)
                    .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                    .endMetadata()
                    .withType(type)
                    .withData(data)
                    .build();
            try {
                return client.secrets().inNamespace(ns).resource(s).create();
            } catch (KubernetesClientException e) {
                if (e.getCode() != 409) {
                    throw e;
                }
                return client.secrets().inNamespace(ns).withName(name).get();
            }
        }
        Secret s = new SecretBuilder(existing).withData(data).build();
        return client.secrets().inNamespace(ns).resource(s).update();
    }

    private static boolean matches(PrivateKey key, X509Certificate cert) throws GeneralSecurityException {
        String alg = "EC".equals(key.getAlgorithm()) ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] probe = "stowage".getBytes(StandardCharsets.US_ASCII);
        java.security.Signature sign = java.security.Signature.getInstance(alg);
        sign.initSign(key);
        sign.update(probe);
        byte[] sig = sign.sign();
        java.security.Signature verify = java.security.Signature.getInstance(alg);
        verify.initVerify(cert.getPublicKey());
        verify.update(probe);
        return verify.verify(sig);
    }

    private static List<String> dnsNames(X509Certificate c) throws GeneralSecurityException {
        List<String> out = new ArrayList<>();
        var sans = c.getSubjectAlternativeNames();
        if (sans != null) {
            for (List<?> san : sans) {
                if (san.size() >= 2 && Integer.valueOf(2).equals(san.get(0))) {
                    out.add(String.valueOf(san.get(1)));
                }
            }
        }
        return out;
    }

    private static String b64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.US_ASCII));
    }

    private static String text(String b64) {
        return new String(Base64.getDecoder().decode(b64), StandardCharsets.US_ASCII);
    }
}
