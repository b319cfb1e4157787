package io.stowage.placement.manifest;

/**
 * A manifest, inventory or catalog that cannot be used; the message names the file, the document,
 * the field path, the rule and the bad value.
 */
public final class ManifestException extends RuntimeException {
    public ManifestException(String message) {
        super(message);
    }

    public ManifestException(String message, Throwable cause) {
        super(message, cause);
    }
}
