package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * The planner's timing harness for the scale case (no JMH): a seeded fleet of thousands of GPUs with
 * thousands of replicas, the time of a full plan, and the latency distribution of one incremental change
 * (everything running, plus one deployment scaled by +1 or one new deployment). The {@code bench}
 * command calls {@link #scaleFleet} and {@link #measure}; {@link #main} prints the same figures.
 */
public final class PlannerBench {
    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;

    /** name, parameters (billions), layers, KV heads, head dim: from the models' published configs. */
    private static final Object[][] SHAPES = {
        {"llama-3.1-8b", 8.03, 32, 8, 128},
        {"mistral-7b", 7.24, 32, 8, 128},
        {"qwen2.5-14b", 14.8, 48, 8, 128},
        {"qwen2.5-32b", 32.8, 64, 8, 128},
        {"phi-3-mini", 3.82, 32, 32, 96},
        {"gemma-2-9b", 9.24, 42, 8, 256},
        {"llama-3.1-70b", 70.6, 80, 8, 128},
    };
    /** Bytes per parameter of f16, q8_0 and q4_k_m (≈4.85 bits). */
    private static final double[] QUANT_BYTES = {2.0, 34.0 / 32.0, 4.85 / 8.0};

    private static final String[] QUANT_NAMES = {"f16", "q8_0", "q4_k_m"};

    private PlannerBench() {}

    /** Timings of one scale run, in milliseconds. */
    public record Timing(
            int devices,
            int replicas,
            int devicesUsed,
            int refusals,
            double fullPlanMillis,
            double incrementalP50Millis,
            double incrementalP99Millis,
            int changes) {

        @Override
        public String toString() {
            return String.format(
                    Locale.ROOT,
                    "%d replicas on %d devices: %d devices used, %d refused; full plan %.1f ms;"
                            + " incremental change p50 %.2f ms, p99 %.2f ms over %d changes",
                    replicas,
                    devices,
                    devicesUsed,
                    refusals,
                    fullPlanMillis,
                    incrementalP50Millis,
                    incrementalP99Millis,
                    changes);
        }
    }

    /**
     * A seeded fleet of {@code nodes × gpusPerNode} 80 GB GPUs (H100 and A100, labelled) and deployments
     * of real model shapes (Zipf popularity, contexts 2k–32k, 1–8 sequences) adding up to
     * {@code replicas} replicas.
     */
    public static PlanRequest scaleFleet(long seed, int nodes, int gpusPerNode, int replicas) {
        Random rnd = new Random(seed);
        List<Device> devices = new ArrayList<>(nodes * gpusPerNode);
        for (int n = 0; n < nodes; n++) {
            boolean h100 = n % 4 != 0;
            String node = String.format(Locale.ROOT, "node-%05d", n);
            Map<String, String> labels = Map.of("nvidia.com/gpu.product", h100 ? "H100-80GB" : "A100-80GB");
            for (int g = 0; g < gpusPerNode; g++) {
                long total = (h100 ? 81_559 : 81_920) * MIB;
                long foreign = rnd.nextInt(20) == 0 ? rnd.nextInt(8_192) * MIB : 0;
                devices.add(new Device(
                        node + "/gpu-" + g,
                        node,
                        DeviceKind.GPU,
                        total,
                        total / 50,
                        foreign,
                        GIB,
                        1.0,
                        labels,
                        List.of()));
            }
        }
        List<Deployment> deployments = new ArrayList<>();
        int placed = 0;
        int i = 0;
        while (placed < replicas) {
            Deployment d = randomDeployment(rnd, "ns-" + (i % 50) + "/llm-" + i, Math.min(20, replicas - placed));
            deployments.add(d);
            placed += d.replicas();
            i++;
        }
        return PlanRequest.of(devices, deployments);
    }

    private static Deployment randomDeployment(Random rnd, String id, int maxReplicas) {
        // Zipf-like popularity over the 21 shape × quantization variants.
        int variants = SHAPES.length * QUANT_BYTES.length;
        int v = (int) Math.min(variants - 1, Math.floor(Math.pow(rnd.nextDouble(), 2.5) * variants));
        Object[] shape = SHAPES[v % SHAPES.length];
        int quant = v / SHAPES.length;
        double params = (double) shape[1];
        long weights = (long) (params * 1e9 * QUANT_BYTES[quant]);
        if (weights > 70 * GIB) { // does not fit an 80 GB GPU: take the next quantization
            quant = QUANT_BYTES.length - 1;
            weights = (long) (params * 1e9 * QUANT_BYTES[quant]);
        }
        long kvPerToken = 2L * (int) shape[2] * (int) shape[3] * (int) shape[4] * 2;
        long tokens = 2048L << rnd.nextInt(4);
        int sequences = 1 << rnd.nextInt(3);
        long workspace = 256 * MIB + (long) (params * 40 * MIB);
        while (sequences > 1 && weights + workspace + kvPerToken * tokens * sequences > 70 * GIB) sequences /= 2;
        while (tokens > 2048 && weights + workspace + kvPerToken * tokens * sequences > 70 * GIB) tokens /= 2;
        long kv = kvPerToken * tokens * sequences;
        String digest = "sha256:" + shape[0] + "-" + QUANT_NAMES[quant];
        int replicas = 1 + rnd.nextInt(Math.max(1, maxReplicas));
        int spread = rnd.nextInt(10) == 0 ? 2 : 0;
        Map<String, String> selector = rnd.nextInt(10) == 0 ? Map.of("nvidia.com/gpu.product", "H100-80GB") : Map.of();
        return new Deployment(
                id,
                new ModelRef(digest, weights, workspace),
                kv,
                replicas,
                rnd.nextInt(3),
                selector,
                List.of(),
                spread,
                DeviceRequest.GPU,
                Deployment.DEFAULT_GPU_COMPUTE_SHARE);
    }

    /**
     * Times {@code packer} on {@code fleet}: the full plan (best of {@code fullRuns}, after one warm-up),
     * then {@code changes} incremental plans, each the fleet with every replica running plus one change.
     */
    public static Timing measure(Packer packer, PlanRequest fleet, int fullRuns, int changes, long seed) {
        PlanResult base = packer.plan(fleet); // warm-up
        double full = Double.MAX_VALUE;
        for (int i = 0; i < Math.max(1, fullRuns); i++) {
            long t0 = System.nanoTime();
            base = packer.plan(fleet);
            full = Math.min(full, (System.nanoTime() - t0) / 1e6);
        }
        Random rnd = new Random(seed);
        List<PlanRequest> requests = new ArrayList<>(changes);
        for (int c = 0; c < changes; c++) {
            List<Deployment> deps = new ArrayList<>(fleet.deployments());
            if (rnd.nextBoolean()) {
                int k = rnd.nextInt(deps.size());
                Deployment d = deps.get(k);
                deps.set(
                        k,
                        new Deployment(
                                d.id(),
                                d.model(),
                                d.kvBytesPerReplica(),
                                d.replicas() + 1,
                                d.priority(),
                                d.nodeSelector(),
                                d.tolerations(),
                                d.maxReplicasPerNode(),
                                d.device(),
                                d.computeShare()));
            } else {
                deps.add(randomDeployment(rnd, "ns-new/llm-" + c, 4));
            }
            requests.add(new PlanRequest(fleet.devices(), deps, base.placements(), false, 0));
        }
        int warm = Math.min(changes, 20);
        for (int c = 0; c < warm; c++) packer.plan(requests.get(c));
        double[] millis = new double[changes];
        for (int c = 0; c < changes; c++) {
            long t0 = System.nanoTime();
            packer.plan(requests.get(c));
            millis[c] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(millis);
        int replicas =
                fleet.deployments().stream().mapToInt(Deployment::replicas).sum();
        return new Timing(
                fleet.devices().size(),
                replicas,
                base.devicesUsed(),
                base.refusals().size(),
                full,
                percentile(millis, 0.50),
                percentile(millis, 0.99),
                changes);
    }

    private static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return 0;
        int i = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** {@code [nodes gpusPerNode replicas changes]}: prints the scale case for the Stowage planner. */
    public static void main(String[] args) {
        int nodes = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        int gpus = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        int replicas = args.length > 2 ? Integer.parseInt(args[2]) : 10_000;
        int changes = args.length > 3 ? Integer.parseInt(args[3]) : 200;
        PlanRequest fleet = scaleFleet(42, nodes, gpus, replicas);
        System.out.println("stowage:   " + measure(new StowagePlanner(), fleet, 3, changes, 7));
        System.out.println("lower bound: " + LowerBound.devices(fleet) + " devices (memory), "
                + LowerBound.computeDevices(fleet) + " (compute)");
        PlanResult noSharing = new NoSharingPacker().plan(fleet);
        PlanResult whole = new WholeDevicePacker().plan(fleet);
        System.out.println("no-sharing: " + noSharing.devicesUsed() + " devices, "
                + noSharing.refusals().size()
                + " refused; whole-device: " + whole.devicesUsed() + " devices, "
                + whole.refusals().size()
                + " refused");
    }
}
