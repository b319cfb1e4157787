package io.stowage.placement.manifest;

import io.stowage.placement.manifest.LlmRouteManifest.Cascade;
import io.stowage.placement.manifest.LlmRouteManifest.ConfidenceMethod;
import io.stowage.placement.manifest.LlmRouteManifest.Match;
import io.stowage.placement.manifest.LlmRouteManifest.Tier;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** Reads the spec of one {@code LlmRoute} document for {@link ManifestReader}. */
final class RouteReader {
    static final int MAX_TIERS = 16;
    static final int MAX_REGEX_CHARS = 1024;

    private static final Set<String> SPEC = Set.of("routeName", "tiers");
    private static final Set<String> TIER = Set.of("deployment", "costWeight", "match", "cascade");
    private static final Set<String> MATCH =
            Set.of("minPromptChars", "maxPromptChars", "header", "lastUserMessage", "latencyTargetMillis");
    private static final Set<String> HEADER = Set.of("name", "value");
    private static final Set<String> CASCADE = Set.of("confidence", "threshold");
    private static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

    private RouteReader() {}

    static LlmRouteManifest route(YamlFields f, String name, String namespace, Map<String, Object> spec) {
        f.checkKnown(spec, "spec", SPEC);
        String routeName = f.string(spec, "spec", "routeName", name);
        if (routeName.isBlank()) {
            throw f.error("spec.routeName", "must not be empty", routeName);
        }
        List<Object> raw = f.optionalList(spec, "spec", "tiers");
        if (raw.isEmpty()) {
            throw f.error("spec.tiers", "needs at least one tier (an LlmDeployment to send requests to)");
        }
        if (raw.size() > MAX_TIERS) {
            throw f.error("spec.tiers", "must have at most " + MAX_TIERS + " tiers", raw.size() + " tiers");
        }
        List<Tier> tiers = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < raw.size(); i++) {
            String path = "spec.tiers[" + i + "]";
            Map<String, Object> t = f.map(raw.get(i), path);
            f.checkKnown(t, path, TIER);
            String deployment = f.requiredString(t, path, "deployment");
            if (!seen.add(deployment)) {
                throw f.error(path + ".deployment", "names a deployment an earlier tier already names", deployment);
            }
            Double weight = f.number(t, path, "costWeight");
            double costWeight = weight == null ? Tier.DEFAULT_COST_WEIGHT : weight;
            if (!(costWeight >= 0) || Double.isInfinite(costWeight)) {
                throw f.error(path + ".costWeight", "must be a finite number >= 0", t.get("costWeight"));
            }
            tiers.add(new Tier(deployment, costWeight, match(f, t, path), cascade(f, t, path)));
        }
        Tier last = tiers.getLast();
        if (last.match() != null) {
            f.warn("spec.tiers[" + (tiers.size() - 1) + "] (the last tier) has match rules: a request no tier matches"
                    + " is answered 404");
        }
        return new LlmRouteManifest(f.where(), name, namespace, routeName, tiers);
    }

    private static Match match(YamlFields f, Map<String, Object> tier, String tierPath) {
        if (tier.get("match") == null) {
            return null;
        }
        String path = tierPath + ".match";
        Map<String, Object> m = f.optionalMap(tier, tierPath, "match");
        f.checkKnown(m, path, MATCH);
        Integer min = m.get("minPromptChars") == null
                ? null
                : (int) f.integer(m, path, "minPromptChars", 0, 0, Integer.MAX_VALUE);
        Integer max = m.get("maxPromptChars") == null
                ? null
                : (int) f.integer(m, path, "maxPromptChars", 0, 0, Integer.MAX_VALUE);
        if (min != null && max != null && min > max) {
            throw f.error(path + ".maxPromptChars", "must be >= minPromptChars " + min, max);
        }
        Map<String, String> header = Map.of();
        if (m.get("header") != null) {
            Map<String, Object> h = f.optionalMap(m, path, "header");
            f.checkKnown(h, path + ".header", HEADER);
            String hn = f.requiredString(h, path + ".header", "name");
            if (!HEADER_NAME.matcher(hn).matches()) {
                throw f.error(path + ".header.name", "must be an HTTP header name", hn);
            }
            String hv = f.string(h, path + ".header", "value", null);
            if (hv == null) {
                throw f.error(path + ".header.value", "is required");
            }
            header = Map.of(hn, hv);
        }
        Pattern regex = null;
        String re = f.string(m, path, "lastUserMessage", null);
        if (re != null) {
            if (re.length() > MAX_REGEX_CHARS) {
                throw f.error(
                        path + ".lastUserMessage",
                        "must be at most " + MAX_REGEX_CHARS + " characters",
                        re.length() + " characters");
            }
            try {
                regex = Pattern.compile(re);
            } catch (PatternSyntaxException e) {
                throw f.error(
                        path + ".lastUserMessage",
                        "is not a valid regular expression (" + e.getDescription() + " at index " + e.getIndex() + ")",
                        re);
            }
        }
        Long latency = m.get("latencyTargetMillis") == null
                ? null
                : f.integer(m, path, "latencyTargetMillis", 0, 1, 86_400_000L);
        return new Match(min, max, header, regex, latency);
    }

    private static Cascade cascade(YamlFields f, Map<String, Object> tier, String tierPath) {
        if (tier.get("cascade") == null) {
            return null;
        }
        String path = tierPath + ".cascade";
        Map<String, Object> c = f.optionalMap(tier, tierPath, "cascade");
        f.checkKnown(c, path, CASCADE);
        String methodText = f.string(c, path, "confidence", "mean");
        ConfidenceMethod method = ConfidenceMethod.parse(methodText);
        if (method == null) {
            throw f.error(path + ".confidence", "must be one of mean, min, mix", methodText);
        }
        Double threshold = f.number(c, path, "threshold");
        if (threshold == null) {
            throw f.error(path + ".threshold", "is required (a probability in (0, 1], e.g. 0.6)");
        }
        if (!(threshold > 0 && threshold <= 1)) {
            throw f.error(path + ".threshold", "must be a probability in (0, 1]", c.get("threshold"));
        }
        return new Cascade(method, threshold);
    }
}
