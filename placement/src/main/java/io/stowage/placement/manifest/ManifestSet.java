package io.stowage.placement.manifest;

import java.util.List;

/** The LlmDeployments read from a file or directory, with warnings about what was ignored. */
public record ManifestSet(List<LlmDeploymentManifest> deployments, List<String> warnings) {
    public ManifestSet {
        deployments = List.copyOf(deployments);
        warnings = List.copyOf(warnings);
    }
}
