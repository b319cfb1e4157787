package io.stowage.runtime.host;

import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemNotFoundException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * Turns a model URI into a local file, within the host's {@link ModelSourcePolicy}: {@code file} paths as they
 * are when they lie under the model roots; {@code http(s)} downloaded into the cache directory from allowed hosts
 * only (redirects followed one hop at a time, each to an allowed host; a size cap, read timeout and deadline; the
 * GGUF magic and the sha256 checked before the file is kept; atomic rename; a file lock so two hosts on one node
 * download once); {@code hf} and {@code s3} mapped onto HTTPS URLs.
 *
 * <p>Mappings: {@code hf://OWNER/REPO/PATH/IN/REPO.gguf[@REVISION]} →
 * {@code https://huggingface.co/OWNER/REPO/resolve/REVISION/PATH/IN/REPO.gguf} (revision default {@code main}; a
 * token in {@code HF_TOKEN} is sent as a bearer token to huggingface.co only); {@code s3://BUCKET/KEY} →
 * {@code https://BUCKET.s3.amazonaws.com/KEY}, or {@code ENDPOINT/BUCKET/KEY} when {@code STOWAGE_S3_ENDPOINT} is
 * set (public or pre-authorised objects: no request signing).
 *
 * <p>Errors never quote a file's bytes, and a file outside the roots is refused with the same message as a missing
 * one, so the admin API cannot be used to learn what exists on the host.
 */
public final class ModelFetcher {
    /** A model that cannot be fetched or fails its check; the message is the model's FAILED reason. */
    public static final class FetchException extends Exception {
        private static final long serialVersionUID = 1L;

        public FetchException(String message) {
            super(message);
        }
    }

    /** The most redirects followed from a source to its file (Hugging Face's /resolve/ takes one or two). */
    public static final int MAX_REDIRECTS = 5;

    private static final byte[] GGUF_MAGIC = {'G', 'G', 'U', 'F'};
    private static final Set<String> KNOWN_SCHEMES = Set.of("https", "http", "hf", "s3", "file");
    private static final Map<String, Object> IN_PROCESS_LOCKS = new ConcurrentHashMap<>();

    private final Path cacheDir;
    private final Map<String, String> env;
    private volatile ModelSourcePolicy policy;
    private final HttpClient http;

    /**
     * A fetcher for a caller that chooses its own URIs (tools, tests): local files anywhere, downloads as
     * {@link ModelSourcePolicy#anyLocalFile()} allows.
     */
    public ModelFetcher(Path cacheDir, Map<String, String> env) {
        this(cacheDir, env, ModelSourcePolicy.anyLocalFile());
    }

    public ModelFetcher(Path cacheDir, Map<String, String> env, ModelSourcePolicy policy) {
        this.cacheDir = cacheDir;
        this.env = env;
        this.policy = policy;
        this.http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(policy.connectTimeout())
                .build();
    }

    /** Lets this fetcher read these files too (local mode: the model files its manifests name). */
    public void allowFiles(Collection<Path> files) {
        policy = policy.withMoreRoots(files);
    }

    public ModelSourcePolicy policy() {
        return policy;
    }

    /** The HTTPS URL an hf:// or s3:// URI is fetched from; other URIs are returned as they are. */
    public String httpUrlOf(String uri) throws FetchException {
        String lower = uri.toLowerCase(Locale.ROOT);
        if (lower.startsWith("hf://")) {
            String rest = uri.substring(5);
            String revision = "main";
            int at = rest.lastIndexOf('@');
            if (at > 0) {
                revision = rest.substring(at + 1);
                rest = rest.substring(0, at);
            }
            String[] parts = rest.split("/", 3);
            if (parts.length < 3 || parts[0].isEmpty() || parts[1].isEmpty() || parts[2].isEmpty()) {
                throw new FetchException(
                        "model uri \"" + uri
                                + "\": an hf URI is hf://OWNER/REPO/PATH/TO/FILE.gguf[@REVISION] (the file inside the repository)");
            }
            return "https://huggingface.co/" + parts[0] + "/" + parts[1] + "/resolve/" + revision + "/" + parts[2];
        }
        if (lower.startsWith("s3://")) {
            String rest = uri.substring(5);
            int slash = rest.indexOf('/');
            if (slash <= 0 || slash == rest.length() - 1) {
                throw new FetchException("model uri \"" + uri + "\": an s3 URI is s3://BUCKET/KEY");
            }
            String bucket = rest.substring(0, slash);
            String key = rest.substring(slash + 1);
            String endpoint = s3Endpoint();
            if (endpoint != null) {
                return endpoint.replaceAll("/+$", "") + "/" + bucket + "/" + key;
            }
            return "https://" + bucket + ".s3.amazonaws.com/" + key;
        }
        return uri;
    }

    private String s3Endpoint() {
        String endpoint = env.get("STOWAGE_S3_ENDPOINT");
        return endpoint == null || endpoint.isBlank() ? null : endpoint.trim();
    }

    /** The local file of a model, downloading it first when needed; see {@link #fetch(String, String, long, LongConsumer, LongConsumer)}. */
    public Path fetch(String uri, String sha256, LongConsumer progress, LongConsumer total) throws FetchException {
        return fetch(uri, sha256, 0, progress, total);
    }

    /**
     * The local file of a model, downloading it first when needed.
     *
     * @param sha256 expected lowercase hex digest, or null
     * @param expectedWeightBytes the model's tensor bytes when known (else 0): a download larger than that plus
     *     {@link ModelSourcePolicy#HEADER_ALLOWANCE_BYTES} is refused
     * @param progress receives (bytes so far) while downloading
     * @param total receives the file size once known
     */
    public Path fetch(String uri, String sha256, long expectedWeightBytes, LongConsumer progress, LongConsumer total)
            throws FetchException {
        if (uri == null || uri.isBlank()) {
            throw new FetchException("model uri is empty");
        }
        String expected = normalizeSha(sha256);
        String scheme = schemeOf(uri);
        if (!KNOWN_SCHEMES.contains(scheme)) {
            throw new FetchException("model uri \"" + uri
                    + "\": unsupported scheme (the host reads file, http, https, hf and s3; pvc volumes are mounted"
                    + " by the operator and given as file paths)");
        }
        if (!policy.allowsScheme(scheme)) {
            throw new FetchException("model uri \"" + uri + "\": scheme " + scheme + " is not allowed on this host"
                    + " (allowed: " + sorted(policy.schemes()) + "; stowage.model.allowed-schemes)");
        }
        long cap = capFor(expectedWeightBytes);
        switch (scheme) {
            case "hf" -> {
                // huggingface.co answers /resolve/ with a redirect to its CDN: those hosts come with the scheme.
                Set<String> hosts = new LinkedHashSet<>(policy.hosts());
                hosts.addAll(ModelSourcePolicy.DEFAULT_HOSTS);
                return download(uri, httpUrlOf(uri), true, hosts, expected, cap, progress, total);
            }
            case "s3" -> {
                String url = httpUrlOf(uri);
                Set<String> hosts = new LinkedHashSet<>(policy.hosts());
                String endpoint = s3Endpoint();
                if (endpoint == null) {
                    hosts.add("*.amazonaws.com"); // regional redirects stay within AWS
                } else {
                    hosts.add(hostOf(url));
                }
                return download(uri, url, true, hosts, expected, cap, progress, total);
            }
            case "http", "https" -> {
                return download(uri, uri, false, new LinkedHashSet<>(policy.hosts()), expected, cap, progress, total);
            }
            default -> {
                return local(uri, expected, total);
            }
        }
    }

    /**
     * W_m of a local model file the policy lets this host read: the bytes of its tensors as its GGUF header states
     * them (what the planner counted), or the file's size when the header cannot be read (never less than the
     * tensors), or 0 as {@link #localSize}.
     */
    public long localWeightBytes(String uri) {
        long size = localSize(uri);
        if (size == 0) {
            return 0;
        }
        try {
            Path file = allowedFile(uri);
            long w = file == null
                    ? 0
                    : ModelDescription.from(GgufReader.readFile(file)).weightBytes();
            return w > 0 && w <= size ? w : size;
        } catch (IOException | FetchException | RuntimeException e) {
            return size;
        }
    }

    /**
     * The size of a local model file the policy lets this host read, or 0 (a URI that is not a file, or a file
     * that is missing or outside the roots: the caller learns nothing about it).
     */
    public long localSize(String uri) {
        try {
            if (uri == null || !schemeOf(uri).equals("file") || !policy.allowsScheme("file")) {
                return 0;
            }
            Path file = allowedFile(uri);
            return file == null ? 0 : Files.size(file);
        } catch (IOException | FetchException | RuntimeException e) {
            return 0;
        }
    }

    /** The URI's scheme, lowercase; a bare path (or {@code file:/PATH}) is {@code file}. */
    private static String schemeOf(String uri) {
        int colon = uri.indexOf("://");
        if (colon > 0) {
            return uri.substring(0, colon).toLowerCase(Locale.ROOT);
        }
        return "file";
    }

    private long capFor(long expectedWeightBytes) {
        if (expectedWeightBytes <= 0) {
            return policy.maxBytes();
        }
        long expected = expectedWeightBytes > Long.MAX_VALUE - ModelSourcePolicy.HEADER_ALLOWANCE_BYTES
                ? Long.MAX_VALUE
                : expectedWeightBytes + ModelSourcePolicy.HEADER_ALLOWANCE_BYTES;
        return Math.min(policy.maxBytes(), expected);
    }

    private String capReason(long cap) {
        return cap == policy.maxBytes()
                ? "the host's cap of " + cap + " bytes (stowage.model.max-bytes)"
                : "the cap of " + cap + " bytes: the model's expected weights plus "
                        + ModelSourcePolicy.HEADER_ALLOWANCE_BYTES + " bytes of header";
    }

    // ---------------------------------------------------------------- local files

    private Path local(String uri, String expected, LongConsumer total) throws FetchException {
        Path file = allowedFile(uri);
        if (file == null) {
            throw new FetchException(refusedFile(uri));
        }
        try {
            long size = Files.size(file);
            if (!startsWithMagic(file)) {
                throw new FetchException("model file " + file
                        + " is not a GGUF file (it does not begin with the GGUF magic); give the .gguf file itself");
            }
            total.accept(size);
            if (expected != null) {
                String actual = sha256Of(file);
                if (!actual.equals(expected)) {
                    throw new FetchException(
                            "sha256 mismatch for " + file + ": expected " + expected + ", the file has " + actual);
                }
            }
        } catch (IOException e) {
            throw new FetchException(
                    "cannot read model file " + file + " (" + e.getClass().getSimpleName() + ")");
        }
        return file;
    }

    /**
     * The real path of a local model file that exists, is a regular file and lies under the roots; otherwise null,
     * whichever of those it fails (so that a refusal says nothing about files outside the roots).
     */
    private Path allowedFile(String uri) throws FetchException {
        Path file;
        try {
            file = uri.regionMatches(true, 0, "file:", 0, 5) ? Path.of(new URI(uri)) : Path.of(uri);
        } catch (URISyntaxException | IllegalArgumentException | FileSystemNotFoundException e) {
            throw new FetchException("model uri \"" + uri + "\" is not a valid file URI or path");
        }
        Path abs = file.toAbsolutePath().normalize();
        if (!policy.underRoots(abs)) {
            return null;
        }
        Path real;
        try {
            real = abs.toRealPath();
        } catch (IOException | SecurityException e) {
            return null;
        }
        return policy.underRoots(real) && Files.isRegularFile(real) ? real : null;
    }

    private String refusedFile(String uri) {
        if (policy.roots() == null) {
            return "model file " + uri + " does not exist or is not a regular file";
        }
        return "model file " + uri + " does not exist under the host's model roots " + policy.roots()
                + " (files elsewhere are never read; stowage.model.roots)";
    }

    private static boolean startsWithMagic(Path file) throws IOException {
        byte[] head = new byte[GGUF_MAGIC.length];
        try (InputStream in = Files.newInputStream(file)) {
            return in.readNBytes(head, 0, head.length) == head.length && Arrays.equals(head, GGUF_MAGIC);
        }
    }

    // ---------------------------------------------------------------- downloads

    /** Refuses a URL whose scheme or host the policy does not allow (the source's own URL, or a redirect). */
    private void checkAllowed(String source, URI url, Set<String> hosts, int hop) throws FetchException {
        String what = hop == 0
                ? "model uri \"" + source + "\""
                : "model uri \"" + source + "\" redirects to " + url + ", but";
        String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("https") && !(scheme.equals("http") && policy.allowsScheme("http"))) {
            throw new FetchException(what + " scheme " + (scheme.isEmpty() ? "(none)" : scheme)
                    + " is not allowed on this host (downloads use "
                    + (policy.allowsScheme("http") ? "https or http" : "https")
                    + "; stowage.model.allowed-schemes)");
        }
        if (url.getHost() == null) {
            throw new FetchException(what + " has no host");
        }
        if (!ModelSourcePolicy.hostMatches(url.getHost(), hosts)) {
            throw new FetchException(what + " host " + url.getHost() + " is not on this host's allowlist "
                    + List.copyOf(hosts) + " (the operator passes its modelHeader.allowedHosts as "
                    + io.stowage.hostapi.HostApi.MODEL_HOSTS_ENV + ")");
        }
    }

    private Path download(
            String source,
            String url,
            boolean firstTrusted,
            Set<String> hosts,
            String expected,
            long cap,
            LongConsumer progress,
            LongConsumer total)
            throws FetchException {
        URI first;
        try {
            first = new URI(url);
        } catch (URISyntaxException e) {
            throw new FetchException("model uri \"" + source + "\" is not a valid URL: " + e.getReason());
        }
        if (!firstTrusted || first.getHost() == null) {
            checkAllowed(source, first, hosts, 0);
        }
        String key = expected != null ? expected : sha256Hex(url.getBytes(StandardCharsets.UTF_8));
        Path file = cacheDir.resolve(key + ".gguf");
        Path verified = cacheDir.resolve(key + ".verified");
        Path part = cacheDir.resolve(key + ".part");
        Path lockFile = cacheDir.resolve(key + ".lock");
        try {
            Files.createDirectories(cacheDir);
        } catch (IOException e) {
            throw new FetchException("cannot create the model cache directory " + cacheDir + ": " + e.getMessage());
        }
        // FileChannel locks are per process; threads of this process wait on the monitor first.
        synchronized (IN_PROCESS_LOCKS.computeIfAbsent(key, k -> new Object())) {
            long deadline = Long.MAX_VALUE;
            try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                    FileLock lock = ch.lock()) {
                if (Files.isRegularFile(file) && Files.isRegularFile(verified)) {
                    long size = Files.size(file);
                    total.accept(size);
                    progress.accept(size);
                    return file;
                }
                deadline = System.nanoTime() + policy.deadlineNanos();
                HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp = open(source, first, hosts, deadline);
                String from = resp.uri().toString();
                long length = resp.headers().firstValueAsLong("Content-Length").orElse(-1);
                if (length > cap) {
                    discard(resp);
                    throw new FetchException("download of " + from + " is " + length + " bytes, more than "
                            + capReason(cap) + "; nothing was kept");
                }
                total.accept(length);
                String actual = receive(from, resp, part, cap, deadline, progress);
                long done = Files.size(part);
                if (length >= 0 && done != length) {
                    throw new FetchException(
                            "download of " + from + " ended after " + done + " of " + length + " bytes");
                }
                if (expected != null && !actual.equals(expected)) {
                    throw new FetchException(
                            "sha256 mismatch for " + source + ": expected " + expected + ", downloaded " + actual);
                }
                Files.move(part, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                Files.writeString(verified, actual + "\n");
                total.accept(done);
                return file;
            } catch (HttpTimeoutException e) {
                if (System.nanoTime() - deadline >= 0) {
                    throw new FetchException(deadlineMessage(source, 0));
                }
                // The request's timer (the read timeout) also ends a connection attempt, reported as a connect timeout.
                throw new FetchException("download of " + source + " failed: "
                        + (e instanceof HttpConnectTimeoutException ? "no connection" : "no response") + " within "
                        + (e instanceof HttpConnectTimeoutException
                                ? Math.min(
                                        policy.connectTimeout().toMillis(),
                                        policy.readTimeout().toMillis())
                                : policy.readTimeout().toMillis())
                        + " ms (stowage.model.connect-timeout, stowage.model.read-timeout)");
            } catch (IOException e) {
                throw new FetchException("download of " + source + " failed: " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new FetchException("download of " + source + " was interrupted");
            } finally {
                try {
                    Files.deleteIfExists(part);
                } catch (IOException e) {
                    // a leftover .part is overwritten by the next attempt
                }
            }
        }
    }

    /** The 200 response of {@code first}, its redirects followed one hop at a time, each checked. */
    private HttpResponse<Flow.Publisher<List<ByteBuffer>>> open(
            String source, URI first, Set<String> hosts, long deadline)
            throws FetchException, IOException, InterruptedException {
        URI current = first;
        for (int hop = 0; ; hop++) {
            if (hop > 0) {
                checkAllowed(source, current, hosts, hop);
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new FetchException(deadlineMessage(source, 0));
            }
            HttpRequest.Builder req = HttpRequest.newBuilder(current)
                    .timeout(Duration.ofNanos(Math.min(policy.readTimeout().toNanos(), left)))
                    .GET();
            String hfToken = env.get("HF_TOKEN");
            if (hfToken != null
                    && !hfToken.isBlank()
                    && "huggingface.co".equalsIgnoreCase(current.getHost())
                    && "https".equalsIgnoreCase(current.getScheme())) {
                req.header("Authorization", "Bearer " + hfToken);
            }
            HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp =
                    http.send(req.build(), HttpResponse.BodyHandlers.ofPublisher());
            int code = resp.statusCode();
            if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
                discard(resp);
                String location = resp.headers().firstValue("Location").orElse(null);
                if (location == null) {
                    throw new FetchException(
                            "download of " + current + " failed: HTTP " + code + " without a Location header");
                }
                if (hop >= MAX_REDIRECTS) {
                    throw new FetchException(
                            "model uri \"" + source + "\" redirects more than " + MAX_REDIRECTS + " times");
                }
                try {
                    current = current.resolve(location);
                } catch (IllegalArgumentException e) {
                    throw new FetchException(
                            "download of " + current + " failed: HTTP " + code + " with a Location that is not a URL");
                }
                continue;
            }
            if (code != 200) {
                discard(resp);
                throw new FetchException("download of " + current + " failed: HTTP " + code);
            }
            return resp;
        }
    }

    /**
     * Writes the body into {@code part}, checking the cap, the GGUF magic and the timeouts as bytes arrive.
     *
     * @return the sha256 of what was written
     */
    private String receive(
            String from,
            HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp,
            Path part,
            long cap,
            long deadline,
            LongConsumer progress)
            throws FetchException, IOException, InterruptedException {
        MessageDigest md = sha256();
        byte[] head = new byte[GGUF_MAGIC.length];
        long done = 0;
        long readNanos = policy.readTimeout().toNanos();
        BodyQueue body = new BodyQueue();
        resp.body().subscribe(body);
        try (FileChannel out = FileChannel.open(
                part, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new FetchException(deadlineMessage(from, done));
                }
                Object item = body.next(Math.min(readNanos, left));
                if (item == BodyQueue.TIMEOUT) {
                    if (readNanos < left) {
                        throw new FetchException("download of " + from + " stalled: no bytes for "
                                + policy.readTimeout().toMillis() + " ms after " + done
                                + " bytes (stowage.model.read-timeout)");
                    }
                    throw new FetchException(deadlineMessage(from, done));
                }
                if (item == BodyQueue.END) {
                    break;
                }
                @SuppressWarnings("unchecked")
                List<ByteBuffer> buffers = (List<ByteBuffer>) item;
                for (ByteBuffer b : buffers) {
                    int n = b.remaining();
                    if (done + n > cap) {
                        throw new FetchException(
                                "download of " + from + " exceeds " + capReason(cap) + "; nothing was kept");
                    }
                    if (done < head.length) {
                        int k = (int) Math.min(n, head.length - done);
                        b.duplicate().get(head, (int) done, k);
                        if (done + k == head.length && !Arrays.equals(head, GGUF_MAGIC)) {
                            throw new FetchException(notGguf(from));
                        }
                    }
                    md.update(b.duplicate());
                    while (b.hasRemaining()) {
                        out.write(b);
                    }
                    done += n;
                }
                progress.accept(done);
            }
        } finally {
            body.cancel();
        }
        if (done < head.length) {
            throw new FetchException(notGguf(from));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static String notGguf(String from) {
        return "download of " + from + " is not a GGUF file (it does not begin with the GGUF magic); nothing was kept";
    }

    private String deadlineMessage(String from, long done) {
        return "download of " + from + " did not finish within " + policy.deadline() + " (after " + done
                + " bytes; stowage.model.deadline)";
    }

    private static void discard(HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp) {
        resp.body().subscribe(new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
                s.cancel();
            }

            @Override
            public void onNext(List<ByteBuffer> item) {}

            @Override
            public void onError(Throwable t) {}

            @Override
            public void onComplete() {}
        });
    }

    /**
     * A response body handed over one list of buffers at a time, so that the reader waits for each with a timeout
     * (the HTTP client's own timeout covers only the response headers).
     */
    private static final class BodyQueue implements Flow.Subscriber<List<ByteBuffer>> {
        static final Object END = new Object();
        static final Object TIMEOUT = new Object();

        private final BlockingQueue<Object> items = new LinkedBlockingQueue<>();
        private volatile Flow.Subscription subscription;
        private volatile boolean cancelled;

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            if (cancelled) {
                s.cancel();
            } else {
                s.request(1);
            }
        }

        @Override
        public void onNext(List<ByteBuffer> item) {
            items.add(item);
        }

        @Override
        public void onError(Throwable t) {
            items.add(t);
        }

        @Override
        public void onComplete() {
            items.add(END);
        }

        /** The next list of buffers, {@link #END}, or {@link #TIMEOUT} when nothing came within the time. */
        Object next(long timeoutNanos) throws IOException, InterruptedException {
            Object o = items.poll(timeoutNanos, TimeUnit.NANOSECONDS);
            if (o == null) {
                return TIMEOUT;
            }
            if (o instanceof Throwable t) {
                throw t instanceof IOException io ? io : new IOException(t);
            }
            if (o != END) {
                subscription.request(1);
            }
            return o;
        }

        void cancel() {
            cancelled = true;
            Flow.Subscription s = subscription;
            if (s != null) {
                s.cancel();
            }
        }
    }

    private static String hostOf(String url) {
        try {
            String h = new URI(url).getHost();
            return h == null ? "" : h.toLowerCase(Locale.ROOT);
        } catch (URISyntaxException e) {
            return "";
        }
    }

    private static List<String> sorted(Set<String> s) {
        return s.stream().sorted().toList();
    }

    static String normalizeSha(String sha256) throws FetchException {
        if (sha256 == null || sha256.isBlank()) {
            return null;
        }
        String s = sha256.trim().toLowerCase(Locale.ROOT);
        if (s.startsWith("sha256:")) {
            s = s.substring(7);
        }
        if (!s.matches("[0-9a-f]{64}")) {
            throw new FetchException("sha256 \"" + sha256 + "\" is not 64 hexadecimal digits");
        }
        return s;
    }

    public static String sha256Of(Path file) throws IOException {
        MessageDigest md = sha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int r; (r = in.read(buf)) > 0; ) {
                md.update(buf, 0, r);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static String sha256Hex(byte[] data) {
        return HexFormat.of().formatHex(sha256().digest(data));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
