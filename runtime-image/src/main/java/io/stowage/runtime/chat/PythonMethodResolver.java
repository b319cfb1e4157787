package io.stowage.runtime.chat;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Gives strings and dicts the Python methods that Hugging Face chat templates call ({@code
 * startswith}, {@code strip('\n')}, {@code split}, {@code items()}, ...); Jinjava would otherwise
 * look for Java methods of those names and fail.
 */
final class PythonMethodResolver extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(method instanceof String name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        Object result;
        if (base instanceof String s) {
            result = stringMethod(s, name, args);
        } else if (base instanceof Map<?, ?> m) {
            result = mapMethod(m, name, args);
        } else {
            return null;
        }
        if (result == NOT_HANDLED) {
            return null;
        }
        context.setPropertyResolved(true);
        return result;
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object stringMethod(String s, String name, Object[] a) {
        return switch (name) {
            case "startswith" -> anyOf(a, 0, p -> s.startsWith(p));
            case "endswith" -> anyOf(a, 0, p -> s.endsWith(p));
            case "strip" -> rstrip(lstrip(s, chars(a)), chars(a));
            case "lstrip" -> lstrip(s, chars(a));
            case "rstrip" -> rstrip(s, chars(a));
            case "split" -> split(s, a);
            case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
            case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" ->
                s.isEmpty()
                        ? s
                        : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT)
                                + s.substring(1).toLowerCase(java.util.Locale.ROOT);
            case "replace" -> a.length >= 2 ? s.replace(String.valueOf(a[0]), String.valueOf(a[1])) : NOT_HANDLED;
            case "find" -> a.length >= 1 ? (long) s.indexOf(String.valueOf(a[0])) : NOT_HANDLED;
            case "count" -> a.length >= 1 ? count(s, String.valueOf(a[0])) : NOT_HANDLED;
            case "join" -> a.length == 1 ? join(s, a[0]) : NOT_HANDLED;
            default -> NOT_HANDLED;
        };
    }

    private static Object mapMethod(Map<?, ?> m, String name, Object[] a) {
        return switch (name) {
            case "items" ->
                a.length == 0
                        ? m.entrySet().stream()
                                .map(e -> List.of(e.getKey(), e.getValue()))
                                .toList()
                        : NOT_HANDLED;
            case "keys" -> a.length == 0 ? new ArrayList<>(m.keySet()) : NOT_HANDLED;
            case "values" -> a.length == 0 ? new ArrayList<>(m.values()) : NOT_HANDLED;
            case "get" -> a.length == 2 ? (m.containsKey(a[0]) ? m.get(a[0]) : a[1]) : NOT_HANDLED;
            default -> NOT_HANDLED;
        };
    }

    private interface StringTest {
        boolean test(String s);
    }

    /** Python's startswith/endswith accept a string or a tuple of strings. */
    private static Object anyOf(Object[] a, int i, StringTest test) {
        if (a.length <= i) {
            return NOT_HANDLED;
        }
        if (a[i] instanceof Collection<?> options) {
            for (Object o : options) {
                if (test.test(String.valueOf(o))) {
                    return true;
                }
            }
            return false;
        }
        return test.test(String.valueOf(a[i]));
    }

    /** The characters to strip; null means whitespace. */
    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : String.valueOf(a[0]);
    }

    private static boolean strippable(char c, String chars) {
        return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strippable(s.charAt(i), chars)) {
            i++;
        }
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int i = s.length();
        while (i > 0 && strippable(s.charAt(i - 1), chars)) {
            i--;
        }
        return s.substring(0, i);
    }

    /** Python's str.split: a literal separator keeping empty pieces, or runs of whitespace when none is given. */
    static List<String> split(String s, Object[] a) {
        String sep = a.length == 0 || a[0] == null ? null : String.valueOf(a[0]);
        long max = a.length >= 2 && a[1] instanceof Number n ? n.longValue() : -1;
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            while (true) {
                while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                    i++;
                }
                if (i >= s.length()) {
                    break;
                }
                if (max >= 0 && out.size() == max) {
                    out.add(rstrip(s.substring(i), null));
                    break;
                }
                int j = i;
                while (j < s.length() && !Character.isWhitespace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("split(): empty separator");
        }
        int from = 0;
        while (max < 0 || out.size() < max) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean previousCased = false;
        for (char c : s.toCharArray()) {
            sb.append(previousCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            previousCased = Character.isLetter(c);
        }
        return sb.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) {
            it.forEach(o -> parts.add(String.valueOf(o)));
        } else if (items instanceof Object[] arr) {
            for (Object o : arr) {
                parts.add(String.valueOf(o));
            }
        } else {
            return String.valueOf(items);
        }
        return String.join(sep, parts);
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return false;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
