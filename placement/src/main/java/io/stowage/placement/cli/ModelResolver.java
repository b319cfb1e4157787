package io.stowage.placement.cli;

import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.manifest.CatalogEntry;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ModelCatalog;
import io.stowage.placement.manifest.ModelSource;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;

/**
 * Finds a deployment's model facts: the GGUF header of a local file, the header of an http(s) URL
 * read with Range requests (only when {@code --fetch-headers} allows the network), else the {@code
 * --models} catalog entry for the URI as written.
 */
final class ModelResolver {

    private final ModelCatalog catalog;
    private final String catalogName;
    private final boolean fetchHeaders;
    private final Map<String, ModelFacts> cache = new HashMap<>();

    ModelResolver(ModelCatalog catalog, String catalogName, boolean fetchHeaders) {
        this.catalog = catalog;
        this.catalogName = catalogName;
        this.fetchHeaders = fetchHeaders;
    }

    ModelFacts resolve(LlmDeploymentManifest m) {
        ModelSource src = m.model();
        String key = src.localFile() != null ? "file:" + src.localFile() : src.uri();
        ModelFacts known = cache.get(key);
        if (known != null) {
            return known;
        }
        ModelFacts facts = lookup(m);
        cache.put(key, facts);
        return facts;
    }

    private ModelFacts lookup(LlmDeploymentManifest m) {
        ModelSource src = m.model();
        if (src.localFile() != null && Files.isRegularFile(src.localFile())) {
            try {
                ModelDescription d = ModelDescription.from(GgufReader.readFile(src.localFile()));
                return new ModelFacts(
                        d.shape(), d.quantization(), d.parameterCount(), null, "GGUF header of " + src.localFile());
            } catch (IOException | GgufFormatException e) {
                throw new ManifestException(m.source() + ": spec.model.uri: cannot read the GGUF header of "
                        + src.localFile() + ": " + e.getMessage());
            }
        }
        CatalogEntry entry = catalog.get(src.uri());
        if (entry != null) {
            return new ModelFacts(
                    entry.shape(), entry.quantization(), entry.parameters(), entry.sha256(), "catalog " + catalogName);
        }
        if (src.isHttp() && fetchHeaders) {
            try {
                ModelDescription d = ModelDescription.from(GgufReader.create().read(URI.create(src.uri())));
                return new ModelFacts(
                        d.shape(), d.quantization(), d.parameterCount(), null, "GGUF header fetched from " + src.uri());
            } catch (IOException | GgufFormatException | IllegalArgumentException e) {
                throw new ManifestException(m.source() + ": spec.model.uri: cannot read the GGUF header of " + src.uri()
                        + ": " + e.getMessage());
            }
        }
        String hint = src.localFile() != null
                ? "the file " + src.localFile() + " does not exist"
                : src.isHttp()
                        ? "pass --fetch-headers to read its header over the network"
                        : "plan cannot read " + src.scheme() + ":// sources";
        throw new ManifestException(m.source() + ": spec.model.uri: no model facts for \"" + src.uri() + "\" ("
                + hint + "); add it to the models catalog ("
                + (catalogName == null ? "--models FILE" : catalogName) + ")");
    }
}
