package io.stowage.runtime.host;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Where a host may read models from and how long and large a download may be: the schemes it accepts, the hosts
 * it downloads from (and follows redirects to), the directories {@code file} sources must lie under, and the
 * bounds on one download.
 *
 * <p>{@code hf://} and {@code s3://} sources are mapped onto fixed hosts ({@code huggingface.co} and its CDN
 * domains; the S3 endpoint the host is configured with), so they need their scheme allowed, not their hosts.
 *
 * @param schemes allowed URI schemes, lowercase: of {@code https}, {@code http}, {@code hf}, {@code s3},
 *     {@code file} (a bare path counts as {@code file})
 * @param hosts hosts an http(s) download may go to or be redirected to: exact names or {@code *.domain}
 * @param roots directories (or single files) a {@code file} source must lie under once links are resolved; null
 *     reads local files anywhere (tools and tests that choose their own URIs)
 * @param maxBytes the most bytes one download may have, whatever the model's expected size
 * @param connectTimeout the longest wait to connect
 * @param readTimeout the longest wait for a response's headers or its next bytes
 * @param deadline the longest a whole download (all redirects included) may take
 */
public record ModelSourcePolicy(
        Set<String> schemes,
        List<String> hosts,
        List<Path> roots,
        long maxBytes,
        Duration connectTimeout,
        Duration readTimeout,
        Duration deadline) {

    /** The schemes a host accepts unless configured: no plain http. */
    public static final List<String> DEFAULT_SCHEMES = List.of("https", "hf", "s3", "file");

    /** The hosts a host downloads from unless configured (the chart's default modelHeader.allowedHosts). */
    public static final List<String> DEFAULT_HOSTS = List.of("huggingface.co", "*.huggingface.co", "*.hf.co");

    /** Where a host pod's models lie unless configured: the model cache and the source mounts (the operator's). */
    public static final List<String> DEFAULT_ROOTS = List.of("/models", "/source");

    /** The largest download unless configured: 1 TiB (a 405B-parameter model at 16 bits is about 0.8 TiB). */
    public static final long DEFAULT_MAX_BYTES = 1L << 40;

    /**
     * What a file may have beyond the weights the assignment expects: the header (vocabulary, chat template,
     * metadata) and alignment. The operator reads at most 64 MiB of a header, so a larger one was never planned.
     */
    public static final long HEADER_ALLOWANCE_BYTES = 64L << 20;

    private static final Set<String> KNOWN_SCHEMES = Set.of("https", "http", "hf", "s3", "file");

    public ModelSourcePolicy {
        Set<String> s = new LinkedHashSet<>();
        for (String scheme : schemes) {
            String x = scheme.trim().toLowerCase(Locale.ROOT);
            if (x.isEmpty()) {
                continue;
            }
            if (!KNOWN_SCHEMES.contains(x)) {
                throw new IllegalArgumentException("model source scheme \"" + scheme + "\" is not one of "
                        + KNOWN_SCHEMES.stream().sorted().toList());
            }
            s.add(x);
        }
        schemes = Set.copyOf(s);
        hosts = hosts.stream()
                .map(h -> h.trim().toLowerCase(Locale.ROOT))
                .filter(h -> !h.isEmpty())
                .distinct()
                .toList();
        roots = roots == null
                ? null
                : roots.stream().map(ModelSourcePolicy::canonical).distinct().toList();
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("the model download cap must be > 0 bytes, got " + maxBytes);
        }
        for (Duration d : List.of(connectTimeout, readTimeout, deadline)) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("model download timeouts must be > 0, got connect " + connectTimeout
                        + ", read " + readTimeout + ", deadline " + deadline);
            }
        }
    }

    /** The defaults: https to {@link #DEFAULT_HOSTS}, files under the cache and {@link #DEFAULT_ROOTS}. */
    public static ModelSourcePolicy defaults(Path cacheDir) {
        List<Path> roots = new ArrayList<>();
        if (cacheDir != null) {
            roots.add(cacheDir);
        }
        DEFAULT_ROOTS.forEach(r -> roots.add(Path.of(r)));
        return new ModelSourcePolicy(
                Set.copyOf(DEFAULT_SCHEMES),
                DEFAULT_HOSTS,
                roots,
                DEFAULT_MAX_BYTES,
                Duration.ofSeconds(20),
                Duration.ofSeconds(60),
                Duration.ofHours(12));
    }

    /** The defaults, reading local files anywhere: for callers that choose their own URIs (tools, tests). */
    public static ModelSourcePolicy anyLocalFile() {
        return defaults(null).withRoots(null);
    }

    /** Splits a comma-separated list, dropping blanks. */
    public static List<String> list(String commaSeparated) {
        if (commaSeparated == null) {
            return List.of();
        }
        return Arrays.stream(commaSeparated.split(","))
                .map(String::trim)
                .filter(x -> !x.isEmpty())
                .toList();
    }

    public ModelSourcePolicy withSchemes(Collection<String> s) {
        return new ModelSourcePolicy(Set.copyOf(s), hosts, roots, maxBytes, connectTimeout, readTimeout, deadline);
    }

    public ModelSourcePolicy withHosts(List<String> h) {
        return new ModelSourcePolicy(schemes, h, roots, maxBytes, connectTimeout, readTimeout, deadline);
    }

    public ModelSourcePolicy withRoots(List<Path> r) {
        return new ModelSourcePolicy(schemes, hosts, r, maxBytes, connectTimeout, readTimeout, deadline);
    }

    /** These roots and {@code more} (for local mode: the model files its manifests name). */
    public ModelSourcePolicy withMoreRoots(Collection<Path> more) {
        if (roots == null) {
            return this;
        }
        List<Path> all = new ArrayList<>(roots);
        all.addAll(more);
        return withRoots(all);
    }

    public ModelSourcePolicy withMaxBytes(long max) {
        return new ModelSourcePolicy(schemes, hosts, roots, max, connectTimeout, readTimeout, deadline);
    }

    public ModelSourcePolicy withTimeouts(Duration connect, Duration read, Duration total) {
        return new ModelSourcePolicy(schemes, hosts, roots, maxBytes, connect, read, total);
    }

    /** The deadline in nanoseconds, saturated (a configured century does not overflow). */
    long deadlineNanos() {
        try {
            return deadline.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE / 4;
        }
    }

    public boolean allowsScheme(String scheme) {
        return schemes.contains(scheme);
    }

    /** Whether {@code host} matches an entry of {@code allowed} (exact, or {@code *.domain} for its subdomains). */
    static boolean hostMatches(String host, Collection<String> allowed) {
        String h = host == null ? "" : host.toLowerCase(Locale.ROOT);
        if (h.isEmpty()) {
            return false;
        }
        for (String a : allowed) {
            if (a.equals(h) || (a.startsWith("*.") && h.endsWith(a.substring(1)))) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code file}, already resolved to its real path, lies under (or is) one of the roots. */
    boolean underRoots(Path file) {
        if (roots == null) {
            return true;
        }
        for (Path r : roots) {
            if (file.startsWith(r)) {
                return true;
            }
        }
        return false;
    }

    /** The root as the file system sees it (links resolved where it exists), so that comparisons are exact. */
    private static Path canonical(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            return abs.toRealPath();
        } catch (IOException | SecurityException e) {
            return abs;
        }
    }
}
