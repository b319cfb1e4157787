package io.stowage.operator.model;

import io.stowage.hostapi.ModelHeader;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import java.io.IOException;
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
    private final GgufReader reader;
    private final List<String> allowedHosts;
    private final Duration timeout;
    private final int maxHeaderBytes;
    private final HttpClient http;

    /** The most redirects followed from the CR's URI to the file (Hugging Face's /resolve/ takes one). */
    public static final int MAX_REDIRECTS = 5;

    /**
     * @param allowedHosts exact host names, or {@code *.domain} for subdomains; empty allows none
     * @param maxHeaderBytes the most bytes fetched before giving up (large vocabularies live in the header)
     */
    public HttpModelHeaderReader(List<String> allowedHosts, Duration timeout, int maxHeaderBytes) {
        this.allowedHosts = List.copyOf(allowedHosts);
        this.timeout = timeout;
        this.maxHeaderBytes = maxHeaderBytes;
        this.http = HttpClient.newBuilder()
                .connectTimeout(timeout)
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
        this.reader = GgufReader.builder()
                .httpClient(http)
                .requestTimeout(timeout)
                .maxHeaderBytes(maxHeaderBytes)
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
     * Reads the header with the placement library's Range reader. Redirects are followed here, one hop at a
     * time and at most {@link #MAX_REDIRECTS}, each only to a host on the allowlist, so that the allowlist
     * cannot be sidestepped by a redirect.
     *
     * @throws InvalidModelException for a host not on the allowlist (the URI's or a redirect's), too many
     *     redirects, an HTTP error, or bytes that are not GGUF
     */
    public ModelHeader read(URI uri) throws IOException {
        if (!allows(uri)) {
            throw new InvalidModelException("model.uri host " + uri.getHost() + " is not on the operator's allowlist "
                    + allowedHosts + "; add it to the chart's modelHeader.allowedHosts or use an s3/hf/pvc URI");
        }
        URI target = resolveRedirects(uri);
        try {
            return ModelHeader.from(reader.read(target));
        } catch (GgufFormatException | IllegalArgumentException e) {
            throw new InvalidModelException(uri + ": " + e.getMessage());
        }
    }

    /** The URI the file is served at once the redirects from {@code uri} (all to allowed hosts) are followed. */
    URI resolveRedirects(URI uri) throws IOException {
        URI current = uri;
        for (int hop = 0; ; hop++) {
            HttpRequest req = HttpRequest.newBuilder(current)
                    .timeout(timeout)
                    .header("Range", "bytes=0-0")
                    .GET()
                    .build();
            HttpResponse<Void> resp;
            try {
                resp = http.send(req, HttpResponse.BodyHandlers.discarding());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while reading " + current, e);
            }
            int code = resp.statusCode();
            if (code < 300 || code >= 400 || code == 304) {
                return current;
            }
            String location = resp.headers().firstValue("Location").orElse(null);
            if (location == null) {
                throw new InvalidModelException(current + " answered " + code + " without a Location header");
            }
            if (hop >= MAX_REDIRECTS) {
                throw new InvalidModelException("model.uri " + uri + " redirects more than " + MAX_REDIRECTS
                        + " times (the last to " + location + ")");
            }
            URI next = current.resolve(location);
            String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("https") && !scheme.equals("http")) {
                throw new InvalidModelException(
                        "model.uri " + uri + " redirects to " + next + ", which is not http(s)");
            }
            if (!allows(next)) {
                throw new InvalidModelException("model.uri " + uri + " redirects to host " + next.getHost()
                        + ", which is not on the operator's allowlist " + allowedHosts
                        + "; add it to the chart's modelHeader.allowedHosts");
            }
            current = next;
        }
    }
}
