package io.stowage.placement.manifest;

import java.nio.file.Path;
import java.util.List;

/** The LlmDeployments and LlmRoutes read from a file or directory, with warnings about what was ignored. */
public record ManifestSet(
        List<LlmDeploymentManifest> deployments, List<LlmRouteManifest> routes, List<String> warnings) {
    public ManifestSet {
        deployments = List.copyOf(deployments);
        routes = List.copyOf(routes);
        warnings = List.copyOf(warnings);
    }

    /** Deployments only, no routes. */
    public ManifestSet(List<LlmDeploymentManifest> deployments, List<String> warnings) {
        this(deployments, List.of(), warnings);
    }

    /**
     * The deployments, of which there must be at least one: a run that places nothing must not pass for a success
     * (an empty file, a kind typo). The hints for what was skipped are in {@link #warnings()}, which the caller prints
     * before this error (plan and serve alike).
     *
     * @param source the file or directory the manifests were read from, as the message names it
     * @throws ManifestException when there is no LlmDeployment
     */
    public List<LlmDeploymentManifest> requireDeployments(Path source) {
        if (deployments.isEmpty()) {
            throw new ManifestException(source + ": no LlmDeployment to plan (expected documents with apiVersion: "
                    + LlmDeploymentManifest.API_VERSION + " and kind: " + LlmDeploymentManifest.KIND + ")");
        }
        return deployments;
    }
}
