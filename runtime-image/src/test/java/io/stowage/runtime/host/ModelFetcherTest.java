package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import io.stowage.runtime.engine.TestModels;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model sources: download once into the cache under a lock, sha256 checks, and the hf/s3 URL mappings. */
class ModelFetcherTest {
    static final String SHA = "a5eec7f42c2234ec2a615d92ad083abcec38788b2d415802bc089dffaba9a5a7";

    @TempDir
    Path cache;

    @Test
    void twoFetchersOfOneCacheDownloadOnce() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.q8());
        AtomicInteger hits = new AtomicInteger();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/m.gguf", ex -> {
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
        server.setExecutor(Executors.newFixedThreadPool(2));
        server.start();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/m.gguf";
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Path>> results = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                ModelFetcher f = new ModelFetcher(cache, Map.of()); // two hosts: two fetchers, one cache directory
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
            try (var files = Files.list(cache)) {
                assertThat(files.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".part"));
            }
        } finally {
            pool.shutdownNow();
            server.stop(0);
        }
    }

    @Test
    void anHttpModelOfUnknownSizeThatDoesNotFitFailsWhenMeasured() throws Exception {
        byte[] model = Files.readAllBytes(TestModels.f32());
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/f32.gguf", ex -> {
            ex.sendResponseHeaders(200, model.length);
            ex.getResponseBody().write(model);
            ex.close();
        });
        server.start();
        // a budget of 1 MiB: the assignment gives no sizes, so only the loaded model's measured bytes can refuse it
        try (Host host = new Host(
                new HostSettings("cpu", "t/cpu", 1L << 30, 1L << 20, cache, 1, 16, 4, 1),
                new ModelFetcher(cache, Map.of()))) {
            String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/f32.gguf";
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
        } finally {
            server.stop(0);
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
}
