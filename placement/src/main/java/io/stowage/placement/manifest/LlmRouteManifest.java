package io.stowage.placement.manifest;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One {@code LlmRoute} (stowage.io/v1alpha1) as written by a user, validated and with its defaults applied: the name
 * clients put in the OpenAI {@code model} field, and the ordered tiers the router tries (a confidence cascade).
 *
 * @param source where it was read, e.g. {@code routes.yaml doc 1}, for error messages
 * @param routeName spec.routeName: the name clients send in {@code model}; defaults to metadata.name
 * @param tiers in order: the router tries the first tier whose match rules hold, and escalates down the list while a
 *     tier's cascade rule finds its answer not confident enough
 */
public record LlmRouteManifest(String source, String name, String namespace, String routeName, List<Tier> tiers) {
    public static final String KIND = "LlmRoute";

    public LlmRouteManifest {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(routeName, "routeName");
        tiers = List.copyOf(tiers);
    }

    /** {@code namespace/name}. */
    public String id() {
        return namespace + "/" + name;
    }

    /**
     * One tier: an LlmDeployment of the route's namespace, when to try it, and when its answer stands.
     *
     * @param deployment the LlmDeployment's metadata.name
     * @param costWeight what one second of this tier's serving costs, in the unit the route's cost metrics use; default
     *     1.0, i.e. GPU-seconds: a request that holds a tier for 0.4 s costs 0.4 of a GPU-second (set it to the
     *     tier's device count, its share of a device, or a price per second to compare in those units)
     * @param match null when the tier takes every request
     * @param cascade null when the tier's answer always stands (the natural last tier)
     */
    public record Tier(String deployment, double costWeight, Match match, Cascade cascade) {
        public static final double DEFAULT_COST_WEIGHT = 1.0;

        public Tier {
            Objects.requireNonNull(deployment, "deployment");
        }
    }

    /**
     * When a tier is tried; every rule given must hold, and a tier whose rules do not hold is skipped (the audit says
     * which rule).
     *
     * @param minPromptChars the prompt (for chat: every message's content together) has at least this many characters
     * @param maxPromptChars ... and at most this many; null: no bound
     * @param header a request header that must equal a value (e.g. {@code x-user-tier: premium}); names compare
     *     case-insensitively, values exactly
     * @param lastUserMessage a regular expression that must be found in the last user message (for completions: the
     *     prompt)
     * @param latencyTargetMillis the tier is tried only while the mean latency of its last answers (an exponentially
     *     weighted average) is at most this; a slow, overloaded tier is skipped until it recovers
     */
    public record Match(
            Integer minPromptChars,
            Integer maxPromptChars,
            Map<String, String> header,
            Pattern lastUserMessage,
            Long latencyTargetMillis) {
        public Match {
            header = header == null ? Map.of() : Map.copyOf(header);
        }
    }

    /**
     * When a tier's answer stands: its confidence, computed from its own token log-probabilities, reaches the
     * threshold; else the router escalates to the next tier.
     *
     * @param threshold a probability in (0, 1]: confidence is {@code exp} of the aggregated log-probability, so the
     *     threshold reads as "the typical generated token had at least this probability"
     */
    public record Cascade(ConfidenceMethod confidence, double threshold) {
        public Cascade {
            Objects.requireNonNull(confidence, "confidence");
        }
    }

    /** How a tier's token log-probabilities become one confidence in (0, 1]. */
    public enum ConfidenceMethod {
        /** {@code exp(mean logprob)}: the geometric mean of the tokens' probabilities. */
        MEAN("mean"),
        /** {@code exp(min logprob)}: the probability of the least likely token. */
        MIN("min"),
        /**
         * {@code exp((mean + min) / 2)}: the geometric mean of the two above, so one doubtful token lowers the
         * confidence without deciding alone.
         */
        MIX("mix");

        private final String text;

        ConfidenceMethod(String text) {
            this.text = text;
        }

        public String text() {
            return text;
        }

        /** The method for its manifest name, or null. */
        public static ConfidenceMethod parse(String s) {
            for (ConfidenceMethod m : values()) {
                if (m.text.equals(s)) {
                    return m;
                }
            }
            return null;
        }

        /**
         * The confidence of a sequence of token log-probabilities; an empty answer (no token) has confidence 0, so it
         * never stands on a cascading tier.
         */
        public double of(double[] logprobs) {
            if (logprobs.length == 0) {
                return 0;
            }
            double sum = 0;
            double min = Double.POSITIVE_INFINITY;
            for (double lp : logprobs) {
                if (Double.isNaN(lp)) {
                    return 0;
                }
                double v = Math.min(lp, 0); // a logprob above 0 is rounding
                sum += v;
                min = Math.min(min, v);
            }
            double mean = sum / logprobs.length;
            return switch (this) {
                case MEAN -> Math.exp(mean);
                case MIN -> Math.exp(min);
                case MIX -> Math.exp((mean + min) / 2);
            };
        }
    }
}
