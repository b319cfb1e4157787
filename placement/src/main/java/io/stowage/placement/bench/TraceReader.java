package io.stowage.placement.bench;

import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.ModelRef;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads an external trace for {@code bench --csv}: one row per device or per demand, no header,
 * commas without quoting, {@code #} starts a comment line. Byte columns take plain bytes or sizes
 * such as {@code 80Gi}; maps are {@code k=v;k=v}.
 *
 * <pre>
 * device,ID,NODE,KIND,MEMORY,RESERVE,FOREIGN,LABELS
 * demand,ID,MODEL,WEIGHT_BYTES,WORKSPACE_BYTES,KV_BYTES_PER_REPLICA,REPLICAS,COMPUTE_SHARE,PRIORITY,MAX_PER_NODE,NODE_SELECTOR
 * </pre>
 *
 * KIND is gpu or cpu; MODEL is any string naming the weights (demands with the same MODEL share
 * them, and must give the same weight and workspace bytes); trailing empty columns may be left out.
 */
public final class TraceReader {

    static final int DEVICE_COLUMNS = 8;
    static final int DEMAND_COLUMNS = 11;

    private TraceReader() {}

    public static Fleet read(Path file) throws IOException {
        return parse(file.getFileName().toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    public static Fleet parse(String name, String text) {
        MemoryParameters p = MemoryParameters.defaults();
        List<Device> devices = new ArrayList<>();
        List<Deployment> deployments = new ArrayList<>();
        Map<String, ModelRef> models = new LinkedHashMap<>();
        Set<String> ids = new HashSet<>();
        double maxShare = 0;
        String[] lines = text.split("\r?\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String where = name + " line " + (i + 1);
            String[] c = line.split(",", -1);
            switch (c[0].trim()) {
                case "device" -> {
                    String[] r = pad(c, DEVICE_COLUMNS, where);
                    String id = required(r, 1, "ID", where);
                    if (!ids.add("device:" + id)) {
                        throw new IllegalArgumentException(where + ": device " + id + " is listed twice");
                    }
                    DeviceKind kind = switch (r[3].trim().toLowerCase(Locale.ROOT)) {
                        case "", "gpu" -> DeviceKind.GPU;
                        case "cpu" -> DeviceKind.CPU;
                        default ->
                            throw new IllegalArgumentException(
                                    where + ": KIND must be gpu or cpu, got \"" + r[3] + "\"");
                    };
                    long overhead = kind == DeviceKind.CPU ? p.hostOverheadCpuBytes() : p.hostOverheadGpuBytes();
                    devices.add(new Device(
                            id,
                            required(r, 2, "NODE", where),
                            kind,
                            bytes(r[4], "MEMORY", where),
                            bytes(r[5], "RESERVE", where),
                            bytes(r[6], "FOREIGN", where),
                            overhead,
                            1.0,
                            map(r[7], "LABELS", where),
                            List.of()));
                }
                case "demand" -> {
                    String[] r = pad(c, DEMAND_COLUMNS, where);
                    String id = required(r, 1, "ID", where);
                    if (!ids.add("demand:" + id)) {
                        throw new IllegalArgumentException(where + ": demand " + id + " is listed twice");
                    }
                    String model = required(r, 2, "MODEL", where);
                    ModelRef ref = new ModelRef(
                            model, bytes(r[3], "WEIGHT_BYTES", where), bytes(r[4], "WORKSPACE_BYTES", where));
                    ModelRef before = models.putIfAbsent(model, ref);
                    if (before != null && !before.equals(ref)) {
                        throw new IllegalArgumentException(where + ": model " + model
                                + " has other weight or workspace bytes than on an earlier line");
                    }
                    double share = r[7].isBlank() ? 0.25 : number(r[7], "COMPUTE_SHARE", where);
                    if (!(share >= 0 && share <= 1)) {
                        throw new IllegalArgumentException(where + ": COMPUTE_SHARE must be in [0, 1], got " + share);
                    }
                    maxShare = Math.max(maxShare, share);
                    deployments.add(new Deployment(
                            id,
                            ref,
                            bytes(r[5], "KV_BYTES_PER_REPLICA", where),
                            integer(r[6], "REPLICAS", where, 1),
                            integer(r[8], "PRIORITY", where, 0),
                            map(r[10], "NODE_SELECTOR", where),
                            List.of(),
                            integer(r[9], "MAX_PER_NODE", where, 0),
                            DeviceRequest.ANY,
                            share));
                }
                default ->
                    throw new IllegalArgumentException(
                            where + ": the first column must be device or demand, got \"" + c[0] + "\"");
            }
        }
        if (devices.isEmpty()) {
            throw new IllegalArgumentException(name + ": the trace has no device rows");
        }
        return new Fleet(name, maxShare, devices, deployments);
    }

    private static String[] pad(String[] c, int columns, String where) {
        if (c.length > columns) {
            throw new IllegalArgumentException(
                    where + ": " + c.length + " columns, at most " + columns + " for a " + c[0] + " row");
        }
        String[] r = new String[columns];
        for (int i = 0; i < columns; i++) {
            r[i] = i < c.length ? c[i].trim() : "";
        }
        return r;
    }

    private static String required(String[] r, int i, String column, String where) {
        if (r[i].isEmpty()) {
            throw new IllegalArgumentException(where + ": " + column + " is required");
        }
        return r[i];
    }

    private static long bytes(String v, String column, String where) {
        if (v.isEmpty()) {
            return 0;
        }
        try {
            return ByteSize.parse(v);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + column + ": " + e.getMessage() + ", got \"" + v + "\"");
        }
    }

    private static int integer(String v, String column, String where, int dflt) {
        if (v.isEmpty()) {
            return dflt;
        }
        try {
            int n = Integer.parseInt(v);
            if (n < 0) {
                throw new IllegalArgumentException(where + ": " + column + " must be >= 0, got " + n);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": " + column + " must be an integer, got \"" + v + "\"");
        }
    }

    private static double number(String v, String column, String where) {
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": " + column + " must be a number, got \"" + v + "\"");
        }
    }

    private static Map<String, String> map(String v, String column, String where) {
        Map<String, String> out = new LinkedHashMap<>();
        if (v.isEmpty()) {
            return out;
        }
        for (String kv : v.split(";")) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException(
                        where + ": " + column + " must be k=v pairs separated by ';', got \"" + v + "\"");
            }
            out.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
        }
        return out;
    }
}
