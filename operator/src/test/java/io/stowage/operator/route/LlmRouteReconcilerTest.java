package io.stowage.operator.route;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.crd.LlmRoute;
import io.stowage.operator.crd.LlmRouteSpec;
import io.stowage.operator.crd.RouteCascadeSpec;
import io.stowage.operator.crd.RouteTierSpec;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.LlmRouteManifest;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The LlmRoute reconciler against the Fabric8 mock API server (CRUD): the route's status, and the router's route
 * table ConfigMap, which the router's own manifest reader takes.
 */
@EnableKubernetesMockClient(crud = true)
class LlmRouteReconcilerTest {
    private static final String TABLE = "stowage/stowage-router-routes";
    private static final String ENDPOINT = "http://stowage-router.stowage.svc/v1";

    KubernetesClient client;
    private LlmRouteReconciler reconciler;

    @BeforeEach
    void setUp() {
        reconciler = new LlmRouteReconciler(new RouteSync(client, TABLE, ENDPOINT));
        LlmDeploymentSpec small = new LlmDeploymentSpec("hf://org/repo/small.gguf", 1);
        small.setServedModelName("small-chat");
        client.resource(new LlmDeployment("team-a", "small", small)).create();
        client.resource(new LlmDeployment("team-a", "large", new LlmDeploymentSpec("hf://org/repo/large.gguf", 1)))
                .create();
    }

    private static LlmRoute route(String name, String... tiers) {
        LlmRouteSpec spec = new LlmRouteSpec();
        for (int i = 0; i < tiers.length; i++) {
            RouteTierSpec t = new RouteTierSpec();
            t.setDeployment(tiers[i]);
            if (i < tiers.length - 1) {
                RouteCascadeSpec c = new RouteCascadeSpec();
                c.setThreshold(0.6);
                t.setCascade(c);
            }
            spec.getTiers().add(t);
        }
        LlmRoute r = new LlmRoute("team-a", name, spec);
        r.getMetadata().setGeneration(3L);
        return r;
    }

    private ConfigMap table() {
        return client.configMaps()
                .inNamespace("stowage")
                .withName("stowage-router-routes")
                .get();
    }

    private static ManifestSet read(ConfigMap cm) {
        return ManifestReader.parse("routes.yaml", Path.of("."), cm.getData().get(RouteSync.TABLE_KEY));
    }

    @Test
    void aRouteOverExistingDeploymentsServesAndEntersTheRoutersTableOnce() {
        LlmRoute chat = route("chat", "small", "large");

        UpdateControl<LlmRoute> first = reconciler.reconcile(chat, List.of(chat));

        assertThat(first.isPatchStatus()).isTrue();
        var status = chat.getStatus();
        assertThat(status.getPhase()).isEqualTo(RouteSync.SERVING);
        assertThat(status.getTiers()).isEqualTo("small (mean >= 0.6) -> large");
        assertThat(status.getEndpoint()).isEqualTo(ENDPOINT);
        assertThat(status.getObservedGeneration()).isEqualTo(3L);
        assertThat(status.getMessage()).isNull();

        ConfigMap cm = table();
        ManifestSet set = read(cm);
        assertThat(set.routes()).extracting(LlmRouteManifest::id).containsExactly("team-a/chat");
        assertThat(set.routes().getFirst().tiers()).hasSize(2);
        assertThat(set.deployments())
                .extracting(LlmDeploymentManifest::id, LlmDeploymentManifest::servedModelName)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("team-a/large", "large"),
                        org.assertj.core.groups.Tuple.tuple("team-a/small", "small-chat"));

        // an idle pass writes nothing: the same status, the same table
        String version = cm.getMetadata().getResourceVersion();
        UpdateControl<LlmRoute> again = reconciler.reconcile(chat, List.of(chat));
        assertThat(again.isNoUpdate()).isTrue();
        assertThat(table().getMetadata().getResourceVersion()).isEqualTo(version);
    }

    @Test
    void aTierWithoutItsDeploymentIsInvalidSaysWhichAndStaysOutOfTheTable() {
        LlmRoute chat = route("chat", "small", "large");
        LlmRoute broken = route("broken", "small", "huge");

        reconciler.reconcile(broken, List.of(chat, broken));

        assertThat(broken.getStatus().getPhase()).isEqualTo(RouteSync.INVALID);
        assertThat(broken.getStatus().getMessage())
                .isEqualTo("tier huge names no LlmDeployment of namespace team-a; create it or correct"
                        + " spec.tiers[].deployment");
        assertThat(broken.getStatus().getEndpoint()).isNull();
        assertThat(read(table()).routes()).extracting(LlmRouteManifest::id).containsExactly("team-a/chat");
    }

    @Test
    void aDeletedRouteLeavesTheTableAndOthersLabelsOnTheConfigMapSurvive() {
        LlmRoute chat = route("chat", "small", "large");
        LlmRoute code = route("code", "large");
        reconciler.reconcile(chat, List.of(chat, code));
        ConfigMap cm = table();
        cm.getMetadata().getLabels().put("team", "platform");
        client.resource(cm).update();

        reconciler.cleanup(chat, List.of(code));

        ConfigMap after = table();
        assertThat(read(after).routes()).extracting(LlmRouteManifest::id).containsExactly("team-a/code");
        assertThat(read(after).deployments())
                .extracting(LlmDeploymentManifest::id)
                .containsExactly("team-a/large");
        assertThat(after.getMetadata().getLabels()).containsEntry("team", "platform");
    }

    @Test
    void withoutARouterTableOnlyTheStatusIsWritten() {
        LlmRouteReconciler statusOnly = new LlmRouteReconciler(new RouteSync(client, null, null));
        LlmRoute chat = route("chat", "small");

        statusOnly.reconcile(chat, List.of(chat));

        assertThat(chat.getStatus().getPhase()).isEqualTo(RouteSync.SERVING);
        assertThat(chat.getStatus().getEndpoint()).isNull();
        assertThat(table()).isNull();
    }
}
