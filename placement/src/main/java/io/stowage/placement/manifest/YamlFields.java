package io.stowage.placement.manifest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;

/**
 * Typed, checked access to one YAML document loaded as plain maps and lists; every error names the
 * document ({@code "deployments.yaml doc 2"}), the field path and the bad value.
 */
final class YamlFields {

    private final String where;
    private final List<String> warnings;

    YamlFields(String where, List<String> warnings) {
        this.where = where;
        this.warnings = warnings;
    }

    String where() {
        return where;
    }

    /** A loader that builds only maps, lists and scalars (never arbitrary types) and rejects duplicate keys. */
    static Yaml safeYaml() {
        LoaderOptions options = new LoaderOptions();
        options.setAllowDuplicateKeys(false);
        options.setMaxAliasesForCollections(50);
        options.setAllowRecursiveKeys(false);
        return new Yaml(new SafeConstructor(options));
    }

    /** Loads every document of {@code text}; nulls stand for empty documents. */
    static List<Object> loadAll(String label, String text) {
        List<Object> docs = new ArrayList<>();
        try {
            for (Object doc : safeYaml().loadAll(text)) {
                docs.add(doc);
            }
        } catch (MarkedYAMLException e) {
            Mark mark = e.getProblemMark();
            String at = mark == null ? "" : " at line " + (mark.getLine() + 1) + ", column " + (mark.getColumn() + 1);
            throw new ManifestException(
                    label + " doc " + (docs.size() + 1) + ": invalid YAML" + at + ": " + e.getProblem());
        } catch (YAMLException e) {
            throw new ManifestException(label + " doc " + (docs.size() + 1) + ": invalid YAML: " + e.getMessage(), e);
        }
        return docs;
    }

    ManifestException error(String path, String rule, Object value) {
        return new ManifestException(where + ": " + path + ": " + rule + ", got " + show(value));
    }

    ManifestException error(String path, String message) {
        return new ManifestException(where + ": " + path + ": " + message);
    }

    static String show(Object value) {
        if (value == null) {
            return "nothing";
        }
        if (value instanceof String s) {
            return "\"" + s + "\"";
        }
        if (value instanceof Map<?, ?>) {
            return "a map";
        }
        if (value instanceof List<?>) {
            return "a list";
        }
        return String.valueOf(value);
    }

    static String child(String path, String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> map(Object value, String path) {
        if (!(value instanceof Map<?, ?> m)) {
            throw error(path, "must be a map", value);
        }
        for (Object k : m.keySet()) {
            if (!(k instanceof String)) {
                throw error(path, "keys must be strings", k);
            }
        }
        return (Map<String, Object>) m;
    }

    /** The map at {@code key}, or an empty map when absent. */
    Map<String, Object> optionalMap(Map<String, Object> parent, String path, String key) {
        Object v = parent.get(key);
        return v == null ? Map.of() : map(v, child(path, key));
    }

    List<Object> optionalList(Map<String, Object> parent, String path, String key) {
        Object v = parent.get(key);
        if (v == null) {
            return List.of();
        }
        if (!(v instanceof List<?> l)) {
            throw error(child(path, key), "must be a list", v);
        }
        return new ArrayList<>(l);
    }

    /** Warns about keys of {@code map} not in {@code known}; they are ignored. */
    void checkKnown(Map<String, Object> map, String path, Set<String> known) {
        for (String k : map.keySet()) {
            if (!known.contains(k)) {
                warnings.add(where + ": unknown field " + child(path, k) + " (ignored)");
            }
        }
    }

    void warn(String message) {
        warnings.add(where + ": " + message);
    }

    String string(Map<String, Object> parent, String path, String key, String dflt) {
        Object v = parent.get(key);
        if (v == null) {
            return dflt;
        }
        if (!(v instanceof String s)) {
            throw error(child(path, key), "must be a string (quote it)", v);
        }
        return s;
    }

    String requiredString(Map<String, Object> parent, String path, String key) {
        String s = string(parent, path, key, null);
        if (s == null || s.isBlank()) {
            throw error(child(path, key), "is required");
        }
        return s;
    }

    long integer(Map<String, Object> parent, String path, String key, long dflt, long min, long max) {
        Object v = parent.get(key);
        if (v == null) {
            return dflt;
        }
        return integerValue(v, child(path, key), min, max);
    }

    long integerValue(Object v, String path, long min, long max) {
        long n;
        if (v instanceof Integer || v instanceof Long) {
            n = ((Number) v).longValue();
        } else if (v instanceof java.math.BigInteger) {
            throw error(path, "must be between " + min + " and " + max, v);
        } else {
            throw error(path, "must be an integer", v);
        }
        if (n < min) {
            throw error(path, "must be >= " + min, v);
        }
        if (n > max) {
            throw error(path, "must be <= " + max, v);
        }
        return n;
    }

    Double number(Map<String, Object> parent, String path, String key) {
        Object v = parent.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Integer || v instanceof Long || v instanceof Double) {
            return ((Number) v).doubleValue();
        }
        throw error(child(path, key), "must be a number", v);
    }

    /** A map of string to string, as Kubernetes labels and selectors are. */
    Map<String, String> stringMap(Map<String, Object> parent, String path, String key) {
        Map<String, Object> raw = optionalMap(parent, path, key);
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : raw.entrySet()) {
            String p = child(child(path, key), e.getKey());
            if (!(e.getValue() instanceof String s)) {
                throw error(p, "must be a string (quote it)", e.getValue());
            }
            out.put(e.getKey(), s);
        }
        return out;
    }
}
