package io.stowage.placement.bench;

import io.stowage.placement.bench.KnownModel.Quant;
import io.stowage.placement.cli.CliArgs;
import io.stowage.placement.cli.Json;
import io.stowage.placement.cli.UsageException;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.LowerBound;
import io.stowage.placement.plan.NoSharingPacker;
import io.stowage.placement.plan.Packer;
import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.PlanRequest;
import io.stowage.placement.plan.PlanResult;
import io.stowage.placement.plan.PlannerState;
import io.stowage.placement.plan.ReplicaId;
import io.stowage.placement.plan.StowagePlanner;
import io.stowage.placement.plan.WholeDevicePacker;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The {@code bench} command: packs seeded realistic fleets (or a replayed CSV trace) with whole-GPU,
 * no-sharing and Stowage packing, prints the devices each uses beside the lower bound, and times a
 * 10,000-replica full plan and single incremental changes.
 */
public final class BenchCommand {

    public static final long DEFAULT_SEED = 20_260_101L;

    static final String HELP = """
            usage: ./stowage bench [--seed N] [--size tiny|full] [--changes N] [--no-scale] [--csv FILE] [--json]

            Generates seeded fleets of real model shapes (Llama-3.1-8B, Mistral-7B-v0.3, Qwen2.5-14B,
            Qwen2.5-32B, Phi-3-mini-4k, Gemma-2-9B, Llama-3.1-70B at f16, q8_0 and q4_k_m) on T4-16,
            L4-24, A100-40, A100-80 and H100-80 GPUs, with Zipf model popularity, contexts of 2k-32k,
            node selectors, spread limits and foreign GPU use, each with a compute cap (computeShare
            0.25) and without (0). For each it prints the GPUs used by one-whole-GPU-per-replica, by
            memory-fraction packing without weight sharing, and by Stowage, the lower bound
            (max of the memory bound and the compute bound), and Stowage's plan time. Then the scale
            case: 10,000 replicas on 2,000 nodes x 8 GPUs, the full plan's time and the p99 time of
            one incremental change (scale a deployment by +-1 or add one, running replicas given) on a
            planner that keeps its ledger between calls (PlannerState), as the operator does,
            timed after as many untimed changes (a long-running operator's JIT-compiled code), as
            wall-clock time and as the planning thread's CPU time (which a loaded machine inflates less).

            Options:
              --seed N        the fleets' seed (default %d); the same seed gives the same fleets
              --size S        full (default) or tiny (small instances and scale case, for tests)
              --changes N     incremental changes timed in the scale case (default 200)
              --no-scale      skip the scale case
              --csv FILE      replay an external trace instead of the generated fleets. One row per
                              device or demand, no header, '#' comments, sizes like 80Gi allowed:
                                device,ID,NODE,KIND,MEMORY,RESERVE,FOREIGN,LABELS
                                demand,ID,MODEL,WEIGHT_BYTES,WORKSPACE_BYTES,KV_BYTES_PER_REPLICA,
                                       REPLICAS,COMPUTE_SHARE,PRIORITY,MAX_PER_NODE,NODE_SELECTOR
                              (LABELS and NODE_SELECTOR are k=v;k=v; demands naming the same
                              MODEL share its weights)
              --json          print one JSON document: {"instances":[{"name","memoryBound",
                              "computeCap","replicas","wholeGpu","noSharing","stowage",
                              "lowerBound","planMillis",...}],"fullPlanMillis","incrementalP99Millis"}
              -h, --help      this help

            Progress goes to stderr. Exit status 0, or 2 on a usage error, 1 on a bad trace.
            """.formatted(DEFAULT_SEED);

    private final PrintStream out;
    private final PrintStream err;

    public BenchCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** One instance's figures; device counts are GPUs holding at least one replica. */
    public record InstanceResult(
            String name,
            boolean memoryBound,
            double computeCap,
            int replicas,
            int devices,
            int wholeGpu,
            int noSharing,
            int stowage,
            int lowerBound,
            double planMillis,
            int wholeGpuRefused,
            int noSharingRefused,
            int stowageRefused) {}

    /** The scale case: a cold and a warm full plan, and incremental changes. */
    public record ScaleResult(
            int replicas,
            int devices,
            int placed,
            double coldPlanMillis,
            double fullPlanMillis,
            int changes,
            double incrementalP50Millis,
            double incrementalP99Millis,
            double incrementalMaxMillis,
            int warmupChanges,
            double fullPlanCpuMillis,
            double incrementalCpuP50Millis,
            double incrementalCpuP99Millis) {}

    public int run(String[] argv) {
        Map<String, String> aliases = Map.of("-h", "--help");
        CliArgs args = CliArgs.parse(
                argv,
                Set.of("--seed", "--size", "--changes", "--csv"),
                Set.of("--json", "--no-scale", "--help"),
                aliases);
        if (args.has("--help")) {
            out.print(HELP);
            return 0;
        }
        long seed = args.longValue("--seed", DEFAULT_SEED, Long.MIN_VALUE, Long.MAX_VALUE);
        String size = args.value("--size") == null ? "full" : args.value("--size");
        if (!size.equals("full") && !size.equals("tiny")) {
            throw new UsageException("option --size must be full or tiny, got \"" + size + "\"");
        }
        boolean tiny = size.equals("tiny");
        int changes = (int) args.longValue("--changes", tiny ? 20 : 200, 1, 100_000);
        boolean json = args.has("--json");

        List<InstanceResult> results = new ArrayList<>();
        ScaleResult scale = null;
        if (args.value("--csv") != null) {
            Fleet trace;
            try {
                trace = TraceReader.read(Path.of(args.value("--csv")));
            } catch (IOException | IllegalArgumentException e) {
                err.println("stowage bench: " + e.getMessage());
                return 1;
            }
            results.add(runInstance(trace));
        } else {
            FleetGenerator gen = new FleetGenerator();
            for (FleetSpec spec : specs(tiny)) {
                for (FleetSpec s : List.of(
                        spec.withComputeShare(spec.name() + "/cap0.25", 0.25),
                        spec.withComputeShare(spec.name() + "/nocap", 0))) {
                    Fleet fleet = gen.generate(s, seed);
                    err.printf(
                            Locale.ROOT,
                            "bench: %s: %d replicas of %d deployments on %d GPUs%n",
                            s.name(),
                            fleet.replicas(),
                            fleet.deployments().size(),
                            fleet.devices().size());
                    results.add(runInstance(fleet));
                }
            }
            if (!args.has("--no-scale")) {
                scale = runScale(gen.generate(scaleSpec(tiny), seed), changes, seed);
            }
        }
        out.print(json ? json(results, scale) + "\n" : text(results, scale));
        return 0;
    }

    /** The generated instances: small, medium, large, uniform, and memory-bound with repeated models. */
    static List<FleetSpec> specs(boolean tiny) {
        List<Quant> quants = List.of(Quant.F16, Quant.Q8_0, Quant.Q4_K_M);
        List<Integer> contexts = List.of(2048, 4096, 8192, 16384, 32768);
        List<GpuType> mixed =
                List.of(GpuType.T4_16, GpuType.L4_24, GpuType.L4_24, GpuType.A100_40, GpuType.A100_80, GpuType.H100_80);
        List<KnownModel> small = KnownModel.ALL.stream()
                .filter(m -> Set.of("Llama-3.1-8B", "Mistral-7B-v0.3", "Phi-3-mini-4k")
                        .contains(m.name()))
                .toList();
        List<FleetSpec> specs = new ArrayList<>();
        specs.add(new FleetSpec(
                "small",
                tiny ? 2 : 8,
                4,
                List.of(GpuType.L4_24, GpuType.A100_40, GpuType.A100_80),
                KnownModel.ALL,
                quants,
                1.1,
                tiny ? 6 : 24,
                6,
                contexts,
                0.25,
                0.1,
                0.15,
                0.1));
        specs.add(new FleetSpec(
                "medium",
                tiny ? 4 : 40,
                tiny ? 4 : 8,
                mixed,
                KnownModel.ALL,
                quants,
                1.1,
                tiny ? 12 : 250,
                8,
                contexts,
                0.25,
                0.1,
                0.15,
                0.1));
        if (!tiny) {
            specs.add(new FleetSpec(
                    "large", 250, 8, mixed, KnownModel.ALL, quants, 1.1, 1500, 12, contexts, 0.25, 0.1, 0.15, 0.1));
        }
        // one GPU type, no selectors, spread or foreign use: where the lower bound is tightest
        specs.add(new FleetSpec(
                "uniform-a100-80",
                tiny ? 4 : 40,
                tiny ? 4 : 8,
                List.of(GpuType.A100_80),
                KnownModel.ALL,
                quants,
                1.1,
                tiny ? 12 : 250,
                8,
                contexts,
                0.25,
                0,
                0,
                0));
        specs.add(new FleetSpec(
                "memory-bound-repeated",
                tiny ? 2 : 20,
                tiny ? 4 : 8,
                List.of(GpuType.L4_24, GpuType.A100_40),
                small,
                List.of(Quant.Q4_K_M, Quant.Q8_0),
                1.1,
                tiny ? 8 : 128,
                16,
                List.of(2048, 4096),
                0.25,
                0,
                0,
                0.05));
        return specs;
    }

    static FleetSpec scaleSpec(boolean tiny) {
        return new FleetSpec(
                "scale",
                tiny ? 20 : 2000,
                8,
                List.of(GpuType.L4_24, GpuType.A100_40, GpuType.A100_80, GpuType.H100_80),
                KnownModel.ALL,
                List.of(Quant.F16, Quant.Q8_0, Quant.Q4_K_M),
                1.1,
                tiny ? 100 : 10_000,
                12,
                List.of(2048, 4096, 8192, 16384, 32768),
                0.25,
                0.1,
                0.15,
                0.1);
    }

    static InstanceResult runInstance(Fleet fleet) {
        PlanRequest req = fleet.request();
        PlanResult whole = new WholeDevicePacker().plan(req);
        PlanResult noSharing = new NoSharingPacker().plan(req);
        Packer stowagePlanner = new StowagePlanner();
        long t0 = System.nanoTime();
        PlanResult stowage = stowagePlanner.plan(req);
        double millis = (System.nanoTime() - t0) / 1e6;
        int memoryBound = LowerBound.devices(req);
        int computeBound = LowerBound.computeDevices(req);
        return new InstanceResult(
                fleet.name(),
                memoryBound >= computeBound,
                fleet.computeShare(),
                fleet.replicas(),
                fleet.devices().size(),
                whole.devicesUsed(),
                noSharing.devicesUsed(),
                stowage.devicesUsed(),
                Math.max(memoryBound, computeBound),
                millis,
                whole.refusals().size(),
                noSharing.refusals().size(),
                stowage.refusals().size());
    }

    ScaleResult runScale(Fleet fleet, int changes, long seed) {
        err.printf(
                Locale.ROOT,
                "bench: scale: %d replicas of %d deployments on %d GPUs%n",
                fleet.replicas(),
                fleet.deployments().size(),
                fleet.devices().size());
        Packer planner = new StowagePlanner();
        PlanRequest req = fleet.request();
        long t0 = System.nanoTime();
        PlanResult cold = planner.plan(req);
        double coldMs = (System.nanoTime() - t0) / 1e6;
        // the full-plan figure is the median of three runs after the first (JIT-compiled code)
        PlanResult warm = cold;
        double[] warmRuns = new double[3];
        double[] warmCpu = new double[3];
        for (int i = 0; i < warmRuns.length; i++) {
            long c0 = cpuNanos();
            t0 = System.nanoTime();
            warm = planner.plan(req);
            warmRuns[i] = (System.nanoTime() - t0) / 1e6;
            warmCpu[i] = (cpuNanos() - c0) / 1e6;
        }
        Arrays.sort(warmRuns);
        Arrays.sort(warmCpu);
        double warmMs = warmRuns[1];
        err.printf(
                Locale.ROOT,
                "bench: scale: full plan %.1f ms cold, %.1f ms warm; %d incremental changes%n",
                coldMs,
                warmMs,
                changes);

        // The operator keeps one planner with its ledger: changes go to a PlannerState that planned the
        // fleet once (its result is the pure planner's, so `warm` is the running state).
        PlannerState state = new PlannerState();
        state.plan(req);
        SplittableRandom rnd = new SplittableRandom(seed + 1);
        List<Deployment> deployments = new ArrayList<>(fleet.deployments());
        List<Placement> current = new ArrayList<>(warm.placements());
        // the first `changes` changes warm the incremental path up untimed; the next `changes` are timed
        double[] times = new double[changes];
        double[] cpu = new double[changes];
        for (int i = 0; i < 2 * changes; i++) {
            double r = rnd.nextDouble();
            int idx = rnd.nextInt(deployments.size());
            Deployment d = deployments.get(idx);
            if (r < 0.1) {
                deployments.add(withReplicas(d, d.id() + "-added-" + i, 1));
            } else if (r < 0.55 || d.replicas() == 0) {
                deployments.set(idx, withReplicas(d, d.id(), d.replicas() + 1));
            } else {
                ReplicaId gone = new ReplicaId(d.id(), d.replicas() - 1);
                current.removeIf(p -> p.replica().equals(gone));
                deployments.set(idx, withReplicas(d, d.id(), d.replicas() - 1));
            }
            PlanRequest change = new PlanRequest(fleet.devices(), deployments, current, false, 0);
            long c0 = cpuNanos();
            long s = System.nanoTime();
            PlanResult res = state.plan(change);
            long wallNanos = System.nanoTime() - s;
            long cpuNanos = cpuNanos() - c0;
            if (i >= changes) {
                times[i - changes] = wallNanos / 1e6;
                cpu[i - changes] = cpuNanos / 1e6;
            }
            current = new ArrayList<>(res.placements());
        }
        err.printf(
                Locale.ROOT,
                "bench: scale: %d of %d changes planned from scratch, the others on the kept ledger%n",
                state.plansFromScratch() - 1,
                2 * changes);
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        Arrays.sort(cpu);
        return new ScaleResult(
                fleet.replicas(),
                fleet.devices().size(),
                warm.placements().size(),
                coldMs,
                warmMs,
                changes,
                percentile(sorted, 0.50),
                percentile(sorted, 0.99),
                sorted[sorted.length - 1],
                changes,
                warmCpu[1],
                percentile(cpu, 0.50),
                percentile(cpu, 0.99));
    }

    /** The planning thread's CPU time, or 0 where the JVM cannot measure it (then the CPU figures read 0). */
    private static long cpuNanos() {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        return threads.isCurrentThreadCpuTimeSupported() ? threads.getCurrentThreadCpuTime() : 0;
    }

    /** Nearest-rank percentile of sorted values. */
    static double percentile(double[] sorted, double p) {
        int rank = (int) Math.ceil(p * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    static Deployment withReplicas(Deployment d, String id, int replicas) {
        return new Deployment(
                id,
                d.model(),
                d.kvBytesPerReplica(),
                replicas,
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    static String text(List<InstanceResult> results, ScaleResult scale) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                Locale.ROOT,
                "%-32s %5s %5s %8s %6s %9s %10s %8s %6s %9s %10s %9s  %s%n",
                "INSTANCE",
                "CAP",
                "MEM",
                "REPLICAS",
                "GPUS",
                "WHOLE-GPU",
                "NO-SHARING",
                "STOWAGE",
                "LOWER",
                "STOW/LOW",
                "NOSH/STOW",
                "PLAN ms",
                "REFUSED whole/nosh/stow"));
        for (InstanceResult r : results) {
            sb.append(String.format(
                    Locale.ROOT,
                    "%-32s %5.2f %5s %8d %6d %9d %10d %8d %6d %9.3f %10.2f %9.1f  %d/%d/%d%n",
                    r.name(),
                    r.computeCap(),
                    r.memoryBound() ? "yes" : "no",
                    r.replicas(),
                    r.devices(),
                    r.wholeGpu(),
                    r.noSharing(),
                    r.stowage(),
                    r.lowerBound(),
                    ratio(r.stowage(), r.lowerBound()),
                    ratio(r.noSharing(), r.stowage()),
                    r.planMillis(),
                    r.wholeGpuRefused(),
                    r.noSharingRefused(),
                    r.stowageRefused()));
        }
        sb.append("\nMEM: memory, not the compute cap, limits packing (memory lower bound >= compute bound).\n"
                + "LOWER: max(memory lower bound, compute lower bound). GPU counts are GPUs holding a replica.\n");
        if (scale != null) {
            sb.append(String.format(
                    Locale.ROOT,
                    "%nScale: %d replicas on %d GPUs (%d placed): full plan %.1f ms (median of 3 after a first run of %.1f ms;"
                            + " CPU %.1f ms);%n"
                            + "       %d incremental changes (after %d untimed): p50 %.2f ms, p99 %.2f ms, max %.2f ms;"
                            + " CPU p50 %.2f ms, p99 %.2f ms%n",
                    scale.replicas(),
                    scale.devices(),
                    scale.placed(),
                    scale.fullPlanMillis(),
                    scale.coldPlanMillis(),
                    scale.fullPlanCpuMillis(),
                    scale.changes(),
                    scale.warmupChanges(),
                    scale.incrementalP50Millis(),
                    scale.incrementalP99Millis(),
                    scale.incrementalMaxMillis(),
                    scale.incrementalCpuP50Millis(),
                    scale.incrementalCpuP99Millis()));
        }
        return sb.toString();
    }

    private static double ratio(int a, int b) {
        return b == 0 ? Double.NaN : (double) a / b;
    }

    static String json(List<InstanceResult> results, ScaleResult scale) {
        Json j = new Json().beginObject();
        j.name("instances").beginArray();
        for (InstanceResult r : results) {
            j.beginObject()
                    .field("name", r.name())
                    .field("memoryBound", r.memoryBound())
                    .field("computeCap", r.computeCap())
                    .field("replicas", r.replicas())
                    .field("devices", r.devices())
                    .field("wholeGpu", r.wholeGpu())
                    .field("noSharing", r.noSharing())
                    .field("stowage", r.stowage())
                    .field("lowerBound", r.lowerBound())
                    .field("planMillis", round(r.planMillis()))
                    .field("wholeGpuRefused", r.wholeGpuRefused())
                    .field("noSharingRefused", r.noSharingRefused())
                    .field("stowageRefused", r.stowageRefused())
                    .endObject();
        }
        j.endArray();
        if (scale == null) {
            j.name("fullPlanMillis").nullValue();
            j.name("incrementalP99Millis").nullValue();
        } else {
            j.field("fullPlanMillis", round(scale.fullPlanMillis()));
            j.field("incrementalP99Millis", round(scale.incrementalP99Millis()));
            j.name("scale")
                    .beginObject()
                    .field("replicas", scale.replicas())
                    .field("devices", scale.devices())
                    .field("placed", scale.placed())
                    .field("coldPlanMillis", round(scale.coldPlanMillis()))
                    .field("changes", scale.changes())
                    .field("incrementalP50Millis", round(scale.incrementalP50Millis()))
                    .field("incrementalMaxMillis", round(scale.incrementalMaxMillis()))
                    .field("warmupChanges", scale.warmupChanges())
                    .field("fullPlanCpuMillis", round(scale.fullPlanCpuMillis()))
                    .field("incrementalCpuP50Millis", round(scale.incrementalCpuP50Millis()))
                    .field("incrementalCpuP99Millis", round(scale.incrementalCpuP99Millis()))
                    .endObject();
        }
        return j.endObject().toString();
    }

    private static double round(double millis) {
        return Math.round(millis * 1000) / 1000.0;
    }
}
