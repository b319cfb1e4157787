package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The shipped tiny model ends a story with BOS, as llama2.c's models do: completions and chats stop there with
 * finish_reason "stop" instead of running into a second story.
 */
@QuarkusTest
class EndOfGenerationApiTest {
    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    @BeforeEach
    void assign() throws Exception {
        TestHost.applyAndWait(
                service.adminPort(),
                TestHost.assignment(
                        1,
                        List.of(TestHost.q8Model()),
                        List.of(TestHost.replica("default/stories#0", "stories", TestHost.Q8_DIGEST, 512, 2))));
    }

    private JsonNode post(String path, String body) throws Exception {
        HttpResponse<String> r = TestHost.post(URI.create(base.toString()), path, body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return TestHost.json(r.body());
    }

    @Test
    void completionStopsAtTheEndOfTheStory() throws Exception {
        JsonNode c = post(
                "/v1/completions",
                "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": 450, \"temperature\": 0}");
        assertThat(c.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
        int completion = c.at("/usage/completion_tokens").asInt();
        assertThat(completion).isLessThan(450);
        String text = c.at("/choices/0/text").asText();
        // one story: it ends with its last sentence, and no second story starts
        assertThat(text).startsWith(", there was a little girl named Lily").doesNotContain("Once upon a time");
        assertThat(text.strip()).matches("(?s).*[.!?\\\"]$");

        // streamed, the same text and the same finish reason in the last chunk
        HttpResponse<String> s = TestHost.post(
                URI.create(base.toString()),
                "/v1/completions",
                "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": 450, \"temperature\": 0,"
                        + " \"stream\": true}");
        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (String line : s.body().lines().toList()) {
            if (!line.startsWith("data: {")) {
                continue;
            }
            JsonNode chunk = TestHost.json(line.substring(6));
            streamed.append(chunk.at("/choices/0/text").asText());
            if (chunk.at("/choices/0/finish_reason").isTextual()) {
                finish = chunk.at("/choices/0/finish_reason").asText();
            }
        }
        assertThat(finish).isEqualTo("stop");
        assertThat(streamed.toString()).isEqualTo(text);
    }

    @Test
    void chatWithoutMaxTokensStopsAtTheEndOfTheStory() throws Exception {
        JsonNode c = post(
                "/v1/chat/completions",
                "{\"model\": \"stories\", \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}],"
                        + " \"temperature\": 0}");
        assertThat(c.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
        int prompt = c.at("/usage/prompt_tokens").asInt();
        int completion = c.at("/usage/completion_tokens").asInt();
        // without max_tokens it may run to the context's end (512 tokens): it stopped well before
        assertThat(prompt + completion).isLessThan(512);
        assertThat(c.at("/choices/0/message/content").asText()).isNotEmpty();
    }
}
