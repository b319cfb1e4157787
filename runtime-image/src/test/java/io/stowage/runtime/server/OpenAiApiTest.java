package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionTokenLogprob;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.HostAssignment;
import io.stowage.runtime.engine.TestModels;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The OpenAI-compatible API of a running host, driven by the official OpenAI Java SDK. */
@QuarkusTest
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiApiTest {
    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    OpenAIClient client;

    static final JsonNode GOLDEN = TestModels.golden("stories260K.golden.json");

    @BeforeAll
    void client() {
        client = OpenAIOkHttpClient.builder()
                .baseUrl(base.toString() + "v1")
                .apiKey("unused")
                .maxRetries(0)
                .build();
    }

    @AfterAll
    void close() {
        client.close();
    }

    @BeforeEach
    void assign() throws Exception {
        HostAssignment a = TestHost.assignment(
                1,
                List.of(TestHost.q8Model()),
                List.of(
                        TestHost.replica("default/stories#0", "stories", TestHost.Q8_DIGEST, 512, 8),
                        TestHost.replica("default/stories#1", "stories", TestHost.Q8_DIGEST, 512, 8),
                        TestHost.replica("default/other#0", "other", TestHost.Q8_DIGEST, 256, 2)));
        TestHost.applyAndWait(service.adminPort(), a);
    }

    private static CompletionCreateParams.Builder greedy(String prompt, int maxTokens) {
        return CompletionCreateParams.builder()
                .model("stories")
                .prompt(prompt)
                .maxTokens(maxTokens)
                .temperature(0.0);
    }

    @Test
    void listsTheServedModelNames() {
        List<String> ids = client.models().list().data().stream().map(Model::id).toList();
        assertThat(ids).containsExactly("other", "stories");
    }

    @Test
    void greedyCompletionEqualsTheGoldenContinuation() {
        Completion c = client.completions()
                .create(greedy(
                                GOLDEN.get("prompt").asText(),
                                GOLDEN.get("n_generated").asInt())
                        .build());
        CompletionChoice choice = c.choices().get(0);
        assertThat(choice.text()).isEqualTo(GOLDEN.get("generated_text").asText());
        assertThat(choice.finishReason()).isEqualTo(CompletionChoice.FinishReason.LENGTH);
        assertThat(c.usage().orElseThrow().promptTokens())
                .isEqualTo(GOLDEN.get("prompt_token_ids").size());
        assertThat(c.usage().orElseThrow().completionTokens()).isEqualTo(40);
    }

    @Test
    void chatCompletionUsesTheTemplateAndReportsUsage() {
        ChatCompletion c = client.chat()
                .completions()
                .create(ChatCompletionCreateParams.builder()
                        .model("other")
                        .addUserMessage("Once upon a time")
                        .maxCompletionTokens(12)
                        .temperature(0.0)
                        .build());
        ChatCompletion.Choice choice = c.choices().get(0);
        assertThat(choice.message().content()).isPresent();
        assertThat(choice.message().content().orElseThrow()).isNotEmpty();
        assertThat(c.model()).isEqualTo("other");
        // the fallback template wraps the message in role markers: more tokens than the bare text
        assertThat(c.usage().orElseThrow().promptTokens()).isGreaterThan(5);
        assertThat(c.usage().orElseThrow().completionTokens()).isLessThanOrEqualTo(12);
    }

    @Test
    void streamingChunksAddUpToTheUnstreamedText() {
        String whole = client.completions()
                .create(greedy("Once upon a time", 30).build())
                .choices()
                .get(0)
                .text();
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<Completion> s = client.completions()
                .createStreaming(greedy("Once upon a time", 30).build())) {
            s.stream().forEach(c -> c.choices().forEach(ch -> streamed.append(ch.text())));
        }
        assertThat(streamed.toString()).isEqualTo(whole);

        StringBuilder chat = new StringBuilder();
        List<String> finish = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat()
                .completions()
                .createStreaming(ChatCompletionCreateParams.builder()
                        .model("stories")
                        .addUserMessage("Tell me a story")
                        .maxCompletionTokens(20)
                        .temperature(0.0)
                        .build())) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> {
                        ch.delta().content().ifPresent(chat::append);
                        ch.finishReason().ifPresent(f -> finish.add(f.toString()));
                    }));
        }
        assertThat(chat.toString()).isNotEmpty();
        assertThat(finish).hasSize(1);
    }

    @Test
    void stopSequenceEndsTheTextBeforeIt() {
        String golden = GOLDEN.get("generated_text").asText();
        Completion c = client.completions()
                .create(greedy("Once upon a time", 40).stop(" named").build());
        CompletionChoice choice = c.choices().get(0);
        assertThat(choice.text()).isEqualTo(golden.substring(0, golden.indexOf(" named")));
        assertThat(choice.finishReason()).isEqualTo(CompletionChoice.FinishReason.STOP);
    }

    @Test
    void logprobsOfGreedyTokensAreTheTopAlternatives() {
        ChatCompletion c = client.chat()
                .completions()
                .create(ChatCompletionCreateParams.builder()
                        .model("stories")
                        .addUserMessage("Once upon a time")
                        .maxCompletionTokens(8)
                        .temperature(0.0)
                        .logprobs(true)
                        .topLogprobs(3)
                        .build());
        List<ChatCompletionTokenLogprob> content =
                c.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
        assertThat(content).hasSize((int) c.usage().orElseThrow().completionTokens());
        for (ChatCompletionTokenLogprob t : content) {
            assertThat(t.logprob()).isLessThanOrEqualTo(0.0);
            assertThat(t.topLogprobs()).hasSize(3);
            // greedy: the chosen token is the most likely one
            assertThat(t.logprob()).isEqualTo(t.topLogprobs().get(0).logprob());
            assertThat(t.topLogprobs().get(1).logprob())
                    .isLessThanOrEqualTo(t.topLogprobs().get(0).logprob());
        }

        Completion legacy = client.completions()
                .create(greedy("Once upon a time", 5).logprobs(2).build());
        CompletionChoice.Logprobs lp = legacy.choices().get(0).logprobs().orElseThrow();
        assertThat(lp.tokenLogprobs().orElseThrow()).hasSize(5);
        assertThat(lp.topLogprobs().orElseThrow()).hasSize(5);
    }

    @Test
    void eightConcurrentStreamsEqualTheSameRequestAlone() throws Exception {
        String alone = client.completions()
                .create(greedy("One day", 60).build())
                .choices()
                .get(0)
                .text();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<String>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                Callable<String> call = () -> {
                    StringBuilder sb = new StringBuilder();
                    try (StreamResponse<Completion> s = client.completions()
                            .createStreaming(greedy("One day", 60).build())) {
                        s.stream().forEach(c -> c.choices().forEach(ch -> sb.append(ch.text())));
                    }
                    return sb.toString();
                };
                futures.add(pool.submit(call));
            }
            for (Future<String> f : futures) {
                assertThat(f.get()).isEqualTo(alone);
            }
        } finally {
            pool.shutdownNow();
        }
        // they ran batched: the scheduler took fewer steps than 8 separate runs would
    }

    @Test
    void metricsAndProbesReportTheHost() throws Exception {
        client.completions().create(greedy("Once upon a time", 7).build());
        var http = java.net.http.HttpClient.newHttpClient();
        String metrics = http.send(
                        java.net.http.HttpRequest.newBuilder(base.toURI().resolve("/q/metrics"))
                                .build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString())
                .body();
        assertThat(metrics)
                .containsPattern("stowage_requests_total\\{.*model=\"stories\".*status=\"200\".*} [1-9]")
                .containsPattern("stowage_generated_tokens_total\\{model=\"stories\"} [1-9]")
                .contains("stowage_time_to_first_token_seconds_bucket")
                .contains("stowage_inter_token_latency_seconds_bucket")
                .containsPattern("stowage_kv_reserved_bytes [1-9]")
                .containsPattern("stowage_model_bytes [1-9]")
                .containsPattern("stowage_workspace_bytes [1-9]")
                .containsPattern("stowage_device_allocated_bytes [1-9]")
                .contains("stowage_queue_depth");
        for (String probe : List.of("/q/health/live", "/q/health/ready")) {
            var r = http.send(
                    java.net.http.HttpRequest.newBuilder(base.toURI().resolve(probe))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(probe + ": " + r.body()).isEqualTo(200);
        }
    }

    @Test
    void badInputAnswers4xxInOpenAiShape() throws Exception {
        URI b = base.toURI();
        var malformed = TestHost.post(b, "/v1/completions", "{\"model\": \"stories\", \"prompt\": ");
        assertThat(malformed.statusCode()).isEqualTo(400);
        // a short reason and where, none of Jackson's internals ("Source: REDACTED", feature names)
        assertThat(TestHost.json(malformed.body()).at("/error/message").asText())
                .isEqualTo(
                        "request body is not valid JSON: Unexpected end-of-input within/between Object entries at line 1, column 32");
        var stray = TestHost.post(b, "/v1/completions", "{\"model\": \"stories\",\n \"prompt\": \"x\",, }");
        assertThat(stray.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(stray.body()).at("/error/message").asText())
                .isEqualTo(
                        "request body is not valid JSON: Unexpected character (',' (code 44)): was expecting double-quote"
                                + " to start field name at line 2, column 16");
        assertThat(TestHost.json(stray.body()).at("/error/type").asText()).isEqualTo("invalid_request_error");
        assertThat(TestHost.json(malformed.body()).at("/error/type").asText()).isEqualTo("invalid_request_error");

        var unknown = TestHost.post(
                b,
                "/v1/chat/completions",
                "{\"model\": \"nope\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
        assertThat(unknown.statusCode()).isEqualTo(404);
        assertThat(TestHost.json(unknown.body()).at("/error/message").asText())
                .contains("'nope'")
                .contains("stories");

        var tooLong = TestHost.post(
                b, "/v1/completions", "{\"model\": \"other\", \"prompt\": \"Once upon a time\", \"max_tokens\": 300}");
        assertThat(tooLong.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(tooLong.body()).at("/error/code").asText()).isEqualTo("context_length_exceeded");
        assertThat(TestHost.json(tooLong.body()).at("/error/message").asText())
                .contains("256")
                .contains("300");

        var negative =
                TestHost.post(b, "/v1/completions", "{\"model\": \"stories\", \"prompt\": \"x\", \"temperature\": -1}");
        assertThat(negative.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(negative.body()).at("/error/param").asText()).isEqualTo("temperature");
        assertThat(TestHost.json(negative.body()).at("/error/message").asText()).contains("-1");

        var absurd = TestHost.post(
                b, "/v1/completions", "{\"model\": \"stories\", \"prompt\": \"x\", \"max_tokens\": 1000000000}");
        assertThat(absurd.statusCode()).isEqualTo(400);

        var zero =
                TestHost.post(b, "/v1/completions", "{\"model\": \"stories\", \"prompt\": \"x\", \"max_tokens\": 0}");
        assertThat(zero.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(zero.body()).at("/error/param").asText()).isEqualTo("max_tokens");

        var noMessages = TestHost.post(b, "/v1/chat/completions", "{\"model\": \"stories\", \"messages\": []}");
        assertThat(noMessages.statusCode()).isEqualTo(400);

        var badRole = TestHost.post(
                b,
                "/v1/chat/completions",
                "{\"model\": \"stories\", \"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}");
        assertThat(badRole.statusCode()).isEqualTo(400);
        assertThat(TestHost.json(badRole.body()).at("/error/message").asText()).contains("wizard");

        // and the server still serves
        assertThat(client.completions().create(greedy("Once", 3).build()).choices())
                .hasSize(1);
    }
}
