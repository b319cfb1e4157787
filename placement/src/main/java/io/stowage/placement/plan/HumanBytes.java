package io.stowage.placement.plan;

import java.util.Locale;

/** Formats byte counts the way people read them in refusals and tables: "5.2 GiB", "300.0 MiB". */
public final class HumanBytes {
    private static final String[] UNITS = {"KiB", "MiB", "GiB", "TiB", "PiB"};

    private HumanBytes() {}

    /** One decimal, binary units. */
    public static String format(long bytes) {
        return format(bytes, 1);
    }

    /** {@code decimals} decimals, binary units; plain bytes below 1 KiB. */
    public static String format(long bytes, int decimals) {
        if (bytes < 0) {
            return "-" + format(-bytes, decimals);
        }
        if (bytes < 1024) {
            return bytes + " B";
        }
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit < UNITS.length - 1) {
            value /= 1024;
            unit++;
        }
        return String.format(Locale.ROOT, "%." + decimals + "f %s", value, UNITS[unit]);
    }

    /**
     * Formats two figures that are compared in one sentence with enough decimals that unequal figures
     * never read alike ("needs 3.14 GiB; has 3.13 GiB free", not "3.1 GiB ... 3.1 GiB").
     */
    public static String[] formatPair(long a, long b) {
        for (int decimals = 1; decimals < 6; decimals++) {
            String fa = format(a, decimals);
            String fb = format(b, decimals);
            if (a == b || !fa.equals(fb)) {
                return new String[] {fa, fb};
            }
        }
        return new String[] {a + " B", b + " B"};
    }
}
