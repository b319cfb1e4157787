package io.stowage.runtime.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.stowage.runtime.host.Host;
import java.time.Duration;
import java.util.function.ToDoubleFunction;

/** The host's Prometheus metrics ({@code stowage_} prefix): requests, tokens, latencies, queue, KV and model bytes. */
public final class HostMetrics {
    private final MeterRegistry registry;

    public HostMetrics(MeterRegistry registry, Host host) {
        this.registry = registry;
        gauge(
                "stowage_queue_depth",
                "requests waiting in replica queues",
                host,
                h -> h.replicas().stream().mapToLong(r -> r.queuedRequests()).sum());
        gauge(
                "stowage_active_sequences",
                "sequences in the running batches",
                host,
                h -> h.replicas().stream().mapToLong(r -> r.activeSequences()).sum());
        gauge(
                "stowage_kv_reserved_bytes",
                "KV bytes reserved by the replicas' pools",
                host,
                h -> h.state().replicas().stream()
                        .mapToLong(r -> r.kvReservedBytes())
                        .sum());
        gauge(
                "stowage_kv_used_bytes",
                "KV bytes held by running sequences",
                host,
                h -> h.state().replicas().stream()
                        .mapToLong(r -> r.kvUsedBytes())
                        .sum());
        gauge(
                "stowage_model_bytes",
                "weight bytes of the loaded models (once per model)",
                host,
                h -> h.state().models().stream().mapToLong(m -> m.weightBytes()).sum());
        gauge(
                "stowage_workspace_bytes",
                "workspace bytes of the loaded models",
                host,
                h -> h.state().models().stream()
                        .mapToLong(m -> m.workspaceBytes())
                        .sum());
        gauge(
                "stowage_failed_models",
                "models of the assignment that failed to load or whose steps keep failing (admin state: FAILED)",
                host,
                h -> h.state().models().stream()
                        .filter(m -> m.phase() == io.stowage.hostapi.ModelPhase.FAILED)
                        .count());
        gauge(
                "stowage_device_budget_bytes",
                "the host's memory budget",
                host,
                h -> h.settings().budgetBytes());
        gauge(
                "stowage_process_rss_bytes",
                "resident set of the host process",
                host,
                h -> io.stowage.runtime.host.ProcMemory.rssBytes());
    }

    private <T> void gauge(String name, String help, T obj, ToDoubleFunction<T> f) {
        Gauge.builder(name, obj, f).description(help).strongReference(true).register(registry);
    }

    public void request(String endpoint, String model, int status) {
        Counter.builder("stowage_requests")
                .description("OpenAI API requests by endpoint, model and HTTP status")
                .tag("endpoint", endpoint)
                .tag("model", model == null ? "" : model)
                .tag("status", Integer.toString(status))
                .register(registry)
                .increment();
    }

    public void tokens(String model, int prompt, int generated) {
        Counter.builder("stowage_prompt_tokens")
                .description("prompt tokens processed")
                .tag("model", model)
                .register(registry)
                .increment(prompt);
        Counter.builder("stowage_generated_tokens")
                .description("tokens generated")
                .tag("model", model)
                .register(registry)
                .increment(generated);
    }

    public void timeToFirstToken(String model, long nanos) {
        Timer.builder("stowage_time_to_first_token")
                .description("from request arrival to the first generated token")
                .tag("model", model)
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(60))
                .register(registry)
                .record(Duration.ofNanos(nanos));
    }

    public void interToken(String model, long nanos) {
        Timer.builder("stowage_inter_token_latency")
                .description("between two generated tokens of one request")
                .tag("model", model)
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofNanos(100_000))
                .maximumExpectedValue(Duration.ofSeconds(10))
                .register(registry)
                .record(Duration.ofNanos(nanos));
    }

    public void promptLength(String model, int tokens) {
        DistributionSummary.builder("stowage_prompt_length_tokens")
                .tag("model", model)
                .register(registry)
                .record(tokens);
    }
}
