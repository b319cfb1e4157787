package io.stowage.runtime.local;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.manifest.Scaling;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.DeviceUsage;
import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.PlanRequest;
import io.stowage.placement.plan.PlanResult;
import io.stowage.placement.plan.Refusal;
import io.stowage.placement.plan.StowagePlanner;
import io.stowage.runtime.host.ModelFetcher;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Local mode's placement: the LlmDeployment manifests of a directory, placed by the placement planner on this
 * machine's CPU budget, turned into the host assignment the server applies, with the table it prints.
 *
 * @param table the placement and memory breakdown, refused replicas last
 * @param warnings what local mode changed (a GPU request placed on the CPU); the manifest reader's own warnings stay
 *     in the {@link ManifestSet}
 * @param refusals one line per refused replica: {@code default/chat#1: needs ...}
 * @param scaling {@code spec.scaling} by deployment id, for the deployments that have one
 * @param startIdle deployments that scale to zero and fit this machine alone but not beside the others: they are in
 *     the assignment, start with no replica and no weights, and their first request evicts idle models (least
 *     recently used first) to make room
 */
public record LocalPlan(
        HostAssignment assignment,
        String table,
        List<String> warnings,
        List<String> refusals,
        Map<String, Scaling> scaling,
        Set<String> startIdle) {
    public LocalPlan {
        warnings = List.copyOf(warnings);
        refusals = List.copyOf(refusals);
        scaling = Map.copyOf(scaling);
        startIdle = Set.copyOf(startIdle);
    }

    /** A plan with no deployment that scales. */
    public LocalPlan(HostAssignment assignment, String table, List<String> warnings, List<String> refusals) {
        this(assignment, table, warnings, refusals, Map.of(), Set.of());
    }

    /** One deployment as planned here: its manifest, model file, header and memory breakdown. */
    record Planned(
            LlmDeploymentManifest manifest, Path file, ModelDescription model, long maxTokens, MemoryBreakdown b) {}

    /**
     * Places the manifests read (by ManifestReader) from dir on one CPU device of budgetBytes; models that are not local files are
     * downloaded first (their headers are needed to size them).
     *
     * @throws ManifestException no deployment at all, or a manifest or model problem, naming the file and field
     */
    public static LocalPlan of(ManifestSet set, Path dir, long budgetBytes, String node, ModelFetcher fetcher) {
        set.requireDeployments(dir);
        List<String> warnings = new ArrayList<>();
        MemoryModel memory = MemoryModel.withDefaults();
        List<Planned> planned = new ArrayList<>();
        List<Deployment> deployments = new ArrayList<>();
        for (LlmDeploymentManifest m : set.deployments()) {
            Path file;
            try {
                file = m.model().localFile() != null
                        ? fetcher.fetch(
                                m.model().localFile().toString(), m.model().sha256(), b -> {}, t -> {})
                        : fetcher.fetch(m.model().uri(), m.model().sha256(), b -> {}, t -> {});
            } catch (ModelFetcher.FetchException e) {
                throw new ManifestException(m.source() + ": spec.model.uri: " + e.getMessage());
            }
            ModelDescription d;
            try {
                d = ModelDescription.from(GgufReader.readFile(file));
            } catch (RuntimeException | IOException e) {
                throw new ManifestException(m.source() + ": spec.model.uri: cannot read the GGUF header of " + file
                        + ": " + e.getMessage());
            }
            // The same rules as the operator's and plan's (PlannerInput); local mode then serves it on this CPU.
            PlannerInput in = PlannerInput.of(m, d.shape(), memory);
            MemoryBreakdown b = in.memory();
            if (m.device() != DeviceRequest.CPU) {
                // The estimate for a GPU differs only in O_host, which the planner charges to the device.
                b = new MemoryBreakdown(
                        b.weightBytes(),
                        b.kvBytesPerToken(),
                        b.kvBytesPerReplica(),
                        b.workspaceBytes(),
                        memory.hostOverheadBytes(DeviceKind.CPU));
            }
            planned.add(new Planned(m, file, d, in.maxTokens(), b));
            DeviceRequest device = m.device();
            if (device == DeviceRequest.GPU) {
                // Local mode serves on this machine's CPU; a manifest written for a GPU cluster still runs here.
                warnings.add(m.source() + ": " + m.id() + " asks for a GPU; local mode places it on the CPU");
                device = DeviceRequest.ANY;
            }
            Deployment dep = in.deployment();
            // One machine: node selectors, tolerations and spread do not apply.
            deployments.add(new Deployment(
                    dep.id(),
                    dep.model(),
                    dep.kvBytesPerReplica(),
                    dep.replicas(),
                    dep.priority(),
                    Map.of(),
                    List.of(),
                    0,
                    device,
                    dep.computeShare()));
        }
        long overhead = memory.hostOverheadBytes(DeviceKind.CPU);
        Device cpu =
                new Device(node + "/cpu", node, DeviceKind.CPU, budgetBytes, 0, 0, overhead, 1.0, Map.of(), List.of());
        PlanResult result = new StowagePlanner().plan(PlanRequest.of(List.of(cpu), deployments));

        // A deployment that scales to zero and fits alone starts idle instead of refused: its first request swaps it
        // in.
        Map<String, Scaling> scaling = new LinkedHashMap<>();
        Set<String> startIdle = new TreeSet<>();
        List<Placement> placements = new ArrayList<>(result.placements());
        for (Planned p : planned) {
            LlmDeploymentManifest m = p.manifest();
            if (m.scaling() == null) {
                continue;
            }
            scaling.put(m.id(), m.scaling());
            long placed = result.placements().stream()
                    .filter(x -> x.replica().deployment().equals(m.id()))
                    .count();
            if (!m.scaling().scalesToZero() || placed > 0 || m.replicas() == 0) {
                continue;
            }
            PlanResult alone =
                    new StowagePlanner().plan(PlanRequest.of(List.of(cpu), List.of(deploymentOf(deployments, m.id()))));
            if (alone.refusals().isEmpty()) {
                startIdle.add(m.id());
                placements.addAll(alone.placements());
            }
        }

        Map<String, ModelAssignment> models = new LinkedHashMap<>();
        List<ReplicaAssignment> replicas = new ArrayList<>();
        for (Placement p : placements) {
            Planned pl = find(planned, p.replica().deployment());
            LlmDeploymentManifest m = pl.manifest();
            String digest = deploymentOf(deployments, m.id()).model().digest();
            models.computeIfAbsent(
                    digest,
                    k -> new ModelAssignment(
                            digest,
                            pl.file().toString(),
                            m.model().sha256(),
                            pl.b().weightBytes(),
                            pl.b().workspaceBytes()));
            replicas.add(new ReplicaAssignment(
                    p.replica().toString(),
                    m.id(),
                    m.servedModelName() != null ? m.servedModelName() : m.name(),
                    digest,
                    (int) pl.maxTokens(),
                    m.maxSequences(),
                    m.kvCacheType().label(),
                    pl.b().kvBytesPerReplica()));
        }
        List<String> refusals = new ArrayList<>();
        for (Refusal r : result.refusals()) {
            if (!startIdle.contains(r.replica().deployment())) {
                refusals.add(r.replica() + ": " + r.reason());
            }
        }
        // The host's budget excludes O_host, which the planner charged to the device.
        HostAssignment assignment =
                new HostAssignment(1, budgetBytes - overhead, List.copyOf(models.values()), replicas);
        return new LocalPlan(
                assignment,
                table(cpu, planned, result, startIdle) + scalingLines(planned, startIdle),
                warnings,
                refusals,
                scaling,
                startIdle);
    }

    /** One line per deployment that scales: its policy, and whether it starts idle. */
    static String scalingLines(List<Planned> planned, Set<String> startIdle) {
        StringBuilder sb = new StringBuilder();
        for (Planned p : planned) {
            Scaling sc = p.manifest().scaling();
            if (sc == null) {
                continue;
            }
            sb.append("scaling ")
                    .append(p.manifest().id())
                    .append(": down to ")
                    .append(sc.minReplicas())
                    .append(sc.minReplicas() == 1 ? " replica" : " replicas")
                    .append(" after ")
                    .append(Scaling.text(sc.idleTimeout()))
                    .append(" idle (the weights stay resident until the memory is needed)");
            if (startIdle.contains(p.manifest().id())) {
                sb.append("; starts idle: it fits this machine alone but not beside the others, so its first"
                        + " request evicts idle models (least recently used first)");
            } else if (sc.scalesToZero()) {
                sb.append("; a request activates it again");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private static Deployment deploymentOf(List<Deployment> deployments, String id) {
        return deployments.stream()
                .filter(x -> x.id().equals(id))
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("the planner placed an unknown deployment " + id));
    }

    private static Planned find(List<Planned> planned, String id) {
        for (Planned p : planned) {
            if (p.manifest().id().equals(id)) {
                return p;
            }
        }
        throw new IllegalStateException("the planner placed an unknown deployment " + id);
    }

    static String table(Device cpu, List<Planned> planned, PlanResult result) {
        return table(cpu, planned, result, Set.of());
    }

    static String table(Device cpu, List<Planned> planned, PlanResult result, Set<String> startIdle) {
        StringBuilder sb = new StringBuilder();
        DeviceUsage u = result.usage().stream()
                .filter(x -> x.deviceId().equals(cpu.id()))
                .findFirst()
                .orElse(null);
        long used = u == null ? 0 : u.usedBytes();
        sb.append(String.format(
                Locale.ROOT,
                "Placement on %s (budget %s): %d replicas, %s used (weights %s, KV %s, workspace %s, overhead %s),"
                        + " %s free%n",
                cpu.id(),
                ByteSize.human(cpu.capacityBytes()),
                result.placements().size(),
                ByteSize.human(used),
                ByteSize.human(u == null ? 0 : u.weightBytes()),
                ByteSize.human(u == null ? 0 : u.kvBytes()),
                ByteSize.human(u == null ? 0 : u.workspaceBytes()),
                ByteSize.human(u == null ? 0 : u.overheadBytes()),
                ByteSize.human(cpu.capacityBytes() - used)));
        String fmt = "%-28s %-20s %-22s %9s %12s %9s %10s %10s %12s%n";
        sb.append(String.format(
                Locale.ROOT,
                fmt,
                "DEPLOYMENT",
                "SERVED AS",
                "MODEL",
                "REPLICAS",
                "CONTEXT",
                "KV TYPE",
                "WEIGHTS",
                "KV/REPLICA",
                "WORKSPACE"));
        for (Planned p : planned) {
            long placed = result.placements().stream()
                    .filter(x -> x.replica().deployment().equals(p.manifest().id()))
                    .count();
            LlmDeploymentManifest m = p.manifest();
            String model = p.model().architecture()
                    + (p.model().quantization() == null ? "" : " " + p.model().quantization());
            sb.append(String.format(
                    Locale.ROOT,
                    fmt,
                    m.id(),
                    m.servedModelName() != null ? m.servedModelName() : m.name(),
                    model,
                    placed + "/" + m.replicas(),
                    p.maxTokens() + " x" + m.maxSequences(),
                    m.kvCacheType().label(),
                    ByteSize.human(p.b().weightBytes()),
                    ByteSize.human(p.b().kvBytesPerReplica()),
                    ByteSize.human(p.b().workspaceBytes())));
        }
        for (Refusal r : result.refusals()) {
            if (startIdle.contains(r.replica().deployment())) {
                continue; // listed by the scaling lines: it starts idle
            }
            sb.append("refused ")
                    .append(r.replica())
                    .append(": ")
                    .append(r.reason())
                    .append('\n');
        }
        return sb.toString();
    }
}
