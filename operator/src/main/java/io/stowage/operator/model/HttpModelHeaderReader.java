package io.stowage.operator.model;

import io.stowage.hostapi.ModelHeader;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
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

    /**
     * @param allowedHosts exact host names, or {@code *.domain} for subdomains; empty allows none
     * @param maxHeaderBytes the most bytes fetched before giving up (large vocabularies live in the header)
     */
    public HttpModelHeaderReader(List<String> allowedHosts, Duration timeout, int maxHeaderBytes) {
        this.allowedHosts = List.copyOf(allowedHosts);
        this.timeout = timeout;
        this.maxHeaderBytes = maxHeaderBytes;
        this.reader = GgufReader.builder()
                .httpClient(HttpClient.newBuilder()
                        .connectTimeout(timeout)
                        .followRedirects(HttpClient.Redirect.NEVER)
                        .build())
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
     * Reads the header with the placement library's Range reader; redirects are not followed, so the
     * allowlist cannot be sidestepped.
     *
     * @throws InvalidModelException for a host not on the allowlist, an HTTP error, or bytes that are not GGUF
     */
    public ModelHeader read(URI uri) throws IOException {
        if (!allows(uri)) {
            throw new InvalidModelException("model.uri host " + uri.getHost() + " is not on the operator's allowlist "
                    + allowedHosts + "; add it to the chart's modelHeader.allowedHosts or use an s3/hf/pvc URI");
        }
        try {
            return ModelHeader.from(reader.read(uri));
        } catch (GgufFormatException | IllegalArgumentException e) {
            throw new InvalidModelException(uri + ": " + e.getMessage());
        }
    }
}
