package io.stowage.placement.plan;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
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
            double fullPlanCpuMillis,
            double incrementalP50Millis,
            double incrementalP99Millis,
            double incrementalCpuP99Millis,
            int changes) {

        @Override
        public String toString() {
            return String.format(
                    Locale.ROOT,
                    "%d replicas on %d devices: %d devices used, %d refused; full plan %.1f ms (CPU %.1f ms);"
                            + " incremental change p50 %.2f ms, p99 %.2f ms (p99 CPU time %.2f ms) over %d changes",
                    replicas,
                    devices,
                    devicesUsed,
                    refusals,
                    fullPlanMillis,
                    fullPlanCpuMillis,
                    incrementalP50Millis,
                    incrementalP99Millis,
                    incrementalCpuP99Millis,
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
        // Wall time is what a reconcile waits; the thread's CPU time shows the planner's own cost on a
        // machine shared with other work.
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        boolean cpu = threads.isCurrentThreadCpuTimeSupported();
        PlanResult base = packer.plan(fleet); // warm-up
        double full = Double.MAX_VALUE;
        double fullCpu = Double.MAX_VALUE;
        for (int i = 0; i < Math.max(1, fullRuns); i++) {
            long c0 = cpu ? threads.getCurrentThreadCpuTime() : 0;
            long t0 = System.nanoTime();
            base = packer.plan(fleet);
            double wall = (System.nanoTime() - t0) / 1e6;
            full = Math.min(full, wall);
            fullCpu = Math.min(fullCpu, cpu ? (threads.getCurrentThreadCpuTime() - c0) / 1e6 : wall);
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
        double[] cpuMillis = new double[changes];
        for (int c = 0; c < changes; c++) {
            long c0 = cpu ? threads.getCurrentThreadCpuTime() : 0;
            long t0 = System.nanoTime();
            packer.plan(requests.get(c));
            millis[c] = (System.nanoTime() - t0) / 1e6;
            cpuMillis[c] = cpu ? (threads.getCurrentThreadCpuTime() - c0) / 1e6 : millis[c];
        }
        Arrays.sort(millis);
        Arrays.sort(cpuMillis);
        int replicas =
                fleet.deployments().stream().mapToInt(Deployment::replicas).sum();
        return new Timing(
                fleet.devices().size(),
                replicas,
                base.devicesUsed(),
                base.refusals().size(),
                full,
                fullCpu,
                percentile(millis, 0.50),
                percentile(millis, 0.99),
                percentile(cpuMillis, 0.99),
                changes);
    }

    private static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return 0;
        int i = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** Devices used by each packer and the bounds, on one fleet. */
    public record Quality(
            String name,
            int replicas,
            int wholeDevice,
            int noSharing,
            int stowage,
            int refused,
            int memoryBound,
            int computeBound,
            double planMillis) {

        @Override
        public String toString() {
            int bound = Math.max(memoryBound, computeBound);
            return String.format(
                    Locale.ROOT,
                    "%-28s %6d replicas: whole-device %6d, no-sharing %6d, stowage %6d (%d refused),"
                            + " lower bound %6d (memory %d, compute %d), stowage/bound %.3f, plan %.1f ms",
                    name,
                    replicas,
                    wholeDevice,
                    noSharing,
                    stowage,
                    refused,
                    bound,
                    memoryBound,
                    computeBound,
                    stowage / (double) Math.max(1, bound),
                    planMillis);
        }
    }

    /** Runs the three packers and the bounds on {@code fleet}. */
    public static Quality quality(String name, PlanRequest fleet) {
        long t0 = System.nanoTime();
        PlanResult stowage = new StowagePlanner().plan(fleet);
        double millis = (System.nanoTime() - t0) / 1e6;
        return new Quality(
                name,
                fleet.deployments().stream().mapToInt(Deployment::replicas).sum(),
                new WholeDevicePacker().plan(fleet).devicesUsed(),
                new NoSharingPacker().plan(fleet).devicesUsed(),
                stowage.devicesUsed(),
                stowage.refusals().size(),
                LowerBound.devices(fleet),
                LowerBound.computeDevices(fleet),
                millis);
    }

    /** The same fleet with every compute share set to {@code share} (0: memory alone limits packing). */
    public static PlanRequest withComputeShare(PlanRequest fleet, double share) {
        List<Deployment> deps = new ArrayList<>();
        for (Deployment d : fleet.deployments()) {
            deps.add(new Deployment(
                    d.id(),
                    d.model(),
                    d.kvBytesPerReplica(),
                    d.replicas(),
                    d.priority(),
                    d.nodeSelector(),
                    d.tolerations(),
                    d.maxReplicasPerNode(),
                    d.device(),
                    share));
        }
        return new PlanRequest(fleet.devices(), deps, fleet.current(), fleet.rebalance(), fleet.maxDisruption());
    }

    /**
     * {@code [nodes gpusPerNode replicas changes]}: prints the scale case for the Stowage planner;
     * {@code quality}: prints devices used by each packer on seeded fleets with and without the compute cap.
     */
    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("quality")) {
            for (long seed = 1; seed <= 4; seed++) {
                for (int replicas : new int[] {200, 2000}) {
                    PlanRequest fleet = scaleFleet(seed, replicas / 8 + 1, 8, replicas);
                    System.out.println(quality("seed " + seed + " no compute cap", withComputeShare(fleet, 0)));
                    System.out.println(quality("seed " + seed + " compute 0.25", fleet));
                }
            }
            return;
        }
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
