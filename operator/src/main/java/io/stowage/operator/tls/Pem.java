package io.stowage.operator.tls;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/** PEM text of certificates and PKCS#8 private keys, as Secrets hold them ({@code tls.crt}, {@code tls.key}). */
public final class Pem {
    private static final String KEY_BEGIN = "-----BEGIN PRIVATE KEY-----";
    private static final String KEY_END = "-----END PRIVATE KEY-----";

    private Pem() {}

    public static String certificates(List<X509Certificate> certs) {
        StringBuilder b = new StringBuilder();
        for (X509Certificate c : certs) {
            try {
                b.append(block("CERTIFICATE", c.getEncoded()));
            } catch (CertificateException e) {
                throw new IllegalStateException("cannot encode the certificate " + c.getSubjectX500Principal(), e);
            }
        }
        return b.toString();
    }

    public static String privateKey(PrivateKey key) {
        return block("PRIVATE KEY", key.getEncoded());
    }

    /** The certificates of a PEM text, in order. */
    public static List<X509Certificate> parseCertificates(String pem) throws CertificateException {
        List<X509Certificate> out = new ArrayList<>();
        for (Certificate c : CertificateFactory.getInstance("X.509")
                .generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)))) {
            out.add((X509Certificate) c);
        }
        if (out.isEmpty()) {
            throw new CertificateException("no PEM certificate found");
        }
        return out;
    }

    /** A PKCS#8 EC or RSA private key ({@code BEGIN PRIVATE KEY}). */
    public static PrivateKey parsePrivateKey(String pem) throws GeneralSecurityException {
        int from = pem.indexOf(KEY_BEGIN);
        int to = pem.indexOf(KEY_END);
        if (from < 0 || to < from) {
            throw new GeneralSecurityException("no PKCS#8 '" + KEY_BEGIN + "' block found");
        }
        byte[] der;
        try {
            der = Base64.getMimeDecoder().decode(pem.substring(from + KEY_BEGIN.length(), to));
        } catch (IllegalArgumentException e) {
            throw new GeneralSecurityException("the private key is not valid base64: " + e.getMessage(), e);
        }
        GeneralSecurityException last = null;
        for (String alg : List.of("EC", "RSA")) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                last = e;
            }
        }
        throw new GeneralSecurityException("the private key is neither EC nor RSA PKCS#8: " + last.getMessage(), last);
    }

    private static String block(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
