package io.stowage.placement.gguf;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads GGUF headers (v2 and v3, little-endian) from a local file, a byte array or an HTTP(S) URL, fetching only the
 * header's bytes: a first chunk, then doubling until the header parses, never past a cap.
 *
 * <p>Errors: a file that is not valid GGUF gives a {@link GgufFormatException} naming the field, value and limit;
 * failing I/O (missing file, refused connection, HTTP error status) gives an {@link IOException}.
 */
public final class GgufReader {

    public static final int DEFAULT_FIRST_CHUNK_BYTES = 4 << 20;
    public static final int DEFAULT_MAX_HEADER_BYTES = 64 << 20;
    /** A Java array cannot hold more; headers this large do not exist in practice. */
    public static final int MAX_HEADER_BYTES_LIMIT = Integer.MAX_VALUE - 64;

    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");

    private final int firstChunkBytes;
    private final int maxHeaderBytes;
    /** Made on first use: a client starts a selector thread, which file and byte reads should not pay for. */
    private volatile HttpClient httpClient;

    private final Duration requestTimeout;

    private GgufReader(Builder b) {
        this.firstChunkBytes = b.firstChunkBytes;
        this.maxHeaderBytes = b.maxHeaderBytes;
        this.requestTimeout = b.requestTimeout;
        this.httpClient = b.httpClient;
    }

    private HttpClient httpClient() {
        HttpClient c = httpClient;
        if (c == null) {
            synchronized (this) {
                c = httpClient;
                if (c == null) {
                    c = HttpClient.newBuilder()
                            .followRedirects(HttpClient.Redirect.NORMAL)
                            .connectTimeout(Duration.ofSeconds(20))
                            .build();
                    httpClient = c;
                }
            }
        }
        return c;
    }

    /** A reader with the defaults: 4 MiB first chunk, 64 MiB cap. */
    public static GgufReader create() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Reads the header of a local file, never more of it than the header needs (rounded up to a chunk). */
    public GgufFile read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            byte[] window = new byte[(int) Math.min(firstChunkBytes, Math.min(size, maxHeaderBytes))];
            readFully(ch, window, 0, window.length, file);
            int have = window.length;
            while (true) {
                try {
                    return GgufParser.parse(window, have, size, maxHeaderBytes);
                } catch (GgufParser.NeedMore more) {
                    int target = grow(have, more.needed, size);
                    window = Arrays.copyOf(window, target);
                    readFully(ch, window, have, target - have, file);
                    have = target;
                }
            }
        }
    }

    /** Parses a header from bytes already in memory (the whole file, or at least its header). */
    public GgufFile read(byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        return GgufParser.parse(bytes, bytes.length, bytes.length, Math.min(maxHeaderBytes, bytes.length));
    }

    /**
     * Reads the header of the GGUF at an http or https URL with Range requests, following redirects. A server that
     * ignores Range (200 with the whole body) is read only as far as the header needs, then the stream is closed.
     */
    public GgufFile read(URI uri) throws IOException {
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IllegalArgumentException("GGUF URL must be http or https, not '" + uri + "'");
        }
        try (HttpWindow w = new HttpWindow(uri)) {
            w.fetchUpTo(firstChunkBytes);
            while (true) {
                try {
                    return GgufParser.parse(w.window, w.have, w.fileSize, maxHeaderBytes);
                } catch (GgufParser.NeedMore more) {
                    int target = grow(w.have, more.needed, w.fileSize);
                    w.fetchUpTo(target);
                }
            }
        }
    }

    /** Convenience: {@code create().read(file)}. */
    public static GgufFile readFile(Path file) throws IOException {
        return create().read(file);
    }

    /** Convenience: {@code create().read(bytes)}. */
    public static GgufFile readBytes(byte[] bytes) {
        return create().read(bytes);
    }

    private int grow(int have, long needed, long fileSize) {
        long target = Math.max(2L * have, needed);
        target = Math.min(target, maxHeaderBytes);
        if (fileSize >= 0) {
            target = Math.min(target, fileSize);
        }
        if (target <= have) {
            // The parser only asks for bytes inside the file and the cap, so this is a bug, not a bad file.
            throw new IllegalStateException("GGUF reader cannot grow its window past " + have + " bytes");
        }
        return (int) target;
    }

    private static void readFully(FileChannel ch, byte[] dst, int off, int n, Path file) throws IOException {
        ByteBuffer bb = ByteBuffer.wrap(dst, off, n);
        long position = off;
        while (bb.hasRemaining()) {
            int r = ch.read(bb, position);
            if (r < 0) {
                throw new IOException("GGUF file " + file + " shrank while being read: ended at byte " + position
                        + ", expected " + (off + n));
            }
            position += r;
        }
    }

    /** The first bytes of a remote file, fetched in growing Range requests (or read on from one plain 200 stream). */
    private final class HttpWindow implements AutoCloseable {
        private final URI uri;
        byte[] window = new byte[0];
        int have;
        long fileSize = -1;
        /** Open when the server ignored Range: the rest of the body, positioned at {@code have}. */
        private InputStream plainBody;

        HttpWindow(URI uri) {
            this.uri = uri;
        }

        void fetchUpTo(int target) throws IOException {
            if (fileSize >= 0 && target > fileSize) {
                target = (int) fileSize;
            }
            if (target <= have) {
                return;
            }
            window = Arrays.copyOf(window, target);
            if (plainBody != null) {
                readFromPlainBody(target);
                return;
            }
            HttpRequest request = HttpRequest.newBuilder(uri)
                    .timeout(requestTimeout)
                    .header("Range", "bytes=" + have + "-" + (target - 1))
                    .header("Accept-Encoding", "identity")
                    .GET()
                    .build();
            HttpResponse<InputStream> response;
            try {
                response = httpClient().send(request, HttpResponse.BodyHandlers.ofInputStream());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while fetching the GGUF header of " + uri);
            }
            InputStream body = response.body();
            int status = response.statusCode();
            if (status == 206) {
                try (body) {
                    readPartial(response, body, target);
                }
            } else if (status == 200) {
                // The server ignores Range: the body is the whole file from byte 0.
                fileSize = response.headers().firstValueAsLong("Content-Length").orElse(-1L);
                plainBody = body;
                long skip = have;
                while (skip > 0) {
                    long s = body.skip(skip);
                    if (s <= 0) {
                        if (body.read() < 0) {
                            throw new GgufFormatException("GGUF at " + uri + ": the server's body ended at byte "
                                    + (have - skip) + ", before the " + have + " bytes read earlier");
                        }
                        s = 1;
                    }
                    skip -= s;
                }
                if (fileSize >= 0 && target > fileSize) {
                    target = (int) fileSize;
                    window = Arrays.copyOf(window, target);
                }
                readFromPlainBody(target);
            } else {
                body.close();
                String hint = status == 416
                        ? ": the file is empty or shorter than the server reports"
                        : status / 100 == 3
                                ? ": a redirect to '"
                                        + response.headers()
                                                .firstValue("Location")
                                                .orElse("?")
                                        + "' that this reader's HTTP client does not follow"
                                : "";
                throw new IOException("GET " + uri + " (Range bytes=" + have + "-" + (target - 1) + ") returned HTTP "
                        + status + hint);
            }
        }

        private void readPartial(HttpResponse<InputStream> response, InputStream body, int target) throws IOException {
            String range = response.headers().firstValue("Content-Range").orElse(null);
            if (range == null) {
                throw new IOException("GET " + uri + " returned 206 without a Content-Range header");
            }
            Matcher m = CONTENT_RANGE.matcher(range.trim());
            if (!m.matches()) {
                throw new IOException("GET " + uri + " returned an unreadable Content-Range '" + range + "'");
            }
            long start = Long.parseLong(m.group(1));
            long end = Long.parseLong(m.group(2));
            if (start != have || end < start) {
                throw new IOException("GET " + uri + " asked for bytes " + have + "-" + (target - 1)
                        + " but the server sent " + range);
            }
            if (!m.group(3).equals("*")) {
                fileSize = Long.parseLong(m.group(3));
            }
            int want = target - have;
            int expect = (int) Math.min(want, end - start + 1);
            int got = readAtMost(body, expect);
            if (got < expect) {
                throw new IOException(
                        "GET " + uri + ": the body ended after " + got + " of the " + expect + " bytes of " + range);
            }
            have += got;
            if (got < want && fileSize < 0) {
                // A shorter range than asked for, and no total: the file ends here.
                fileSize = have;
            }
        }

        private void readFromPlainBody(int target) throws IOException {
            int got = readAtMost(plainBody, target - have);
            have += got;
            if (have < target) {
                // End of stream: now the file's size is known.
                fileSize = have;
                window = Arrays.copyOf(window, have);
                plainBody.close();
                plainBody = null;
            }
        }

        private int readAtMost(InputStream in, int n) throws IOException {
            int total = 0;
            while (total < n) {
                int r = in.read(window, have + total, n - total);
                if (r < 0) {
                    break;
                }
                total += r;
            }
            return total;
        }

        @Override
        public void close() throws IOException {
            if (plainBody != null) {
                plainBody.close();
            }
        }
    }

    /** Settings of a {@link GgufReader}. */
    public static final class Builder {
        private int firstChunkBytes = DEFAULT_FIRST_CHUNK_BYTES;
        private int maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES;
        private HttpClient httpClient;
        private Duration requestTimeout = Duration.ofSeconds(60);

        private Builder() {}

        /** Bytes fetched first (default 4 MiB); the window doubles from there. */
        public Builder firstChunkBytes(int bytes) {
            if (bytes < 16) {
                throw new IllegalArgumentException("firstChunkBytes is " + bytes + ", must be at least 16");
            }
            this.firstChunkBytes = bytes;
            return this;
        }

        /** The largest header the reader accepts (default 64 MiB); a larger one is a {@link GgufFormatException}. */
        public Builder maxHeaderBytes(int bytes) {
            if (bytes < 16 || bytes > MAX_HEADER_BYTES_LIMIT) {
                throw new IllegalArgumentException(
                        "maxHeaderBytes is " + bytes + ", must be between 16 and " + MAX_HEADER_BYTES_LIMIT);
            }
            this.maxHeaderBytes = bytes;
            return this;
        }

        /** The client for URLs; it should follow redirects (the default one does). */
        public Builder httpClient(HttpClient client) {
            this.httpClient = Objects.requireNonNull(client, "httpClient");
            return this;
        }

        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = Objects.requireNonNull(timeout, "requestTimeout");
            return this;
        }

        public GgufReader build() {
            if (firstChunkBytes > maxHeaderBytes) {
                firstChunkBytes = maxHeaderBytes;
            }
            return new GgufReader(this);
        }
    }
}
