package io.stowage.runtime.route;

import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.LlmRouteManifest;
import io.stowage.placement.manifest.ManifestException;
import java.net.URI;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The routes a router serves, by the name clients put in {@code model}, each tier resolved to the endpoint and the
 * served model name of its LlmDeployment.
 */
public final class RouteTable {
    /** A route with its tiers resolved. */
    public record Route(LlmRouteManifest manifest, List<Backend> tiers) {
        public String name() {
            return manifest.routeName();
        }
    }

    /**
     * Where a tier's requests go.
     *
     * @param baseUri the OpenAI API's base, e.g. {@code http://127.0.0.1:8080} (the router appends
     *     {@code /v1/chat/completions}); null: this process's own API (local mode)
     * @param model what the router puts in {@code model} there: the deployment's servedModelName
     */
    public record Backend(LlmRouteManifest.Tier tier, URI baseUri, String model) {
        public String deployment() {
            return tier.deployment();
        }
    }

    private final Map<String, Route> byName;

    private RouteTable(Map<String, Route> byName) {
        // manifest order, for listings
        this.byName = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(byName));
    }

    public static RouteTable empty() {
        return new RouteTable(Map.of());
    }

    /**
     * Local mode: every tier is a deployment of the same manifests, served by this process.
     *
     * @throws ManifestException a tier names a deployment the manifests do not define, or a route name is also a
     *     deployment's served name (a client could not tell which it gets)
     */
    public static RouteTable local(List<LlmRouteManifest> routes, List<LlmDeploymentManifest> deployments) {
        Map<String, LlmDeploymentManifest> byId = new LinkedHashMap<>();
        deployments.forEach(d -> byId.put(d.id(), d));
        Map<String, Route> out = new LinkedHashMap<>();
        for (LlmRouteManifest r : routes) {
            for (LlmDeploymentManifest d : deployments) {
                if (d.servedModelName().equals(r.routeName())) {
                    throw new ManifestException(r.source() + ": spec.routeName: \"" + r.routeName()
                            + "\" is also the served model name of LlmDeployment " + d.id() + " (" + d.source()
                            + "); give the route another name");
                }
            }
            List<Backend> tiers = r.tiers().stream()
                    .map(t -> {
                        LlmDeploymentManifest d = byId.get(r.namespace() + "/" + t.deployment());
                        if (d == null) {
                            throw new ManifestException(r.source() + ": spec.tiers: deployment \"" + t.deployment()
                                    + "\" is not an LlmDeployment of namespace " + r.namespace()
                                    + " in these manifests");
                        }
                        return new Backend(t, null, d.servedModelName());
                    })
                    .toList();
            put(out, new Route(r, tiers));
        }
        return new RouteTable(out);
    }

    /**
     * Router mode: each tier's deployment is reached at the URL {@code backends} gives for its name, else at its
     * Service ({@code http://NAME.NAMESPACE.svc}, port 80, the operator's Service for the deployment); the served
     * model name is the deployment's servedModelName where the manifests define it, else its name.
     */
    public static RouteTable remote(
            List<LlmRouteManifest> routes, List<LlmDeploymentManifest> deployments, Map<String, URI> backends) {
        Map<String, LlmDeploymentManifest> byId = new LinkedHashMap<>();
        deployments.forEach(d -> byId.put(d.id(), d));
        Map<String, Route> out = new LinkedHashMap<>();
        for (LlmRouteManifest r : routes) {
            List<Backend> tiers = r.tiers().stream()
                    .map(t -> {
                        LlmDeploymentManifest d = byId.get(r.namespace() + "/" + t.deployment());
                        URI uri = backends.get(t.deployment());
                        if (uri == null) {
                            uri = URI.create("http://" + t.deployment() + "." + r.namespace() + ".svc:80");
                        }
                        return new Backend(t, uri, d == null ? t.deployment() : d.servedModelName());
                    })
                    .toList();
            put(out, new Route(r, tiers));
        }
        return new RouteTable(out);
    }

    private static void put(Map<String, Route> out, Route route) {
        Route before = out.putIfAbsent(route.name(), route);
        if (before != null) {
            throw new ManifestException(route.manifest().source() + ": spec.routeName: \"" + route.name()
                    + "\" is already the route name of LlmRoute "
                    + before.manifest().id() + " ("
                    + before.manifest().source() + ")");
        }
    }

    /** The route clients name {@code model}, or null. */
    public Route get(String model) {
        return model == null ? null : byName.get(model);
    }

    public Collection<Route> routes() {
        return byName.values();
    }

    public boolean isEmpty() {
        return byName.isEmpty();
    }
}
