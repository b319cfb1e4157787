package io.stowage.runtime.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.placement.manifest.LlmRouteManifest.Match;
import io.stowage.placement.manifest.ManifestException;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The router's pure parts: request facts, match rules, logprob extraction, route tables and the audit bound. */
class RouteRulesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static LlmRouter.Facts chatFacts(String json, Map<String, String> headers) throws Exception {
        return LlmRouter.facts(true, JSON.readTree(json), h -> headers.get(h.toLowerCase()));
    }

    @Test
    void chatFactsCountEveryMessageAndKeepTheLastUserMessage() throws Exception {
        LlmRouter.Facts f = chatFacts("""
                {"messages": [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "first"},
                              {"role": "assistant", "content": "ok"},
                              {"role": "user", "content": [{"type": "text", "text": "Summarise "},
                                                           {"type": "text", "text": "this"}]}]}""", Map.of());

        assertThat(f.promptChars()).isEqualTo("Be brief.".length() + 5 + 2 + "Summarise this".length());
        assertThat(f.lastUserMessage()).isEqualTo("Summarise this");
    }

    @Test
    void eachMatchRuleSaysWhyItDoesNotHold() throws Exception {
        LlmRouter.Facts f = chatFacts(
                "{\"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}]}", Map.of("x-user-tier", "pro"));
        RouteMetrics.TierStats fresh = new RouteMetrics.TierStats();

        assertThat(LlmRouter.mismatch(null, f, fresh)).isNull();
        assertThat(LlmRouter.mismatch(new Match(20, null, null, null, null), f, fresh))
                .isEqualTo("prompt has 11 characters, below minPromptChars 20");
        assertThat(LlmRouter.mismatch(new Match(null, 5, null, null, null), f, fresh))
                .isEqualTo("prompt has 11 characters, above maxPromptChars 5");
        assertThat(LlmRouter.mismatch(new Match(null, null, Map.of("x-user-tier", "free"), null, null), f, fresh))
                .isEqualTo("header x-user-tier is \"pro\", not \"free\"");
        assertThat(LlmRouter.mismatch(new Match(null, null, Map.of("x-team", "a"), null, null), f, fresh))
                .isEqualTo("header x-team is absent, not \"a\"");
        assertThat(LlmRouter.mismatch(new Match(null, null, null, Pattern.compile("^bye"), null), f, fresh))
                .isEqualTo("the last user message does not match /^bye/");
        assertThat(LlmRouter.mismatch(
                        new Match(1, 100, Map.of("x-user-tier", "pro"), Pattern.compile("hello"), 50L), f, fresh))
                .as("every rule holds, and a tier with no latency yet is tried")
                .isNull();
    }

    @Test
    void aTierSlowerThanItsLatencyTargetIsSkipped() throws Exception {
        LlmRouter.Facts f = chatFacts("{\"messages\": []}", Map.of());
        RouteMetrics.TierStats slow = new RouteMetrics.TierStats();
        slow.add(new RouteDecision.Attempt(
                "small", RouteDecision.Outcome.ANSWERED, null, 0.9, 0.5, 200, 3, 4, 900, 0.9));

        assertThat(LlmRouter.mismatch(new Match(null, null, null, null, 500L), f, slow))
                .isEqualTo("mean latency 900 ms is above latencyTargetMillis 500");
        assertThat(LlmRouter.mismatch(new Match(null, null, null, null, 1000L), f, slow))
                .isNull();
    }

    @Test
    void logprobsComeFromTheFirstChoiceOfEitherEndpoint() throws Exception {
        assertThat(LlmRouter.logprobs(
                        true,
                        JSON.readTree("{\"choices\": [{\"logprobs\": {\"content\": [{\"token\": \"a\", \"logprob\":"
                                + " -0.5}, {\"token\": \"b\", \"logprob\": -1.5}]}}]}")))
                .containsExactly(-0.5, -1.5);
        assertThat(LlmRouter.logprobs(
                        false, JSON.readTree("{\"choices\": [{\"logprobs\": {\"token_logprobs\": [-0.25, -2.0]}}]}")))
                .containsExactly(-0.25, -2.0);
        assertThat(LlmRouter.logprobs(false, JSON.readTree("{\"choices\": [{\"logprobs\": null}]}")))
                .isEmpty();
    }

    @Test
    void aLocalRouteMustNameDeploymentsOfItsManifestsAndNotShadowOne() {
        String deployment = """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: small}
                spec: {model: {uri: small.gguf}}
                ---
                """;
        ManifestSet missing = ManifestReader.parse(
                "r.yaml",
                Path.of("."),
                deployment + "apiVersion: stowage.io/v1alpha1\nkind: LlmRoute\nmetadata: {name: r}\n"
                        + "spec: {tiers: [{deployment: small}, {deployment: large}]}\n");
        assertThatThrownBy(() -> RouteTable.local(missing.routes(), missing.deployments()))
                .isInstanceOf(ManifestException.class)
                .hasMessage("r.yaml doc 2: spec.tiers: deployment \"large\" is not an LlmDeployment of namespace"
                        + " default in these manifests");

        ManifestSet shadow = ManifestReader.parse(
                "r.yaml",
                Path.of("."),
                deployment + "apiVersion: stowage.io/v1alpha1\nkind: LlmRoute\nmetadata: {name: r}\n"
                        + "spec: {routeName: small, tiers: [{deployment: small}]}\n");
        assertThatThrownBy(() -> RouteTable.local(shadow.routes(), shadow.deployments()))
                .hasMessageStartingWith("r.yaml doc 2: spec.routeName: \"small\" is also the served model name of"
                        + " LlmDeployment default/small");
    }

    @Test
    void aRemoteTierGoesToItsBackendOrElseToItsService() {
        ManifestSet set = ManifestReader.parse(
                "r.yaml",
                Path.of("."),
                "apiVersion: stowage.io/v1alpha1\nkind: LlmRoute\nmetadata: {name: r, namespace: team-a}\n"
                        + "spec: {tiers: [{deployment: small}, {deployment: large}]}\n");

        RouteTable t =
                RouteTable.remote(set.routes(), set.deployments(), Map.of("small", URI.create("http://10.0.0.5:8080")));

        List<RouteTable.Backend> tiers = t.get("r").tiers();
        assertThat(tiers.get(0).baseUri()).isEqualTo(URI.create("http://10.0.0.5:8080"));
        assertThat(tiers.get(1).baseUri()).isEqualTo(URI.create("http://large.team-a.svc:80"));
        assertThat(tiers.get(1).model()).isEqualTo("large");
    }

    @Test
    void theAuditLogKeepsTheNewestDecisionsAndCountsTheDropped() {
        RouteAudit audit = new RouteAudit(3);
        for (int i = 1; i <= 5; i++) {
            audit.record(new RouteDecision(
                    i, 0, i % 2 == 0 ? "even" : "odd", "completions", false, List.of(), null, 200, 1));
        }

        assertThat(audit.recent(null, 10)).extracting(RouteDecision::id).containsExactly(3L, 4L, 5L);
        assertThat(audit.recent("odd", 10)).extracting(RouteDecision::id).containsExactly(3L, 5L);
        assertThat(audit.recent(null, 1)).extracting(RouteDecision::id).containsExactly(5L);
        assertThat(audit.dropped()).isEqualTo(2);
        assertThatThrownBy(() -> new RouteAudit(0)).hasMessageContaining("at least 1");
    }
}
