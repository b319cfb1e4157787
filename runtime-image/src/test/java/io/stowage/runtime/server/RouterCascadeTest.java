package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.placement.manifest.LlmRouteManifest.ConfidenceMethod;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.route.LlmRouter;
import io.stowage.runtime.route.RouteTable;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The router against a real host serving two real models: a two-tier route whose first tier (stories260K q8_0) is
 * judged by its own greedy tokens' log-probabilities and whose second (stories260K f32) answers what the first is
 * not confident about. The threshold is set between two prompts' measured confidences, so each side is exercised.
 */
@QuarkusTest
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RouterCascadeTest {
    static final String F32_SHA = "b2ff92c73111c26d8ebf48141871d366918264892756d5b21fc95d42fc659d98";
    static final String F32_DIGEST = "sha256:" + F32_SHA;
    static final int MAX_TOKENS = 12;
    static final List<String> PROMPTS = List.of(
            "Once upon a time", "The little dog", "Lily and Ben went", "Tom was sad because", "xq zv kk", "The sun");

    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    /** The prompts by the small tier's confidence, measured directly against the deployment. */
    record Measured(String prompt, double confidence, String smallText, String largeText) {}

    List<Measured> measured;
    Measured confident;
    Measured doubtful;
    double threshold;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.applyAndWait(
                service.adminPort(),
                TestHost.assignment(
                        1,
                        List.of(
                                TestHost.q8Model(),
                                new ModelAssignment(F32_DIGEST, TestModels.f32().toString(), F32_SHA, 0, 0)),
                        List.of(
                                TestHost.replica("default/small#0", "small", TestHost.Q8_DIGEST, 256, 4),
                                TestHost.replica("default/large#0", "large", F32_DIGEST, 256, 4))));
        measured = new ArrayList<>();
        for (String p : PROMPTS) {
            JsonNode small = completion("small", p, true, null);
            double[] lps = tokenLogprobs(small);
            measured.add(new Measured(
                    p, ConfidenceMethod.MEAN.of(lps), text(small), text(completion("large", p, false, null))));
        }
        measured.sort(Comparator.comparingDouble(Measured::confidence));
        doubtful = measured.getFirst();
        confident = measured.getLast();
        assertThat(confident.confidence() - doubtful.confidence())
                .as("the prompts' confidences must differ to put a threshold between them: %s", measured)
                .isGreaterThan(1e-3);
        threshold = (confident.confidence() + doubtful.confidence()) / 2;
        install(route("cascade", threshold, ""));
    }

    @AfterAll
    void tearDown() {
        service.router().routes(RouteTable.empty());
    }

    @Test
    void aConfidentAnswerOfTheFirstTierStandsAndADoubtfulOneIsEscalatedToTheSecond() throws Exception {
        HttpResponse<String> kept = post("/v1/completions", body("cascade", confident.prompt(), false), null);
        HttpResponse<String> escalated = post("/v1/completions", body("cascade", doubtful.prompt(), false), null);

        assertThat(kept.statusCode()).as(kept.body()).isEqualTo(200);
        assertThat(kept.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("small");
        JsonNode k = TestHost.json(kept.body());
        assertThat(text(k)).isEqualTo(confident.smallText());
        assertThat(k.path("model").asText()).isEqualTo("cascade");
        // the router asked the tier for logprobs; the client did not, so it gets none
        assertThat(k.path("choices").path(0).path("logprobs").isNull()).isTrue();

        assertThat(escalated.statusCode()).as(escalated.body()).isEqualTo(200);
        assertThat(escalated.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("large");
        assertThat(text(TestHost.json(escalated.body()))).isEqualTo(doubtful.largeText());

        // the audit log has both decisions with the tiers tried, their confidences, tokens and latency
        JsonNode audit = get("/v1/routes/audit?route=cascade&limit=2").path("data");
        assertThat(audit).hasSize(2);
        JsonNode first = audit.get(0);
        assertThat(first.path("answeredBy").asText()).isEqualTo("small");
        assertThat(first.path("status").asInt()).isEqualTo(200);
        assertThat(first.path("tiers")).hasSize(1);
        JsonNode small = first.path("tiers").get(0);
        assertThat(small.path("outcome").asText()).isEqualTo("ANSWERED");
        assertThat(small.path("confidence").asDouble()).isCloseTo(confident.confidence(), within(1e-9));
        assertThat(small.path("threshold").asDouble()).isEqualTo(threshold);
        assertThat(small.path("completionTokens").asInt()).isBetween(1, MAX_TOKENS);
        assertThat(small.path("promptTokens").asInt()).isPositive();
        assertThat(small.path("latencyMillis").asDouble()).isPositive();
        assertThat(small.path("costUnits").asDouble()).isPositive();

        JsonNode second = audit.get(1);
        assertThat(second.path("answeredBy").asText()).isEqualTo("large");
        assertThat(second.path("tiers")).hasSize(2);
        JsonNode tried = second.path("tiers").get(0);
        assertThat(tried.path("deployment").asText()).isEqualTo("small");
        assertThat(tried.path("outcome").asText()).isEqualTo("ESCALATED");
        assertThat(tried.path("confidence").asDouble()).isCloseTo(doubtful.confidence(), within(1e-9));
        assertThat(tried.path("reason").asText()).startsWith("confidence ").contains("below threshold");
        assertThat(tried.path("completionTokens").asInt()).isPositive();
        JsonNode large = second.path("tiers").get(1);
        assertThat(large.path("deployment").asText()).isEqualTo("large");
        assertThat(large.path("outcome").asText()).isEqualTo("ANSWERED");
        assertThat(large.path("confidence").isNull()).isTrue(); // no cascade rule: its answer stands unjudged

        // metrics: tries by outcome, tokens and cost per tier, the escalation rate
        String metrics = getText("/q/metrics");
        assertThat(metricValue(metrics, "stowage_route_requests_total{route=\"cascade\",status=\"200\"}"))
                .isEqualTo(2);
        assertThat(metricValue(
                        metrics,
                        "stowage_route_tier_tries_total{outcome=\"escalated\",route=\"cascade\",tier=\"small\"}"))
                .isEqualTo(1);
        assertThat(metricValue(
                        metrics,
                        "stowage_route_tier_tries_total{outcome=\"answered\",route=\"cascade\",tier=\"small\"}"))
                .isEqualTo(1);
        assertThat(metricValue(
                        metrics,
                        "stowage_route_tier_tries_total{outcome=\"answered\",route=\"cascade\",tier=\"large\"}"))
                .isEqualTo(1);
        assertThat(metricValue(metrics, "stowage_route_tier_escalation_ratio{route=\"cascade\",tier=\"small\"}"))
                .isEqualTo(0.5);
        assertThat(metricValue(
                        metrics,
                        "stowage_route_tier_tokens_total{kind=\"completion\",route=\"cascade\",tier=\"small\"}"))
                .isEqualTo(small.path("completionTokens").asInt()
                        + tried.path("completionTokens").asInt());
        double smallCost =
                small.path("costUnits").asDouble() + tried.path("costUnits").asDouble();
        assertThat(metricValue(metrics, "stowage_route_tier_cost_total{route=\"cascade\",tier=\"small\"}"))
                .isCloseTo(smallCost, within(1e-6));
        // small answered one request and spent on two: cost per 1,000 successful requests counts the escalated one
        assertThat(metricValue(metrics, "stowage_route_tier_cost_per_1k_successful{route=\"cascade\",tier=\"small\"}"))
                .isCloseTo(1000 * smallCost, within(1e-3));

        // the route list carries the same totals
        JsonNode listed = get("/v1/routes").path("data").get(0);
        assertThat(listed.path("id").asText()).isEqualTo("cascade");
        assertThat(listed.path("answered").asLong()).isEqualTo(2);
        assertThat(listed.path("tiers").get(0).path("escalated").asLong()).isEqualTo(1);
    }

    @Test
    void aTierWhoseHeaderRuleDoesNotHoldIsSkippedAndTheSkipIsAudited() throws Exception {
        install(route("premium", threshold, "      match: {header: {name: x-user-tier, value: free}}\n"));
        try {
            HttpResponse<String> r =
                    post("/v1/completions", body("premium", confident.prompt(), false), "premium-user");

            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(r.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("large");
            JsonNode d =
                    get("/v1/routes/audit?route=premium&limit=1").path("data").get(0);
            assertThat(d.path("tiers").get(0).path("outcome").asText()).isEqualTo("SKIPPED");
            assertThat(d.path("tiers").get(0).path("reason").asText())
                    .isEqualTo("header x-user-tier is \"premium-user\", not \"free\"");

            HttpResponse<String> free = post("/v1/completions", body("premium", confident.prompt(), false), "free");
            assertThat(free.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("small");
        } finally {
            install(route("cascade", threshold, ""));
        }
    }

    @Test
    void aStreamedRequestGoesToTheFirstMatchingTierWithoutCascading() throws Exception {
        HttpResponse<String> r = post("/v1/completions", body("cascade", doubtful.prompt(), true), null);

        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(r.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("small");
        assertThat(r.body()).contains("data: [DONE]");
        StringBuilder streamed = new StringBuilder();
        for (String line : r.body().split("\n")) {
            if (line.startsWith("data: {")) {
                streamed.append(TestHost.json(line.substring(6))
                        .path("choices")
                        .path(0)
                        .path("text")
                        .asText());
            }
        }
        assertThat(streamed.toString()).isEqualTo(doubtful.smallText());
        long id =
                Long.parseLong(r.headers().firstValue(LlmRouter.DECISION_HEADER).orElseThrow());
        JsonNode d = null;
        for (JsonNode e : get("/v1/routes/audit?route=cascade&limit=1000").path("data")) {
            if (e.path("id").asLong() == id) {
                d = e;
            }
        }
        assertThat(d).isNotNull();
        assertThat(d.path("streamed").asBoolean()).isTrue();
        assertThat(d.path("tiers")).hasSize(1);
        assertThat(d.path("tiers").get(0).path("confidence").isNull()).isTrue();
    }

    @Test
    void aChatRequestIsRoutedAndTheRouteIsListedAsAModel() throws Exception {
        String chat = "{\"model\": \"cascade\", \"temperature\": 0, \"max_tokens\": 8,"
                + " \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]}";
        HttpResponse<String> r = post("/v1/chat/completions", chat, null);

        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(r.headers().firstValue(LlmRouter.TIER_HEADER)).isPresent();
        assertThat(TestHost.json(r.body())
                        .path("choices")
                        .path(0)
                        .path("message")
                        .path("role")
                        .asText())
                .isEqualTo("assistant");
        assertThat(get("/v1/models").path("data").findValuesAsText("id")).contains("small", "large", "cascade");
    }

    @Test
    void aTierThatCannotBeReachedIsPassedOverAndAuditedAsFailed() throws Exception {
        ManifestSet set = ManifestReader.parse("route.yaml", Path.of("."), """
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: fallback}
                spec:
                  tiers:
                    - deployment: ghost
                      cascade: {threshold: 0.5}
                    - deployment: large
                """);
        // router mode's table: each tier at a URL; nothing listens on port 1
        service.router()
                .routes(RouteTable.remote(
                        set.routes(),
                        set.deployments(),
                        java.util.Map.of("ghost", URI.create("http://127.0.0.1:1"), "large", uri("/"))));
        try {
            HttpResponse<String> r = post("/v1/completions", body("fallback", confident.prompt(), false), null);

            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(r.headers().firstValue(LlmRouter.TIER_HEADER)).hasValue("large");
            assertThat(text(TestHost.json(r.body()))).isEqualTo(confident.largeText());
            JsonNode d =
                    get("/v1/routes/audit?route=fallback&limit=1").path("data").get(0);
            assertThat(d.path("tiers").get(0).path("outcome").asText()).isEqualTo("FAILED");
            assertThat(d.path("tiers").get(0).path("status").asInt()).isEqualTo(502);
            assertThat(d.path("tiers").get(0).path("reason").asText()).startsWith("no answer from http://127.0.0.1:1");
        } finally {
            install(route("cascade", threshold, ""));
        }
    }

    @Test
    void anAuditReadWithABadLimitIsA400() throws Exception {
        HttpResponse<String> r = TestHost.HTTP.send(
                HttpRequest.newBuilder(uri("/v1/routes/audit?limit=0")).build(), HttpResponse.BodyHandlers.ofString());

        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(r.body()).contains("limit must be an integer in 1..1000, got '0'");
    }

    // --- helpers

    private String route(String name, double threshold, String smallMatch) {
        return """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: small}
                spec: {model: {uri: small.gguf}}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: large}
                spec: {model: {uri: large.gguf}}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: %s}
                spec:
                  tiers:
                    - deployment: small
                %s      cascade: {confidence: mean, threshold: %s}
                    - deployment: large
                """.formatted(name, smallMatch, threshold);
    }

    private void install(String yaml) {
        ManifestSet set = ManifestReader.parse("route.yaml", Path.of("."), yaml);
        service.router().routes(RouteTable.local(set.routes(), set.deployments()));
    }

    private static String body(String model, String prompt, boolean stream) {
        return "{\"model\": \"" + model + "\", \"prompt\": \"" + prompt + "\", \"temperature\": 0, \"max_tokens\": "
                + MAX_TOKENS + (stream ? ", \"stream\": true" : "") + "}";
    }

    private JsonNode completion(String model, String prompt, boolean logprobs, String userTier) throws Exception {
        String b = body(model, prompt, false);
        if (logprobs) {
            b = b.substring(0, b.length() - 1) + ", \"logprobs\": 0}";
        }
        HttpResponse<String> r = post("/v1/completions", b, userTier);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return TestHost.json(r.body());
    }

    private static String text(JsonNode completion) {
        return completion.path("choices").path(0).path("text").asText();
    }

    private static double[] tokenLogprobs(JsonNode completion) {
        JsonNode lps = completion.path("choices").path(0).path("logprobs").path("token_logprobs");
        double[] out = new double[lps.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = lps.get(i).asDouble();
        }
        return out;
    }

    private URI uri(String path) throws Exception {
        return base.toURI().resolve(path);
    }

    private HttpResponse<String> post(String path, String body, String userTier) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(60));
        if (userTier != null) {
            b.header("x-user-tier", userTier);
        }
        return TestHost.HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private String getText(String path) throws Exception {
        HttpResponse<String> r =
                TestHost.HTTP.send(HttpRequest.newBuilder(uri(path)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return r.body();
    }

    private JsonNode get(String path) throws Exception {
        return TestHost.json(getText(path));
    }

    /** The value of one Prometheus sample, by its name and labels as exposed. */
    private static double metricValue(String exposition, String sample) {
        for (String line : exposition.split("\n")) {
            if (line.startsWith(sample + " ")) {
                return Double.parseDouble(line.substring(sample.length() + 1).trim());
            }
        }
        throw new AssertionError("no sample " + sample + " in /q/metrics");
    }
}
