package io.stowage.operator.dcgm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** DCGM's memory from one Prometheus query, against a real HTTP server playing Prometheus' API. */
class PrometheusDcgmTest {
    static final long MIB = 1L << 20;

    HttpServer server;
    final AtomicReference<String> body = new AtomicReference<>();
    final AtomicReference<Integer> status = new AtomicReference<>(200);
    final AtomicReference<String> query = new AtomicReference<>();

    @BeforeEach
    void start() throws Exception {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/api/v1/query", ex -> {
            String q = ex.getRequestURI().getRawQuery();
            query.set(URLDecoder.decode(q.substring(q.indexOf('=') + 1), StandardCharsets.UTF_8));
            byte[] b = body.get().getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(status.get(), b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    URI base() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/");
    }

    static String sample(String name, String labels, String mib) {
        return "{\"metric\":{\"__name__\":\"" + name + "\"," + labels + "},\"value\":[1733450000.0,\"" + mib + "\"]}";
    }

    @Test
    void readsBothFramebufferSeriesOfEveryGpuInOneQuery() {
        String gpu0 = "\"Hostname\":\"node-a\",\"UUID\":\"GPU-0aa\",\"gpu\":\"0\",\"modelName\":\"NVIDIA L4\"";
        // Without honorLabels, Prometheus keeps the exporter pod's own pod label and moves DCGM's to exported_pod.
        String gpu1 = "\"Hostname\":\"node-a\",\"UUID\":\"GPU-1bb\",\"gpu\":\"1\",\"pod\":\"nvidia-dcgm-exporter-x\","
                + "\"namespace\":\"gpu-operator\",\"exported_pod\":\"trainer\",\"exported_namespace\":\"ml\"";
        body.set("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                + String.join(
                        ",",
                        sample(DcgmUsage.FB_USED, gpu0, "0"),
                        sample(DcgmUsage.FB_FREE, gpu0, "22563"),
                        sample(DcgmUsage.FB_USED, gpu1, "1024"),
                        sample(DcgmUsage.FB_FREE, gpu1, "21539"))
                + "]}}");

        List<GpuMemory> gpus = new PrometheusDcgm(base(), Duration.ofSeconds(5)).read();

        assertThat(query.get()).isEqualTo("{__name__=~\"DCGM_FI_DEV_FB_USED|DCGM_FI_DEV_FB_FREE\"}");
        assertThat(gpus).hasSize(2);
        assertThat(gpus.get(0).uuid()).isEqualTo("GPU-0aa");
        assertThat(gpus.get(0).freeBytes()).isEqualTo(22563 * MIB);
        assertThat(gpus.get(0).pod()).isNull();
        assertThat(gpus.get(1).usedBytes()).isEqualTo(1024 * MIB);
        assertThat(gpus.get(1).pod()).as("DCGM's pod, not the exporter's").isEqualTo("trainer");
        assertThat(gpus.get(1).namespace()).isEqualTo("ml");
    }

    @Test
    void anErrorAnswerSaysWhatPrometheusSaid() {
        status.set(400);
        body.set("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}");

        assertThatThrownBy(() -> new PrometheusDcgm(base(), Duration.ofSeconds(5)).read())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("HTTP 400")
                .hasMessageContaining("parse error");
    }

    @Test
    void aUrlThatIsNotHttpIsRefusedWithAnExample() {
        assertThatThrownBy(() -> new PrometheusDcgm(URI.create("prometheus:9090"), Duration.ofSeconds(5)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("http://prometheus.monitoring:9090");
    }
}
