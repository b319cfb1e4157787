package io.stowage.placement.manifest;

import io.stowage.placement.memory.ModelShape;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads a models catalog: YAML with a {@code models} map keyed by model URI (exactly as written in
 * {@code spec.model.uri}), each value a header summary with {@code architecture, layers, heads,
 * kvHeads, keyLength, valueLength, embedding, feedForward, vocab, weightBytes} (required) and
 * {@code contextLength, quantization, parameters, sha256} (optional).
 */
public final class ModelCatalog {

    private static final List<String> REQUIRED = List.of(
            "architecture",
            "layers",
            "heads",
            "kvHeads",
            "keyLength",
            "valueLength",
            "embedding",
            "feedForward",
            "vocab",
            "weightBytes");
    private static final Set<String> ENTRY = java.util.stream.Stream.concat(
                    REQUIRED.stream(),
                    java.util.stream.Stream.of("contextLength", "quantization", "parameters", "sha256"))
            .collect(java.util.stream.Collectors.toUnmodifiableSet());
    private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");

    private final Map<String, CatalogEntry> entries;
    private final List<String> warnings;

    private ModelCatalog(Map<String, CatalogEntry> entries, List<String> warnings) {
        this.entries = Map.copyOf(entries);
        this.warnings = List.copyOf(warnings);
    }

    /** A catalog with no entries. */
    public static ModelCatalog empty() {
        return new ModelCatalog(Map.of(), List.of());
    }

    public static ModelCatalog read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new ManifestException(file + ": no such file");
        }
        return parse(file.toString(), Files.readString(file, StandardCharsets.UTF_8));
    }

    public static ModelCatalog parse(String label, String text) {
        Map<String, CatalogEntry> entries = new LinkedHashMap<>();
        List<String> warnings = new ArrayList<>();
        List<Object> docs = YamlFields.loadAll(label, text);
        for (int i = 0; i < docs.size(); i++) {
            if (docs.get(i) == null) {
                continue;
            }
            YamlFields f = new YamlFields(label + " doc " + (i + 1), warnings);
            Map<String, Object> root = f.map(docs.get(i), "(document)");
            f.checkKnown(root, "", Set.of("models"));
            Map<String, Object> models = f.optionalMap(root, "", "models");
            for (Map.Entry<String, Object> e : models.entrySet()) {
                String path = "models[" + e.getKey() + "]";
                if (entries.containsKey(e.getKey())) {
                    throw f.error(path, "is listed twice");
                }
                entries.put(e.getKey(), entry(f, f.map(e.getValue(), path), path));
            }
        }
        return new ModelCatalog(entries, warnings);
    }

    private static CatalogEntry entry(YamlFields f, Map<String, Object> m, String path) {
        f.checkKnown(m, path, ENTRY);
        int max = Integer.MAX_VALUE;
        for (String required : REQUIRED) {
            if (m.get(required) == null) {
                throw f.error(path + "." + required, "is required");
            }
        }
        String arch = f.requiredString(m, path, "architecture");
        int layers = (int) f.integer(m, path, "layers", 0, 1, max);
        int heads = (int) f.integer(m, path, "heads", 0, 1, max);
        int kvHeads = (int) f.integer(m, path, "kvHeads", 0, 1, max);
        if (heads % kvHeads != 0) {
            throw f.error(path + ".kvHeads", "must divide heads (" + heads + ")", kvHeads);
        }
        int keyLength = (int) f.integer(m, path, "keyLength", 0, 1, max);
        int valueLength = (int) f.integer(m, path, "valueLength", 0, 1, max);
        int embedding = (int) f.integer(m, path, "embedding", 0, 1, max);
        int feedForward = (int) f.integer(m, path, "feedForward", 0, 1, max);
        int vocab = (int) f.integer(m, path, "vocab", 0, 1, max);
        long context = f.integer(m, path, "contextLength", 0, 0, Long.MAX_VALUE);
        long weightBytes = f.integer(m, path, "weightBytes", 0, 1, Long.MAX_VALUE);
        String quant = f.string(m, path, "quantization", null);
        long parameters = f.integer(m, path, "parameters", 0, 0, Long.MAX_VALUE);
        String sha = f.string(m, path, "sha256", null);
        if (sha != null) {
            if (!SHA256.matcher(sha).matches()) {
                throw f.error(path + ".sha256", "must be 64 hexadecimal digits", sha);
            }
            sha = sha.toLowerCase(Locale.ROOT);
        }
        ModelShape shape = new ModelShape(
                arch,
                layers,
                embedding,
                feedForward,
                heads,
                kvHeads,
                keyLength,
                valueLength,
                vocab,
                context,
                weightBytes);
        return new CatalogEntry(shape, quant, parameters, sha);
    }

    /** The entry for a model URI as written in a manifest, or null. */
    public CatalogEntry get(String uri) {
        return entries.get(uri);
    }

    public Map<String, CatalogEntry> entries() {
        return entries;
    }

    public List<String> warnings() {
        return warnings;
    }
}
