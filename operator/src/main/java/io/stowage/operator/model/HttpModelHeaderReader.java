package io.stowage.operator.model;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * Reads a GGUF header over http(s) with Range requests, only from hosts on the allowlist, so that a
 * custom resource cannot make the operator fetch arbitrary URLs.
 */
public final class HttpModelHeaderReader {
    private static final int FIRST_CHUNK = 1 << 20;

    private final HttpClient client;
    private final List<String> allowedHosts;
    private final Duration timeout;
    private final int maxHeaderBytes;

    /**
     * @param allowedHosts exact host names, or {@code *.domain} for subdomains; empty allows none
     * @param maxHeaderBytes the most bytes fetched before giving up (large vocabularies live in the header)
     */
    public HttpModelHeaderReader(List<String> allowedHosts, Duration timeout, int maxHeaderBytes) {
        this.allowedHosts = List.copyOf(allowedHosts);
        this.timeout = timeout;
        this.maxHeaderBytes = maxHeaderBytes;
        this.client = HttpClient.newBuilder()
                .connectTimeout(timeout)
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    /** Whether the operator may fetch from this URI's host. */
    public boolean allows(URI uri) {
        String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
        for (String a : allowedHosts) {
            String p = a.toLowerCase(Locale.ROOT).trim();
            if (p.equals(host) || (p.startsWith("*.") && host.endsWith(p.substring(1)))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Fetches as many leading bytes as the header needs (1 MiB, doubling up to the limit) and parses them.
     *
     * @throws InvalidModelException for a host not on the allowlist, an HTTP error, or bytes that are not GGUF
     */
    public ModelHeader read(URI uri) throws IOException, InterruptedException {
        if (!allows(uri)) {
            throw new InvalidModelException("model.uri host " + uri.getHost() + " is not on the operator's allowlist "
                    + allowedHosts + "; add it to the chart's modelHeader.allowedHosts or use an s3/hf/pvc URI");
        }
        int want = FIRST_CHUNK;
        while (true) {
            byte[] bytes = fetch(uri, want);
            try {
                return GgufHeaderParser.parse(bytes, uri.toString());
            } catch (GgufHeaderParser.NeedMoreBytes e) {
                if (bytes.length < want) {
                    throw new InvalidModelException(uri + ": the file ends (" + bytes.length
                            + " bytes) inside its GGUF header; the file is truncated or not GGUF");
                }
                if (want >= maxHeaderBytes) {
                    throw new InvalidModelException(uri + ": the GGUF header is larger than " + maxHeaderBytes
                            + " bytes, the operator's limit for reading headers");
                }
                want = (int) Math.min((long) want * 4, maxHeaderBytes);
            }
        }
    }

    private byte[] fetch(URI uri, int length) throws IOException, InterruptedException {
        HttpRequest req = HttpRequest.newBuilder(uri)
                .timeout(timeout)
                .header("Range", "bytes=0-" + (length - 1))
                .GET()
                .build();
        HttpResponse<InputStream> resp = client.send(req, HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream in = resp.body()) {
            int code = resp.statusCode();
            if (code != 206 && code != 200) {
                throw new InvalidModelException(uri + ": HTTP " + code + " while reading the GGUF header");
            }
            // A server that ignores Range sends the whole file: read only what we asked for.
            return in.readNBytes(length);
        }
    }
}
