package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import io.stowage.hostapi.ModelHeader;
import io.stowage.operator.model.HttpModelHeaderReader;
import io.stowage.operator.model.InvalidModelException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The header reader follows redirects as a Hugging Face /resolve/ URL needs (302 to a CDN host), but only
 * to hosts on the allowlist: a "hub" server on {@code localhost} redirects to a "CDN" server named
 * {@code 127.0.0.1}.
 */
class HttpRedirectTest {
    ModelServer cdn;
    HttpServer hub;
    final AtomicInteger hubRequests = new AtomicInteger();

    @BeforeEach
    void setUp() throws Exception {
        cdn = new ModelServer();
        cdn.files.put("/blob/stories.gguf", ModelServer.resource("/models/stories260K-q8_0.gguf"));
        hub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        hub.createContext("/", ex -> {
            hubRequests.incrementAndGet();
            String path = ex.getRequestURI().getPath();
            String location;
            if (path.startsWith("/loop")) {
                location = "/loop";
            } else if (path.startsWith("/hop")) {
                location = "/resolve/main/stories.gguf";
            } else {
                location = cdn.url("/blob/stories.gguf");
            }
            ex.getResponseHeaders().set("Location", location);
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        hub.start();
    }

    @AfterEach
    void tearDown() {
        hub.stop(0);
        cdn.close();
    }

    URI hubUri(String path) {
        return URI.create("http://localhost:" + hub.getAddress().getPort() + path);
    }

    static HttpModelHeaderReader reader(List<String> allowed) {
        return new HttpModelHeaderReader(allowed, Duration.ofSeconds(5), 1 << 20);
    }

    @Test
    void aRedirectToAnAllowedHostIsFollowed() throws Exception {
        ModelHeader h = reader(List.of("localhost", "127.0.0.1")).read(hubUri("/hop/resolve/main/stories.gguf"));
        assertThat(h.architecture()).isEqualTo("llama");
        assertThat(cdn.requests.get()).isGreaterThan(0);
    }

    @Test
    void aRedirectToAHostNotOnTheAllowlistIsRefusedNamingTheHost() {
        assertThatThrownBy(() -> reader(List.of("localhost")).read(hubUri("/resolve/main/stories.gguf")))
                .isInstanceOf(InvalidModelException.class)
                .hasMessageContaining("redirects to host 127.0.0.1")
                .hasMessageContaining("allowlist");
        assertThat(cdn.requests.get()).as("the refused host is never contacted").isZero();
    }

    @Test
    void aRedirectLoopStopsAfterTheLimit() {
        assertThatThrownBy(() -> reader(List.of("localhost")).read(hubUri("/loop")))
                .isInstanceOf(InvalidModelException.class)
                .hasMessageContaining("more than " + HttpModelHeaderReader.MAX_REDIRECTS);
        assertThat(hubRequests.get()).isEqualTo(HttpModelHeaderReader.MAX_REDIRECTS + 1);
    }
}
