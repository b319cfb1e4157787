package io.stowage.placement.plan;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Seeded random planner inputs: GPUs of real sizes with labels, taints, reserve and foreign use, a few
 * CPU devices, and deployments that share models, with selectors, tolerations, spread and priorities.
 */
final class RandomFleets {
    private static final long MIB = 1L << 20;
    private static final long[] GPU_MIB = {15_360, 23_034, 40_960, 81_920};
    private static final String[] GPU_NAME = {"t4", "l4", "a100-40", "a100-80"};
    private static final double[] SHARES = {0, 0.1, 0.25, 0.25, 0.5};

    private RandomFleets() {}

    static List<Device> devices(Random rnd, int maxNodes) {
        List<Device> out = new ArrayList<>();
        int nodes = 1 + rnd.nextInt(maxNodes);
        for (int n = 0; n < nodes; n++) {
            String node = "node-" + n;
            int type = rnd.nextInt(GPU_MIB.length);
            List<Taint> taints = new ArrayList<>();
            double t = rnd.nextDouble();
            if (t < 0.15) taints.add(new Taint("dedicated", "ml", "NoSchedule"));
            else if (t < 0.20) taints.add(new Taint("maintenance", "", "NoExecute"));
            else if (t < 0.25) taints.add(new Taint("spot", "true", "PreferNoSchedule"));
            Map<String, String> labels = Map.of("gpu", GPU_NAME[type], "zone", rnd.nextBoolean() ? "a" : "b");
            int gpus = 1 + rnd.nextInt(4);
            for (int g = 0; g < gpus; g++) {
                long total = GPU_MIB[type] * MIB;
                long reserve = rnd.nextInt(4) == 0 ? total / 20 : 0;
                long foreign = rnd.nextInt(5) == 0 ? (long) (total * rnd.nextDouble() * 0.4) : 0;
                long overhead = (300 + rnd.nextInt(700)) * MIB;
                out.add(new Device(
                        node + "/gpu-" + g,
                        node,
                        DeviceKind.GPU,
                        total,
                        reserve,
                        foreign,
                        overhead,
                        1.0,
                        labels,
                        taints));
            }
            if (rnd.nextInt(5) == 0) {
                out.add(new Device(
                        node + "/cpu",
                        node,
                        DeviceKind.CPU,
                        (32 + rnd.nextInt(96)) * 1024 * MIB,
                        0,
                        0,
                        200 * MIB,
                        1.0,
                        labels,
                        taints));
            }
        }
        return out;
    }

    static List<Deployment> deployments(Random rnd, int maxDeployments, String prefix) {
        int models = 1 + rnd.nextInt(4);
        List<ModelRef> refs = new ArrayList<>();
        for (int m = 0; m < models; m++) {
            long w = (500 + rnd.nextInt(30_000)) * MIB;
            long a = (50 + rnd.nextInt(1500)) * MIB;
            refs.add(new ModelRef("sha256:m" + m + "-" + w, w, a));
        }
        List<Deployment> out = new ArrayList<>();
        int n = 1 + rnd.nextInt(maxDeployments);
        for (int i = 0; i < n; i++) {
            // Skewed popularity: low model indices are picked more often, so deployments share models.
            ModelRef model = refs.get((int) Math.floor(Math.pow(rnd.nextDouble(), 2) * refs.size()));
            long kv = (64 + rnd.nextInt(8_000)) * MIB;
            Map<String, String> selector =
                    rnd.nextInt(5) == 0 ? Map.of("gpu", GPU_NAME[rnd.nextInt(GPU_NAME.length)]) : Map.of();
            List<Toleration> tolerations = new ArrayList<>();
            if (rnd.nextInt(3) == 0) tolerations.add(new Toleration("dedicated", "Exists", null, null));
            if (rnd.nextInt(10) == 0) tolerations.add(new Toleration(null, "Exists", null, null));
            int spread = rnd.nextInt(5) == 0 ? 1 + rnd.nextInt(2) : 0;
            int kind = rnd.nextInt(10);
            DeviceRequest request = kind == 0 ? DeviceRequest.CPU : kind == 1 ? DeviceRequest.ANY : DeviceRequest.GPU;
            out.add(new Deployment(
                    prefix + "d" + i,
                    model,
                    kv,
                    rnd.nextInt(7),
                    rnd.nextInt(4),
                    selector,
                    tolerations,
                    spread,
                    request,
                    SHARES[rnd.nextInt(SHARES.length)]));
        }
        return out;
    }

    static PlanRequest request(long seed) {
        Random rnd = new Random(seed);
        return PlanRequest.of(devices(rnd, 6), deployments(rnd, 8, "ns/"));
    }

    /** The same request with every list in another order. */
    static PlanRequest shuffled(PlanRequest r, long seed) {
        Random rnd = new Random(seed);
        List<Device> devices = new ArrayList<>(r.devices());
        List<Deployment> deployments = new ArrayList<>(r.deployments());
        List<Placement> current = new ArrayList<>(r.current());
        Collections.shuffle(devices, rnd);
        Collections.shuffle(deployments, rnd);
        Collections.shuffle(current, rnd);
        return new PlanRequest(devices, deployments, current, r.rebalance(), r.maxDisruption());
    }
}
