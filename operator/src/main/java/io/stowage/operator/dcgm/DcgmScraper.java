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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jboss.logging.Logger;

/** Scrapes {@code /metrics} from every endpoint of the configured dcgm-exporter Service, several at once. */
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

    /** How many exporters are read at once. */
    static final int PARALLELISM = 16;

    /** Every GPU the exporters report, read in parallel; an exporter that fails is logged and skipped. */
    public List<GpuMemory> scrape() {
        Endpoints eps =
                client.endpoints().inNamespace(namespace).withName(service).get();
        List<URI> targets = new ArrayList<>();
        if (eps == null || eps.getSubsets() == null) {
            return List.of();
        }
        for (EndpointSubset sub : eps.getSubsets()) {
            if (sub.getAddresses() == null) {
                continue;
            }
            int p = sub.getPorts() == null || sub.getPorts().isEmpty()
                    ? port
                    : sub.getPorts().get(0).getPort();
            for (EndpointAddress a : sub.getAddresses()) {
                String ip = a.getIp().contains(":") ? "[" + a.getIp() + "]" : a.getIp();
                targets.add(URI.create("http://" + ip + ":" + p + "/metrics"));
            }
        }
        if (targets.isEmpty()) {
            return List.of();
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(PARALLELISM, targets.size()), r -> {
            Thread t = new Thread(r, "stowage-dcgm-scrape");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<List<GpuMemory>>> futures = new ArrayList<>();
            for (URI uri : targets) {
                futures.add(pool.submit(() -> scrapeOne(uri)));
            }
            List<GpuMemory> out = new ArrayList<>();
            for (Future<List<GpuMemory>> f : futures) {
                try {
                    out.addAll(f.get());
                } catch (ExecutionException e) {
                    LOG.warnf("dcgm-exporter scrape failed: %s", e.getCause().toString());
                }
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        } finally {
            pool.shutdownNow();
        }
    }

    private List<GpuMemory> scrapeOne(URI uri) throws InterruptedException {
        try {
            HttpResponse<String> r = http.send(
                    HttpRequest.newBuilder(uri).timeout(timeout).GET().build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                LOG.warnf("dcgm-exporter %s answered %d; its GPUs count as unobserved", uri, r.statusCode());
                return List.of();
            }
            return DcgmUsage.gpus(PrometheusText.parse(r.body()));
        } catch (InterruptedException e) {
            throw e;
        } catch (Exception e) {
            LOG.warnf("dcgm-exporter %s could not be read (%s); its GPUs count as unobserved", uri, e.toString());
            return List.of();
        }
    }
}
