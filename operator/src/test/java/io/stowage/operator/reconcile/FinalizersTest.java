package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.host.HostAdminClient;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link Finalizers}: every change carries the resourceVersion it was computed from; a conflict is re-read. */
@EnableKubernetesMockClient
class FinalizersTest {
    private static final String PATH = "/apis/stowage.io/v1alpha1/namespaces/team-a/llmdeployments/chat";

    KubernetesClient client;
    KubernetesMockServer server;

    private static LlmDeployment chat(String resourceVersion, String... finalizers) {
        LlmDeployment d = new LlmDeployment("team-a", "chat", new LlmDeploymentSpec("hf://org/repo/m.gguf", 1));
        d.getMetadata().setResourceVersion(resourceVersion);
        d.getMetadata().setFinalizers(List.of(finalizers));
        return d;
    }

    private static JsonNode body(RecordedRequest r) throws Exception {
        return HostAdminClient.JSON.readTree(r.getBody().readUtf8());
    }

    @Test
    void aConflictReadsTheResourceAgainAndKeepsTheFinalizerAnotherControllerAdded() throws Exception {
        server.expect()
                .patch()
                .withPath(PATH)
                .andReturn(
                        409,
                        new StatusBuilder().withCode(409).withReason("Conflict").build())
                .once();
        server.expect()
                .get()
                .withPath(PATH)
                .andReturn(200, chat("8", "other.io/cleanup"))
                .once();
        server.expect()
                .patch()
                .withPath(PATH)
                .andReturn(200, chat("9", "other.io/cleanup", Labels.FINALIZER))
                .once();

        LlmDeployment got = Finalizers.add(client, chat("7"), Labels.FINALIZER);

        assertThat(got.getMetadata().getFinalizers()).containsExactly("other.io/cleanup", Labels.FINALIZER);
        RecordedRequest first = server.takeRequest();
        assertThat(first.getMethod()).isEqualTo("PATCH");
        assertThat(first.getHeader("Content-Type")).startsWith("application/merge-patch+json");
        JsonNode firstBody = body(first);
        assertThat(firstBody.at("/metadata/resourceVersion").asText()).isEqualTo("7");
        assertThat(firstBody.at("/metadata/finalizers").toString()).isEqualTo("[\"" + Labels.FINALIZER + "\"]");
        assertThat(server.takeRequest().getMethod()).isEqualTo("GET");
        JsonNode second = body(server.takeRequest());
        assertThat(second.at("/metadata/resourceVersion").asText()).isEqualTo("8");
        assertThat(second.at("/metadata/finalizers").toString())
                .isEqualTo("[\"other.io/cleanup\",\"" + Labels.FINALIZER + "\"]");
    }

    @Test
    void removingTheLastFinalizerRemovesTheFieldUnderTheResourceVersion() throws Exception {
        server.expect().patch().withPath(PATH).andReturn(200, chat("12")).once();

        Finalizers.remove(client, chat("11", Labels.FINALIZER), Labels.FINALIZER);

        JsonNode b = body(server.takeRequest());
        assertThat(b.at("/metadata/resourceVersion").asText()).isEqualTo("11");
        assertThat(b.at("/metadata/finalizers").isNull()).isTrue();
    }

    @Test
    void aResourceThatAlreadyHasItIsNotPatched() {
        LlmDeployment d = chat("3", Labels.FINALIZER);

        assertThat(Finalizers.add(client, d, Labels.FINALIZER)).isSameAs(d);
        assertThat(server.getRequestCount()).isZero();
    }

    @Test
    void conflictsBeyondTheBoundAreReportedNotLooped() {
        server.expect()
                .patch()
                .withPath(PATH)
                .andReturn(
                        409,
                        new StatusBuilder().withCode(409).withReason("Conflict").build())
                .always();
        server.expect().get().withPath(PATH).andReturn(200, chat("8")).always();

        assertThatThrownBy(() -> Finalizers.add(client, chat("7"), Labels.FINALIZER))
                .isInstanceOf(KubernetesClientException.class)
                .satisfies(e ->
                        assertThat(((KubernetesClientException) e).getCode()).isEqualTo(409));
        assertThat(server.getRequestCount()).isEqualTo(2 * Finalizers.ATTEMPTS - 1);
    }
}
