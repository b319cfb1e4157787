package io.stowage.operator.dcgm;

import io.fabric8.kubernetes.api.model.EndpointAddress;
import io.fabric8.kubernetes.api.model.EndpointSubset;
import io.fabric8.kubernetes.api.model.Endpoints;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/** Scrapes {@code /metrics} from every endpoint of the configured dcgm-exporter Service. */
public final class DcgmScraper {
    private static final Logger LOG = Logger.getLogger(DcgmScraper.class);

    private final KubernetesClient client;
    private final String namespace;
    private final String service;
    private final int port;
    private final HttpClient http;
    private final Duration timeout;

    public DcgmScraper(KubernetesClient client, String namespace, String service, int port, Duration timeout) {
        this.client = client;
        this.namespace = namespace;
        this.service = service;
        this.port = port;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).build();
    }

    /** Every GPU the exporters report; an exporter that fails is logged and skipped. */
    public List<GpuMemory> scrape() {
        Endpoints eps =
                client.endpoints().inNamespace(namespace).withName(service).get();
        List<GpuMemory> out = new ArrayList<>();
        if (eps == null || eps.getSubsets() == null) {
            return out;
        }
        for (EndpointSubset sub : eps.getSubsets()) {
            if (sub.getAddresses() == null) {
                continue;
            }
            int p = sub.getPorts() == null || sub.getPorts().isEmpty()
                    ? port
                    : sub.getPorts().get(0).getPort();
            for (EndpointAddress a : sub.getAddresses()) {
                URI uri = URI.create("http://" + a.getIp() + ":" + p + "/metrics");
                try {
                    HttpResponse<String> r = http.send(
                            HttpRequest.newBuilder(uri).timeout(timeout).GET().build(),
                            HttpResponse.BodyHandlers.ofString());
                    if (r.statusCode() != 200) {
                        LOG.warnf("dcgm-exporter %s answered %d; its GPUs count as unobserved", uri, r.statusCode());
                        continue;
                    }
                    out.addAll(DcgmUsage.gpus(PrometheusText.parse(r.body())));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return out;
                } catch (Exception e) {
                    LOG.warnf(
                            "dcgm-exporter %s could not be read (%s); its GPUs count as unobserved", uri, e.toString());
                }
            }
        }
        return out;
    }
}
