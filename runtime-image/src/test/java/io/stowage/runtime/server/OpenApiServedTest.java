package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.runtime.openapi.OpenApiDocument;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** Each server of a running host serves its own OpenAPI document, without a token, and answers what it documents. */
@QuarkusTest
class OpenApiServedTest {
    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    /**
     * HTTP/1.1 with a deadline: the JDK client's default h2c upgrade sometimes never completed a response of just over
     * 16 KiB (the OpenAI document, 16,408 bytes: two HTTP/2 DATA frames), and the test hung in full runs.
     */
    private static final java.net.http.HttpClient HTTP11 = java.net.http.HttpClient.newBuilder()
            .version(java.net.http.HttpClient.Version.HTTP_1_1)
            .connectTimeout(java.time.Duration.ofSeconds(5))
            .build();

    private static HttpResponse<String> get(String url) throws Exception {
        return HTTP11.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(java.time.Duration.ofSeconds(30))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void theOpenAiPortServesItsDocumentAsJsonAndYaml() throws Exception {
        String api = "http://127.0.0.1:" + base.getPort();
        HttpResponse<String> json = get(api + OpenApiDocument.JSON_PATH);
        assertThat(json.statusCode()).isEqualTo(200);
        assertThat(json.headers().firstValue("Content-Type")).hasValue("application/json");
        assertThat(TestHost.json(json.body()))
                .isEqualTo(OpenApiDocument.openAi().tree());
        assertThat(TestHost.json(json.body()).at("/paths").has("/v1/chat/completions"))
                .isTrue();
        HttpResponse<String> yaml = get(api + OpenApiDocument.YAML_PATH);
        assertThat(yaml.statusCode()).isEqualTo(200);
        assertThat(yaml.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/yaml");
        assertThat(yaml.body()).isEqualTo(OpenApiDocument.openAi().yaml());
    }

    @Test
    void theAdminPortServesItsDocumentWithoutTheToken() throws Exception {
        String admin = "http://127.0.0.1:" + service.adminPort();
        HttpResponse<String> json = get(admin + OpenApiDocument.JSON_PATH);
        assertThat(json.statusCode()).isEqualTo(200);
        assertThat(TestHost.json(json.body())).isEqualTo(OpenApiDocument.admin().tree());
        assertThat(TestHost.json(json.body()).at("/paths").has("/admin/v1/assignment"))
                .isTrue();
        assertThat(get(admin + OpenApiDocument.YAML_PATH).body())
                .isEqualTo(OpenApiDocument.admin().yaml());
        // the document is open, the API it describes is not
        assertThat(get(admin + "/admin/v1/state").statusCode()).isEqualTo(401);
    }

    @Test
    void theDocumentedQuarkusEndpointsAnswer() throws Exception {
        String api = "http://127.0.0.1:" + base.getPort();
        for (String path : new String[] {"/q/health/live", "/q/health/ready", "/q/metrics"}) {
            HttpResponse<String> r = get(api + path);
            assertThat(r.statusCode()).as(path).isIn(200, 503);
            assertThat(OpenApiDocument.openAi().tree().at("/paths").has(path))
                    .as(path)
                    .isTrue();
        }
    }
}
