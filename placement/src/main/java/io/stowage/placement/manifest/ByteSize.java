package io.stowage.placement.manifest;

import java.math.BigDecimal;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte quantities as people write them: plain bytes, Kubernetes binary suffixes (Ki, Mi, Gi, Ti,
 * also spelled KiB, MiB, GiB, TiB) and decimal ones (k, M, G, T, also kB, MB, GB, TB).
 */
public final class ByteSize {

    private static final Pattern QUANTITY = Pattern.compile("([0-9]+(?:\\.[0-9]+)?)\\s*([A-Za-z]*)");
    private static final Map<String, Long> UNITS = Map.ofEntries(
            Map.entry("", 1L),
            Map.entry("b", 1L),
            Map.entry("ki", 1L << 10),
            Map.entry("kib", 1L << 10),
            Map.entry("mi", 1L << 20),
            Map.entry("mib", 1L << 20),
            Map.entry("gi", 1L << 30),
            Map.entry("gib", 1L << 30),
            Map.entry("ti", 1L << 40),
            Map.entry("tib", 1L << 40),
            Map.entry("k", 1_000L),
            Map.entry("kb", 1_000L),
            Map.entry("m", 1_000_000L),
            Map.entry("mb", 1_000_000L),
            Map.entry("g", 1_000_000_000L),
            Map.entry("gb", 1_000_000_000L),
            Map.entry("t", 1_000_000_000_000L),
            Map.entry("tb", 1_000_000_000_000L));

    private ByteSize() {}

    /**
     * Parses {@code "80Gi"}, {@code "81559MiB"}, {@code "1.5G"} or {@code "1024"}; fractions of a
     * byte are rounded down.
     *
     * @throws IllegalArgumentException for anything else, or for a value above 2^63 − 1
     */
    public static long parse(String text) {
        Matcher m = QUANTITY.matcher(text == null ? "" : text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a byte size (expected e.g. 80Gi, 81559MiB, 16G or 1024)");
        }
        Long unit = UNITS.get(m.group(2).toLowerCase(Locale.ROOT));
        // "M" is mega and "m" would be milli in Kubernetes; neither makes sense for bytes below 1, so both mean mega.
        if (unit == null) {
            throw new IllegalArgumentException("unknown unit \"" + m.group(2)
                    + "\" (expected Ki, Mi, Gi, Ti, KiB, MiB, GiB, TiB, k, M, G, T, kB, MB, GB or TB)");
        }
        BigDecimal bytes = new BigDecimal(m.group(1)).multiply(BigDecimal.valueOf(unit));
        if (bytes.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
            throw new IllegalArgumentException("too large (more than " + Long.MAX_VALUE + " bytes)");
        }
        return bytes.longValue();
    }

    /** A human figure in binary units with two decimals: {@code 1.50 GiB}, {@code 512.00 MiB}, {@code 12 B}. */
    public static String human(long bytes) {
        long abs = Math.abs(bytes);
        String sign = bytes < 0 ? "-" : "";
        if (abs < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = abs;
        int i = -1;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return sign + String.format(Locale.ROOT, "%.2f %s", v, units[i]);
    }
}
