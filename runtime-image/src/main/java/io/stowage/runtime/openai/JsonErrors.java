package io.stowage.runtime.openai;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import java.util.stream.Collectors;

/** Short, client-facing descriptions of JSON request bodies that Jackson refused, for the OpenAI and admin APIs. */
public final class JsonErrors {
    private JsonErrors() {}

    /**
     * "request body is not valid JSON: REASON at line L, column C" for a syntax error, or "request body is not a
     * valid TYPE: field F: REASON at line L, column C" for well-formed JSON of the wrong shape. Jackson's own message
     * is cut before its source excerpt and its "[Source: ...]" location, which describe its internals, not the body.
     */
    public static String describe(JsonProcessingException e, String type) {
        // databind wraps the parser's syntax errors (a truncated body) in mapping exceptions
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof com.fasterxml.jackson.core.exc.StreamReadException syntax) {
                e = syntax;
                break;
            }
        }
        String where = at(e.getLocation());
        String reason = shortReason(e.getOriginalMessage());
        if (e instanceof JsonMappingException m) {
            String field = m.getPath().stream()
                    .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
                    .collect(Collectors.joining("."))
                    .replace(".[", "[");
            if (type != null && !reason.startsWith("No content to map")) {
                return "request body is not a valid " + type + ": " + (field.isEmpty() ? "" : "field " + field + ": ")
                        + reason + where;
            }
        }
        return "request body is not valid JSON: " + reason + where;
    }

    private static final java.util.regex.Pattern WRONG_TYPE =
            java.util.regex.Pattern.compile("Cannot deserialize value of type `([^`]+)` from ([A-Za-z]+)");

    private static final java.util.regex.Pattern JACKSON_SETTING = java.util.regex.Pattern.compile(
            "(?:,\\s*from\\s*`[^`]*`|:?\\s*enable\\s*`[^`]*`\\s*to allow|`[A-Za-z_]+\\.[A-Za-z_.()]+`)");

    static String shortReason(String message) {
        if (message == null || message.isBlank()) {
            return "unreadable input";
        }
        String r = message.strip();
        var wrongType = WRONG_TYPE.matcher(r);
        if (wrongType.lookingAt()) {
            // Jackson names the Java class the field maps to; the client knows JSON kinds
            return "expected " + jsonKind(wrongType.group(1)) + ", not "
                    + wrongType.group(2).toLowerCase(java.util.Locale.ROOT) + " value";
        }
        int newline = r.indexOf('\n');
        if (newline >= 0) {
            r = r.substring(0, newline);
        }
        // limits and features name the Jackson method or constant that sets them
        r = JACKSON_SETTING.matcher(r).replaceAll("");
        int source = r.indexOf("[Source");
        if (source >= 0) {
            int paren = r.lastIndexOf('(', source);
            r = r.substring(0, paren >= 0 ? paren : source);
        }
        // Jackson adds hints meant for Java callers after the first sentence
        int hint = r.indexOf("; ");
        if (hint >= 0) {
            r = r.substring(0, hint);
        }
        r = r.strip();
        while (r.endsWith(":") || r.endsWith(",")) {
            r = r.substring(0, r.length() - 1).strip();
        }
        return r.isEmpty() ? "unreadable input" : r;
    }

    private static String jsonKind(String javaType) {
        String t = javaType.toLowerCase(java.util.Locale.ROOT);
        if (t.contains("list") || t.contains("[]") || t.contains("set<")) {
            return "an array";
        }
        if (t.endsWith("string")) {
            return "a string";
        }
        if (t.endsWith("boolean")) {
            return "a boolean";
        }
        if (t.matches(".*(int|integer|long|short|double|float|bigdecimal|biginteger)$")) {
            return "a number";
        }
        return "an object";
    }

    private static String at(JsonLocation l) {
        if (l == null || l.getLineNr() < 1) {
            return "";
        }
        return " at line " + l.getLineNr() + ", column " + l.getColumnNr();
    }
}
