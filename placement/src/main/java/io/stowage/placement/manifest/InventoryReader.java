package io.stowage.placement.manifest;

import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads a device inventory for {@code plan}: YAML or CSV.
 *
 * <p>YAML documents are either an inventory ({@code defaults}, {@code devices}, {@code nodes}), a
 * Kubernetes {@code Node}, or a {@code List}/{@code NodeList} of Nodes. A device entry has {@code
 * node}, {@code id}, {@code kind} (gpu/cpu), {@code memory} (bytes or "80Gi", "81559MiB"), optional
 * {@code count} (expands to ids {@code id-0 … id-(count−1)}), {@code reserve} (a fraction, "5%", a
 * floor such as "1Gi", or {@code {fraction, floor}}: the larger applies), {@code foreign} (bytes used
 * by others), {@code compute} (default 1.0), {@code labels} and {@code taints}. A Node entry takes
 * its GPUs from GPU Feature Discovery labels: {@code nvidia.com/gpu.memory} (MiB per GPU) and
 * {@code nvidia.com/gpu.count} (else {@code status.allocatable["nvidia.com/gpu"]} divided by
 * {@code nvidia.com/gpu.replicas}, else 1): physical GPUs, so time-slicing never multiplies memory, and an
 * MPS-shared GPU ({@code nvidia.com/gpu.sharing-strategy: mps}) is {@code replicas} devices of its memory's
 * share; its labels and {@code spec.taints}; an optional {@code stowage: {reserve, foreign}} map applies to its
 * GPUs. Device ids are {@code node/id} (Node GPUs: {@code node/gpu-N}).
 *
 * <p>CSV: a header row naming columns among {@code node,id,kind,memory,count,reserve,foreign,
 * compute,labels,taints} ({@code node} and {@code memory} required), then one device (or {@code
 * count} devices) per row; labels are {@code k=v;k=v}, taints {@code k=v:Effect;k:Effect}; no
 * quoting; lines starting with {@code #} are comments.
 */
public final class InventoryReader {

    public static final String GFD_MEMORY = "nvidia.com/gpu.memory";
    public static final String GFD_COUNT = "nvidia.com/gpu.count";
    public static final String GPU_RESOURCE = "nvidia.com/gpu";
    public static final String GFD_REPLICAS = "nvidia.com/gpu.replicas";
    public static final String GFD_SHARING = "nvidia.com/gpu.sharing-strategy";

    static final int MAX_COUNT = 1024;

    private static final Set<String> INVENTORY = Set.of("defaults", "devices", "nodes");
    private static final Set<String> DEFAULTS = Set.of("reserve", "foreign", "compute");
    private static final Set<String> DEVICE =
            Set.of("node", "id", "kind", "memory", "count", "reserve", "foreign", "compute", "labels", "taints");
    private static final Set<String> RESERVE = Set.of("fraction", "floor");
    private static final Set<String> TAINT = Set.of("key", "value", "effect", "timeAdded");
    static final List<String> CSV_COLUMNS =
            List.of("node", "id", "kind", "memory", "count", "reserve", "foreign", "compute", "labels", "taints");

    private final MemoryParameters parameters;
    private final List<String> warnings = new ArrayList<>();
    private final List<Device> devices = new ArrayList<>();
    private final Map<String, String> seen = new HashMap<>();

    private InventoryReader(MemoryParameters parameters) {
        this.parameters = parameters;
    }

    /** Reads {@code file}: CSV when its name ends in {@code .csv}, else YAML. */
    public static Inventory read(Path file, MemoryParameters parameters) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new ManifestException(file + ": no such file");
        }
        String text = Files.readString(file, StandardCharsets.UTF_8);
        return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv")
                ? parseCsv(file.toString(), text, parameters)
                : parseYaml(file.toString(), text, parameters);
    }

    public static Inventory parseYaml(String label, String text, MemoryParameters parameters) {
        InventoryReader r = new InventoryReader(parameters);
        List<Object> docs = YamlFields.loadAll(label, text);
        for (int i = 0; i < docs.size(); i++) {
            if (docs.get(i) != null) {
                r.document(new YamlFields(label + " doc " + (i + 1), r.warnings), docs.get(i));
            }
        }
        return r.finish(label);
    }

    public static Inventory parseCsv(String label, String text, MemoryParameters parameters) {
        InventoryReader r = new InventoryReader(parameters);
        String[] lines = text.split("\r?\n", -1);
        List<String> header = null;
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            YamlFields f = new YamlFields(label + " line " + (i + 1), r.warnings);
            String[] cells = line.split(",", -1);
            if (header == null) {
                header = new ArrayList<>();
                for (String c : cells) {
                    String col = c.trim();
                    if (!CSV_COLUMNS.contains(col)) {
                        throw f.error("header", "column must be one of " + String.join(",", CSV_COLUMNS), col);
                    }
                    header.add(col);
                }
                if (!header.contains("node") || !header.contains("memory")) {
                    throw f.error("header", "needs the columns node and memory");
                }
                continue;
            }
            if (cells.length != header.size()) {
                throw f.error("(row)", "has " + cells.length + " cells but the header has " + header.size());
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            for (int c = 0; c < cells.length; c++) {
                String v = cells[c].trim();
                if (!v.isEmpty()) {
                    entry.put(header.get(c), csvValue(f, header.get(c), v));
                }
            }
            r.device(f, entry, "", Map.of());
        }
        if (header == null) {
            throw new ManifestException(label + ": empty CSV (expected a header row: node,id,kind,memory,...)");
        }
        return r.finish(label);
    }

    private static Object csvValue(YamlFields f, String column, String v) {
        switch (column) {
            case "count":
                try {
                    return Long.parseLong(v);
                } catch (NumberFormatException e) {
                    throw f.error(column, "must be an integer", v);
                }
            case "reserve":
                try {
                    double fraction = Double.parseDouble(v);
                    // below 1 it can only be a fraction; "1Gi" or "2048" are byte floors
                    return fraction < 1 ? (Object) fraction : v;
                } catch (NumberFormatException e) {
                    return v;
                }
            case "compute":
                try {
                    return Double.parseDouble(v);
                } catch (NumberFormatException e) {
                    throw f.error(column, "must be a number", v);
                }
            case "labels": {
                Map<String, Object> labels = new LinkedHashMap<>();
                for (String kv : v.split(";")) {
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        throw f.error(column, "must be key=value pairs separated by ';'", v);
                    }
                    labels.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
                }
                return labels;
            }
            case "taints": {
                List<Object> taints = new ArrayList<>();
                for (String t : v.split(";")) {
                    int colon = t.lastIndexOf(':');
                    if (colon <= 0) {
                        throw f.error(column, "must be key=value:Effect entries separated by ';'", v);
                    }
                    String kv = t.substring(0, colon);
                    int eq = kv.indexOf('=');
                    Map<String, Object> taint = new LinkedHashMap<>();
                    taint.put("key", eq < 0 ? kv.trim() : kv.substring(0, eq).trim());
                    if (eq >= 0) {
                        taint.put("value", kv.substring(eq + 1).trim());
                    }
                    taint.put("effect", t.substring(colon + 1).trim());
                    taints.add(taint);
                }
                return taints;
            }
            default:
                return v;
        }
    }

    private Inventory finish(String label) {
        if (devices.isEmpty()) {
            throw new ManifestException(label + ": no devices (expected a devices list, Node objects or CSV rows)");
        }
        return new Inventory(devices, warnings);
    }

    private void document(YamlFields f, Object doc) {
        Map<String, Object> root = f.map(doc, "(document)");
        String kind = f.string(root, "", "kind", null);
        if (kind == null) {
            f.checkKnown(root, "", INVENTORY);
            Map<String, Object> defaults = f.optionalMap(root, "", "defaults");
            f.checkKnown(defaults, "defaults", DEFAULTS);
            List<Object> list = f.optionalList(root, "", "devices");
            for (int i = 0; i < list.size(); i++) {
                String path = "devices[" + i + "]";
                device(f, f.map(list.get(i), path), path, defaults);
            }
            List<Object> nodes = f.optionalList(root, "", "nodes");
            for (int i = 0; i < nodes.size(); i++) {
                String path = "nodes[" + i + "]";
                node(f, f.map(nodes.get(i), path), path, defaults);
            }
            if (list.isEmpty() && nodes.isEmpty()) {
                f.warn("no devices or nodes in this document");
            }
        } else if (kind.equals("Node")) {
            node(f, root, "", Map.of());
        } else if (kind.equals("List") || kind.equals("NodeList")) {
            List<Object> items = f.optionalList(root, "", "items");
            for (int i = 0; i < items.size(); i++) {
                String path = "items[" + i + "]";
                Map<String, Object> item = f.map(items.get(i), path);
                if ("Node".equals(item.get("kind")) || !item.containsKey("kind")) {
                    node(f, item, path, Map.of());
                } else {
                    f.warn(path + ": skipped: kind " + item.get("kind") + " is not Node");
                }
            }
        } else {
            f.warn("skipped: kind " + kind + " is neither an inventory nor a Node");
        }
    }

    private void device(YamlFields f, Map<String, Object> e, String path, Map<String, Object> defaults) {
        f.checkKnown(e, path, DEVICE);
        String node = f.requiredString(e, path, "node");
        String kindText = f.string(e, path, "kind", "gpu");
        DeviceKind kind = switch (kindText.toLowerCase(Locale.ROOT)) {
            case "gpu" -> DeviceKind.GPU;
            case "cpu" -> DeviceKind.CPU;
            default -> throw f.error(YamlFields.child(path, "kind"), "must be gpu or cpu", kindText);
        };
        if (!e.containsKey("memory")) {
            throw f.error(YamlFields.child(path, "memory"), "is required (bytes, or e.g. 80Gi, 81559MiB)");
        }
        long memory = bytes(f, e.get("memory"), YamlFields.child(path, "memory"));
        if (memory == 0) {
            throw f.error(YamlFields.child(path, "memory"), "must be > 0", e.get("memory"));
        }
        int count = (int) f.integer(e, path, "count", 1, 1, MAX_COUNT);
        String id = f.string(e, path, "id", null);
        String base = id != null ? id : kind.name().toLowerCase(Locale.ROOT);
        Map<String, String> labels = f.stringMap(e, path, "labels");
        List<Taint> taints = taints(f, e, path);
        long reserve =
                e.containsKey("reserve") ? reserve(f, e, path, memory) : reserve(f, defaults, "defaults", memory);
        long foreign = e.containsKey("foreign")
                ? bytes(f, e.get("foreign"), YamlFields.child(path, "foreign"))
                : defaults.containsKey("foreign") ? bytes(f, defaults.get("foreign"), "defaults.foreign") : 0;
        double compute = e.containsKey("compute") ? compute(f, e, path) : compute(f, defaults, "defaults");
        for (int i = 0; i < count; i++) {
            String deviceId = node + "/" + (count > 1 || id == null ? base + "-" + i : base);
            add(
                    f,
                    YamlFields.child(path, "id"),
                    deviceId,
                    node,
                    kind,
                    memory,
                    reserve,
                    foreign,
                    compute,
                    labels,
                    taints);
        }
    }

    private void node(YamlFields f, Map<String, Object> n, String path, Map<String, Object> defaults) {
        Map<String, Object> metadata = f.optionalMap(n, path, "metadata");
        String mpath = YamlFields.child(path, "metadata");
        String name = f.requiredString(metadata, mpath, "name");
        Map<String, String> labels = new LinkedHashMap<>();
        for (Map.Entry<String, Object> l :
                f.optionalMap(metadata, mpath, "labels").entrySet()) {
            // Real node dumps hold labels as strings; GFD counts unquoted in hand-written YAML are accepted too.
            labels.put(l.getKey(), l.getValue() == null ? "" : String.valueOf(l.getValue()));
        }
        String memText = labels.get(GFD_MEMORY);
        if (memText == null) {
            f.warn(YamlFields.child(mpath, "labels") + ": node " + name + " has no " + GFD_MEMORY
                    + " label (GPU Feature Discovery); skipped");
            return;
        }
        long mib;
        try {
            mib = Long.parseLong(memText.trim());
        } catch (NumberFormatException ex) {
            throw f.error(mpath + ".labels[" + GFD_MEMORY + "]", "must be an integer count of MiB", memText);
        }
        if (mib <= 0 || mib > (1L << 30)) {
            throw f.error(mpath + ".labels[" + GFD_MEMORY + "]", "must be between 1 and 1073741824 MiB", memText);
        }
        int count = gpuCount(f, n, labels, mpath);
        // Time-slicing and MPS advertise each physical GPU `replicas` times; memory is never multiplied: a
        // time-sliced GPU is one device of its full memory, an MPS-shared one `replicas` devices of its share.
        int replicas = sharingReplicas(labels);
        boolean mps = replicas > 1 && "mps".equalsIgnoreCase(labels.getOrDefault(GFD_SHARING, ""));
        long perDevice = mib << 20;
        if (mps) {
            count *= replicas;
            perDevice /= replicas;
        }
        if (count == 0) {
            f.warn("node " + name + " has 0 GPUs; skipped");
            return;
        }
        Map<String, Object> spec = f.optionalMap(n, path, "spec");
        List<Taint> taints = taints(f, spec, YamlFields.child(path, "spec"));
        Map<String, Object> extra = f.optionalMap(n, path, "stowage");
        f.checkKnown(extra, YamlFields.child(path, "stowage"), DEFAULTS);
        Map<String, Object> settings = new HashMap<>(defaults);
        settings.putAll(extra);
        long memory = perDevice;
        long reserve = reserve(f, settings, YamlFields.child(path, "stowage"), memory);
        long foreign = settings.containsKey("foreign")
                ? bytes(f, settings.get("foreign"), YamlFields.child(path, "stowage.foreign"))
                : 0;
        double compute = compute(f, settings, YamlFields.child(path, "stowage"));
        for (int i = 0; i < count; i++) {
            add(
                    f,
                    mpath + ".name",
                    name + "/gpu-" + i,
                    name,
                    DeviceKind.GPU,
                    memory,
                    reserve,
                    foreign,
                    compute,
                    labels,
                    taints);
        }
    }

    private int gpuCount(YamlFields f, Map<String, Object> n, Map<String, String> labels, String mpath) {
        String countText = labels.get(GFD_COUNT);
        int perGpu = 1;
        if (countText == null) {
            Map<String, Object> status = f.optionalMap(n, "", "status");
            Object alloc = f.optionalMap(status, "status", "allocatable").get(GPU_RESOURCE);
            countText = alloc == null ? "1" : String.valueOf(alloc);
            // Allocatable counts every time-slicing or MPS replica; the physical GPUs are fewer.
            perGpu = alloc == null ? 1 : sharingReplicas(labels);
        }
        try {
            int c = Integer.parseInt(countText.trim());
            if (c < 0 || c > MAX_COUNT) {
                throw f.error(mpath + ".labels[" + GFD_COUNT + "]", "must be between 0 and " + MAX_COUNT, countText);
            }
            return c / perGpu;
        } catch (NumberFormatException ex) {
            throw f.error(mpath + ".labels[" + GFD_COUNT + "]", "must be an integer", countText);
        }
    }

    /** {@code nvidia.com/gpu.replicas}: how many times the device plugin advertises each GPU (1 when absent). */
    private static int sharingReplicas(Map<String, String> labels) {
        try {
            return Math.max(
                    1, Integer.parseInt(labels.getOrDefault(GFD_REPLICAS, "1").trim()));
        } catch (NumberFormatException ex) {
            return 1;
        }
    }

    private void add(
            YamlFields f,
            String path,
            String id,
            String node,
            DeviceKind kind,
            long memory,
            long reserve,
            long foreign,
            double compute,
            Map<String, String> labels,
            List<Taint> taints) {
        String first = seen.putIfAbsent(id, f.where());
        if (first != null) {
            throw f.error(path, "device " + id + " is already defined in " + first);
        }
        long overhead = kind == DeviceKind.CPU ? parameters.hostOverheadCpuBytes() : parameters.hostOverheadGpuBytes();
        devices.add(new Device(id, node, kind, memory, reserve, foreign, overhead, compute, labels, taints));
    }

    private static long bytes(YamlFields f, Object v, String path) {
        if (v instanceof Integer || v instanceof Long) {
            long n = ((Number) v).longValue();
            if (n < 0) {
                throw f.error(path, "must be >= 0", v);
            }
            return n;
        }
        if (v instanceof String s) {
            try {
                return ByteSize.parse(s);
            } catch (IllegalArgumentException e) {
                throw f.error(path, e.getMessage(), v);
            }
        }
        throw f.error(path, "must be a byte count or a size such as 80Gi", v);
    }

    /** max(floor, ceil(fraction × memory)); must leave something of the device. */
    private static long reserve(YamlFields f, Map<String, Object> holder, String path, long memory) {
        Object v = holder.get("reserve");
        String rpath = YamlFields.child(path, "reserve");
        double fraction = 0;
        long floor = 0;
        if (v == null) {
            return 0;
        } else if (v instanceof Double || v instanceof Integer || v instanceof Long) {
            fraction = ((Number) v).doubleValue();
        } else if (v instanceof String s && s.trim().endsWith("%")) {
            try {
                fraction = Double.parseDouble(s.trim().substring(0, s.trim().length() - 1)) / 100;
            } catch (NumberFormatException e) {
                throw f.error(rpath, "must be a percentage such as 5%", v);
            }
        } else if (v instanceof String) {
            floor = bytes(f, v, rpath);
        } else if (v instanceof Map<?, ?>) {
            Map<String, Object> m = f.map(v, rpath);
            f.checkKnown(m, rpath, RESERVE);
            Double fr = f.number(m, rpath, "fraction");
            fraction = fr == null ? 0 : fr;
            floor = m.get("floor") == null ? 0 : bytes(f, m.get("floor"), rpath + ".floor");
        } else {
            throw f.error(rpath, "must be a fraction, a percentage, a size or {fraction, floor}", v);
        }
        if (!(fraction >= 0 && fraction < 1)) {
            throw f.error(rpath, "fraction must be >= 0 and < 1", fraction);
        }
        long reserve = Math.max(floor, (long) Math.ceil(fraction * memory));
        if (reserve >= memory) {
            throw f.error(
                    rpath, "must be less than the device memory " + ByteSize.human(memory), ByteSize.human(reserve));
        }
        return reserve;
    }

    private static double compute(YamlFields f, Map<String, Object> holder, String path) {
        Double c = f.number(holder, path, "compute");
        if (c == null) {
            return 1.0;
        }
        if (!(c > 0 && c <= 1)) {
            throw f.error(YamlFields.child(path, "compute"), "must be > 0 and <= 1", c);
        }
        return c;
    }

    private static List<Taint> taints(YamlFields f, Map<String, Object> holder, String path) {
        List<Object> raw = f.optionalList(holder, path, "taints");
        List<Taint> out = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            String tpath = YamlFields.child(path, "taints") + "[" + i + "]";
            Map<String, Object> t = f.map(raw.get(i), tpath);
            f.checkKnown(t, tpath, TAINT);
            String key = f.requiredString(t, tpath, "key");
            String value = f.string(t, tpath, "value", "");
            String effect = f.requiredString(t, tpath, "effect");
            if (!ManifestReader.EFFECTS.contains(effect)) {
                throw f.error(tpath + ".effect", "must be NoSchedule, PreferNoSchedule or NoExecute", effect);
            }
            out.add(new Taint(key, value, effect));
        }
        return out;
    }
}
