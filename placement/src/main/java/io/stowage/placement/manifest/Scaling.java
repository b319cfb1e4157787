package io.stowage.placement.manifest;

import java.time.Duration;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code LlmDeployment.spec.scaling}: how far a deployment scales down when no request comes, and after how long.
 *
 * <p>A replica idle for {@code idleTimeout} (no running, queued or arriving request) is released down to
 * {@code minReplicas}: its KV returns to its host, while its model's weights stay resident (reclaimable) until the
 * memory is needed. A request for a deployment with no serving replica activates it and is held until a replica
 * serves it.
 *
 * @param minReplicas replicas kept when idle, 0 (scale to zero) up to {@code spec.replicas}
 * @param idleTimeout how long without a request before the replicas above minReplicas are released
 */
public record Scaling(int minReplicas, Duration idleTimeout) {
    /** Ollama's keep-alive, the default users of local models know. */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofMinutes(5);

    /** The longest idle timeout accepted: a week (a longer one means "never": leave scaling out). */
    public static final Duration MAX_IDLE_TIMEOUT = Duration.ofDays(7);

    /** The duration syntax of Kubernetes and Go: one or more number-unit pairs, e.g. {@code 90s}, {@code 1h30m}. */
    public static final String DURATION_PATTERN = "^([0-9]+(ms|s|m|h))+$";

    private static final Pattern WHOLE = Pattern.compile(DURATION_PATTERN);
    private static final Pattern PART = Pattern.compile("([0-9]+)(ms|s|m|h)");

    public Scaling {
        if (minReplicas < 0) {
            throw new IllegalArgumentException("minReplicas must be >= 0, got " + minReplicas);
        }
        if (idleTimeout == null || idleTimeout.isNegative() || idleTimeout.isZero()) {
            throw new IllegalArgumentException("idleTimeout must be > 0, got " + idleTimeout);
        }
    }

    /** Whether the deployment may have no replica at all while idle. */
    public boolean scalesToZero() {
        return minReplicas == 0;
    }

    /**
     * Parses {@code 500ms}, {@code 30s}, {@code 5m}, {@code 1h30m}.
     *
     * @throws IllegalArgumentException what is wrong, for the caller to prefix with the field
     */
    public static Duration parseDuration(String text) {
        String s = text == null ? "" : text.strip().toLowerCase(Locale.ROOT);
        if (!WHOLE.matcher(s).matches()) {
            throw new IllegalArgumentException("must be a duration such as 30s, 5m or 1h30m (units ms, s, m, h)");
        }
        Duration total = Duration.ZERO;
        Matcher m = PART.matcher(s);
        while (m.find()) {
            long n;
            try {
                n = Long.parseLong(m.group(1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("must be at most " + text(MAX_IDLE_TIMEOUT));
            }
            if (n > MAX_IDLE_TIMEOUT.toMillis()) {
                throw new IllegalArgumentException("must be at most " + text(MAX_IDLE_TIMEOUT));
            }
            total = total.plus(
                    switch (m.group(2)) {
                        case "ms" -> Duration.ofMillis(n);
                        case "s" -> Duration.ofSeconds(n);
                        case "m" -> Duration.ofMinutes(n);
                        default -> Duration.ofHours(n);
                    });
        }
        return total;
    }

    /** A duration as the manifests write it: {@code 5m}, {@code 1h30m}, {@code 1500ms}. */
    public static String text(Duration d) {
        long ms = d.toMillis();
        if (ms % 1000 != 0) {
            return ms + "ms";
        }
        long s = ms / 1000;
        StringBuilder sb = new StringBuilder();
        if (s >= 3600) {
            sb.append(s / 3600).append('h');
            s %= 3600;
        }
        if (s >= 60) {
            sb.append(s / 60).append('m');
            s %= 60;
        }
        if (s > 0 || sb.isEmpty()) {
            sb.append(s).append('s');
        }
        return sb.toString();
    }
}
