package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import io.stowage.runtime.engine.TestModels;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model sources: download once into the cache under a lock, sha256 checks, the hf/s3 URL mappings, and the source
 * policy: allowed schemes and hosts (redirects included), model roots for files, size caps, timeouts, the GGUF magic.
 */
class ModelFetcherTest {
    static final String SHA = "a5eec7f42c2234ec2a615d92ad083abcec38788b2d415802bc089dffaba9a5a7";

    @TempDir
    Path dir;

    Path cache;
    Path roots;
    Path outside;
    final List<HttpServer> servers = new ArrayList<>();
    final CountDownLatch release = new CountDownLatch(1);

    @BeforeEach
    void dirs() throws IOException {
        cache = Files.createDirectories(dir.resolve("cache"));
        roots = Files.createDirectories(dir.resolve("models"));
        outside = Files.createDirectories(dir.resolve("elsewhere"));
    }

    @AfterEach
    void stopServers() {
        release.countDown();
        servers.forEach(s -> s.stop(0));
    }

    /** The defaults with what a test on loopback needs: plain http to 127.0.0.1, files under {@link #roots}. */
    private ModelSourcePolicy loopback() {
        return ModelSourcePolicy.defaults(cache)
                .withSchemes(List.of("http", "https", "file"))
                .withHosts(List.of("127.0.0.1"))
                .withMoreRoots(List.of(roots));
    }

    private ModelFetcher fetcher(ModelSourcePolicy policy) {
        return new ModelFetcher(cache, Map.of(), policy);
    }

    private HttpServer serve(String path, HttpHandler handler) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext(path, handler);
        server.setExecutor(
                Executors.newCachedThreadPool(Thread.ofPlatform().daemon().factory()));
        server.start();
        servers.add(server);
        return server;
    }

    private static String url(HttpServer server, String path) {
        return "http://127.0.0.1:" + server.getAddress().getPort() + path;
    }

    private HttpServer serveBytes(String path, byte[] body, AtomicInteger hits) throws IOException {
        return serve(path, ex -> {
            hits.incrementAndGet();
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
    }

    private List<String> cacheFiles() throws IOException {
        try (var files = Files.list(cache)) {
            return files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".gguf") || n.endsWith(".part"))
                    .toList();
        }
    }

    private static String failure(ModelFetcher f, String uri, String sha) {
        ModelFetcher.FetchException e =
                catchThrowableOfType(ModelFetcher.FetchException.class, () -> f.fetch(uri, sha, b -> {}, t -> {}));
        assertThat(e).as("fetching %s should fail", uri).isNotNull();
        return e.getMessage();
    }

    @Test
    void twoFetchersOfOneCacheDownloadOnce() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.q8());
        AtomicInteger hits = new AtomicInteger();
        HttpServer server = serve("/m.gguf", ex -> {
            hits.incrementAndGet();
            ex.sendResponseHeaders(200, model.length);
            // slow enough that the second fetcher arrives while the first still downloads
            for (int i = 0; i < model.length; i += 65536) {
                ex.getResponseBody().write(model, i, Math.min(65536, model.length - i));
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            ex.close();
        });
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            String url = url(server, "/m.gguf");
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Path>> results = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                ModelFetcher f = fetcher(loopback()); // two hosts: two fetchers, one cache directory
                results.add(pool.submit(() -> {
                    go.await();
                    return f.fetch(url, SHA, b -> {}, t -> {});
                }));
            }
            go.countDown();
            Path a = results.get(0).get();
            Path b = results.get(1).get();
            assertThat(a).isEqualTo(b).hasBinaryContent(model);
            assertThat(hits.get()).isEqualTo(1);
            assertThat(cacheFiles()).noneMatch(n -> n.endsWith(".part"));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anHttpModelOfUnknownSizeThatDoesNotFitFailsWhenMeasured() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.f32());
        HttpServer server = serveBytes("/f32.gguf", model, new AtomicInteger());
        // a budget of 1 MiB: the assignment gives no sizes, so only the loaded model's measured bytes can refuse it
        try (Host host = new Host(
                new HostSettings("cpu", "t/cpu", 1L << 30, 1L << 20, cache, 1, 16, 4, 1), fetcher(loopback()))) {
            String url = url(server, "/f32.gguf");
            host.apply(new io.stowage.hostapi.HostAssignment(
                    1, 0, List.of(new io.stowage.hostapi.ModelAssignment("f", url, null, 0, 0)), List.of()));
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (host.state().models().get(0).phase() != io.stowage.hostapi.ModelPhase.FAILED) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(5);
            }
            assertThat(host.state().models().get(0).reason())
                    .contains("needs")
                    .contains("1048576")
                    .contains("free");
            assertThat(host.state().device().usedBytes()).isZero();
        }
    }

    @Test
    void shaMismatchOfALocalFileIsRefusedWithBothDigests() {
        ModelFetcher f = new ModelFetcher(cache, Map.of());
        assertThatThrownBy(() -> f.fetch(TestModels.q8().toString(), "f".repeat(64), b -> {}, t -> {}))
                .hasMessageContaining("sha256 mismatch")
                .hasMessageContaining(SHA)
                .hasMessageContaining("f".repeat(64));
        assertThatThrownBy(() -> f.fetch(TestModels.q8().toString(), "xyz", b -> {}, t -> {}))
                .hasMessageContaining("64 hexadecimal digits");
    }

    @Test
    void hfAndS3MapOntoHttps() throws Exception {
        ModelFetcher f = new ModelFetcher(cache, Map.of());
        assertThat(f.httpUrlOf("hf://ggml-org/models/tinyllamas/stories260K.gguf"))
                .isEqualTo("https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf");
        assertThat(f.httpUrlOf("hf://org/repo/file.gguf@v1.0"))
                .isEqualTo("https://huggingface.co/org/repo/resolve/v1.0/file.gguf");
        assertThat(f.httpUrlOf("s3://bucket/models/a.gguf")).isEqualTo("https://bucket.s3.amazonaws.com/models/a.gguf");
        ModelFetcher minio = new ModelFetcher(cache, Map.of("STOWAGE_S3_ENDPOINT", "http://minio:9000/"));
        assertThat(minio.httpUrlOf("s3://bucket/a.gguf")).isEqualTo("http://minio:9000/bucket/a.gguf");
        assertThatThrownBy(() -> f.httpUrlOf("hf://only-owner")).hasMessageContaining("hf://OWNER/REPO/PATH");
        assertThatThrownBy(() -> f.httpUrlOf("s3://bucket")).hasMessageContaining("s3://BUCKET/KEY");
    }

    @Test
    void theDefaultsRefusePlainHttpAndHostsOffTheAllowlistBeforeAnyRequest() throws Exception {
        AtomicInteger hits = new AtomicInteger();
        HttpServer server = serveBytes("/m.gguf", Files.readAllBytes(TestModels.q8()), hits);
        ModelFetcher defaults = fetcher(ModelSourcePolicy.defaults(cache));

        assertThat(failure(defaults, url(server, "/m.gguf"), null))
                .contains("scheme http is not allowed on this host")
                .contains("allowed: [file, hf, https, s3]");
        assertThat(failure(defaults, "https://127.0.0.1:" + server.getAddress().getPort() + "/m.gguf", null))
                .contains("host 127.0.0.1 is not on this host's allowlist [huggingface.co, *.huggingface.co, *.hf.co]")
                .contains("STOWAGE_MODEL_ALLOWED_HOSTS");
        assertThat(failure(defaults, "ftp://127.0.0.1/m.gguf", null)).contains("unsupported scheme");
        // the two-argument fetcher (tools, tests) downloads under the same defaults
        assertThat(failure(new ModelFetcher(cache, Map.of()), url(server, "/m.gguf"), null))
                .contains("scheme http is not allowed");
        assertThat(hits.get()).as("nothing was requested").isZero();
        assertThat(cacheFiles()).isEmpty();
    }

    @Test
    void aRedirectIsFollowedOnlyToAnAllowedHost() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.q8());
        AtomicInteger hits = new AtomicInteger();
        HttpServer server = serveBytes("/m.gguf", model, hits);
        int port = server.getAddress().getPort();
        server.createContext("/same-host", ex -> {
            ex.getResponseHeaders().add("Location", "/m.gguf");
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        // localhost is the same server, but not on the allowlist: only 127.0.0.1 is
        server.createContext("/elsewhere", ex -> {
            ex.getResponseHeaders().add("Location", "http://localhost:" + port + "/m.gguf");
            ex.sendResponseHeaders(307, -1);
            ex.close();
        });
        server.createContext("/loop", ex -> {
            ex.getResponseHeaders().add("Location", "/loop");
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        ModelFetcher f = fetcher(loopback());

        assertThat(failure(f, url(server, "/elsewhere"), SHA))
                .contains("redirects to http://localhost:" + port + "/m.gguf")
                .contains("host localhost is not on this host's allowlist [127.0.0.1]");
        assertThat(hits.get()).as("the refused redirect was not followed").isZero();
        assertThat(failure(f, url(server, "/loop"), null)).contains("redirects more than 5 times");
        assertThat(f.fetch(url(server, "/same-host"), SHA, b -> {}, t -> {})).hasBinaryContent(model);
        assertThat(hits.get()).isEqualTo(1);
    }

    @Test
    void aFileOutsideTheRootsIsRefusedExactlyAsAMissingOneAndNeverRead() throws Exception {
        Path secret = Files.writeString(outside.resolve("shadow"), "root:$6$secret-hash:19000:0:99999:7:::\n");
        Path inside = Files.copy(TestModels.q8(), roots.resolve("m.gguf"));
        Path escape = Files.createSymbolicLink(roots.resolve("escape.gguf"), secret);
        ModelFetcher f = fetcher(loopback());

        assertThat(f.fetch(inside.toUri().toString(), SHA, b -> {}, t -> {})).isEqualTo(inside.toRealPath());
        String forbidden = failure(f, secret.toUri().toString(), SHA);
        String missing = failure(f, outside.resolve("missing.gguf").toUri().toString(), SHA);
        String link = failure(f, escape.toString(), SHA);
        String dotDot = failure(f, roots + "/../elsewhere/shadow", null);
        // the same words whatever the reason: missing, outside, a link out of the roots, a path climbing out
        assertThat(forbidden.replace(secret.toUri().toString(), "URI"))
                .isEqualTo(
                        missing.replace(outside.resolve("missing.gguf").toUri().toString(), "URI"))
                .isEqualTo(link.replace(escape.toString(), "URI"))
                .isEqualTo(dotDot.replace(roots + "/../elsewhere/shadow", "URI"))
                .contains("does not exist under the host's model roots");
        for (String message : List.of(forbidden, missing, link, dotDot)) {
            assertThat(message).doesNotContain("root:").doesNotContain("secret");
            // the size, with the paths and the list of roots taken out (a random temporary directory may contain its
            // digits)
            String words = message.replace(secret.toUri().toString(), "URI")
                    .replace(outside.resolve("missing.gguf").toUri().toString(), "URI")
                    .replace(escape.toString(), "URI")
                    .replace(roots + "/../elsewhere/shadow", "URI")
                    .replaceAll("\\[[^\\]]*\\]", "[the roots]");
            assertThat(words).doesNotContain(Long.toString(Files.size(secret)));
        }
        assertThat(f.localSize(secret.toString()))
                .as("its size is not told either")
                .isZero();
        assertThat(f.localSize(escape.toUri().toString())).isZero();
        assertThat(f.localSize(inside.toString())).isEqualTo(Files.size(inside));
    }

    @Test
    void aFileThatIsNotGgufIsRefusedWithoutQuotingIt() throws Exception {
        Path notGguf = Files.writeString(roots.resolve("passwd.gguf"), "root:x:0:0:root:/root:/bin/bash\n");
        String message = failure(fetcher(loopback()), notGguf.toString(), null);
        assertThat(message)
                .contains("is not a GGUF file")
                .doesNotContain("root:")
                .doesNotContain("0x");
    }

    @Test
    void aDownloadThatIsNotGgufIsNeverKept() throws Exception {
        AtomicInteger hits = new AtomicInteger();
        HttpServer server =
                serveBytes("/admin/v1/state", "{\"token\": \"private\"}".getBytes(StandardCharsets.UTF_8), hits);
        String message = failure(fetcher(loopback()), url(server, "/admin/v1/state"), null);
        assertThat(message)
                .contains("is not a GGUF file")
                .doesNotContain("token")
                .doesNotContain("private");
        assertThat(hits.get()).isEqualTo(1);
        assertThat(cacheFiles()).isEmpty();
    }

    @Test
    void aDownloadLargerThanTheCapIsRefusedAndNothingIsKept() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.q8());
        // announced with a Content-Length: refused before reading the body
        HttpServer announced = serveBytes("/m.gguf", model, new AtomicInteger());
        ModelFetcher capped = fetcher(loopback().withMaxBytes(model.length - 1));
        assertThat(failure(capped, url(announced, "/m.gguf"), null))
                .contains(
                        "is " + model.length + " bytes, more than the host's cap of " + (model.length - 1) + " bytes");
        // streamed without a length: refused as soon as the bytes pass the cap
        HttpServer chunked = serve("/m.gguf", ex -> {
            ex.sendResponseHeaders(200, 0);
            ex.getResponseBody().write(model);
            ex.close();
        });
        assertThat(failure(capped, url(chunked, "/m.gguf"), null))
                .contains("exceeds the host's cap of " + (model.length - 1) + " bytes");
        // the model's expected weights bound it too: 1 byte of weights allows the header allowance on top, no more
        long announcedSize = 1 + ModelSourcePolicy.HEADER_ALLOWANCE_BYTES + 1;
        HttpServer large = serve("/large.gguf", ex -> {
            ex.sendResponseHeaders(200, announcedSize);
            ex.getResponseBody().flush();
            awaitRelease(); // the body never comes: the length alone refuses it
            ex.close();
        });
        ModelFetcher.FetchException e = catchThrowableOfType(
                ModelFetcher.FetchException.class,
                () -> fetcher(loopback()).fetch(url(large, "/large.gguf"), null, 1, b -> {}, t -> {}));
        assertThat(e.getMessage())
                .contains("is " + announcedSize + " bytes, more than the cap of " + (announcedSize - 1) + " bytes")
                .contains("expected weights");
        assertThat(cacheFiles()).isEmpty();
    }

    @Test
    void aStalledDownloadFailsAfterTheReadTimeout() throws Exception {
        HttpServer server = serve("/m.gguf", ex -> {
            ex.sendResponseHeaders(200, 1 << 20);
            ex.getResponseBody().write("GGUF".getBytes(StandardCharsets.US_ASCII));
            ex.getResponseBody().flush();
            awaitRelease(); // and then nothing, until the test ends
            ex.close();
        });
        ModelFetcher f =
                fetcher(loopback().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(2), Duration.ofHours(1)));
        assertThat(failure(f, url(server, "/m.gguf"), null))
                .contains("stalled: no bytes for 2000 ms after 4 bytes")
                .contains("stowage.model.read-timeout");
        assertThat(cacheFiles()).isEmpty();
    }

    @Test
    void aServerThatNeverAnswersFailsAfterTheReadTimeout() throws Exception {
        HttpServer server = serve("/m.gguf", ex -> {
            awaitRelease(); // no status line at all
            ex.close();
        });
        ModelFetcher f =
                fetcher(loopback().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(1), Duration.ofHours(1)));
        // no response (or, on a machine too busy to connect in that time, no connection) within the read timeout
        assertThat(failure(f, url(server, "/m.gguf"), null))
                .containsPattern("no (response|connection) within 1000 ms")
                .contains("stowage.model.read-timeout");
    }

    @Test
    void aTricklingDownloadFailsAtTheDeadline() throws Exception {
        HttpServer server = serve("/m.gguf", ex -> {
            ex.sendResponseHeaders(200, 1 << 20);
            var out = ex.getResponseBody();
            out.write("GGUF".getBytes(StandardCharsets.US_ASCII));
            // a byte every 20 ms: never stalled for the read timeout, never finished
            try {
                while (release.getCount() > 0) {
                    out.write(0);
                    out.flush();
                    Thread.sleep(20);
                }
            } catch (IOException | InterruptedException e) {
                // the client gave up
            }
            ex.close();
        });
        ModelFetcher f =
                fetcher(loopback().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(5), Duration.ofMillis(1500)));
        assertThat(failure(f, url(server, "/m.gguf"), null))
                .contains("did not finish within PT1.5S")
                .contains("stowage.model.deadline");
        assertThat(cacheFiles()).isEmpty();
    }

    private void awaitRelease() {
        try {
            release.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
