package io.stowage.runtime.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.stowage.runtime.host.Host;
import java.time.Duration;
import java.util.function.ToDoubleFunction;

/**
 * The host's Prometheus metrics ({@code stowage_} prefix): requests, tokens, latencies, queue, KV and model bytes.
 *
 * <p>The {@code model} tag takes only the names of models assigned to this host: a request for any other name is
 * counted under {@link #UNKNOWN_MODEL}, so clients cannot create series (each name would be a counter kept forever).
 * Tag values are cut to {@link #MAX_TAG_CHARS} characters with control characters replaced.
 */
public final class HostMetrics {
    /** The {@code model} tag of requests whose model is not assigned to this host (or could not be read). */
    public static final String UNKNOWN_MODEL = "unknown";

    /** The {@code status} tag of a request whose client closed the connection first (nginx's convention). */
    public static final int CLIENT_CLOSED = 499;

    static final int MAX_TAG_CHARS = 128;

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
                "bytes of the device's one compute workspace, shared by its models (the largest A_m), as allocated",
                host,
                Host::deviceWorkspaceBytes);
        gauge(
                "stowage_device_allocated_bytes",
                "bytes the native backend holds on the device, measured: weight copies (a CPU maps its weights"
                        + " instead), KV pools, the shared workspace",
                host,
                Host::deviceAllocatedBytes);
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

    /**
     * Counts one answered request.
     *
     * @param model the served name the request was routed to (or, refused as not ready, the assigned name it
     *     asked for); null for anything else, counted as {@link #UNKNOWN_MODEL}. Never a name as a client sent it:
     *     each distinct value is a counter kept forever. (The caller knows: checking against the host here would
     *     take the host's lock on the scheduler thread, which holds the scheduler's lock when a job ends.)
     * @param status the HTTP status, or {@link #CLIENT_CLOSED} when the client went away before the answer ended
     */
    public void request(String endpoint, String model, int status) {
        Counter.builder("stowage_requests")
                .description("OpenAI API requests by endpoint, model and HTTP status (499: the client closed the"
                        + " connection first)")
                .tag("endpoint", endpoint)
                .tag("model", model == null ? UNKNOWN_MODEL : tagValue(model))
                .tag("status", Integer.toString(status))
                .register(registry)
                .increment();
    }

    /**
     * A tag value safe for any exposition format: at most {@link #MAX_TAG_CHARS} characters (never half a surrogate
     * pair), control characters (NUL, line breaks) replaced by {@code _}.
     */
    static String tagValue(String s) {
        int end = Math.min(s.length(), MAX_TAG_CHARS);
        if (end < s.length() && Character.isHighSurrogate(s.charAt(end - 1))) {
            end--;
        }
        StringBuilder out = null;
        for (int i = 0; i < end; i++) {
            char c = s.charAt(i);
            boolean control = Character.isISOControl(c) || c == 0x2028 || c == 0x2029;
            if (control && out == null) {
                out = new StringBuilder(end).append(s, 0, i);
            }
            if (out != null) {
                out.append(control ? '_' : c);
            }
        }
        return out != null ? out.toString() : s.substring(0, end);
    }

    // The methods below take the name of a model a request was routed to (an assigned one).

    public void tokens(String model, int prompt, int generated) {
        Counter.builder("stowage_prompt_tokens")
                .description("prompt tokens processed")
                .tag("model", tagValue(model))
                .register(registry)
                .increment(prompt);
        Counter.builder("stowage_generated_tokens")
                .description("tokens generated")
                .tag("model", tagValue(model))
                .register(registry)
                .increment(generated);
    }

    public void timeToFirstToken(String model, long nanos) {
        Timer.builder("stowage_time_to_first_token")
                .description("from request arrival to the first generated token")
                .tag("model", tagValue(model))
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(60))
                .register(registry)
                .record(Duration.ofNanos(nanos));
    }

    public void interToken(String model, long nanos) {
        Timer.builder("stowage_inter_token_latency")
                .description("between two generated tokens of one request")
                .tag("model", tagValue(model))
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofNanos(100_000))
                .maximumExpectedValue(Duration.ofSeconds(10))
                .register(registry)
                .record(Duration.ofNanos(nanos));
    }

    public void promptLength(String model, int tokens) {
        DistributionSummary.builder("stowage_prompt_length_tokens")
                .tag("model", tagValue(model))
                .register(registry)
                .record(tokens);
    }
}
