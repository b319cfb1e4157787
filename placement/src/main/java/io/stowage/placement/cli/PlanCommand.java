package io.stowage.placement.cli;

import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.manifest.Inventory;
import io.stowage.placement.manifest.InventoryReader;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.placement.manifest.ModelCatalog;
import io.stowage.placement.manifest.PlacementsReader;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceUsage;
import io.stowage.placement.plan.Eviction;
import io.stowage.placement.plan.IdleCopy;
import io.stowage.placement.plan.IdleEviction;
import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.PlanRequest;
import io.stowage.placement.plan.PlanResult;
import io.stowage.placement.plan.Reclaim;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.StowagePlanner;
import io.stowage.placement.plan.Toleration;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/** The {@code plan} command: a dry run of placing LlmDeployment manifests on a device inventory. */
public final class PlanCommand {

    public static final int EXIT_PLACED = 0;
    public static final int EXIT_INVALID_INPUT = 1;
    public static final int EXIT_USAGE = 2;
    public static final int EXIT_REFUSED = 3;

    static final String DEFAULT_CATALOG = "models.yaml";

    static final String HELP = """
            usage: ./stowage plan -f FILE_OR_DIR --devices INVENTORY [--models CATALOG] [--current FILE]
                                  [--fetch-headers] [--json]

            Places the LlmDeployment manifests of FILE_OR_DIR (a multi-document YAML file, or a
            directory of *.yaml/*.yml files) on the devices of INVENTORY with Stowage's planner and
            prints, per device, the replicas placed and the memory used and free, then each
            deployment's memory breakdown, then refused replicas and evictions with their reasons.
            Nothing is changed anywhere: this is the dry run to put in CI before a GitOps sync.

            Options:
              -f, --file FILE_OR_DIR   LlmDeployment manifests (required)
              --devices INVENTORY      device inventory, YAML or CSV (required): device entries
                                       (node, id, kind, memory, count, reserve, foreign, labels,
                                       taints) or Kubernetes Nodes with GPU Feature Discovery labels
              --models CATALOG         model header summaries keyed by model URI, for models whose
                                       file plan cannot read (hf://, s3://, pvc://, or http(s)
                                       without --fetch-headers). Default: models.yaml beside the
                                       manifests file (inside the directory for -f DIR), if present
              --current FILE           the replicas running now, as the "placements" list of a
                                       previous `plan --json` ({"replica": "ns/name#0",
                                       "device": "node/gpu-0"}); they stay where they are unless a
                                       higher-priority replica evicts them (listed with the reason).
                                       Its "idle" list names deployments scaled to zero whose weights
                                       are still resident ({"deployment": "ns/name", "device":
                                       "node/gpu-0", "lastUsed": "2026-01-01T10:00:00Z"}): their memory
                                       is reclaimable, and the plan lists the idle copies it evicts
                                       (least recently used first) to place the others, with bytes
              --fetch-headers          read the GGUF header of http(s) models over the network
                                       (Range requests: the header only, not the weights)
              --json                   print one JSON document instead of tables
              -h, --help               this help

            Model facts come from the GGUF header of a local file (file:// or a path relative to
            the manifest), else from the catalog.

            Exit status:
              0  every replica is placed
              1  invalid input (a manifest, inventory or catalog error; the message names the field)
              2  usage error
              3  some replicas are refused (CI pipelines can fail the sync on this)
            """;

    private final PrintStream out;
    private final PrintStream err;

    PlanCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** One deployment as planned: the manifest, its model facts, its breakdown and the planner's view. */
    record Planned(
            LlmDeploymentManifest manifest,
            ModelFacts facts,
            long maxTokens,
            MemoryBreakdown breakdown,
            Deployment deployment) {}

    int run(String[] argv) {
        CliArgs args = CliArgs.parse(
                argv,
                Set.of("--file", "--devices", "--models", "--current"),
                Set.of("--json", "--fetch-headers", "--help"),
                Map.of("-f", "--file", "-h", "--help"));
        if (args.has("--help")) {
            out.print(HELP);
            return 0;
        }
        Path manifests = Path.of(args.required("--file"));
        Path devices = Path.of(args.required("--devices"));
        boolean json = args.has("--json");
        List<String> warnings = new ArrayList<>();
        try {
            ManifestSet set = ManifestReader.read(manifests);
            warnings.addAll(set.warnings());
            // A dry run that checks nothing must not pass a CI gate (an empty file, a kind typo).
            set.requireDeployments(manifests);
            Inventory inventory =
                    InventoryReader.read(devices, MemoryModel.withDefaults().parameters());
            warnings.addAll(inventory.warnings());
            Path catalogPath = catalogPath(args.value("--models"), manifests);
            ModelCatalog catalog = catalogPath == null ? ModelCatalog.empty() : ModelCatalog.read(catalogPath);
            warnings.addAll(catalog.warnings());
            ModelResolver resolver = new ModelResolver(
                    catalog, catalogPath == null ? null : catalogPath.toString(), args.has("--fetch-headers"));

            List<Planned> planned = planDeployments(set.deployments(), resolver);
            Idle idle = args.value("--current") == null
                    ? Idle.NONE
                    : idle(PlacementsReader.readIdle(Path.of(args.value("--current"))), planned, warnings);
            List<Placement> current = args.value("--current") == null
                    ? List.of()
                    : running(
                            PlacementsReader.read(Path.of(args.value("--current"))),
                            inventory.devices(),
                            planned,
                            warnings);
            current = withoutIdle(current, idle, warnings);
            PlanRequest request = new PlanRequest(
                    inventory.devices(),
                    planned.stream()
                            .map(p -> idle.deployments().contains(p.manifest().id())
                                    ? scaledToZero(p.deployment())
                                    : p.deployment())
                            .toList(),
                    current,
                    false,
                    0);
            PlanResult result = new StowagePlanner().plan(request);
            Reclaim reclaim = Reclaim.of(result, inventory.devices(), idle.copies());
            for (String w : warnings) {
                err.println("warning: " + w);
            }
            if (json) {
                out.println(json(inventory.devices(), planned, result, warnings, reclaim, idle));
            } else {
                out.print(text(inventory.devices(), planned, result, reclaim, idle));
            }
            return result.refusals().isEmpty() ? EXIT_PLACED : EXIT_REFUSED;
        } catch (ManifestException e) {
            for (String w : warnings) {
                err.println("warning: " + w);
            }
            err.println("stowage plan: " + e.getMessage());
            return EXIT_INVALID_INPUT;
        } catch (IOException e) {
            err.println("stowage plan: cannot read input: " + e);
            return EXIT_INVALID_INPUT;
        }
    }

    /**
     * The running replicas that still exist: a placement on a device not in the inventory, of a
     * deployment not in the manifests, or beyond its new replica count is dropped with a warning.
     */
    static List<Placement> running(
            List<Placement> given, List<Device> devices, List<Planned> planned, List<String> warnings) {
        Set<String> deviceIds = new HashSet<>();
        devices.forEach(d -> deviceIds.add(d.id()));
        Map<String, Integer> replicas = new HashMap<>();
        planned.forEach(p -> replicas.put(p.manifest().id(), p.manifest().replicas()));
        List<Placement> kept = new ArrayList<>();
        for (Placement p : given) {
            Integer n = replicas.get(p.replica().deployment());
            if (!deviceIds.contains(p.deviceId())) {
                warnings.add("--current: " + p.replica() + " runs on " + p.deviceId()
                        + ", which is not in the inventory; it is planned afresh");
            } else if (n == null) {
                warnings.add("--current: " + p.replica()
                        + " belongs to no deployment in the manifests; it would be removed");
            } else if (p.replica().index() >= n) {
                warnings.add("--current: " + p.replica() + " is beyond replicas: " + n + "; it would be removed");
            } else {
                kept.add(p);
            }
        }
        return kept;
    }

    /**
     * The idle copies of a {@code --current} file: the deployments scaled to zero (planned with no replica) and
     * their models' resident copies, one per model and device (the latest use of the deployments sharing it).
     *
     * @param names digest → the idle deployments that share it, for the output
     */
    record Idle(Set<String> deployments, List<IdleCopy> copies, Map<String, Set<String>> names) {
        static final Idle NONE = new Idle(Set.of(), List.of(), Map.of());
    }

    static Idle idle(List<PlacementsReader.Idle> given, List<Planned> planned, List<String> warnings) {
        Map<String, Planned> byId = new HashMap<>();
        planned.forEach(p -> byId.put(p.manifest().id(), p));
        Set<String> deployments = new HashSet<>();
        Map<String, IdleCopy> copies = new TreeMap<>();
        Map<String, Set<String>> names = new HashMap<>();
        for (PlacementsReader.Idle i : given) {
            Planned p = byId.get(i.deployment());
            if (p == null) {
                warnings.add("--current: idle " + i.deployment()
                        + " belongs to no deployment in the manifests; its copy on " + i.device() + " is ignored");
                continue;
            }
            if (p.manifest().scaling() == null || !p.manifest().scaling().scalesToZero()) {
                warnings.add("--current: idle " + i.deployment()
                        + " has no spec.scaling.minReplicas: 0, so it does not stay idle; its replicas are planned");
                continue;
            }
            deployments.add(i.deployment());
            String digest = p.deployment().model().digest();
            names.computeIfAbsent(digest, k -> new TreeSet<>()).add(i.deployment());
            copies.merge(
                    i.device() + " " + digest,
                    new IdleCopy(i.device(), p.deployment().model(), i.lastUsedMillis()),
                    (a, b) -> a.lastUsedMillis() >= b.lastUsedMillis() ? a : b);
        }
        return new Idle(deployments, List.copyOf(copies.values()), names);
    }

    /** The running placements without those of idle deployments (scaled to zero, they run no replica). */
    private static List<Placement> withoutIdle(List<Placement> current, Idle idle, List<String> warnings) {
        List<Placement> out = new ArrayList<>();
        for (Placement p : current) {
            if (idle.deployments().contains(p.replica().deployment())) {
                warnings.add("--current: " + p.replica() + " is listed as running but its deployment as idle;"
                        + " it is taken as idle (scaled to zero)");
            } else {
                out.add(p);
            }
        }
        return out;
    }

    private static Deployment scaledToZero(Deployment d) {
        return new Deployment(
                d.id(),
                d.model(),
                d.kvBytesPerReplica(),
                0,
                d.priority(),
                d.nodeSelector(),
                d.tolerations(),
                d.maxReplicasPerNode(),
                d.device(),
                d.computeShare());
    }

    /** {@code --models} as given, else models.yaml beside the manifests file (or inside the directory), if present. */
    static Path catalogPath(String given, Path manifests) {
        if (given != null) {
            return Path.of(given);
        }
        Path dir = Files.isDirectory(manifests)
                ? manifests
                : manifests.toAbsolutePath().getParent();
        if (dir == null) {
            return null;
        }
        Path candidate = dir.resolve(DEFAULT_CATALOG);
        if (!Files.isRegularFile(candidate)) {
            return null;
        }
        // print it relative when the manifests path was relative, for shorter messages
        return Files.isDirectory(manifests) ? manifests.resolve(DEFAULT_CATALOG) : siblingOf(manifests);
    }

    private static Path siblingOf(Path file) {
        Path parent = file.getParent();
        return parent == null ? Path.of(DEFAULT_CATALOG) : parent.resolve(DEFAULT_CATALOG);
    }

    static List<Planned> planDeployments(List<LlmDeploymentManifest> manifests, ModelResolver resolver) {
        MemoryModel memory = MemoryModel.withDefaults();
        List<Planned> out = new ArrayList<>();
        for (LlmDeploymentManifest m : manifests) {
            ModelFacts facts = resolver.resolve(m);
            // The same rules as the operator's (PlannerInput): what plan prints is what the cluster does.
            PlannerInput in = PlannerInput.of(m, facts.shape(), memory);
            out.add(new Planned(m, facts, in.maxTokens(), in.memory(), in.deployment()));
        }
        return out;
    }

    /** Replicas placed per device: device id → deployment id → count, in id order. */
    static Map<String, Map<String, Integer>> replicasByDevice(PlanResult result) {
        Map<String, Map<String, Integer>> by = new HashMap<>();
        for (Placement p : result.placements()) {
            by.computeIfAbsent(p.deviceId(), k -> new TreeMap<>())
                    .merge(p.replica().deployment(), 1, Integer::sum);
        }
        return by;
    }

    static String text(List<Device> devices, List<Planned> planned, PlanResult result) {
        return text(devices, planned, result, Reclaim.of(result, devices, List.of()), Idle.NONE);
    }

    static String text(List<Device> devices, List<Planned> planned, PlanResult result, Reclaim reclaim, Idle idle) {
        Map<String, DeviceUsage> usage = new HashMap<>();
        for (DeviceUsage u : result.usage()) {
            usage.put(u.deviceId(), u);
        }
        Map<String, Map<String, Integer>> byDevice = replicasByDevice(result);
        StringBuilder sb = new StringBuilder();

        Table t = new Table("DEVICE", "NODE", "KIND", "MODELS", "REPLICAS>", "USED>", "FREE>", "CAPACITY>", "COMPUTE>");
        int used = 0;
        for (Device d : devices) {
            DeviceUsage u = usage.get(d.id());
            Map<String, Integer> reps = byDevice.getOrDefault(d.id(), Map.of());
            int n = reps.values().stream().mapToInt(Integer::intValue).sum();
            if (n > 0) {
                used++;
            }
            long usedBytes = u == null ? 0 : u.usedBytes();
            StringBuilder models = new StringBuilder();
            reps.forEach((dep, c) -> models.append(models.isEmpty() ? "" : ", ")
                    .append(dep)
                    .append(" x")
                    .append(c));
            t.row(
                    d.id(),
                    d.node(),
                    d.kind().name().toLowerCase(Locale.ROOT),
                    models.isEmpty() ? "-" : models,
                    n,
                    ByteSize.human(usedBytes),
                    ByteSize.human(d.capacityBytes() - usedBytes),
                    ByteSize.human(d.capacityBytes()),
                    String.format(Locale.ROOT, "%.2f", u == null ? 0.0 : u.computeUsed()));
        }
        sb.append("Placement\n").append(t.render());

        Table m = new Table(
                "DEPLOYMENT",
                "MODEL",
                "REPLICAS>",
                "CONTEXT>",
                "KV TYPE",
                "WEIGHTS>",
                "KV/REPLICA>",
                "WORKSPACE>",
                "OVERHEAD>",
                "TOTAL/REPLICA>");
        Map<String, Integer> placedCount = new HashMap<>();
        for (Placement p : result.placements()) {
            placedCount.merge(p.replica().deployment(), 1, Integer::sum);
        }
        int wanted = 0;
        int placed = 0;
        for (Planned p : planned) {
            MemoryBreakdown b = p.breakdown();
            int pc = placedCount.getOrDefault(p.manifest().id(), 0);
            // a deployment scaled to zero asks for no replica until a request activates it
            wanted += idle.deployments().contains(p.manifest().id())
                    ? 0
                    : p.manifest().replicas();
            placed += pc;
            m.row(
                    p.manifest().id(),
                    modelLabel(p),
                    pc + "/" + p.manifest().replicas(),
                    p.maxTokens() + " x" + p.manifest().maxSequences(),
                    p.manifest().kvCacheType().label(),
                    ByteSize.human(b.weightBytes()),
                    ByteSize.human(b.kvBytesPerReplica()),
                    ByteSize.human(b.workspaceBytes()),
                    ByteSize.human(b.hostOverheadBytes()),
                    ByteSize.human(b.totalForOneReplica()));
        }
        sb.append("\nMemory per deployment (weights are shared by the replicas on one device)\n")
                .append(m.render());

        if (!result.evictions().isEmpty()) {
            sb.append("\nEvictions\n");
            for (Eviction e : result.evictions()) {
                sb.append("  ")
                        .append(e.victim())
                        .append(" on ")
                        .append(e.deviceId())
                        .append(" for ")
                        .append(e.forReplica())
                        .append(": ")
                        .append(e.reason())
                        .append('\n');
            }
        }
        idleText(sb, reclaim, idle);
        if (!result.refusals().isEmpty()) {
            sb.append("\nRefused\n");
            for (Refusal r : result.refusals()) {
                sb.append("  ")
                        .append(r.replica())
                        .append(": ")
                        .append(r.reason())
                        .append('\n');
            }
        }
        sb.append('\n')
                .append(placed)
                .append(" of ")
                .append(wanted)
                .append(" replicas placed on ")
                .append(used)
                .append(" of ")
                .append(devices.size())
                .append(" devices");
        if (!idle.deployments().isEmpty()) {
            sb.append("; ")
                    .append(idle.deployments().size())
                    .append(" deployment")
                    .append(idle.deployments().size() == 1 ? "" : "s")
                    .append(" scaled to zero");
        }
        if (!result.refusals().isEmpty()) {
            sb.append("; ").append(result.refusals().size()).append(" refused (exit status 3)");
        }
        sb.append('\n');
        return sb.toString();
    }

    /** The idle copies: evicted (with bytes and why), kept (reclaimable) and placed again. */
    private static void idleText(StringBuilder sb, Reclaim reclaim, Idle idle) {
        if (reclaim.evictions().isEmpty()
                && reclaim.kept().isEmpty()
                && reclaim.reactivated().isEmpty()) {
            return;
        }
        sb.append("\nIdle copies (deployments scaled to zero, weights resident: reclaimable)\n");
        for (IdleEviction e : reclaim.evictions()) {
            sb.append("  evict ")
                    .append(idleName(idle, e.copy()))
                    .append(" on ")
                    .append(e.deviceId())
                    .append(": ")
                    .append(ByteSize.human(e.bytes()))
                    .append(" (")
                    .append(e.bytes())
                    .append(" bytes): ")
                    .append(e.reason())
                    .append('\n');
        }
        for (IdleCopy c : reclaim.kept()) {
            sb.append("  keep  ")
                    .append(idleName(idle, c))
                    .append(" on ")
                    .append(c.deviceId())
                    .append(": ")
                    .append(ByteSize.human(c.bytes()))
                    .append(" reclaimable\n");
        }
        for (IdleCopy c : reclaim.reactivated()) {
            sb.append("  reuse ")
                    .append(idleName(idle, c))
                    .append(" on ")
                    .append(c.deviceId())
                    .append(": ")
                    .append(ByteSize.human(c.bytes()))
                    .append(", the plan places its model there again\n");
        }
    }

    private static String idleName(Idle idle, IdleCopy c) {
        Set<String> names = idle.names().get(c.model().digest());
        return names == null || names.isEmpty() ? c.model().digest() : String.join(", ", names);
    }

    private static String modelLabel(Planned p) {
        StringBuilder s = new StringBuilder(p.facts().shape().architecture());
        if (p.facts().parameters() > 0) {
            s.append(String.format(Locale.ROOT, " %.1fB", p.facts().parameters() / 1e9));
        }
        if (p.facts().quantization() != null) {
            s.append(' ').append(p.facts().quantization());
        }
        return s.toString();
    }

    static String json(List<Device> devices, List<Planned> planned, PlanResult result, List<String> warnings) {
        return json(devices, planned, result, warnings, Reclaim.of(result, devices, List.of()), Idle.NONE);
    }

    static String json(
            List<Device> devices,
            List<Planned> planned,
            PlanResult result,
            List<String> warnings,
            Reclaim reclaim,
            Idle idle) {
        Map<String, DeviceUsage> usage = new HashMap<>();
        for (DeviceUsage u : result.usage()) {
            usage.put(u.deviceId(), u);
        }
        Map<String, Map<String, Integer>> byDevice = replicasByDevice(result);
        Json j = new Json().beginObject();
        j.field("allPlaced", result.refusals().isEmpty());
        j.name("devices").beginArray();
        for (Device d : devices) {
            DeviceUsage u = usage.get(d.id());
            long usedBytes = u == null ? 0 : u.usedBytes();
            j.beginObject()
                    .field("id", d.id())
                    .field("node", d.node())
                    .field("kind", d.kind().name().toLowerCase(Locale.ROOT))
                    .field("capacityBytes", d.capacityBytes())
                    .field("usedBytes", usedBytes)
                    .field("freeBytes", d.capacityBytes() - usedBytes)
                    .field("computeUsed", u == null ? 0.0 : u.computeUsed())
                    .field("reclaimableBytes", reclaim.reclaimableBytes().getOrDefault(d.id(), 0L));
            j.name("replicas").beginObject();
            for (Map.Entry<String, Integer> e :
                    byDevice.getOrDefault(d.id(), Map.of()).entrySet()) {
                j.field(e.getKey(), e.getValue());
            }
            j.endObject().endObject();
        }
        j.endArray();
        Map<String, Integer> placedCount = new LinkedHashMap<>();
        for (Placement p : result.placements()) {
            placedCount.merge(p.replica().deployment(), 1, Integer::sum);
        }
        j.name("deployments").beginArray();
        for (Planned p : planned) {
            MemoryBreakdown b = p.breakdown();
            j.beginObject()
                    .field("id", p.manifest().id())
                    .field("servedModelName", p.manifest().servedModelName())
                    .field("source", p.manifest().source())
                    .field("modelUri", p.manifest().model().uri())
                    .field("digest", p.deployment().model().digest())
                    .field("architecture", p.facts().shape().architecture())
                    .field("quantization", p.facts().quantization())
                    .field("parameters", p.facts().parameters())
                    .field("modelFactsFrom", p.facts().source())
                    .field("replicas", p.manifest().replicas())
                    .field("placed", placedCount.getOrDefault(p.manifest().id(), 0))
                    .field("maxTokens", p.maxTokens())
                    .field("maxSequences", p.manifest().maxSequences())
                    .field("kvCacheType", p.manifest().kvCacheType().label())
                    .field("weightBytes", b.weightBytes())
                    .field("kvBytesPerToken", b.kvBytesPerToken())
                    .field("kvBytesPerReplica", b.kvBytesPerReplica())
                    .field("workspaceBytes", b.workspaceBytes())
                    .field("hostOverheadBytes", b.hostOverheadBytes())
                    .field("totalForOneReplica", b.totalForOneReplica())
                    .field("priority", p.deployment().priority())
                    .field("computeShare", p.deployment().computeShare())
                    .field("maxReplicasPerNode", p.deployment().maxReplicasPerNode())
                    .field("device", p.deployment().device().name().toLowerCase(Locale.ROOT));
            j.name("nodeSelector").beginObject();
            new TreeMap<>(p.deployment().nodeSelector()).forEach(j::field);
            j.endObject();
            j.name("tolerations").beginArray();
            for (Toleration t : p.deployment().tolerations()) {
                j.beginObject()
                        .field("key", t.key())
                        .field("operator", t.operator())
                        .field("value", t.value())
                        .field("effect", t.effect())
                        .endObject();
            }
            j.endArray().endObject();
        }
        j.endArray();
        j.name("placements").beginArray();
        for (Placement p : result.placements()) {
            j.beginObject()
                    .field("replica", p.replica().toString())
                    .field("device", p.deviceId())
                    .endObject();
        }
        j.endArray();
        j.name("refusals").beginArray();
        for (Refusal r : result.refusals()) {
            j.beginObject()
                    .field("replica", r.replica().toString())
                    .field("neededBytes", r.neededBytes())
                    .field("neededCompute", r.neededCompute())
                    .field("bestDevice", r.bestDeviceId())
                    .field("bestFreeBytes", r.bestFreeBytes())
                    .field("reason", r.reason())
                    .endObject();
        }
        j.endArray();
        j.name("evictions").beginArray();
        for (Eviction e : result.evictions()) {
            j.beginObject()
                    .field("victim", e.victim().toString())
                    .field("device", e.deviceId())
                    .field("for", e.forReplica().toString())
                    .field("reason", e.reason())
                    .endObject();
        }
        j.endArray();
        // "idle" is read back by --current: the copies still resident after this plan
        j.name("idle").beginArray();
        for (IdleCopy c : reclaim.kept()) {
            for (String name : idle.names().getOrDefault(c.model().digest(), Set.of())) {
                idleJson(j, name, c).endObject();
            }
        }
        j.endArray();
        j.name("idleEvictions").beginArray();
        for (IdleEviction e : reclaim.evictions()) {
            for (String name : idle.names().getOrDefault(e.copy().model().digest(), Set.of())) {
                idleJson(j, name, e.copy()).field("reason", e.reason()).endObject();
            }
        }
        j.endArray();
        j.name("warnings").beginArray();
        for (String w : warnings) {
            j.value(w);
        }
        j.endArray();
        return j.endObject().toString();
    }

    private static Json idleJson(Json j, String deployment, IdleCopy c) {
        return j.beginObject()
                .field("deployment", deployment)
                .field("device", c.deviceId())
                .field(
                        "lastUsed",
                        java.time.Instant.ofEpochMilli(c.lastUsedMillis()).toString())
                .field("digest", c.model().digest())
                .field("bytes", c.bytes());
    }
}
