package io.stowage.placement.cli;

import java.util.Locale;

/** A small streaming JSON writer for the commands' {@code --json} output (no dependency needed). */
public final class Json {

    private final StringBuilder sb = new StringBuilder();
    // true when the next value in the current container needs a comma before it
    private boolean needComma;

    public Json beginObject() {
        comma();
        sb.append('{');
        needComma = false;
        return this;
    }

    public Json endObject() {
        sb.append('}');
        needComma = true;
        return this;
    }

    public Json beginArray() {
        comma();
        sb.append('[');
        needComma = false;
        return this;
    }

    public Json endArray() {
        sb.append(']');
        needComma = true;
        return this;
    }

    public Json name(String name) {
        comma();
        string(name);
        sb.append(':');
        needComma = false;
        return this;
    }

    public Json value(String v) {
        comma();
        if (v == null) {
            sb.append("null");
        } else {
            string(v);
        }
        needComma = true;
        return this;
    }

    public Json value(long v) {
        comma();
        sb.append(v);
        needComma = true;
        return this;
    }

    public Json value(double v) {
        comma();
        if (Double.isFinite(v)) {
            // Double.toString gives the shortest exact form, e.g. 0.25 or 1.0E-4, both valid JSON numbers
            sb.append(Double.toString(v));
        } else {
            sb.append("null");
        }
        needComma = true;
        return this;
    }

    public Json value(boolean v) {
        comma();
        sb.append(v);
        needComma = true;
        return this;
    }

    public Json nullValue() {
        comma();
        sb.append("null");
        needComma = true;
        return this;
    }

    public Json field(String name, String v) {
        return name(name).value(v);
    }

    public Json field(String name, long v) {
        return name(name).value(v);
    }

    public Json field(String name, double v) {
        return name(name).value(v);
    }

    public Json field(String name, boolean v) {
        return name(name).value(v);
    }

    private void comma() {
        if (needComma) {
            sb.append(',');
        }
    }

    private void string(String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    @Override
    public String toString() {
        return sb.toString();
    }
}
