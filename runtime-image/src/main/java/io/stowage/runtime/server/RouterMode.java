package io.stowage.runtime.server;

import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.runtime.route.RouteTable;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Router mode's start ({@code router -f DIR}): reads the LlmRoutes of the manifests and resolves each tier to its
 * deployment's API, from {@code --backend NAME=URL} or else the deployment's Service; this process serves no model.
 */
final class RouterMode {
    private RouterMode() {}

    /**
     * @param backends {@code NAME=URL} pairs separated by commas (the {@code --backend} options)
     * @throws StartupException no route, a manifest error or a bad backend (1)
     */
    static RouteTable start(Path dir, String backends, PrintStream out, PrintStream err) {
        return start(dir, backends, out, err, false);
    }

    /**
     * @param watched the table is reloaded when the files change (fed by the operator): no route yet is a warning,
     *     not an error
     */
    static RouteTable start(Path dir, String backends, PrintStream out, PrintStream err, boolean watched) {
        ManifestSet set;
        try {
            set = ManifestReader.read(dir);
        } catch (ManifestException e) {
            throw new StartupException(StartupException.FAILED, e.getMessage(), e);
        } catch (IOException e) {
            throw new StartupException(StartupException.FAILED, "cannot read " + dir + ": " + e.getMessage(), e);
        }
        set.warnings().stream()
                .filter(w -> !w.endsWith("no LlmDeployment documents found"))
                .forEach(w -> err.println("warning: " + w));
        if (set.routes().isEmpty() && watched) {
            err.println("warning: " + dir + ": no LlmRoute yet; the router reloads its routes when the files change");
        } else if (set.routes().isEmpty()) {
            throw new StartupException(
                    StartupException.FAILED,
                    dir + ": no LlmRoute to serve (expected documents with apiVersion: stowage.io/v1alpha1 and kind:"
                            + " LlmRoute)");
        }
        RouteTable table;
        try {
            table = RouteTable.remote(set.routes(), set.deployments(), parseBackends(backends));
        } catch (ManifestException e) {
            throw new StartupException(StartupException.FAILED, e.getMessage(), e);
        }
        for (RouteTable.Route r : table.routes()) {
            out.printf(
                    "Route %s (LlmRoute %s): %s%n",
                    r.name(),
                    r.manifest().id(),
                    r.tiers().stream()
                            .map(b -> b.deployment() + " at " + b.baseUri() + " as " + b.model())
                            .collect(Collectors.joining(" -> ")));
        }
        return table;
    }

    /** {@code NAME=URL,NAME=URL} as a map; each URL must be http(s) with a host. */
    static Map<String, URI> parseBackends(String text) {
        Map<String, URI> out = new LinkedHashMap<>();
        if (text == null || text.isBlank()) {
            return out;
        }
        for (String pair : text.split(",")) {
            int eq = pair.indexOf('=');
            if (eq < 1) {
                throw new StartupException(
                        StartupException.USAGE,
                        "router: --backend must be NAME=URL (a deployment's name and its OpenAI API, e.g."
                                + " small=http://small.default.svc), got '" + pair + "'");
            }
            String name = pair.substring(0, eq).trim();
            String url = pair.substring(eq + 1).trim();
            URI uri;
            try {
                uri = new URI(url);
            } catch (URISyntaxException e) {
                throw new StartupException(
                        StartupException.USAGE, "router: --backend " + name + ": not a URL: " + e.getMessage(), e);
            }
            if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
                throw new StartupException(
                        StartupException.USAGE,
                        "router: --backend " + name + ": must be an http:// or https:// URL with a host, got '" + url
                                + "'");
            }
            if (out.put(name, uri) != null) {
                throw new StartupException(StartupException.USAGE, "router: --backend " + name + " is given twice");
            }
        }
        return out;
    }
}
