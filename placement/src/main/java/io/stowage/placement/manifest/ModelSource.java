package io.stowage.placement.manifest;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * Where a deployment's model file comes from, as written in {@code spec.model}.
 *
 * @param uri the URI as written in the manifest (the key of a {@code --models} catalog)
 * @param scheme https, http, file, pvc, s3 or hf; a bare path is "file"
 * @param sha256 the expected content digest (64 lowercase hex digits), or null
 * @param localFile for "file" sources, the absolute path (a bare relative path is resolved against
 *     the manifest's directory); null otherwise
 */
public record ModelSource(String uri, String scheme, String sha256, Path localFile) {

    public ModelSource {
        Objects.requireNonNull(uri, "uri");
        Objects.requireNonNull(scheme, "scheme");
    }

    public boolean isHttp() {
        String s = scheme.toLowerCase(Locale.ROOT);
        return s.equals("http") || s.equals("https");
    }
}
