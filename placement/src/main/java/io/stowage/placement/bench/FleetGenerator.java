package io.stowage.placement.bench;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Generates a realistic fleet from a {@link FleetSpec} and a seed: the same spec and seed give the
 * same fleet, byte for byte.
 */
public final class FleetGenerator {

    /** The node label that bench selectors use, as GPU Feature Discovery sets it. */
    public static final String PRODUCT_LABEL = "nvidia.com/gpu.product";

    private static final long GIB = 1L << 30;
    private static final long MIB = 1L << 20;

    private final MemoryModel memory = MemoryModel.withDefaults();

    /** A model at one quantization: the unit of Zipf popularity and of weight sharing. */
    record Variant(KnownModel model, KnownModel.Quant quant, ModelShape shape) {
        String digest() {
            return "bench:" + model.name() + ":" + quant.label;
        }
    }

    public Fleet generate(FleetSpec spec, long seed) {
        // the name is not mixed in: a capped and an uncapped instance of one recipe get the same fleet
        SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + spec.nodes() * 8191L + spec.targetReplicas());
        List<Device> devices = devices(spec, rnd);
        List<GpuType> present = new ArrayList<>(new TreeSet<>(spec.gpuMix()));
        present.removeIf(
                t -> devices.stream().noneMatch(d -> t.label.equals(d.labels().get(PRODUCT_LABEL))));
        long largest = devices.stream()
                .mapToLong(d -> d.capacityBytes() - d.hostOverheadBytes())
                .max()
                .orElse(0);

        List<Variant> variants = new ArrayList<>();
        for (KnownModel m : spec.models()) {
            for (KnownModel.Quant q : spec.quants()) {
                ModelShape shape = m.shape(q);
                if (cost(shape, 2048, 1, KvCacheType.F16).totalForOneReplica() <= largest) {
                    variants.add(new Variant(m, q, shape));
                }
            }
        }
        if (variants.isEmpty()) {
            throw new IllegalArgumentException("fleet " + spec.name() + ": no model fits its largest GPU");
        }
        // popularity rank is a seeded shuffle, so the most popular model differs between seeds
        for (int i = variants.size() - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            variants.set(i, variants.set(j, variants.get(i)));
        }
        double[] cumulative = new double[variants.size()];
        double sum = 0;
        for (int k = 0; k < variants.size(); k++) {
            sum += 1.0 / Math.pow(k + 1, spec.zipfExponent());
            cumulative[k] = sum;
        }

        List<Deployment> deployments = new ArrayList<>();
        int total = 0;
        int index = 0;
        while (total < spec.targetReplicas()) {
            Deployment d =
                    deployment(spec, rnd, variants, cumulative, sum, present, index++, spec.targetReplicas() - total);
            deployments.add(d);
            total += d.replicas();
        }
        return new Fleet(spec.name(), spec.computeShare(), devices, deployments);
    }

    private List<Device> devices(FleetSpec spec, SplittableRandom rnd) {
        List<Device> out = new ArrayList<>();
        for (int n = 0; n < spec.nodes(); n++) {
            GpuType type = spec.gpuMix().get(rnd.nextInt(spec.gpuMix().size()));
            String node = String.format("node-%04d", n);
            Map<String, String> labels = new LinkedHashMap<>();
            labels.put(PRODUCT_LABEL, type.label);
            labels.put("topology.kubernetes.io/zone", "zone-" + (n % 3));
            for (int g = 0; g < spec.gpusPerNode(); g++) {
                long foreign = rnd.nextDouble() < spec.foreignFraction() ? (1024 + rnd.nextInt(3 * 1024 + 1)) * MIB : 0;
                out.add(new Device(
                        node + "/gpu-" + g,
                        node,
                        DeviceKind.GPU,
                        type.memoryBytes(),
                        0,
                        foreign,
                        memory.hostOverheadBytes(DeviceKind.GPU),
                        1.0,
                        labels,
                        List.of()));
            }
        }
        return out;
    }

    private Deployment deployment(
            FleetSpec spec,
            SplittableRandom rnd,
            List<Variant> variants,
            double[] cumulative,
            double sum,
            List<GpuType> present,
            int index,
            int remaining) {
        for (int attempt = 0; ; attempt++) {
            Variant v = variants.get(zipf(rnd, cumulative, sum));
            int context = spec.contexts().get(rnd.nextInt(spec.contexts().size()));
            context = (int) Math.min(context, v.model().contextLength());
            double s = rnd.nextDouble();
            int sequences = s < 0.5 ? 1 : s < 0.75 ? 2 : 4;
            KvCacheType kv = rnd.nextDouble() < 0.2 ? KvCacheType.Q8_0 : KvCacheType.F16;
            MemoryBreakdown b = cost(v.shape(), context, sequences, kv);
            // GPU types one replica fits on, counting the worst foreign use (4 GiB)
            List<GpuType> fits = new ArrayList<>();
            for (GpuType t : present) {
                if (b.totalForOneReplica() + 4 * GIB <= t.memoryBytes()) {
                    fits.add(t);
                }
            }
            if (fits.isEmpty()) {
                if (attempt > 200) {
                    throw new IllegalStateException(
                            "fleet " + spec.name() + ": cannot generate a deployment that fits");
                }
                continue;
            }
            // geometric replica counts: many 1-2, a few large
            int replicas = 1;
            while (replicas < spec.maxReplicas() && rnd.nextDouble() < 0.6) {
                replicas++;
            }
            replicas = Math.min(replicas, remaining);
            int priority = rnd.nextDouble() < 0.1 ? 10 : 0;
            Map<String, String> selector = Map.of();
            if (rnd.nextDouble() < spec.selectorFraction()) {
                selector = Map.of(PRODUCT_LABEL, fits.get(rnd.nextInt(fits.size())).label);
            }
            int spread = rnd.nextDouble() < spec.spreadFraction() ? 1 + rnd.nextInt(2) : 0;
            String id =
                    String.format("team-%d/%s-%04d", index % 7, v.model().name().toLowerCase(), index);
            return MemoryModel.deployment(
                    id,
                    v.digest(),
                    b,
                    replicas,
                    priority,
                    selector,
                    List.of(),
                    spread,
                    DeviceRequest.GPU,
                    spec.computeShare());
        }
    }

    private MemoryBreakdown cost(ModelShape shape, int context, int sequences, KvCacheType kv) {
        return memory.estimate(shape, context, sequences, kv, DeviceKind.GPU);
    }

    private static int zipf(SplittableRandom rnd, double[] cumulative, double sum) {
        double x = rnd.nextDouble() * sum;
        for (int k = 0; k < cumulative.length; k++) {
            if (x < cumulative[k]) {
                return k;
            }
        }
        return cumulative.length - 1;
    }
}
