package io.stowage.operator.route;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmRoute;
import io.stowage.operator.crd.LlmRouteStatus;
import io.stowage.operator.crd.RouteCascadeSpec;
import io.stowage.operator.crd.RouteTierSpec;
import io.stowage.operator.host.HostAdminClient;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.BiFunction;
import java.util.stream.Collectors;

/**
 * Keeps the LlmRoutes and the router in step: each route's status (Serving, or Invalid with the tiers that name no
 * LlmDeployment), and the router's route table, a ConfigMap whose {@value #TABLE_KEY} holds the Serving routes and the
 * LlmDeployments their tiers name, as manifests the router reads (it watches the mounted file and reloads on change).
 */
public final class RouteSync {
    /** The ConfigMap key the router reads (its {@code -f} directory is the mounted ConfigMap). */
    public static final String TABLE_KEY = "routes.yaml";

    public static final String SERVING = "Serving";
    public static final String INVALID = "Invalid";

    private final KubernetesClient client;
    private final String tableNamespace;
    private final String tableName;
    private final String endpoint;

    /**
     * @param table {@code namespace/name} of the router's ConfigMap, or null: statuses only, no table written
     * @param endpoint the router's OpenAI base URL shown in each status, or null
     */
    public RouteSync(KubernetesClient client, String table, String endpoint) {
        this.client = client;
        if (table != null && !table.isBlank()) {
            int slash = table.indexOf('/');
            if (slash <= 0 || slash == table.length() - 1) {
                throw new IllegalArgumentException(
                        "stowage.router.routes-configmap (STOWAGE_ROUTER_ROUTES_CONFIGMAP) must"
                                + " be NAMESPACE/NAME, got '" + table + "'");
            }
            this.tableNamespace = table.substring(0, slash);
            this.tableName = table.substring(slash + 1);
        } else {
            this.tableNamespace = null;
            this.tableName = null;
        }
        this.endpoint = endpoint == null || endpoint.isBlank() ? null : endpoint;
    }

    /** The route's status, given a lookup of LlmDeployments by namespace and name (null when there is none). */
    public static LlmRouteStatus status(
            LlmRoute route, BiFunction<String, String, LlmDeployment> deployments, String endpoint) {
        LlmRouteStatus s = new LlmRouteStatus();
        s.setObservedGeneration(route.getMetadata().getGeneration());
        List<RouteTierSpec> tiers =
                route.getSpec() == null ? List.of() : route.getSpec().getTiers();
        s.setTiers(tiers.stream().map(RouteSync::tierText).collect(Collectors.joining(" -> ")));
        String ns = route.getMetadata().getNamespace();
        List<String> missing = new ArrayList<>();
        for (RouteTierSpec t : tiers) {
            if (t.getDeployment() == null || deployments.apply(ns, t.getDeployment()) == null) {
                missing.add(String.valueOf(t.getDeployment()));
            }
        }
        if (tiers.isEmpty()) {
            s.setPhase(INVALID);
            s.setMessage("the route has no tiers; list at least one LlmDeployment under spec.tiers");
        } else if (!missing.isEmpty()) {
            s.setPhase(INVALID);
            s.setMessage((missing.size() == 1 ? "tier " : "tiers ") + String.join(", ", missing)
                    + (missing.size() == 1 ? " names no LlmDeployment" : " name no LlmDeployments") + " of namespace "
                    + ns + "; create " + (missing.size() == 1 ? "it" : "them") + " or correct spec.tiers[].deployment");
        } else {
            s.setPhase(SERVING);
            s.setEndpoint(endpoint);
        }
        return s;
    }

    /** {@code small (mean >= 0.6)}, or the deployment alone for a tier without a cascade rule. */
    static String tierText(RouteTierSpec t) {
        RouteCascadeSpec c = t.getCascade();
        if (c == null || c.getThreshold() == null) {
            return t.getDeployment();
        }
        return String.format(
                Locale.ROOT,
                "%s (%s >= %s)",
                t.getDeployment(),
                c.getConfidence() == null ? "mean" : c.getConfidence().name(),
                new java.math.BigDecimal(Double.toString(c.getThreshold()))
                        .stripTrailingZeros()
                        .toPlainString());
    }

    /**
     * The route table: the Serving routes (by namespace and name) and the LlmDeployments they name, one JSON
     * document each (JSON is YAML: the router's manifest reader takes it), only the fields the router reads.
     */
    public static String table(List<LlmRoute> routes, BiFunction<String, String, LlmDeployment> deployments) {
        StringBuilder sb = new StringBuilder("# The LlmRoutes the router serves, written by the Stowage operator.\n");
        Map<String, LlmDeployment> named = new TreeMap<>();
        List<LlmRoute> sorted = routes.stream()
                .sorted(Comparator.comparing((LlmRoute r) -> r.getMetadata().getNamespace())
                        .thenComparing(r -> r.getMetadata().getName()))
                .toList();
        for (LlmRoute r : sorted) {
            if (!SERVING.equals(status(r, deployments, null).getPhase())) {
                continue;
            }
            String ns = r.getMetadata().getNamespace();
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("apiVersion", LlmDeployment.API_VERSION);
            doc.put("kind", LlmRoute.KIND);
            doc.put("metadata", Map.of("name", r.getMetadata().getName(), "namespace", ns));
            doc.put("spec", HostAdminClient.JSON.convertValue(r.getSpec(), Map.class));
            sb.append("---\n").append(json(doc)).append('\n');
            for (RouteTierSpec t : r.getSpec().getTiers()) {
                named.putIfAbsent(ns + "/" + t.getDeployment(), deployments.apply(ns, t.getDeployment()));
            }
        }
        for (LlmDeployment d : named.values()) {
            Map<String, Object> spec = new LinkedHashMap<>();
            spec.put("model", Map.of("uri", d.getSpec().getModel().getUri()));
            spec.put("servedModelName", d.servedModelName());
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("apiVersion", LlmDeployment.API_VERSION);
            doc.put("kind", LlmDeployment.KIND);
            doc.put(
                    "metadata",
                    Map.of(
                            "name",
                            d.getMetadata().getName(),
                            "namespace",
                            d.getMetadata().getNamespace()));
            doc.put("spec", spec);
            sb.append("---\n").append(json(doc)).append('\n');
        }
        return sb.toString();
    }

    private static String json(Object o) {
        try {
            return HostAdminClient.JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a route table document: " + e.getMessage(), e);
        }
    }

    /** The route's status from the cluster (one GET per tier). */
    public LlmRouteStatus status(LlmRoute route) {
        return status(route, this::deployment, endpoint);
    }

    private LlmDeployment deployment(String namespace, String name) {
        return client.resources(LlmDeployment.class)
                .inNamespace(namespace)
                .withName(name)
                .get();
    }

    /** Whether a route table is written (a ConfigMap is configured). */
    public boolean writesTable() {
        return tableName != null;
    }

    /**
     * Writes the route table of these routes when it differs from the ConfigMap's (an unchanged table writes
     * nothing).
     *
     * @return whether the ConfigMap was written
     */
    public boolean writeTable(List<LlmRoute> routes) {
        if (tableName == null) {
            return false;
        }
        String text = table(routes, this::deployment);
        ConfigMap have = client.configMaps()
                .inNamespace(tableNamespace)
                .withName(tableName)
                .get();
        if (have != null
                && have.getData() != null
                && Objects.equals(have.getData().get(TABLE_KEY), text)) {
            return false;
        }
        ConfigMap want = new ConfigMapBuilder()
                .withNewMetadata()
                .withName(tableName)
                .withNamespace(tableNamespace)
                .addToLabels("app.kubernetes.io/managed-by", "stowage-operator")
                .addToLabels("app.kubernetes.io/component", "router-routes")
                .endMetadata()
                .addToData(TABLE_KEY, text)
                .build();
        if (have == null) {
            client.configMaps().inNamespace(tableNamespace).resource(want).create();
        } else {
            // Keep the labels and annotations others put on it; only the table is ours.
            have.setData(new LinkedHashMap<>(have.getData() == null ? Map.of() : have.getData()));
            have.getData().put(TABLE_KEY, text);
            client.configMaps().inNamespace(tableNamespace).resource(have).update();
        }
        return true;
    }
}
