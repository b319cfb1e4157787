package io.stowage.runtime.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.HostApi;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin server on its own: TLS from PEM files, their replacement and token rotation without a restart. */
class AdminServerTest {
    private static final Duration WAIT = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    private Vertx vertx;
    private Host host;
    private AdminServer server;
    private Path cert;
    private Path key;
    private Path tokenFile;

    @BeforeEach
    void setUp() throws IOException {
        vertx = Vertx.vertx();
        Path cache = Files.createDirectories(dir.resolve("cache"));
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 30, 1L << 27, cache, 1, 64, 8, 4),
                new ModelFetcher(cache, Map.of()));
        cert = dir.resolve("tls.crt");
        key = dir.resolve("tls.key");
        tokenFile = dir.resolve("token");
        Files.writeString(tokenFile, "first-token\n");
    }

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.close();
        }
        host.close();
        vertx.close();
    }

    private AdminServer start(Duration reload) throws Exception {
        server = AdminServer.start(
                vertx, host, new ObjectMapper(), new AdminServer.Settings(0, null, tokenFile, cert, key, reload));
        return server;
    }

    private HttpResponse<String> state(SSLContext trust, String authorization) throws Exception {
        HttpClient client = HttpClient.newBuilder()
                .sslContext(trust)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        HttpRequest.Builder r = HttpRequest.newBuilder(
                        URI.create("https://localhost:" + server.port() + HostApi.STATE_PATH))
                .timeout(Duration.ofSeconds(5));
        if (authorization != null) {
            r.header(HostApi.AUTHORIZATION_HEADER, authorization);
        }
        return client.send(r.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void servesTlsToAClientThatTrustsItsCaAndNotToOneThatTrustsAnother() throws Exception {
        TestCertificates.Ca ca = TestCertificates.Ca.create("stowage test CA");
        TestCertificates.Ca other = TestCertificates.Ca.create("another CA");
        ca.issue("localhost", cert, key);
        start(Duration.ofHours(1));

        HttpResponse<String> ok = state(ca.clientContext(), "Bearer first-token");
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        assertThat(ok.body()).contains("\"generation\"");
        assertThatThrownBy(() -> state(other.clientContext(), "Bearer first-token"))
                .isInstanceOf(SSLHandshakeException.class);
        // Plain HTTP on the TLS port gets no answer from the admin API.
        HttpRequest plain = HttpRequest.newBuilder(URI.create("http://localhost:" + server.port() + HostApi.STATE_PATH))
                .header(HostApi.AUTHORIZATION_HEADER, "Bearer first-token")
                .timeout(Duration.ofSeconds(5))
                .build();
        assertThatThrownBy(() -> HttpClient.newHttpClient().send(plain, HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(IOException.class);
    }

    @Test
    void replacedCertificateFilesAreServedWithoutARestart() throws Exception {
        TestCertificates.Ca first = TestCertificates.Ca.create("first CA");
        TestCertificates.Ca second = TestCertificates.Ca.create("second CA");
        first.issue("localhost", cert, key);
        start(Duration.ofMillis(50));
        int port = server.port();
        assertThat(state(first.clientContext(), "Bearer first-token").statusCode())
                .isEqualTo(200);

        second.issue("localhost", cert, key);

        long deadline = System.nanoTime() + WAIT.toNanos();
        Integer status = null;
        while (status == null && System.nanoTime() < deadline) {
            try {
                status = state(second.clientContext(), "Bearer first-token").statusCode();
            } catch (SSLHandshakeException notYet) {
                Thread.sleep(20);
            }
        }
        assertThat(status).as("a client trusting the second CA within %s", WAIT).isEqualTo(200);
        assertThat(server.port()).isEqualTo(port);
        assertThatThrownBy(() -> state(first.clientContext(), "Bearer first-token"))
                .isInstanceOf(SSLHandshakeException.class);
    }

    @Test
    void aHalfReplacedPairKeepsThePreviousCertificateUntilBothFilesMatch() throws Exception {
        TestCertificates.Ca first = TestCertificates.Ca.create("first CA");
        TestCertificates.Ca second = TestCertificates.Ca.create("second CA");
        first.issue("localhost", cert, key);
        start(Duration.ofHours(1));
        Path newCert = dir.resolve("new.crt");
        Path newKey = dir.resolve("new.key");
        second.issue("localhost", newCert, newKey);

        Files.copy(newKey, key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThat(server.reload())
                .as("a new key with the old certificate is not applied")
                .isFalse();
        assertThat(state(first.clientContext(), "Bearer first-token").statusCode())
                .isEqualTo(200);

        Files.copy(newCert, cert, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThat(server.reload()).isTrue();
        assertThat(state(second.clientContext(), "Bearer first-token").statusCode())
                .isEqualTo(200);
    }

    @Test
    void aRotatedTokenFileReplacesTheTokenWithoutARestart() throws Exception {
        TestCertificates.Ca ca = TestCertificates.Ca.create("stowage test CA");
        ca.issue("localhost", cert, key);
        start(Duration.ofHours(1));
        assertThat(state(ca.clientContext(), "Bearer first-token").statusCode()).isEqualTo(200);

        Files.writeString(tokenFile, "second-token");
        assertThat(server.reload()).isTrue();
        assertThat(state(ca.clientContext(), "Bearer first-token").statusCode()).isEqualTo(401);
        assertThat(state(ca.clientContext(), "Bearer second-token").statusCode())
                .isEqualTo(200);

        // An emptied file (a Secret being rewritten) keeps the token that works.
        Files.writeString(tokenFile, "");
        assertThat(server.reload()).isFalse();
        assertThat(state(ca.clientContext(), "Bearer second-token").statusCode())
                .isEqualTo(200);
    }

    @Test
    void theBearerSchemeIsCaseInsensitive() throws Exception {
        TestCertificates.Ca ca = TestCertificates.Ca.create("stowage test CA");
        ca.issue("localhost", cert, key);
        start(Duration.ofHours(1));
        SSLContext trust = ca.clientContext();

        assertThat(state(trust, "bearer first-token").statusCode()).isEqualTo(200);
        assertThat(state(trust, "BEARER first-token").statusCode()).isEqualTo(200);
        assertThat(state(trust, "Bearer   first-token  ").statusCode()).isEqualTo(200);
        assertThat(state(trust, "Basic Zmlyc3QtdG9rZW4=").statusCode()).isEqualTo(401);
        assertThat(state(trust, "Bearer").statusCode()).isEqualTo(401);
        assertThat(state(trust, null).statusCode()).isEqualTo(401);
        assertThat(AdminRoutes.bearerToken("bEaReR abc")).isEqualTo("abc");
        assertThat(AdminRoutes.bearerToken("Bearerabc")).isNull();
    }

    @Test
    void aCertificateWithoutItsKeyOrAnUnreadableFileStopsTheStart() throws Exception {
        assertThatThrownBy(() -> new AdminServer.Settings(0, null, tokenFile, cert, null, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("stowage.admin.tls.cert-file and stowage.admin.tls.key-file go together");
        assertThatThrownBy(() -> start(Duration.ofSeconds(1)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("stowage.admin.tls.cert-file " + cert + " cannot be read");

        TestCertificates.Ca ca = TestCertificates.Ca.create("stowage test CA");
        TestCertificates.Ca other = TestCertificates.Ca.create("another CA");
        ca.issue("localhost", cert, key);
        Path otherKey = dir.resolve("other.key");
        other.issue("localhost", dir.resolve("other.crt"), otherKey);
        Files.copy(otherKey, key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThatThrownBy(() -> start(Duration.ofSeconds(1)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("the private key does not belong to the certificate");
    }

    @Test
    void withoutCertificateFilesTheAdminApiIsPlainHttp() throws Exception {
        server = AdminServer.start(
                vertx,
                host,
                new ObjectMapper(),
                new AdminServer.Settings(0, "local-token", null, null, null, Duration.ofSeconds(10)));
        assertThat(server.tls()).isFalse();
        HttpResponse<String> r = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://localhost:" + server.port() + HostApi.STATE_PATH))
                                .header(HostApi.AUTHORIZATION_HEADER, "bearer local-token")
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    }
}
