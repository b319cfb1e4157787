package io.stowage.runtime.cli;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A parsed command line: {@code --name value} options, {@code --flag} switches and positional arguments. */
final class Args {
    private final Map<String, String> options = new HashMap<>();
    private final Set<String> flags = new HashSet<>();
    private final List<String> positional = new ArrayList<>();
    private final Set<String> used = new HashSet<>();

    /** valueOptions: the option names (without --) that take a value; flagNames: those that do not. */
    static Args parse(String command, String[] args, Set<String> valueOptions, Set<String> flagNames) {
        Args a = new Args();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.startsWith("--") && arg.length() > 2) {
                String name = arg.substring(2);
                String inline = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    inline = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (flagNames.contains(name) && inline == null) {
                    a.flags.add(name);
                } else if (valueOptions.contains(name)) {
                    if (inline == null) {
                        if (i + 1 >= args.length) {
                            throw new UsageException(command + ": option --" + name + " needs a value");
                        }
                        inline = args[++i];
                    }
                    if (a.options.put(name, inline) != null) {
                        throw new UsageException(command + ": option --" + name + " is given twice");
                    }
                } else {
                    throw new UsageException(command + ": unknown option --" + name);
                }
            } else {
                a.positional.add(arg);
            }
        }
        return a;
    }

    boolean flag(String name) {
        return flags.contains(name);
    }

    String option(String name) {
        return options.get(name);
    }

    String required(String command, String name) {
        String v = options.get(name);
        if (v == null) {
            throw new UsageException(command + ": --" + name + " is required");
        }
        return v;
    }

    int intOption(String command, String name, int dflt, int min, int max) {
        String v = options.get(name);
        if (v == null) {
            return dflt;
        }
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
        if (n < min || n > max) {
            throw new UsageException(command + ": --" + name + " must be in " + min + ".." + max + ", got " + n);
        }
        return n;
    }

    long longOption(String command, String name, long dflt) {
        String v = options.get(name);
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
    }

    float floatOption(String command, String name, float dflt, float min, float max) {
        String v = options.get(name);
        if (v == null) {
            return dflt;
        }
        float f;
        try {
            f = Float.parseFloat(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be a number, got '" + v + "'");
        }
        if (!(f >= min && f <= max)) {
            throw new UsageException(command + ": --" + name + " must be in " + min + ".." + max + ", got " + v);
        }
        return f;
    }

    List<String> positional() {
        return positional;
    }
}
