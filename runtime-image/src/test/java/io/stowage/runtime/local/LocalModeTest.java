package io.stowage.runtime.local;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Local mode: the server started on examples/local places its manifests and answers a chat completion. */
@QuarkusTest
@TestProfile(LocalModeTest.ExamplesLocal.class)
class LocalModeTest {
    /** serve -f examples/local (the tests run in the runtime-image module directory). */
    public static class ExamplesLocal implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("stowage.local.dir", "../examples/local", "stowage.budget-bytes", "1073741824");
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Test
    void servesTheExampleManifestsAndAnswersAChatCompletion() {
        OpenAIClient client = OpenAIOkHttpClient.builder()
                .baseUrl(base + "v1")
                .apiKey("unused")
                .maxRetries(0)
                .build();
        try {
            assertThat(client.models().list().data())
                    .extracting(m -> m.id())
                    .containsExactly("stories", "stories-batch", "stories-auto");
            ChatCompletion c = client.chat()
                    .completions()
                    .create(ChatCompletionCreateParams.builder()
                            .model("stories")
                            .addUserMessage("Once upon a time")
                            .maxCompletionTokens(20)
                            .build());
            assertThat(c.choices().get(0).message().content().orElseThrow()).isNotBlank();
            assertThat(c.usage().orElseThrow().completionTokens()).isBetween(1L, 20L);
        } finally {
            client.close();
        }
    }

    @Test
    void servesTheExampleRouteToAnOpenAiClientAndAuditsTheDecision() throws Exception {
        OpenAIClient client = OpenAIOkHttpClient.builder()
                .baseUrl(base + "v1")
                .apiKey("unused")
                .maxRetries(0)
                .build();
        try {
            Completion c = client.completions()
                    .create(CompletionCreateParams.builder()
                            .model("stories-auto")
                            .prompt("Once upon a time")
                            .maxTokens(16)
                            .temperature(0.0)
                            .build());
            assertThat(c.model()).isEqualTo("stories-auto");
            assertThat(c.choices().get(0).text()).isNotBlank();
        } finally {
            client.close();
        }
        HttpResponse<String> audit = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create(base + "v1/routes/audit?route=stories-auto"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        JsonNode d = new ObjectMapper().readTree(audit.body()).path("data").get(0);
        assertThat(d.path("route").asText()).isEqualTo("stories-auto");
        assertThat(d.path("tiers").get(0).path("deployment").asText()).isEqualTo("stories-batch");
        assertThat(d.path("tiers").get(0).path("confidence").asDouble()).isBetween(0.0, 1.0);
        // the first tier answered when its confidence reached 0.5, else the second did
        String expected = d.path("tiers").get(0).path("confidence").asDouble() >= 0.5 ? "stories-batch" : "stories";
        assertThat(d.path("answeredBy").asText()).isEqualTo(expected);
    }
}
