package io.stowage.runtime.route;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The router's metrics, per route and tier: requests, tries and their outcomes, tokens, cost, the escalation rate and
 * the cost per 1,000 successful requests (Prometheus names {@code stowage_route_*}).
 *
 * <p>Cost: a try costs its latency in seconds times the tier's {@code costWeight} (1.0 by default, so the unit is
 * GPU-seconds: the time a request held the tier's device). A tier's cost per 1,000 successful requests is 1,000 times
 * everything spent on it, escalated tries included, over the requests it answered; a route's is everything spent on
 * all its tiers over the requests the route answered, so the waste of escalation shows.
 */
public final class RouteMetrics {
    /** Running totals of one tier of one route. */
    public static final class TierStats {
        private long answered;
        private long escalated;
        private long failed;
        private long promptTokens;
        private long completionTokens;
        private double cost;
        private double latencyEwmaMillis = Double.NaN;

        synchronized void add(RouteDecision.Attempt a) {
            switch (a.outcome()) {
                case ANSWERED -> answered++;
                case ESCALATED -> escalated++;
                case FAILED -> failed++;
                case SKIPPED -> {
                    return;
                }
            }
            promptTokens += a.promptTokens();
            completionTokens += a.completionTokens();
            cost += a.costUnits();
            if (a.outcome() != RouteDecision.Outcome.FAILED) {
                latencyEwmaMillis = Double.isNaN(latencyEwmaMillis)
                        ? a.latencyMillis()
                        : 0.8 * latencyEwmaMillis + 0.2 * a.latencyMillis();
            }
        }

        public synchronized long answered() {
            return answered;
        }

        public synchronized long escalated() {
            return escalated;
        }

        public synchronized long failed() {
            return failed;
        }

        public synchronized long promptTokens() {
            return promptTokens;
        }

        public synchronized long completionTokens() {
            return completionTokens;
        }

        public synchronized double cost() {
            return cost;
        }

        /** Escalated tries over the tries that returned an answer; NaN before any. */
        public synchronized double escalationRate() {
            long judged = answered + escalated;
            return judged == 0 ? Double.NaN : (double) escalated / judged;
        }

        /** 1,000 × everything spent on the tier / the requests it answered; NaN before one. */
        public synchronized double costPer1kSuccessful() {
            return answered == 0 ? Double.NaN : 1000 * cost / answered;
        }

        /** The exponentially weighted mean latency of its answers (weight 0.2 for the newest); NaN before any. */
        public synchronized double latencyEwmaMillis() {
            return latencyEwmaMillis;
        }
    }

    private final MeterRegistry registry;
    private final Map<String, Map<String, TierStats>> stats = new ConcurrentHashMap<>();

    /** @param registry where the meters go; null keeps the totals only (the benchmark) */
    public RouteMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    /** The totals of one tier (created with its gauges on first use). */
    public TierStats tier(String route, String deployment) {
        return stats.computeIfAbsent(route, r -> new ConcurrentHashMap<>()).computeIfAbsent(deployment, d -> {
            TierStats s = new TierStats();
            if (registry != null) {
                Gauge.builder("stowage.route.tier.escalation.ratio", s, TierStats::escalationRate)
                        .description("Escalated tries over answered tries of the tier")
                        .tags("route", route, "tier", d)
                        .register(registry);
                Gauge.builder("stowage.route.tier.cost.per.1k.successful", s, TierStats::costPer1kSuccessful)
                        .description("Cost units (GPU-seconds × costWeight) spent on the tier per 1,000 requests"
                                + " it answered")
                        .tags("route", route, "tier", d)
                        .register(registry);
            }
            return s;
        });
    }

    /** The tiers of a route with their totals, in first-seen order. */
    public Map<String, TierStats> tiers(String route) {
        return new LinkedHashMap<>(stats.getOrDefault(route, Map.of()));
    }

    void record(RouteDecision d) {
        if (registry != null) {
            Counter.builder("stowage.route.requests")
                    .description("Requests to a route, by the HTTP status the client got")
                    .tags("route", d.route(), "status", Integer.toString(d.status()))
                    .register(registry)
                    .increment();
        }
        for (RouteDecision.Attempt a : d.tiers()) {
            tier(d.route(), a.deployment()).add(a);
            if (registry == null) {
                continue;
            }
            Counter.builder("stowage.route.tier.tries")
                    .description("Tiers considered for a route's requests, by outcome (skipped, answered, escalated,"
                            + " failed)")
                    .tags(
                            "route",
                            d.route(),
                            "tier",
                            a.deployment(),
                            "outcome",
                            a.outcome().name().toLowerCase(java.util.Locale.ROOT))
                    .register(registry)
                    .increment();
            if (a.outcome() == RouteDecision.Outcome.SKIPPED) {
                continue;
            }
            Counter.builder("stowage.route.tier.tokens")
                    .description("Tokens spent on a route's tier, answered or escalated")
                    .tags("route", d.route(), "tier", a.deployment(), "kind", "prompt")
                    .register(registry)
                    .increment(a.promptTokens());
            Counter.builder("stowage.route.tier.tokens")
                    .description("Tokens spent on a route's tier, answered or escalated")
                    .tags("route", d.route(), "tier", a.deployment(), "kind", "completion")
                    .register(registry)
                    .increment(a.completionTokens());
            Counter.builder("stowage.route.tier.cost")
                    .description("Cost units spent on a route's tier: seconds × the tier's costWeight (GPU-seconds"
                            + " by default)")
                    .tags("route", d.route(), "tier", a.deployment())
                    .register(registry)
                    .increment(a.costUnits());
        }
    }
}
