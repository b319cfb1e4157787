package io.stowage.runtime.host;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * Turns a model URI into a local file: {@code file} paths as they are; {@code http(s)} downloaded into the cache
 * directory (progress, sha256 check, atomic rename, a file lock so two hosts on one node download once); {@code hf}
 * and {@code s3} mapped onto HTTPS URLs.
 *
 * <p>Mappings: {@code hf://OWNER/REPO/PATH/IN/REPO.gguf[@REVISION]} →
 * {@code https://huggingface.co/OWNER/REPO/resolve/REVISION/PATH/IN/REPO.gguf} (revision default {@code main}; a
 * token in {@code HF_TOKEN} is sent as a bearer token); {@code s3://BUCKET/KEY} →
 * {@code https://BUCKET.s3.amazonaws.com/KEY}, or {@code ENDPOINT/BUCKET/KEY} when {@code STOWAGE_S3_ENDPOINT} is
 * set (public or pre-authorised objects: no request signing).
 */
public final class ModelFetcher {
    /** A model that cannot be fetched or fails its check; the message is the model's FAILED reason. */
    public static final class FetchException extends Exception {
        private static final long serialVersionUID = 1L;

        public FetchException(String message) {
            super(message);
        }
    }

    private static final Map<String, Object> IN_PROCESS_LOCKS = new ConcurrentHashMap<>();

    private final Path cacheDir;
    private final Map<String, String> env;
    private final HttpClient http;

    public ModelFetcher(Path cacheDir, Map<String, String> env) {
        this.cacheDir = cacheDir;
        this.env = env;
        this.http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(20))
                .build();
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
            String endpoint = env.get("STOWAGE_S3_ENDPOINT");
            if (endpoint != null && !endpoint.isBlank()) {
                return endpoint.replaceAll("/+$", "") + "/" + bucket + "/" + key;
            }
            return "https://" + bucket + ".s3.amazonaws.com/" + key;
        }
        return uri;
    }

    /**
     * The local file of a model, downloading it first when needed.
     *
     * @param sha256 expected lowercase hex digest, or null
     * @param progress receives (bytes so far) while downloading
     * @param total receives the file size once known
     */
    public Path fetch(String uri, String sha256, LongConsumer progress, LongConsumer total) throws FetchException {
        if (uri == null || uri.isBlank()) {
            throw new FetchException("model uri is empty");
        }
        String expected = normalizeSha(sha256);
        String lower = uri.toLowerCase(Locale.ROOT);
        if (lower.startsWith("hf://") || lower.startsWith("s3://")) {
            return download(httpUrlOf(uri), expected, progress, total);
        }
        if (lower.startsWith("http://") || lower.startsWith("https://")) {
            return download(uri, expected, progress, total);
        }
        Path file;
        if (lower.startsWith("file:")) {
            try {
                file = Path.of(new URI(uri));
            } catch (URISyntaxException | IllegalArgumentException e) {
                throw new FetchException("model uri \"" + uri + "\" is not a valid file URI: " + e.getMessage());
            }
        } else if (uri.contains("://")) {
            throw new FetchException("model uri \"" + uri
                    + "\": unsupported scheme (the host reads file, http, https, hf and s3; pvc volumes are mounted"
                    + " by the operator and given as file paths)");
        } else {
            file = Path.of(uri);
        }
        if (!Files.isRegularFile(file)) {
            throw new FetchException("model file " + file + " does not exist or is not a regular file");
        }
        try {
            total.accept(Files.size(file));
            if (expected != null) {
                String actual = sha256Of(file);
                if (!actual.equals(expected)) {
                    throw new FetchException(
                            "sha256 mismatch for " + file + ": expected " + expected + ", the file has " + actual);
                }
            }
        } catch (IOException e) {
            throw new FetchException("cannot read model file " + file + ": " + e.getMessage());
        }
        return file;
    }

    private Path download(String url, String expected, LongConsumer progress, LongConsumer total)
            throws FetchException {
        URI target;
        try {
            target = new URI(url);
            if (target.getHost() == null) {
                throw new URISyntaxException(url, "no host");
            }
        } catch (URISyntaxException e) {
            throw new FetchException("model uri \"" + url + "\" is not a valid URL: " + e.getMessage());
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
            try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                    FileLock lock = ch.lock()) {
                if (Files.isRegularFile(file) && Files.isRegularFile(verified)) {
                    long size = Files.size(file);
                    total.accept(size);
                    progress.accept(size);
                    return file;
                }
                HttpRequest.Builder req = HttpRequest.newBuilder(target).GET();
                String hfToken = env.get("HF_TOKEN");
                if (hfToken != null && !hfToken.isBlank() && "huggingface.co".equals(target.getHost())) {
                    req.header("Authorization", "Bearer " + hfToken);
                }
                HttpResponse<InputStream> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
                if (resp.statusCode() != 200) {
                    resp.body().close();
                    throw new FetchException("download of " + url + " failed: HTTP " + resp.statusCode());
                }
                long length = resp.headers().firstValueAsLong("Content-Length").orElse(-1);
                total.accept(length);
                MessageDigest md = sha256();
                long done = 0;
                try (InputStream in = resp.body();
                        OutputStream out = Files.newOutputStream(part)) {
                    byte[] buf = new byte[1 << 16];
                    for (int r; (r = in.read(buf)) > 0; ) {
                        out.write(buf, 0, r);
                        md.update(buf, 0, r);
                        done += r;
                        progress.accept(done);
                    }
                }
                if (length >= 0 && done != length) {
                    Files.deleteIfExists(part);
                    throw new FetchException(
                            "download of " + url + " ended after " + done + " of " + length + " bytes");
                }
                String actual = HexFormat.of().formatHex(md.digest());
                if (expected != null && !actual.equals(expected)) {
                    Files.deleteIfExists(part);
                    throw new FetchException(
                            "sha256 mismatch for " + url + ": expected " + expected + ", downloaded " + actual);
                }
                Files.move(part, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                Files.writeString(verified, actual + "\n");
                total.accept(done);
                return file;
            } catch (IOException e) {
                throw new FetchException("download of " + url + " failed: " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new FetchException("download of " + url + " was interrupted");
            }
        }
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
