package io.stowage.operator.host;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * What the operator accepts from the admin API of a namespace's hosts: a certificate that chains to one of
 * {@code authorities} and names {@code serverName}. The name is checked instead of the pod IP the operator connects
 * to, which is not known when the certificate is issued.
 */
public record HostTrust(String serverName, List<X509Certificate> authorities) {
    public HostTrust {
        if (serverName == null || serverName.isBlank()) {
            throw new IllegalArgumentException("a host's expected server name is required");
        }
        if (authorities == null || authorities.isEmpty()) {
            throw new IllegalArgumentException("at least one CA certificate is required to trust " + serverName);
        }
        authorities = List.copyOf(authorities);
    }

    /** A TLS context whose only trust is this one. */
    public SSLContext sslContext() {
        try {
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new TrustManager[] {new Manager()}, null);
            return ctx;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot set up TLS for " + serverName + ": " + e.getMessage(), e);
        }
    }

    /** Checks a server's chain: signed by one of the authorities, valid now, naming {@link #serverName}. */
    public void verify(X509Certificate[] chain) throws CertificateException {
        verify(chain, Instant.now());
    }

    /** Checks a server's chain as {@link #verify(X509Certificate[])} does, with validity at {@code at}. */
    public void verify(X509Certificate[] chain, Instant at) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("the host sent no certificate");
        }
        X509Certificate leaf = chain[0];
        List<X509Certificate> path = new ArrayList<>();
        for (X509Certificate c : chain) {
            if (!authorities.contains(c)) {
                path.add(c);
            }
        }
        if (path.isEmpty()) {
            throw new CertificateException("the host presented the CA certificate itself, not a server certificate");
        }
        try {
            Set<TrustAnchor> anchors = new HashSet<>();
            for (X509Certificate a : authorities) {
                anchors.add(new TrustAnchor(a, null));
            }
            PKIXParameters params = new PKIXParameters(anchors);
            // Our CA issues short-lived certificates and publishes no revocation lists.
            params.setRevocationEnabled(false);
            params.setDate(Date.from(at));
            CertPathValidator.getInstance("PKIX")
                    .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), params);
        } catch (GeneralSecurityException e) {
            throw new CertificateException(
                    "the host's certificate " + leaf.getSubjectX500Principal().getName()
                            + " is not one the operator's admin CA issued and valid at " + at + ": " + e.getMessage(),
                    e);
        }
        List<String> names = dnsNames(leaf);
        if (!names.contains(serverName)) {
            throw new CertificateException("the host's certificate names " + names + ", not " + serverName
                    + " (the hosts of another namespace?)");
        }
    }

    private static List<String> dnsNames(X509Certificate c) throws CertificateParsingException {
        List<String> out = new ArrayList<>();
        Collection<List<?>> sans = c.getSubjectAlternativeNames();
        if (sans != null) {
            for (List<?> san : sans) {
                if (san.size() >= 2 && Integer.valueOf(2).equals(san.get(0))) {
                    out.add(String.valueOf(san.get(1)));
                }
            }
        }
        return out;
    }

    /** Decides alone (an extended trust manager): JSSE then does no hostname check of its own against the IP. */
    private final class Manager extends X509ExtendedTrustManager {
        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            verify(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            verify(chain);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            verify(chain);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("the operator's admin client accepts no client certificates");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return authorities.toArray(X509Certificate[]::new);
        }
    }

    @Override
    public String toString() {
        return "HostTrust[" + serverName + ", " + authorities.size() + " CA(s) "
                + Arrays.toString(authorities.stream()
                        .map(a -> a.getSubjectX500Principal().getName())
                        .toArray()) + "]";
    }
}
