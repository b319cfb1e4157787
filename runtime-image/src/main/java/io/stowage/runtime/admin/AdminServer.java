package io.stowage.runtime.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.runtime.host.Host;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.SSLOptions;
import io.vertx.ext.web.Router;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.KeyManager;
import javax.net.ssl.X509KeyManager;
import org.jboss.logging.Logger;

/**
 * The admin API's own server: plain HTTP, or TLS from a PEM certificate and key; it re-reads the token file and the
 * certificate files on a period and applies what changed to new connections, without a restart.
 */
public final class AdminServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(AdminServer.class);

    /**
     * How the admin server runs.
     *
     * @param token a fixed token (local runs, tests); ignored when {@code tokenFile} is given
     * @param tokenFile a file holding the token, re-read every {@code reloadInterval}
     * @param certFile PEM certificate chain; with {@code keyFile} the server speaks TLS, without both plain HTTP
     * @param keyFile PEM private key of the chain's first certificate
     */
    public record Settings(
            int port, String token, Path tokenFile, Path certFile, Path keyFile, Duration reloadInterval) {
        public Settings {
            if ((certFile == null) != (keyFile == null)) {
                throw new IllegalArgumentException("stowage.admin.tls.cert-file and stowage.admin.tls.key-file go"
                        + " together, but only " + (certFile == null ? "the key file" : "the certificate file")
                        + " is set: set both for TLS, or neither for plain HTTP");
            }
            if (reloadInterval == null || reloadInterval.toMillis() < 1) {
                throw new IllegalArgumentException(
                        "stowage.admin.reload-interval must be at least 1 ms, got " + reloadInterval);
            }
        }

        /** Whether there is a token to check: without one the admin API stays off. */
        public boolean enabled() {
            return tokenFile != null || (token != null && !token.isBlank());
        }

        public boolean tls() {
            return certFile != null;
        }
    }

    private final Vertx vertx;
    private final Settings settings;
    private final AtomicReference<String> token = new AtomicReference<>();
    private byte[] tokenRead = new byte[0];
    private byte[] certRead = new byte[0];
    private byte[] keyRead = new byte[0];
    private String lastWarning;
    private HttpServer server;
    private long timer = -1;

    private AdminServer(Vertx vertx, Settings settings) {
        this.vertx = vertx;
        this.settings = settings;
    }

    /**
     * Starts the server on {@code settings.port()}.
     *
     * @throws IllegalStateException when the token file or the certificate files cannot be used: a host configured
     *     for TLS never falls back to plain HTTP
     */
    public static AdminServer start(Vertx vertx, Host host, ObjectMapper json, Settings settings) throws Exception {
        return start(vertx, a -> host.apply(a), () -> host.state(), json, settings);
    }

    /**
     * Starts the server with the given ways to apply an assignment and to read the state (a host pod's scaler).
     *
     * @throws IllegalStateException as {@link #start(Vertx, Host, ObjectMapper, Settings)}
     */
    public static AdminServer start(
            Vertx vertx,
            java.util.function.Function<io.stowage.hostapi.HostAssignment, io.stowage.hostapi.HostState> apply,
            java.util.function.Supplier<io.stowage.hostapi.HostState> state,
            ObjectMapper json,
            Settings settings)
            throws Exception {
        AdminServer s = new AdminServer(vertx, settings);
        s.listen(apply, state, json);
        return s;
    }

    private void listen(
            java.util.function.Function<io.stowage.hostapi.HostAssignment, io.stowage.hostapi.HostState> apply,
            java.util.function.Supplier<io.stowage.hostapi.HostState> state,
            ObjectMapper json)
            throws Exception {
        HttpServerOptions options = new HttpServerOptions();
        synchronized (this) {
            if (settings.tokenFile() != null) {
                byte[] raw = read(settings.tokenFile(), "stowage.admin.token-file");
                String t = tokenOf(raw);
                if (t.isEmpty()) {
                    throw new IllegalStateException("stowage.admin.token-file " + settings.tokenFile()
                            + " is empty: the admin API needs a token (the operator's Secret stowage-admin-token)");
                }
                token.set(t);
                tokenRead = raw;
            } else {
                token.set(settings.token());
            }
            if (settings.tls()) {
                byte[] cert = read(settings.certFile(), "stowage.admin.tls.cert-file");
                byte[] key = read(settings.keyFile(), "stowage.admin.tls.key-file");
                X509Certificate leaf;
                try {
                    leaf = check(vertx, cert, key);
                } catch (Exception e) {
                    throw new IllegalStateException(
                            "admin TLS: " + settings.certFile() + " and " + settings.keyFile() + ": " + e.getMessage(),
                            e);
                }
                options.setSsl(true).setKeyCertOptions(pem(cert, key));
                certRead = cert;
                keyRead = key;
                LOG.infof("admin API certificate %s", describe(leaf));
            }
        }
        Router router = Router.router(vertx);
        new AdminRoutes(apply, state, json, token::get).register(router);
        server = vertx.createHttpServer(options)
                .requestHandler(router)
                .listen(settings.port())
                .toCompletionStage()
                .toCompletableFuture()
                .get(30, TimeUnit.SECONDS);
        if (settings.tokenFile() != null || settings.tls()) {
            timer = vertx.setPeriodic(
                    settings.reloadInterval().toMillis(),
                    id -> vertx.executeBlocking(() -> reload(), false)
                            .onFailure(e -> LOG.warnf(e, "admin API reload failed: %s", e.getMessage())));
        }
    }

    /** The port it listens on (useful with port 0). */
    public int port() {
        return server.actualPort();
    }

    public boolean tls() {
        return settings.tls();
    }

    /**
     * Re-reads the token file and the certificate files and applies what changed; a file that cannot be read or a
     * certificate that does not match its key is logged and the previous one kept. Runs on the reload period.
     *
     * @return whether the token or the certificate changed
     */
    public synchronized boolean reload() throws Exception {
        boolean changed = false;
        if (settings.tokenFile() != null) {
            changed |= reloadToken();
        }
        if (settings.tls()) {
            changed |= reloadCertificate();
        }
        return changed;
    }

    private boolean reloadToken() {
        byte[] raw;
        try {
            raw = Files.readAllBytes(settings.tokenFile());
        } catch (IOException e) {
            warn("cannot read the token file " + settings.tokenFile() + " (" + e + "); keeping the previous token");
            return false;
        }
        if (Arrays.equals(raw, tokenRead)) {
            return false;
        }
        String t = tokenOf(raw);
        if (t.isEmpty()) {
            warn("the token file " + settings.tokenFile() + " is empty; keeping the previous token");
            return false;
        }
        token.set(t);
        tokenRead = raw;
        lastWarning = null;
        LOG.infof("admin token reloaded from %s", settings.tokenFile());
        return true;
    }

    private boolean reloadCertificate() throws Exception {
        byte[] cert;
        byte[] key;
        try {
            cert = Files.readAllBytes(settings.certFile());
            key = Files.readAllBytes(settings.keyFile());
        } catch (IOException e) {
            warn("cannot read the admin certificate (" + e + "); keeping the previous one");
            return false;
        }
        if (Arrays.equals(cert, certRead) && Arrays.equals(key, keyRead)) {
            return false;
        }
        X509Certificate leaf;
        try {
            leaf = check(vertx, cert, key);
        } catch (Exception e) {
            // A half-replaced pair (certificate new, key old) lands here until the second file is written.
            warn("the admin certificate " + settings.certFile() + " and key " + settings.keyFile() + " are not usable ("
                    + e.getMessage() + "); keeping the previous ones");
            return false;
        }
        server.updateSSLOptions(new SSLOptions().setKeyCertOptions(pem(cert, key)), true)
                .toCompletionStage()
                .toCompletableFuture()
                .get(30, TimeUnit.SECONDS);
        certRead = cert;
        keyRead = key;
        lastWarning = null;
        LOG.infof("admin API certificate reloaded: %s", describe(leaf));
        return true;
    }

    private void warn(String message) {
        if (!message.equals(lastWarning)) {
            LOG.warn(message);
            lastWarning = message;
        }
    }

    private static byte[] read(Path file, String property) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalStateException(property + " " + file + " cannot be read: " + e, e);
        }
    }

    private static String tokenOf(byte[] raw) {
        return new String(raw, StandardCharsets.UTF_8).strip();
    }

    private static PemKeyCertOptions pem(byte[] cert, byte[] key) {
        return new PemKeyCertOptions().setCertValue(Buffer.buffer(cert)).setKeyValue(Buffer.buffer(key));
    }

    /**
     * Loads the pair as the server will and proves that the key belongs to the first certificate by signing with it.
     *
     * @return the first certificate
     */
    static X509Certificate check(Vertx vertx, byte[] cert, byte[] key) throws Exception {
        KeyManager[] managers;
        try {
            managers = pem(cert, key).getKeyManagerFactory(vertx).getKeyManagers();
        } catch (Exception e) {
            throw new IllegalArgumentException("not a PEM certificate chain and private key: " + e.getMessage(), e);
        }
        for (KeyManager m : managers) {
            if (!(m instanceof X509KeyManager km)) {
                continue;
            }
            for (String type : List.of("EC", "RSA", "Ed25519", "EdDSA")) {
                String[] aliases = km.getServerAliases(type, null);
                if (aliases == null || aliases.length == 0) {
                    continue;
                }
                PrivateKey pk = km.getPrivateKey(aliases[0]);
                X509Certificate[] chain = km.getCertificateChain(aliases[0]);
                if (pk == null || chain == null || chain.length == 0) {
                    continue;
                }
                String alg = switch (type) {
                    case "EC" -> "SHA256withECDSA";
                    case "RSA" -> "SHA256withRSA";
                    default -> "Ed25519";
                };
                byte[] probe = new byte[32];
                new SecureRandom().nextBytes(probe);
                Signature sign = Signature.getInstance(alg);
                sign.initSign(pk);
                sign.update(probe);
                byte[] sig = sign.sign();
                Signature verify = Signature.getInstance(alg);
                verify.initVerify(chain[0].getPublicKey());
                verify.update(probe);
                if (!verify.verify(sig)) {
                    throw new IllegalArgumentException(
                            "the private key does not belong to the certificate " + chain[0].getSubjectX500Principal());
                }
                if (chain[0].getNotAfter().toInstant().isBefore(Instant.now())) {
                    LOG.warnf(
                            "the admin API certificate expired at %s; serving it until it is replaced",
                            chain[0].getNotAfter().toInstant());
                }
                return chain[0];
            }
        }
        throw new IllegalArgumentException("no EC, RSA or Ed25519 private key with a certificate chain was found");
    }

    private static String describe(X509Certificate c) {
        return c.getSubjectX500Principal().getName() + ", valid until "
                + c.getNotAfter().toInstant();
    }

    @Override
    public void close() {
        if (timer >= 0) {
            vertx.cancelTimer(timer);
        }
        if (server != null) {
            server.close();
        }
    }
}
