package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The HTTP(S) source against a real in-process HTTP server: Range honoured, Range ignored, garbage, growth, cap. */
class GgufHttpSourceTest {

    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

    private HttpServer server;
    private final Map<String, byte[]> files = new ConcurrentHashMap<>();
    private final AtomicLong bytesSent = new AtomicLong();
    private final List<String> ranges = new CopyOnWriteArrayList<>();
    private volatile CountDownLatch plainDone = new CountDownLatch(1);
    private final AtomicLong plainBytesWritten = new AtomicLong();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/ranged/", this::ranged);
        server.createContext("/plain/", this::plain);
        server.createContext("/garbage", ex -> send(ex, 200, "<html><body>Not Found</body></html>".getBytes()));
        server.createContext("/missing", ex -> send(ex, 404, "no".getBytes()));
        server.createContext("/moved/", ex -> {
            ex.getResponseHeaders()
                    .add("Location", "/ranged/" + ex.getRequestURI().getPath().substring(7));
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
    }

    private void ranged(HttpExchange ex) throws IOException {
        byte[] file = files.get(ex.getRequestURI().getPath().substring(8));
        String range = ex.getRequestHeaders().getFirst("Range");
        ranges.add(range);
        Matcher m = range == null ? null : RANGE.matcher(range);
        if (m == null || !m.matches()) {
            send(ex, 200, file);
            return;
        }
        int start = Integer.parseInt(m.group(1));
        int end = (int) Math.min(Long.parseLong(m.group(2)), file.length - 1);
        if (start >= file.length) {
            ex.getResponseHeaders().add("Content-Range", "bytes */" + file.length);
            ex.sendResponseHeaders(416, -1);
            ex.close();
            return;
        }
        ex.getResponseHeaders().add("Content-Range", "bytes " + start + "-" + end + "/" + file.length);
        ex.sendResponseHeaders(206, end - start + 1);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(file, start, end - start + 1);
        }
        bytesSent.addAndGet(end - start + 1);
    }

    /** Ignores Range and streams the whole file in 64 KiB writes, noting how far it got before the client hung up. */
    private void plain(HttpExchange ex) throws IOException {
        byte[] file = files.get(ex.getRequestURI().getPath().substring(7));
        ranges.add(ex.getRequestHeaders().getFirst("Range"));
        try {
            ex.sendResponseHeaders(200, file.length);
            OutputStream out = ex.getResponseBody();
            for (int off = 0; off < file.length; off += 65536) {
                int n = Math.min(65536, file.length - off);
                out.write(file, off, n);
                plainBytesWritten.addAndGet(n);
            }
            out.close();
        } catch (IOException clientHungUp) {
            // expected once the reader has its header and closes the stream
        } finally {
            ex.close();
            plainDone.countDown();
        }
    }

    private static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    /** A small header followed by a 24 MiB tensor. */
    private static byte[] bigModel() {
        return TestFiles.smallModel()
                .addTensor("big", GgufType.I8, new long[] {24 << 20}, new byte[24 << 20])
                .toBytes();
    }

    @Test
    void rangeHonouringServerIsAskedOnlyForTheHeader() throws IOException {
        byte[] file = bigModel();
        files.put("m.gguf", file);

        GgufFile f = GgufReader.create().read(uri("/ranged/m.gguf"));

        assertThat(f).isEqualTo(GgufReader.readBytes(file));
        assertThat(f.fileSize()).isEqualTo(file.length);
        assertThat(ranges).containsExactly("bytes=0-4194303");
        assertThat(bytesSent.get()).isEqualTo(4L << 20).isLessThan(file.length / 6);
    }

    @Test
    void smallFirstChunkFetchesOnlyKilobytesOfARealModel() throws IOException {
        byte[] file = TestFiles.bytes(TestFiles.F32);
        files.put("s.gguf", file);

        GgufFile f = GgufReader.builder().firstChunkBytes(1024).build().read(uri("/ranged/s.gguf"));

        assertThat(f.tensors()).hasSize(48);
        assertThat(f.headerSize()).isGreaterThan(1024);
        // Doubling from 1 KiB: the last window is less than twice the header.
        assertThat(bytesSent.get()).isLessThan(2 * f.headerSize() + 1024).isLessThan(file.length / 20);
        // Contiguous requests, each window at least double the last (more when a field needs more).
        assertThat(ranges.get(0)).isEqualTo("bytes=0-1023");
        long have = 1024;
        for (String r : ranges.subList(1, ranges.size())) {
            Matcher m = RANGE.matcher(r);
            assertThat(m.matches()).isTrue();
            assertThat(Long.parseLong(m.group(1))).isEqualTo(have);
            long next = Long.parseLong(m.group(2)) + 1;
            assertThat(next).isGreaterThanOrEqualTo(2 * have);
            have = next;
        }
    }

    @Test
    void headerLargerThanTheFirstChunkGrowsUntilItParses() throws IOException {
        byte[] file = TestFiles.bytes(TestFiles.QWEN3_VOCAB); // 5.9 MB, all header
        files.put("q.gguf", file);

        GgufFile f = GgufReader.create().read(uri("/ranged/q.gguf"));

        assertThat(f.getArray("tokenizer.ggml.tokens").size()).isEqualTo(151_936);
        // The second window would be 8 MiB, clamped to the size the first Content-Range gave.
        assertThat(ranges).containsExactly("bytes=0-4194303", "bytes=4194304-5932251");
        assertThat(bytesSent.get()).isEqualTo(file.length);
    }

    @Test
    void headerOverTheCapIsAClearError() {
        files.put("q.gguf", TestFiles.bytes(TestFiles.QWEN3_VOCAB));
        GgufReader capped = GgufReader.builder()
                .firstChunkBytes(256 << 10)
                .maxHeaderBytes(1 << 20)
                .build();

        assertThatThrownBy(() -> capped.read(uri("/ranged/q.gguf")))
                .isExactlyInstanceOf(GgufFormatException.class)
                .hasMessageContaining("past the header cap of 1,048,576 bytes");
        // The token array's count alone shows it cannot fit under the cap: no more is fetched.
        assertThat(bytesSent.get()).isEqualTo(256 << 10);
    }

    @Test
    void serverIgnoringRangeIsReadOnlyAsFarAsNeededThenClosed() throws Exception {
        byte[] file = bigModel();
        files.put("m.gguf", file);

        GgufFile f = GgufReader.builder().firstChunkBytes(4096).build().read(uri("/plain/m.gguf"));

        assertThat(f).isEqualTo(GgufReader.readBytes(file));
        assertThat(f.fileSize()).isEqualTo(file.length); // from Content-Length
        assertThat(ranges).hasSize(1); // one request: the reader kept reading the same body
        assertThat(plainDone.await(20, TimeUnit.SECONDS)).isTrue();
        assertThat(plainBytesWritten.get()).isLessThan(file.length);
    }

    @Test
    void serverIgnoringRangeWithASmallFileWorks() throws IOException {
        byte[] file = TestFiles.bytes(TestFiles.Q8_0);
        files.put("s.gguf", file);

        GgufFile f = GgufReader.create().read(uri("/plain/s.gguf"));

        assertThat(f.tensors()).hasSize(48);
        assertThat(f.fileSize()).isEqualTo(file.length);
    }

    @Test
    void garbageIsRefusedAsNotGguf() {
        assertThatThrownBy(() -> GgufReader.create().read(uri("/garbage")))
                .isExactlyInstanceOf(GgufFormatException.class)
                .hasMessageStartingWith("not a GGUF file: the first 4 bytes are 3c 68 74 6d (\"<htm\")");
    }

    @Test
    void truncatedRemoteFileIsAFormatError() {
        byte[] file = TestFiles.bytes(TestFiles.F32);
        files.put("t.gguf", java.util.Arrays.copyOf(file, 5000));

        assertThatThrownBy(() -> GgufReader.create().read(uri("/ranged/t.gguf")))
                .isExactlyInstanceOf(GgufFormatException.class)
                .hasMessageContaining("the file (5,000 bytes)");
    }

    @Test
    void redirectsAreFollowed() throws IOException {
        files.put("s.gguf", TestFiles.bytes(TestFiles.Q8_0));

        GgufFile f = GgufReader.create().read(uri("/moved/s.gguf"));

        assertThat(f.getString("general.name")).isEqualTo("stories260K");
    }

    @Test
    void aClientThatDoesNotFollowRedirectsSaysWhereTheRedirectWent() {
        GgufReader noRedirects = GgufReader.builder()
                .httpClient(java.net.http.HttpClient.newBuilder()
                        .followRedirects(java.net.http.HttpClient.Redirect.NEVER)
                        .build())
                .build();

        assertThatThrownBy(() -> noRedirects.read(uri("/moved/s.gguf")))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("returned HTTP 302: a redirect to '/ranged/s.gguf' that this reader's HTTP"
                        + " client does not follow");
    }

    @Test
    void httpErrorsAreIoExceptionsNamingTheStatus() {
        assertThatThrownBy(() -> GgufReader.create().read(uri("/missing")))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("returned HTTP 404");
    }

    @Test
    void emptyRemoteFileIsRefused() {
        files.put("e.gguf", new byte[0]);
        assertThatThrownBy(() -> GgufReader.create().read(uri("/ranged/e.gguf")))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("HTTP 416");
        assertThatThrownBy(() -> GgufReader.create().read(uri("/plain/e.gguf")))
                .isExactlyInstanceOf(GgufFormatException.class)
                .hasMessageContaining("magic at byte 0 runs past the end of the file (0 bytes)");
    }

    @Test
    void onlyHttpSchemesAreAccepted() {
        assertThatThrownBy(() -> GgufReader.create().read(URI.create("ftp://example.com/x.gguf")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be http or https");
        assertThat(StandardCharsets.UTF_8).isNotNull();
    }
}
