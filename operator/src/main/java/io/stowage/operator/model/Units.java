package io.stowage.operator.model;

import java.util.Locale;

/** Formats bytes (IEC) and counts (SI) the way status messages and printer columns show them. */
public final class Units {
    private Units() {}

    /** 1536 → "1.5 KiB"; exact below 1 KiB. */
    public static String bytes(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = bytes;
        int i = -1;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[i]);
    }

    /** 7_241_732_096 → "7.2B". */
    public static String count(long n) {
        if (n < 1000) {
            return Long.toString(n);
        }
        String[] units = {"K", "M", "B", "T"};
        double v = n;
        int i = -1;
        while (v >= 1000 && i < units.length - 1) {
            v /= 1000;
            i++;
        }
        return String.format(Locale.ROOT, v >= 100 ? "%.0f%s" : "%.1f%s", v, units[i]);
    }
}
