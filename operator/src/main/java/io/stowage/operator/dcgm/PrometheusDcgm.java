package io.stowage.operator.dcgm;

import io.stowage.operator.dcgm.PrometheusText.Sample;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * DCGM's framebuffer metrics of the whole cluster from Prometheus, in one instant query per pass, instead of a
 * scrape of every dcgm-exporter pod.
 */
public final class PrometheusDcgm {
    /** Both framebuffer series of every GPU that the exporters report. */
    static final String QUERY = "{__name__=~\"" + DcgmUsage.FB_USED + "|" + DcgmUsage.FB_FREE + "\"}";

    private final URI base;
    private final Duration timeout;
    private final HttpClient http;

    /** @param base Prometheus' base URL, such as {@code http://prometheus.monitoring:9090} */
    public PrometheusDcgm(URI base, Duration timeout) {
        String scheme = base.getScheme();
        if (!"http".equals(scheme) && !"https".equals(scheme)) {
            throw new IllegalArgumentException(
                    "stowage.dcgm-prometheus-url " + base + " is not an http(s) URL; give Prometheus' base URL,"
                            + " such as http://prometheus.monitoring:9090");
        }
        this.base = base;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).build();
    }

    /** The query's URI. */
    URI queryUri() {
        String b = base.toString().replaceAll("/+$", "");
        return URI.create(b + "/api/v1/query?query=" + URLEncoder.encode(QUERY, StandardCharsets.UTF_8));
    }

    /**
     * Every GPU that Prometheus has DCGM memory for.
     *
     * @throws IllegalStateException when Prometheus cannot be read or answers with an error
     */
    public List<GpuMemory> read() {
        URI uri = queryUri();
        HttpResponse<String> r;
        try {
            r = http.send(
                    HttpRequest.newBuilder(uri).timeout(timeout).GET().build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new IllegalStateException("Prometheus at " + base + " could not be read: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading Prometheus at " + base, e);
        }
        if (r.statusCode() != 200) {
            String body = r.body() == null ? "" : r.body();
            throw new IllegalStateException("Prometheus at " + base + " answered HTTP " + r.statusCode() + " to "
                    + QUERY + ": " + body.substring(0, Math.min(200, body.length())));
        }
        return DcgmUsage.gpus(unexported(PrometheusQuery.parseVector(r.body())));
    }

    /**
     * The exporter's own labels: where Prometheus kept the scrape target's {@code pod} and {@code namespace} (a
     * ServiceMonitor without honorLabels), DCGM's are under {@code exported_pod} and {@code exported_namespace}.
     */
    static List<Sample> unexported(List<Sample> samples) {
        List<Sample> out = new ArrayList<>(samples.size());
        for (Sample s : samples) {
            if (!s.labels().containsKey("exported_pod") && !s.labels().containsKey("exported_namespace")) {
                out.add(s);
                continue;
            }
            Map<String, String> l = new LinkedHashMap<>(s.labels());
            l.remove("pod");
            l.remove("namespace");
            String pod = l.remove("exported_pod");
            String ns = l.remove("exported_namespace");
            if (pod != null) {
                l.put("pod", pod);
            }
            if (ns != null) {
                l.put("namespace", ns);
            }
            out.add(new Sample(s.name(), l, s.value()));
        }
        return out;
    }
}
