package io.stowage.operator.dcgm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A parser of the Prometheus text exposition format (0.0.4): samples with labels; comments skipped. */
public final class PrometheusText {
    /** One sample line: {@code name{labels} value [timestamp]}. */
    public record Sample(String name, Map<String, String> labels, double value) {}

    private PrometheusText() {}

    /**
     * Parses every sample; a malformed line is an error naming the line number and the text.
     *
     * @throws IllegalArgumentException on a line that is not a sample, comment or blank
     */
    public static List<Sample> parse(String text) {
        List<Sample> out = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            try {
                out.add(parseLine(line));
            } catch (RuntimeException e) {
                String shown = line.length() > 120 ? line.substring(0, 120) + "..." : line;
                throw new IllegalArgumentException(
                        "metrics line " + (i + 1) + " is not a Prometheus sample (" + e.getMessage() + "): " + shown);
            }
        }
        return out;
    }

    private static Sample parseLine(String line) {
        int p = 0;
        while (p < line.length() && line.charAt(p) != '{' && !Character.isWhitespace(line.charAt(p))) {
            p++;
        }
        String name = line.substring(0, p);
        if (name.isEmpty()) {
            throw new IllegalArgumentException("no metric name");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        if (p < line.length() && line.charAt(p) == '{') {
            p++;
            while (true) {
                while (p < line.length() && (line.charAt(p) == ',' || line.charAt(p) == ' ')) {
                    p++;
                }
                if (p >= line.length()) {
                    throw new IllegalArgumentException("unterminated label set");
                }
                if (line.charAt(p) == '}') {
                    p++;
                    break;
                }
                int eq = line.indexOf('=', p);
                if (eq < 0 || eq + 1 >= line.length() || line.charAt(eq + 1) != '"') {
                    throw new IllegalArgumentException("label without =\"value\"");
                }
                String key = line.substring(p, eq).strip();
                StringBuilder v = new StringBuilder();
                int q = eq + 2;
                while (true) {
                    if (q >= line.length()) {
                        throw new IllegalArgumentException("unterminated label value of " + key);
                    }
                    char c = line.charAt(q);
                    if (c == '\\' && q + 1 < line.length()) {
                        char n = line.charAt(q + 1);
                        v.append(n == 'n' ? '\n' : n);
                        q += 2;
                    } else if (c == '"') {
                        q++;
                        break;
                    } else {
                        v.append(c);
                        q++;
                    }
                }
                labels.put(key, v.toString());
                p = q;
            }
        }
        String[] rest = line.substring(p).strip().split("\\s+");
        if (rest.length < 1 || rest[0].isEmpty()) {
            throw new IllegalArgumentException("no value");
        }
        double value = switch (rest[0]) {
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            case "NaN" -> Double.NaN;
            default -> Double.parseDouble(rest[0]);
        };
        return new Sample(name, labels, value);
    }
}
