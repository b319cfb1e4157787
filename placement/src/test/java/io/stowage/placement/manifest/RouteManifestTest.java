package io.stowage.placement.manifest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.stowage.placement.manifest.LlmRouteManifest.ConfidenceMethod;
import io.stowage.placement.manifest.LlmRouteManifest.Tier;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RouteManifestTest {
    private static final Path BASE = Path.of("manifests").toAbsolutePath();

    private static final String ROUTE = """
            apiVersion: stowage.io/v1alpha1
            kind: LlmRoute
            metadata:
              name: chat-route
              namespace: team-a
            spec:
              routeName: chat
              tiers:
                - deployment: small
                  costWeight: 0.25
                  match:
                    maxPromptChars: 2000
                    header: {name: x-user-tier, value: free}
                    lastUserMessage: "(?i)summari[sz]e"
                    latencyTargetMillis: 800
                  cascade:
                    confidence: mix
                    threshold: 0.6
                - deployment: large
            """;

    private static ManifestSet parse(String yaml) {
        return ManifestReader.parse("routes.yaml", BASE, yaml);
    }

    private static String withTiers(String tiers) {
        return """
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata:
                  name: r
                spec:
                  tiers:
                """ + tiers.indent(4);
    }

    @Test
    void aFullRouteIsReadWithEveryRuleAndItsDefaults() {
        ManifestSet set = parse(ROUTE);

        assertThat(set.deployments()).isEmpty();
        assertThat(set.warnings()).isEmpty();
        LlmRouteManifest r = set.routes().getFirst();
        assertThat(r.id()).isEqualTo("team-a/chat-route");
        assertThat(r.routeName()).isEqualTo("chat");
        assertThat(r.source()).isEqualTo("routes.yaml doc 1");
        Tier small = r.tiers().get(0);
        assertThat(small.deployment()).isEqualTo("small");
        assertThat(small.costWeight()).isEqualTo(0.25);
        assertThat(small.match().maxPromptChars()).isEqualTo(2000);
        assertThat(small.match().minPromptChars()).isNull();
        assertThat(small.match().header()).isEqualTo(Map.of("x-user-tier", "free"));
        assertThat(small.match()
                        .lastUserMessage()
                        .matcher("Please SUMMARISE this")
                        .find())
                .isTrue();
        assertThat(small.match().latencyTargetMillis()).isEqualTo(800L);
        assertThat(small.cascade().confidence()).isEqualTo(ConfidenceMethod.MIX);
        assertThat(small.cascade().threshold()).isEqualTo(0.6);
        Tier large = r.tiers().get(1);
        assertThat(large.costWeight()).isEqualTo(Tier.DEFAULT_COST_WEIGHT);
        assertThat(large.match()).isNull();
        assertThat(large.cascade()).isNull();
    }

    @Test
    void theRouteNameDefaultsToTheObjectsNameAndRoutesSitBesideDeployments() {
        String deployment = """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata:
                  name: large
                spec:
                  model:
                    uri: large.gguf
                ---
                """;
        ManifestSet set = parse(deployment + withTiers("- deployment: large\n"));

        assertThat(set.deployments()).extracting(LlmDeploymentManifest::name).containsExactly("large");
        assertThat(set.routes()).extracting(LlmRouteManifest::routeName).containsExactly("r");
        assertThat(set.routes().getFirst().namespace()).isEqualTo("default");
    }

    @Test
    void badTiersAreOneLineErrorsNamingTheField() {
        assertThatThrownBy(() -> parse(withTiers("[]")))
                .isInstanceOf(ManifestException.class)
                .hasMessage("routes.yaml doc 1: spec.tiers: needs at least one tier (an LlmDeployment to send"
                        + " requests to)");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n  cascade: {threshold: 1.5}\n- deployment: b\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].cascade.threshold: must be a probability in (0, 1],"
                        + " got 1.5");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n  cascade: {confidence: median, threshold: 0.5}\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].cascade.confidence: must be one of mean, min, mix,"
                        + " got \"median\"");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n  cascade: {confidence: min}\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].cascade.threshold: is required (a probability in"
                        + " (0, 1], e.g. 0.6)");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n  match: {lastUserMessage: \"(unclosed\"}\n")))
                .hasMessageStartingWith("routes.yaml doc 1: spec.tiers[0].match.lastUserMessage: is not a valid"
                        + " regular expression (");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n- deployment: a\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[1].deployment: names a deployment an earlier tier already"
                        + " names, got \"a\"");
        assertThatThrownBy(() -> parse(withTiers("- deployment: a\n  costWeight: -1\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].costWeight: must be a finite number >= 0, got -1");
        assertThatThrownBy(
                        () -> parse(withTiers("- deployment: a\n  match: {minPromptChars: 10, maxPromptChars: 5}\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].match.maxPromptChars: must be >= minPromptChars 10,"
                        + " got 5");
        assertThatThrownBy(
                        () -> parse(withTiers("- deployment: a\n  match: {header: {name: \"bad name\", value: x}}\n")))
                .hasMessage("routes.yaml doc 1: spec.tiers[0].match.header.name: must be an HTTP header name, got"
                        + " \"bad name\"");
    }

    @Test
    void twoRoutesMayNotClaimOneRouteName() {
        String two = ROUTE + "---\n" + ROUTE.replace("name: chat-route", "name: other-route");

        assertThatThrownBy(() -> parse(two))
                .hasMessage("routes.yaml doc 2: spec.routeName: \"chat\" is already the route name of the LlmRoute in"
                        + " routes.yaml doc 1");
    }

    @Test
    void unknownFieldsAndMatchRulesOnTheLastTierAreWarnings() {
        ManifestSet set = parse(withTiers("- deployment: a\n  colour: red\n  match: {minPromptChars: 3}\n"));

        assertThat(set.warnings())
                .containsExactly(
                        "routes.yaml doc 1: unknown field spec.tiers[0].colour (ignored)",
                        "routes.yaml doc 1: spec.tiers[0] (the last tier) has match rules: a request no tier matches"
                                + " is answered 404");
    }

    @Test
    void confidenceIsTheExpOfTheMeanTheMinimumOrTheirAverage() {
        double[] lps = {Math.log(0.9), Math.log(0.8), Math.log(0.1)};
        double mean = (Math.log(0.9) + Math.log(0.8) + Math.log(0.1)) / 3;

        assertThat(ConfidenceMethod.MEAN.of(lps)).isCloseTo(Math.exp(mean), within(1e-12));
        assertThat(ConfidenceMethod.MIN.of(lps)).isCloseTo(0.1, within(1e-12));
        assertThat(ConfidenceMethod.MIX.of(lps)).isCloseTo(Math.exp((mean + Math.log(0.1)) / 2), within(1e-12));
        assertThat(ConfidenceMethod.MIX.of(lps)).isBetween(ConfidenceMethod.MIN.of(lps), ConfidenceMethod.MEAN.of(lps));
    }

    @Test
    void anEmptyOrNotANumberAnswerHasNoConfidence() {
        assertThat(ConfidenceMethod.MEAN.of(new double[0])).isZero();
        assertThat(ConfidenceMethod.MIN.of(new double[] {-0.1, Double.NaN})).isZero();
        // a certain token (logprob 0, or a rounding above it) is confidence 1, never more
        assertThat(ConfidenceMethod.MEAN.of(new double[] {0.0, 1e-9})).isEqualTo(1.0);
    }
}
