package io.stowage.operator.dcgm;

import io.stowage.operator.dcgm.PrometheusText.Sample;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/** Maps dcgm-exporter samples to GPUs by hostname and UUID, and works out the memory Stowage does not own. */
public final class DcgmUsage {
    public static final String FB_USED = "DCGM_FI_DEV_FB_USED";
    public static final String FB_FREE = "DCGM_FI_DEV_FB_FREE";
    private static final long MIB = 1L << 20;

    private DcgmUsage() {}

    /** The GPUs in {@code samples}, one per (Hostname, UUID), in input order. */
    public static List<GpuMemory> gpus(List<Sample> samples) {
        Map<String, long[]> mem = new LinkedHashMap<>();
        Map<String, Map<String, String>> labels = new HashMap<>();
        for (Sample s : samples) {
            boolean used = FB_USED.equals(s.name());
            if (!used && !FB_FREE.equals(s.name())) {
                continue;
            }
            String host = s.labels().getOrDefault("Hostname", "");
            String uuid = s.labels().getOrDefault("UUID", "gpu" + s.labels().getOrDefault("gpu", "?"));
            String key = host + "|" + uuid;
            long[] m = mem.computeIfAbsent(key, k -> new long[] {-1, -1});
            long bytes = Math.round(s.value() * MIB);
            m[used ? 0 : 1] = bytes;
            labels.merge(key, s.labels(), (a, b) -> a.containsKey("pod") ? a : b);
        }
        List<GpuMemory> out = new ArrayList<>();
        mem.forEach((key, m) -> {
            Map<String, String> l = labels.get(key);
            int index;
            try {
                index = Integer.parseInt(l.getOrDefault("gpu", "-1"));
            } catch (NumberFormatException e) {
                index = -1;
            }
            out.add(new GpuMemory(
                    l.getOrDefault("Hostname", ""),
                    l.getOrDefault("UUID", ""),
                    index,
                    l.get("modelName"),
                    emptyToNull(l.get("namespace")),
                    emptyToNull(l.get("pod")),
                    Math.max(0, m[0]),
                    m[1]));
        });
        return out;
    }

    /**
     * What Stowage does not own, from DCGM's view.
     *
     * @param byNode per node, FB_USED of each GPU not attributed to a Stowage host, largest first
     * @param onHosts per {@code namespace/pod} of a Stowage host, FB_USED minus what the host reports using
     */
    public record ForeignUsage(Map<String, List<Long>> byNode, Map<String, Long> onHosts) {
        public static final ForeignUsage NONE = new ForeignUsage(Map.of(), Map.of());
    }

    /**
     * Splits the GPUs into Stowage's (attributed to one of its host pods) and the rest.
     *
     * @param isStowagePod whether a {@code namespace/pod} attribution is a Stowage host
     * @param reportedByHost per {@code namespace/pod} of a Stowage host, the bytes it reports using
     * @param exporterPods pod-name prefixes of the exporter itself (scrape-target labels, not workloads)
     */
    public static ForeignUsage foreign(
            List<GpuMemory> gpus,
            Predicate<String> isStowagePod,
            Map<String, Long> reportedByHost,
            Set<String> exporterPods) {
        Map<String, List<Long>> byNode = new HashMap<>();
        Map<String, Long> onHosts = new HashMap<>();
        for (GpuMemory g : gpus) {
            String attributed = g.pod() == null || exporterPods.stream().anyMatch(g.pod()::startsWith)
                    ? null
                    : g.namespace() + "/" + g.pod();
            if (attributed != null && isStowagePod.test(attributed)) {
                onHosts.put(attributed, Math.max(0, g.usedBytes() - reportedByHost.getOrDefault(attributed, 0L)));
            } else if (g.usedBytes() > 0) {
                byNode.computeIfAbsent(g.hostname(), k -> new ArrayList<>()).add(g.usedBytes());
            }
        }
        byNode.values().forEach(l -> l.sort(Comparator.reverseOrder()));
        return new ForeignUsage(byNode, onHosts);
    }

    private static String emptyToNull(String s) {
        return s == null || s.isEmpty() ? null : s;
    }
}
