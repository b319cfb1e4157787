package io.stowage.operator.app;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The packaged wiring: Quarkus starts the operator SDK against a mock API server, an LlmDeployment
 * event reaches the reconciler, and the placement loop writes its status.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
class OperatorApplicationTest {
    @Inject
    KubernetesClient client;

    @TestHTTPResource("/metrics")
    URI metrics;

    @Test
    void anAppliedDeploymentGetsItsStatusFromTheRunningOperator() throws Exception {
        Path root =
                Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
        client.apiextensions()
                .v1()
                .customResourceDefinitions()
                .resource(Serialization.unmarshal(
                        Files.readString(root.resolve("crds/" + LlmDeployment.CRD_NAME + "-v1.yml")),
                        CustomResourceDefinition.class))
                .createOr(x -> x.update());
        // No network and no cluster: a URI the operator must refuse gives a status without any I/O.
        client.resource(new LlmDeployment(
                        "default", "refused", new LlmDeploymentSpec("https://not-allowed.example/m.gguf", 1)))
                .create();

        LlmDeployment d = null;
        for (int i = 0; i < 150; i++) {
            d = client.resources(LlmDeployment.class)
                    .inNamespace("default")
                    .withName("refused")
                    .get();
            if (d.getStatus() != null && d.getStatus().condition("Placed") != null) {
                break;
            }
            Thread.sleep(100);
        }
        assertThat(d.getStatus()).as("status written by the operator").isNotNull();
        assertThat(d.getStatus().condition("Placed").getReason()).isEqualTo("ModelHostNotAllowed");
        assertThat(d.getMetadata().getFinalizers()).contains("stowage.io/finalizer");
        String scraped = HttpClient.newHttpClient()
                .send(HttpRequest.newBuilder(metrics).build(), HttpResponse.BodyHandlers.ofString())
                .body();
        assertThat(scraped).contains("stowage_placement_pass_seconds_count", "stowage_replicas_pending");
    }
}
