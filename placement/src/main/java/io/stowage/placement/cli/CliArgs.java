package io.stowage.placement.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A hand-rolled command line: options that take a value ({@code --devices FILE} or {@code
 * --devices=FILE}), flags, and short aliases; anything else is a usage error.
 */
public final class CliArgs {

    private final Map<String, List<String>> values = new LinkedHashMap<>();
    private final List<String> flags = new ArrayList<>();

    private CliArgs() {}

    /**
     * @param valued long option names that take a value, e.g. {@code --devices}
     * @param flagNames long option names that take none, e.g. {@code --json}
     * @param aliases short spellings, e.g. {@code -f → --file}
     */
    public static CliArgs parse(String[] argv, Set<String> valued, Set<String> flagNames, Map<String, String> aliases) {
        CliArgs a = new CliArgs();
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            String name = arg;
            String inline = null;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                name = arg.substring(0, eq);
                inline = arg.substring(eq + 1);
            }
            name = aliases.getOrDefault(name, name);
            if (flagNames.contains(name)) {
                if (inline != null) {
                    throw new UsageException("option " + name + " takes no value, got \"" + arg + "\"");
                }
                a.flags.add(name);
            } else if (valued.contains(name)) {
                String v = inline;
                if (v == null) {
                    if (i + 1 >= argv.length || argv[i + 1].startsWith("--")) {
                        throw new UsageException("option " + name + " needs a value");
                    }
                    v = argv[++i];
                }
                a.values.computeIfAbsent(name, k -> new ArrayList<>()).add(v);
            } else if (arg.startsWith("-")) {
                throw new UsageException("unknown option \"" + arg + "\"");
            } else {
                throw new UsageException("unexpected argument \"" + arg + "\"");
            }
        }
        return a;
    }

    public boolean has(String flag) {
        return flags.contains(flag) || values.containsKey(flag);
    }

    /** The option's value, or null; given twice is a usage error. */
    public String value(String name) {
        List<String> v = values.get(name);
        if (v == null) {
            return null;
        }
        if (v.size() > 1) {
            throw new UsageException("option " + name + " is given " + v.size() + " times; give it once");
        }
        return v.getFirst();
    }

    public String required(String name) {
        String v = value(name);
        if (v == null) {
            throw new UsageException("option " + name + " is required");
        }
        return v;
    }

    public long longValue(String name, long dflt, long min, long max) {
        String v = value(name);
        if (v == null) {
            return dflt;
        }
        long n;
        try {
            n = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("option " + name + " must be an integer, got \"" + v + "\"");
        }
        if (n < min || n > max) {
            throw new UsageException("option " + name + " must be between " + min + " and " + max + ", got " + n);
        }
        return n;
    }
}
