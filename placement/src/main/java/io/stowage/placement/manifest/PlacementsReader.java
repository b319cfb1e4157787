package io.stowage.placement.manifest;

import io.stowage.placement.plan.Placement;
import io.stowage.placement.plan.ReplicaId;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the replicas running now for {@code plan --current}: YAML or JSON with a {@code placements}
 * list of {@code {replica: "namespace/name#index", device: "node/gpu-0"}}, which is exactly what
 * {@code plan --json} prints, so a previous plan can be fed back.
 */
public final class PlacementsReader {

    private static final Set<String> PLACEMENT = Set.of("replica", "device");
    private static final Set<String> IDLE = Set.of("deployment", "device", "lastUsed", "digest", "bytes");

    /**
     * A deployment scaled to zero whose model's weights are still resident on a device ({@code idle} list):
     * {@code {deployment: "namespace/name", device: "node/gpu-0", lastUsed: "2026-01-01T10:00:00Z"}}.
     *
     * @param lastUsedMillis when it last served a request (epoch milliseconds), from an ISO-8601 instant
     */
    public record Idle(String deployment, String device, long lastUsedMillis) {}

    private PlacementsReader() {}

    public static List<Placement> read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new ManifestException(file + ": no such file");
        }
        return parse(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    /** The {@code idle} list of a {@code --current} file: deployments scaled to zero with resident weights. */
    public static List<Idle> readIdle(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new ManifestException(file + ": no such file");
        }
        return parseIdle(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    public static List<Idle> parseIdle(String label, String text) {
        List<Idle> out = new ArrayList<>();
        Set<String> seen = new java.util.HashSet<>();
        List<Object> docs = YamlFields.loadAll(label, text);
        for (int i = 0; i < docs.size(); i++) {
            if (docs.get(i) == null) {
                continue;
            }
            YamlFields f = new YamlFields(label + " doc " + (i + 1), new ArrayList<>());
            Map<String, Object> root = f.map(docs.get(i), "(document)");
            List<Object> list = f.optionalList(root, "", "idle");
            for (int j = 0; j < list.size(); j++) {
                String path = "idle[" + j + "]";
                Map<String, Object> p = f.map(list.get(j), path);
                f.checkKnown(p, path, IDLE);
                String deployment = f.requiredString(p, path, "deployment");
                if (deployment.indexOf('/') <= 0) {
                    throw f.error(path + ".deployment", "must look like namespace/name", deployment);
                }
                String device = f.requiredString(p, path, "device");
                Object when = p.get("lastUsed");
                long millis;
                if (when == null) {
                    millis = 0; // unknown: the oldest, evicted first
                } else if (when instanceof java.util.Date date) {
                    millis = date.getTime(); // YAML reads an unquoted timestamp as a date
                } else if (when instanceof String s) {
                    try {
                        millis = java.time.Instant.parse(s.strip()).toEpochMilli();
                    } catch (java.time.format.DateTimeParseException e) {
                        throw f.error(
                                path + ".lastUsed", "must be an ISO-8601 instant such as 2026-01-01T10:00:00Z", s);
                    }
                } else {
                    throw f.error(path + ".lastUsed", "must be an ISO-8601 instant such as 2026-01-01T10:00:00Z", when);
                }
                if (!seen.add(deployment + " " + device)) {
                    throw f.error(path, "lists " + deployment + " on " + device + " twice");
                }
                out.add(new Idle(deployment, device, millis));
            }
        }
        return out;
    }

    public static List<Placement> parse(String label, String text) {
        List<Placement> out = new ArrayList<>();
        Map<ReplicaId, String> seen = new HashMap<>();
        List<Object> docs = YamlFields.loadAll(label, text);
        for (int i = 0; i < docs.size(); i++) {
            if (docs.get(i) == null) {
                continue;
            }
            YamlFields f = new YamlFields(label + " doc " + (i + 1), new ArrayList<>());
            Map<String, Object> root = f.map(docs.get(i), "(document)");
            // a plan --json document has other keys too (devices, deployments, ...); only placements matter here
            List<Object> list = f.optionalList(root, "", "placements");
            for (int j = 0; j < list.size(); j++) {
                String path = "placements[" + j + "]";
                Map<String, Object> p = f.map(list.get(j), path);
                f.checkKnown(p, path, PLACEMENT);
                String replica = f.requiredString(p, path, "replica");
                String device = f.requiredString(p, path, "device");
                int hash = replica.lastIndexOf('#');
                int index;
                try {
                    index = hash <= 0 ? -1 : Integer.parseInt(replica.substring(hash + 1));
                } catch (NumberFormatException e) {
                    index = -1;
                }
                if (index < 0) {
                    throw f.error(path + ".replica", "must look like namespace/name#index", replica);
                }
                ReplicaId id = new ReplicaId(replica.substring(0, hash), index);
                String before = seen.putIfAbsent(id, device);
                if (before != null) {
                    throw f.error(path + ".replica", "is already placed on " + before, replica);
                }
                out.add(new Placement(id, device));
            }
        }
        return out;
    }
}
