package io.stowage.operator.helm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The chart's LlmRoute router: off by default; on, the runtime image in router mode with its routes mounted. */
class RouterChartTest {
    private static final String VALUES = """
            router:
              enabled: true
              namespace: team-a
              manifests: |
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: chat, namespace: team-a}
                spec:
                  tiers:
                    - deployment: small
                      cascade: {confidence: mean, threshold: 0.6}
                    - deployment: large
              backends:
                small: http://small.team-a.svc:80
            """;

    @Test
    void theRouterIsOffByDefault() {
        assertThat(HelmChartTest.render(Map.of()))
                .noneMatch(o -> o.getMetadata().getName().endsWith("-router"));
    }

    @Test
    void anEnabledRouterRunsRouterModeOnTheMountedRoutesWithItsOwnSelector() throws IOException {
        List<HasMetadata> objs = HelmChartTest.renderWithValues(VALUES);

        Deployment d = HelmChartTest.ofKind(objs, Deployment.class)
                .filter(x -> x.getMetadata().getName().equals("stowage-router"))
                .findFirst()
                .orElseThrow();
        assertThat(d.getMetadata().getNamespace()).isEqualTo("team-a");
        var c = d.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertThat(c.getArgs())
                .containsExactly(
                        "router",
                        "-f",
                        "/etc/stowage/routes",
                        "--json-logs",
                        "--backend",
                        "small=http://small.team-a.svc:80");
        assertThat(c.getImage()).startsWith("ghcr.io/stowage/runtime:");
        assertThat(c.getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
        Deployment operator = HelmChartTest.ofKind(objs, Deployment.class)
                .filter(x -> !x.getMetadata().getName().equals("stowage-router"))
                .findFirst()
                .orElseThrow();
        // neither Deployment selects the other's pods, whatever namespaces they share
        assertThat(d.getSpec().getSelector().getMatchLabels())
                .isNotEqualTo(operator.getSpec().getSelector().getMatchLabels())
                .containsEntry("app.kubernetes.io/name", "stowage-router");

        ConfigMap routes =
                HelmChartTest.ofKind(objs, ConfigMap.class).findFirst().orElseThrow();
        assertThat(routes.getData().get("routes.yaml")).contains("kind: LlmRoute", "threshold: 0.6");
        Service svc = HelmChartTest.ofKind(objs, Service.class)
                .filter(x -> x.getMetadata().getName().equals("stowage-router"))
                .findFirst()
                .orElseThrow();
        assertThat(svc.getSpec().getPorts().get(0).getPort()).isEqualTo(80);
        assertThat(svc.getSpec().getSelector())
                .isEqualTo(d.getSpec().getSelector().getMatchLabels());
    }

    @Test
    void withoutManifestsTheOperatorWritesTheRoutesTheRouterMountsAndMayWriteOnlyThatConfigMap() throws IOException {
        List<HasMetadata> objs = HelmChartTest.renderWithValues("router: {enabled: true, namespace: team-a}\n");

        assertThat(HelmChartTest.ofKind(objs, ConfigMap.class))
                .as("no ConfigMap from the chart")
                .isEmpty();
        Deployment router = HelmChartTest.ofKind(objs, Deployment.class)
                .filter(x -> x.getMetadata().getName().equals("stowage-router"))
                .findFirst()
                .orElseThrow();
        var volume = router.getSpec().getTemplate().getSpec().getVolumes().stream()
                .filter(v -> v.getName().equals("routes"))
                .findFirst()
                .orElseThrow();
        assertThat(volume.getConfigMap().getName()).isEqualTo("stowage-router-routes");
        assertThat(volume.getConfigMap().getOptional()).isTrue();
        Deployment operator = HelmChartTest.ofKind(objs, Deployment.class)
                .filter(x -> !x.getMetadata().getName().equals("stowage-router"))
                .findFirst()
                .orElseThrow();
        assertThat(operator.getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)
                        .getEnv())
                .extracting(e -> e.getName() + "=" + e.getValue())
                .contains(
                        "STOWAGE_ROUTER_ROUTES_CONFIGMAP=team-a/stowage-router-routes",
                        "STOWAGE_ROUTER_ENDPOINT=http://stowage-router.team-a.svc/v1");
        var role = HelmChartTest.ofKind(objs, io.fabric8.kubernetes.api.model.rbac.Role.class)
                .filter(r -> r.getMetadata().getName().equals("stowage-operator-router-routes"))
                .findFirst()
                .orElseThrow();
        assertThat(role.getMetadata().getNamespace()).isEqualTo("team-a");
        assertThat(role.getRules()).anySatisfy(r -> {
            assertThat(r.getResources()).containsExactly("configmaps");
            assertThat(r.getResourceNames()).containsExactly("stowage-router-routes");
            assertThat(r.getVerbs()).containsExactlyInAnyOrder("get", "update", "patch");
        });
    }
}
