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

/**
 * Maps dcgm-exporter samples to GPUs by hostname and UUID, and works out, per GPU UUID, the memory Stowage does not
 * own.
 */
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
            if (s.labels().containsKey("GPU_I_ID")) {
                // A MIG instance carries its parent GPU's UUID, not the MIG device's a host reports: not mapped.
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
     * One GPU of a node as DCGM sees it, when it is not a Stowage host's.
     *
     * @param uuid the GPU's UUID ({@code GPU-…}), or an index-based stand-in when the exporter gives none
     * @param usedBytes FB_USED: memory in use by something that is not Stowage
     * @param pod {@code namespace/pod} of the workload DCGM attributes the GPU to, or null
     */
    public record NodeGpu(String uuid, long usedBytes, String pod) {}

    /**
     * What Stowage does not own, from DCGM's view, keyed by GPU UUID.
     *
     * @param byNode per node, every GPU that is not a Stowage host's (by the UUID a host reported, or by DCGM's pod
     *     attribution), most used first: each is counted once, on one device
     * @param onHosts per {@code namespace/pod} of a Stowage host, FB_USED of its GPU minus what the host reports using
     * @param memoryByNode per node, the smallest FB_USED + FB_FREE of its GPUs (their framebuffer), where DCGM gives
     *     both
     */
    public record ForeignUsage(
            Map<String, List<NodeGpu>> byNode, Map<String, Long> onHosts, Map<String, Long> memoryByNode) {
        public static final ForeignUsage NONE = new ForeignUsage(Map.of(), Map.of(), Map.of());

        /** The memory DCGM sees in use by others on {@code node}, summed over its GPUs that are not Stowage's. */
        public long foreignBytesOn(String node) {
            return byNode.getOrDefault(node, List.of()).stream()
                    .mapToLong(NodeGpu::usedBytes)
                    .sum();
        }
    }

    /** As {@link #foreign(List, Predicate, Map, Map, Set)} with no host known by its GPU UUID. */
    public static ForeignUsage foreign(
            List<GpuMemory> gpus,
            Predicate<String> isStowagePod,
            Map<String, Long> reportedByHost,
            Set<String> exporterPods) {
        return foreign(gpus, isStowagePod, reportedByHost, Map.of(), exporterPods);
    }

    /**
     * Splits the GPUs into Stowage's and the rest. A GPU is a Stowage host's when a host reported its UUID, or,
     * for a host that reports none, when DCGM attributes it to the host's pod.
     *
     * @param isStowagePod whether a {@code namespace/pod} attribution is a Stowage host
     * @param reportedByHost per {@code namespace/pod} of a Stowage host, the bytes it reports using
     * @param hostByUuid per GPU UUID a Stowage host reported, that host's {@code namespace/pod}
     * @param exporterPods pod-name prefixes of the exporter itself (scrape-target labels, not workloads)
     */
    public static ForeignUsage foreign(
            List<GpuMemory> gpus,
            Predicate<String> isStowagePod,
            Map<String, Long> reportedByHost,
            Map<String, String> hostByUuid,
            Set<String> exporterPods) {
        Map<String, List<NodeGpu>> byNode = new HashMap<>();
        Map<String, Long> onHosts = new HashMap<>();
        Map<String, Long> memory = new HashMap<>();
        for (GpuMemory g : gpus) {
            if (g.freeBytes() >= 0) {
                memory.merge(g.hostname(), g.usedBytes() + g.freeBytes(), Math::min);
            }
            String attributed = g.pod() == null || exporterPods.stream().anyMatch(g.pod()::startsWith)
                    ? null
                    : g.namespace() + "/" + g.pod();
            String host = g.uuid().isEmpty() ? null : hostByUuid.get(g.uuid());
            if (host == null && attributed != null && isStowagePod.test(attributed)) {
                host = attributed;
            }
            if (host != null) {
                onHosts.merge(host, Math.max(0, g.usedBytes() - reportedByHost.getOrDefault(host, 0L)), Long::sum);
            } else {
                String uuid = g.uuid().isEmpty() ? g.hostname() + "/gpu" + g.index() : g.uuid();
                byNode.computeIfAbsent(g.hostname(), k -> new ArrayList<>())
                        .add(new NodeGpu(uuid, g.usedBytes(), attributed));
            }
        }
        byNode.values()
                .forEach(l -> l.sort(
                        Comparator.comparingLong(NodeGpu::usedBytes).reversed().thenComparing(NodeGpu::uuid)));
        return new ForeignUsage(byNode, onHosts, memory);
    }

    private static String emptyToNull(String s) {
        return s == null || s.isEmpty() ? null : s;
    }
}
