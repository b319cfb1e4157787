package io.stowage.placement.manifest;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.Toleration;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads LlmDeployment and LlmRoute YAML: one file (possibly multi-document) or a directory of {@code *.yaml}
 * and {@code *.yml} files (not recursive, in name order). Documents of other kinds are skipped with
 * a warning, as a GitOps directory holds Services and ConfigMaps too; unknown fields are listed as
 * warnings, never fatal.
 */
public final class ManifestReader {

    /** The schemes {@code spec.model.uri} accepts. */
    public static final List<String> SCHEMES = List.of("https", "http", "file", "pvc", "s3", "hf");

    static final int MAX_REPLICAS = 10_000;
    static final int MAX_SEQUENCES = 4096;
    static final long MAX_TOKENS = 1L << 24;

    private static final Pattern SCHEME = Pattern.compile("^([A-Za-z][A-Za-z0-9+.-]*):(.*)$");
    private static final Pattern DNS_SUBDOMAIN =
            Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
    private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");

    private static final Set<String> TOP = Set.of("apiVersion", "kind", "metadata", "spec", "status");
    private static final Set<String> METADATA = Set.of("name", "namespace", "labels", "annotations");
    private static final Set<String> SPEC =
            Set.of("model", "servedModelName", "replicas", "context", "placement", "scaling");
    private static final Set<String> SCALING = Set.of("minReplicas", "idleTimeout");
    private static final Set<String> MODEL = Set.of("uri", "sha256");
    private static final Set<String> CONTEXT = Set.of("maxTokens", "maxSequences", "kvCacheType");
    private static final Set<String> PLACEMENT =
            Set.of("priority", "computeShare", "maxReplicasPerNode", "nodeSelector", "tolerations", "device");
    private static final Set<String> TOLERATION = Set.of("key", "operator", "value", "effect", "tolerationSeconds");
    static final Set<String> EFFECTS = Set.of("NoSchedule", "PreferNoSchedule", "NoExecute");

    private ManifestReader() {}

    /** Reads a file or every {@code *.yaml}/{@code *.yml} file of a directory. */
    public static ManifestSet read(Path fileOrDir) throws IOException {
        List<Path> files = yamlFiles(fileOrDir);
        List<LlmDeploymentManifest> all = new ArrayList<>();
        List<LlmRouteManifest> routes = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        for (Path file : files) {
            String text = Files.readString(file, StandardCharsets.UTF_8);
            Path dir = file.toAbsolutePath().getParent();
            ManifestSet one = parse(file.toString(), dir, text);
            all.addAll(one.deployments());
            routes.addAll(one.routes());
            warnings.addAll(one.warnings());
        }
        checkUnique(all);
        checkUniqueRoutes(routes);
        if (all.isEmpty() && routes.isEmpty()) {
            warnings.add(fileOrDir + ": no LlmDeployment documents found");
        }
        return new ManifestSet(all, routes, warnings);
    }

    /** The files {@link #read} reads: the file itself, or the directory's YAML files by name. */
    static List<Path> yamlFiles(Path fileOrDir) throws IOException {
        if (!Files.exists(fileOrDir)) {
            throw new ManifestException(fileOrDir + ": no such file or directory");
        }
        if (!Files.isDirectory(fileOrDir)) {
            return List.of(fileOrDir);
        }
        try (Stream<Path> s = Files.list(fileOrDir)) {
            return s.filter(p -> {
                        String n = p.getFileName().toString();
                        return Files.isRegularFile(p) && (n.endsWith(".yaml") || n.endsWith(".yml"));
                    })
                    .sorted()
                    .toList();
        }
    }

    /**
     * Parses the documents of one file's text.
     *
     * @param label how errors name the file, e.g. {@code deployments.yaml}
     * @param baseDir the directory bare relative model paths are resolved against
     */
    public static ManifestSet parse(String label, Path baseDir, String text) {
        List<Object> docs = YamlFields.loadAll(label, text);
        List<LlmDeploymentManifest> out = new ArrayList<>();
        List<LlmRouteManifest> routes = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        for (int i = 0; i < docs.size(); i++) {
            Object doc = docs.get(i);
            if (doc == null) {
                continue;
            }
            YamlFields f = new YamlFields(label + " doc " + (i + 1), warnings);
            Object m = document(f, doc, baseDir);
            if (m instanceof LlmDeploymentManifest d) {
                out.add(d);
            } else if (m instanceof LlmRouteManifest r) {
                routes.add(r);
            }
        }
        checkUnique(out);
        checkUniqueRoutes(routes);
        return new ManifestSet(out, routes, warnings);
    }

    /** Two routes may not share a name, nor the name clients send. */
    private static void checkUniqueRoutes(List<LlmRouteManifest> all) {
        Map<String, String> seen = new HashMap<>();
        Map<String, String> names = new HashMap<>();
        for (LlmRouteManifest r : all) {
            String first = seen.putIfAbsent(r.id(), r.source());
            if (first != null) {
                throw new ManifestException(
                        r.source() + ": metadata.name: LlmRoute " + r.id() + " is already defined in " + first);
            }
            String other = names.putIfAbsent(r.namespace() + "/" + r.routeName(), r.source());
            if (other != null) {
                throw new ManifestException(r.source() + ": spec.routeName: \"" + r.routeName()
                        + "\" is already the route name of the LlmRoute in " + other);
            }
        }
    }

    /**
     * One document already loaded as plain maps, lists and scalars (the operator's LlmDeployment, converted), read
     * with the same rules and defaults as a file.
     *
     * @param label how errors name it, e.g. {@code LlmDeployment team-a/chat}
     * @param baseDir the directory bare relative model paths are resolved against, or null
     * @return the manifest, or null when the document is not an LlmDeployment (a warning says so)
     */
    public static LlmDeploymentManifest fromObject(String label, Path baseDir, Object doc, List<String> warnings) {
        YamlFields f = new YamlFields(label, warnings);
        Object m = document(f, doc, baseDir);
        if (m instanceof LlmDeploymentManifest d) {
            return d;
        }
        if (m != null) {
            f.warn("skipped: kind " + LlmRouteManifest.KIND + " is not " + LlmDeploymentManifest.KIND);
        }
        return null;
    }

    private static void checkUnique(List<LlmDeploymentManifest> all) {
        Map<String, String> seen = new HashMap<>();
        for (LlmDeploymentManifest m : all) {
            String first = seen.putIfAbsent(m.id(), m.source());
            if (first != null) {
                throw new ManifestException(
                        m.source() + ": metadata.name: LlmDeployment " + m.id() + " is already defined in " + first);
            }
        }
    }

    /** The LlmDeploymentManifest or LlmRouteManifest of one document, or null for a document of another kind. */
    private static Object document(YamlFields f, Object doc, Path baseDir) {
        Map<String, Object> root = f.map(doc, "(document)");
        String kind = f.string(root, "", "kind", null);
        if (kind == null && !root.containsKey("apiVersion")) {
            // not a Kubernetes object at all (e.g. a models catalog beside the manifests)
            f.warn("skipped: not a Kubernetes object (no apiVersion or kind)");
            return null;
        }
        if (kind == null) {
            throw f.error("kind", "is required (expected " + LlmDeploymentManifest.KIND + ")");
        }
        boolean route = kind.equals(LlmRouteManifest.KIND);
        if (!kind.equals(LlmDeploymentManifest.KIND) && !route) {
            f.warn("skipped: kind " + kind + " is not " + LlmDeploymentManifest.KIND);
            return null;
        }
        String apiVersion = f.string(root, "", "apiVersion", null);
        if (!LlmDeploymentManifest.API_VERSION.equals(apiVersion)) {
            throw f.error("apiVersion", "must be " + LlmDeploymentManifest.API_VERSION, apiVersion);
        }
        f.checkKnown(root, "", TOP);

        Map<String, Object> metadata = f.optionalMap(root, "", "metadata");
        f.checkKnown(metadata, "metadata", METADATA);
        String name = f.requiredString(metadata, "metadata", "name");
        if (name.length() > 253 || !DNS_SUBDOMAIN.matcher(name).matches()) {
            throw f.error(
                    "metadata.name",
                    "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253)",
                    name);
        }
        String namespace = f.string(metadata, "metadata", "namespace", LlmDeploymentManifest.DEFAULT_NAMESPACE);
        if (namespace.length() > 63 || !DNS_LABEL.matcher(namespace).matches()) {
            throw f.error(
                    "metadata.namespace",
                    "must be a DNS label (lowercase letters, digits and '-', at most 63)",
                    namespace);
        }
        if (!root.containsKey("spec")) {
            throw f.error("spec", "is required");
        }
        Map<String, Object> spec = f.optionalMap(root, "", "spec");
        if (route) {
            return RouteReader.route(f, name, namespace, spec);
        }
        f.checkKnown(spec, "spec", SPEC);

        if (!spec.containsKey("model")) {
            throw f.error("spec.model", "is required");
        }
        Map<String, Object> model = f.optionalMap(spec, "spec", "model");
        f.checkKnown(model, "spec.model", MODEL);
        ModelSource source = modelSource(f, model, baseDir);

        String served = f.string(spec, "spec", "servedModelName", name);
        if (served.isBlank()) {
            throw f.error("spec.servedModelName", "must not be empty", served);
        }
        int replicas = (int) f.integer(spec, "spec", "replicas", 1, 0, MAX_REPLICAS);

        Map<String, Object> context = f.optionalMap(spec, "spec", "context");
        f.checkKnown(context, "spec.context", CONTEXT);
        Integer maxTokens = context.get("maxTokens") == null
                ? null
                : (int) f.integer(context, "spec.context", "maxTokens", 0, 1, MAX_TOKENS);
        int maxSequences = (int) f.integer(
                context, "spec.context", "maxSequences", LlmDeploymentManifest.DEFAULT_MAX_SEQUENCES, 1, MAX_SEQUENCES);
        String kvText = f.string(context, "spec.context", "kvCacheType", "f16");
        KvCacheType kv;
        try {
            kv = KvCacheType.parse(kvText);
        } catch (IllegalArgumentException e) {
            throw f.error("spec.context.kvCacheType", "must be one of f16, q8_0, f32", kvText);
        }

        Map<String, Object> placement = f.optionalMap(spec, "spec", "placement");
        f.checkKnown(placement, "spec.placement", PLACEMENT);
        int priority =
                (int) f.integer(placement, "spec.placement", "priority", 0, Integer.MIN_VALUE, Integer.MAX_VALUE);
        String deviceText = f.string(placement, "spec.placement", "device", "gpu");
        DeviceRequest device = switch (deviceText.toLowerCase(Locale.ROOT)) {
            case "gpu" -> DeviceRequest.GPU;
            case "cpu" -> DeviceRequest.CPU;
            case "any" -> DeviceRequest.ANY;
            default -> throw f.error("spec.placement.device", "must be one of gpu, cpu, any", deviceText);
        };
        Double share = f.number(placement, "spec.placement", "computeShare");
        double computeShare = share == null ? LlmDeploymentManifest.DEFAULT_COMPUTE_SHARE : share;
        if (!(computeShare > 0 && computeShare <= 1)) {
            throw f.error("spec.placement.computeShare", "must be > 0 and <= 1", placement.get("computeShare"));
        }
        int maxPerNode = (int) f.integer(placement, "spec.placement", "maxReplicasPerNode", 0, 0, Integer.MAX_VALUE);
        Map<String, String> selector = f.stringMap(placement, "spec.placement", "nodeSelector");
        List<Toleration> tolerations = tolerations(f, placement);
        Scaling scaling = scaling(f, spec, replicas);

        return new LlmDeploymentManifest(
                f.where(),
                name,
                namespace,
                source,
                served,
                replicas,
                maxTokens,
                maxSequences,
                kv,
                priority,
                computeShare,
                maxPerNode,
                selector,
                tolerations,
                device,
                scaling);
    }

    /** spec.scaling, or null when absent. */
    private static Scaling scaling(YamlFields f, Map<String, Object> spec, int replicas) {
        if (spec.get("scaling") == null) {
            return null;
        }
        Map<String, Object> scaling = f.optionalMap(spec, "spec", "scaling");
        f.checkKnown(scaling, "spec.scaling", SCALING);
        int min = (int) f.integer(scaling, "spec.scaling", "minReplicas", replicas, 0, MAX_REPLICAS);
        if (min > replicas) {
            throw f.error(
                    "spec.scaling.minReplicas",
                    "must be <= spec.replicas " + replicas + " (the replicas an active deployment runs)",
                    scaling.get("minReplicas"));
        }
        Duration idle = Scaling.DEFAULT_IDLE_TIMEOUT;
        Object idleValue = scaling.get("idleTimeout");
        if (idleValue != null) {
            if (!(idleValue instanceof String text)) {
                throw f.error("spec.scaling.idleTimeout", "must be a duration string such as 5m (quote it)", idleValue);
            }
            try {
                idle = Scaling.parseDuration(text);
            } catch (IllegalArgumentException e) {
                throw f.error("spec.scaling.idleTimeout", e.getMessage(), idleValue);
            }
            if (idle.isZero()) {
                throw f.error("spec.scaling.idleTimeout", "must be > 0", idleValue);
            }
        }
        return new Scaling(min, idle);
    }

    private static ModelSource modelSource(YamlFields f, Map<String, Object> model, Path baseDir) {
        String uri = f.requiredString(model, "spec.model", "uri").trim();
        String sha = f.string(model, "spec.model", "sha256", null);
        if (sha != null) {
            if (!SHA256.matcher(sha).matches()) {
                throw f.error("spec.model.sha256", "must be 64 hexadecimal digits", sha);
            }
            sha = sha.toLowerCase(Locale.ROOT);
        }
        Matcher m = SCHEME.matcher(uri);
        // "C:" style drive letters are not schemes; a one-letter scheme is treated as a path.
        if (m.matches() && m.group(1).length() > 1) {
            String scheme = m.group(1).toLowerCase(Locale.ROOT);
            if (!SCHEMES.contains(scheme)) {
                throw f.error("spec.model.uri", "scheme must be one of " + String.join(", ", SCHEMES), uri);
            }
            String rest = m.group(2);
            if (scheme.equals("file")) {
                String path = rest.startsWith("//") ? rest.substring(2) : rest;
                if (path.isEmpty()) {
                    throw f.error("spec.model.uri", "names no file", uri);
                }
                Path p = Path.of(path);
                Path local = (p.isAbsolute() || baseDir == null ? p : baseDir.resolve(p)).normalize();
                return new ModelSource(uri, scheme, sha, local.toAbsolutePath());
            }
            if (!rest.startsWith("//") || rest.length() <= 2) {
                throw f.error("spec.model.uri", "must look like " + scheme + "://...", uri);
            }
            return new ModelSource(uri, scheme, sha, null);
        }
        Path p = Path.of(uri);
        Path local = (p.isAbsolute() || baseDir == null ? p : baseDir.resolve(p)).normalize();
        return new ModelSource(uri, "file", sha, local.toAbsolutePath());
    }

    private static List<Toleration> tolerations(YamlFields f, Map<String, Object> placement) {
        List<Object> raw = f.optionalList(placement, "spec.placement", "tolerations");
        List<Toleration> out = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            String path = "spec.placement.tolerations[" + i + "]";
            Map<String, Object> t = f.map(raw.get(i), path);
            f.checkKnown(t, path, TOLERATION);
            String key = f.string(t, path, "key", null);
            String op = f.string(t, path, "operator", "Equal");
            if (!op.equals("Equal") && !op.equals("Exists")) {
                throw f.error(path + ".operator", "must be Equal or Exists", op);
            }
            String value = f.string(t, path, "value", null);
            if (op.equals("Exists") && value != null && !value.isEmpty()) {
                throw f.error(path + ".value", "must be empty when operator is Exists", value);
            }
            if (op.equals("Equal") && (key == null || key.isEmpty())) {
                throw f.error(path + ".key", "is required when operator is Equal");
            }
            String effect = f.string(t, path, "effect", null);
            if (effect != null && !effect.isEmpty() && !EFFECTS.contains(effect)) {
                throw f.error(path + ".effect", "must be NoSchedule, PreferNoSchedule or NoExecute", effect);
            }
            if (t.get("tolerationSeconds") != null) {
                f.integerValue(t.get("tolerationSeconds"), path + ".tolerationSeconds", Long.MIN_VALUE, Long.MAX_VALUE);
            }
            out.add(new Toleration(key, op, value, effect));
        }
        return out;
    }
}
