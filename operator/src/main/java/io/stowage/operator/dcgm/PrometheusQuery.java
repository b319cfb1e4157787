package io.stowage.operator.dcgm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.operator.dcgm.PrometheusText.Sample;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Reads a Prometheus HTTP API instant-query answer ({@code resultType: vector}) into samples. */
public final class PrometheusQuery {
    private static final ObjectMapper JSON = new ObjectMapper();

    private PrometheusQuery() {}

    /**
     * @throws IllegalArgumentException when the answer is not a successful vector result
     */
    public static List<Sample> parseVector(String json) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException("Prometheus answer is not JSON: " + e.getMessage());
        }
        if (!"success".equals(root.path("status").asText())
                || !"vector".equals(root.path("data").path("resultType").asText())) {
            throw new IllegalArgumentException(
                    "Prometheus answer has status " + root.path("status").asText() + " and resultType "
                            + root.path("data").path("resultType").asText() + "; expected success/vector");
        }
        List<Sample> out = new ArrayList<>();
        for (JsonNode r : root.path("data").path("result")) {
            Map<String, String> labels = new LinkedHashMap<>();
            r.path("metric")
                    .properties()
                    .forEach(e -> labels.put(e.getKey(), e.getValue().asText()));
            String name = labels.remove("__name__");
            JsonNode value = r.path("value");
            if (name == null || !value.isArray() || value.size() != 2) {
                throw new IllegalArgumentException("Prometheus result without __name__ or [time, value]: " + r);
            }
            out.add(new Sample(name, labels, Double.parseDouble(value.get(1).asText())));
        }
        return out;
    }
}
