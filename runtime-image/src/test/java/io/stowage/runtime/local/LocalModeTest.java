package io.stowage.runtime.local;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.URL;
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
                    .containsExactly("stories", "stories-batch");
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
}
