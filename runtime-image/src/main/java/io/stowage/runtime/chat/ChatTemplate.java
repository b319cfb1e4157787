package io.stowage.runtime.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.runtime.tokenizer.Tokenizer;
import io.stowage.runtime.tokenizer.TokenizerVocabulary;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import jinjava.javax.el.CompositeELResolver;

/**
 * A model's chat template ({@code tokenizer.chat_template}, Jinja) rendered with Jinjava set up
 * the way Hugging Face's {@code apply_chat_template} sets up Jinja2: {@code trim_blocks}, {@code
 * lstrip_blocks}, {@code bos_token}/{@code eos_token} variables, {@code raise_exception}, {@code
 * strftime_now}, a {@code tojson} that keeps non-ASCII text, and Python's string methods.
 *
 * <p>A model without a template (such as stories260K) gets the {@linkplain #isFallback()
 * fallback}: one {@code role: content} line per message, and {@code assistant:} when a
 * generation prompt is asked for. That is not what any model was trained on; it only keeps a
 * chat request usable on a base model.
 */
public final class ChatTemplate {

    /** Stands in for a missing {@code tokenizer.chat_template}. */
    public static final String FALLBACK_SOURCE =
            "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}"
                    + "{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

    /** Python slice reversal, which Jinjava's expression parser does not accept. */
    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-1\\s*\\]");

    /** Upper bound on a rendered prompt: 8 Mi characters, far above any context window in tokens. */
    static final long MAX_OUTPUT_CHARS = 8L << 20;

    private final String source;
    private final String compiledSource;
    private final boolean fallback;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    private ChatTemplate(String source, boolean fallback, String bosToken, String eosToken) {
        this.source = source;
        this.fallback = fallback;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.compiledSource =
                parenthesizeNamespaceArguments(REVERSE_SLICE.matcher(source).replaceAll("|reverse"));
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonMethodResolver());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withElResolver(resolver)
                // A template comes from a model file: bound what it may produce.
                .withMaxOutputSize(MAX_OUTPUT_CHARS)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseNaturalOperatorPrecedence(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .build())
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.getGlobalContext()
                .registerFunction(new ELFunctionDefinition(
                        "", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext()
                .registerFunction(
                        new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        jinjava.getGlobalContext().registerFilter(new PythonToJsonFilter());
    }

    /**
     * A template from its Jinja source.
     *
     * @param bosToken text of the BOS token, or null when the model has none
     * @param eosToken text of the EOS token, or null when the model has none
     */
    public static ChatTemplate of(String source, String bosToken, String eosToken) {
        Objects.requireNonNull(source, "source");
        return new ChatTemplate(source, false, nullToEmpty(bosToken), nullToEmpty(eosToken));
    }

    /** The template of a tokenizer vocabulary, or the fallback when it has none. */
    public static ChatTemplate fromVocabulary(TokenizerVocabulary vocab) {
        String bos = vocab.bosId() >= 0 ? vocab.tokens().get(vocab.bosId()) : "";
        String eos = vocab.eosId() >= 0 ? vocab.tokens().get(vocab.eosId()) : "";
        String template = vocab.chatTemplate();
        if (template == null || template.isBlank()) {
            return new ChatTemplate(FALLBACK_SOURCE, true, bos, eos);
        }
        return new ChatTemplate(template, false, bos, eos);
    }

    /** The template of a GGUF model ({@code tokenizer.chat_template}), or the fallback when it has none. */
    public static ChatTemplate fromGguf(GgufFile file) {
        return fromVocabulary(TokenizerVocabulary.fromGguf(file));
    }

    /** True when the model has no template and the plain {@code role: content} fallback is used. */
    public boolean isFallback() {
        return fallback;
    }

    public String source() {
        return source;
    }

    /** Renders a conversation, ending with the assistant's header when {@code addGenerationPrompt}. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> values = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            values.add(m.toTemplateValue());
        }
        return render(values, addGenerationPrompt, Map.of());
    }

    /**
     * Renders a conversation given as template values (maps with {@code role}, {@code content}
     * and whatever else the template reads, e.g. {@code tool_calls}).
     *
     * @param extra further variables, e.g. {@code tools} or {@code enable_thinking}
     * @throws ChatTemplateException when the template fails or calls {@code raise_exception}
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt, Map<String, ?> extra) {
        Map<String, Object> context = new HashMap<>(extra);
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RenderResult result;
        try {
            result = jinjava.renderForResult(compiledSource, context);
        } catch (RuntimeException | StackOverflowError e) {
            String reason =
                    e instanceof StackOverflowError ? "the template recursed too deeply" : clean(e.getMessage());
            throw new ChatTemplateException(
                    "chat template failed to render (" + messages.size() + " messages): " + reason, false, e);
        }
        List<TemplateError> fatal = result.getErrors().stream()
                .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL)
                .toList();
        if (!fatal.isEmpty()) {
            boolean byMessages = fatal.stream().anyMatch(ChatTemplate::causedByMessages);
            throw new ChatTemplateException(
                    "chat template failed to render (" + messages.size() + " messages): "
                            + fatal.stream()
                                    .limit(3)
                                    .map(ChatTemplate::describe)
                                    .distinct()
                                    .collect(Collectors.joining("; ")),
                    byMessages,
                    fatal.get(0).getException());
        }
        return result.getOutput();
    }

    /**
     * Renders a conversation and encodes it with special-token text parsed. BOS is prepended when
     * the model wants one ({@link Tokenizer#addsBos()}) and the template did not already write it
     * (Llama 3's template starts with {@code bos_token}), so the prompt never starts with two.
     */
    public int[] encode(Tokenizer tokenizer, List<ChatMessage> messages, boolean addGenerationPrompt) {
        int[] ids = tokenizer.encode(render(messages, addGenerationPrompt), false, true);
        int bos = tokenizer.bosId();
        if (!tokenizer.addsBos() || bos < 0 || (ids.length > 0 && ids[0] == bos)) {
            return ids;
        }
        int[] withBos = new int[ids.length + 1];
        withBos[0] = bos;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }

    private static RaisedException raised(TemplateError e) {
        for (Throwable c = e.getException(); c != null; c = c.getCause()) {
            if (c instanceof RaisedException r) {
                return r;
            }
        }
        return null;
    }

    private static boolean causedByMessages(TemplateError e) {
        return raised(e) != null || e.getReason() == TemplateError.ErrorReason.OUTPUT_TOO_BIG;
    }

    private static String describe(TemplateError e) {
        RaisedException r = raised(e);
        if (r != null) {
            return "the template raised: " + clean(r.getMessage());
        }
        if (e.getReason() == TemplateError.ErrorReason.OUTPUT_TOO_BIG) {
            return "the rendered prompt is longer than " + MAX_OUTPUT_CHARS + " characters";
        }
        return (e.getLineno() > 0 ? "line " + e.getLineno() + ": " : "") + clean(e.getMessage());
    }

    /** Longest part of one engine message kept in an error. */
    static final int MAX_REASON_CHARS = 240;

    private static final Pattern EXCEPTION_PREFIX =
            Pattern.compile("^(?:[A-Za-z_$][\\w$.]*(?:Exception|Error)\\s*:\\s*)+");
    private static final Pattern QUALIFIED_CLASS =
            Pattern.compile("\\b(class\\s+)?(?:[a-z_$][\\w$]*\\.)+([A-Z][\\w$]*)");

    /**
     * One line in template terms from a message of Jinjava or of the JDK: a leading {@code FooException:} dropped,
     * qualified Java class names turned into the Python type a template author knows ({@code java.lang.String} ->
     * {@code str}), control characters and line breaks folded into spaces, cut to {@link #MAX_REASON_CHARS}.
     */
    static String clean(String message) {
        if (message == null || message.isBlank()) {
            return "an error inside the template engine";
        }
        String m = EXCEPTION_PREFIX.matcher(message.strip()).replaceFirst("");
        Matcher q = QUALIFIED_CLASS.matcher(m);
        StringBuilder sb = new StringBuilder();
        while (q.find()) {
            q.appendReplacement(
                    sb, Matcher.quoteReplacement((q.group(1) != null ? "type " : "") + pythonType(q.group(2))));
        }
        q.appendTail(sb);
        m = sb.toString().replaceAll("[\\p{Cntrl}\\u2028\\u2029\\s]+", " ").strip();
        if (m.length() > MAX_REASON_CHARS) {
            int end = MAX_REASON_CHARS;
            if (Character.isHighSurrogate(m.charAt(end - 1))) {
                end--;
            }
            m = m.substring(0, end) + "...";
        }
        return m.isEmpty() ? "an error inside the template engine" : m;
    }

    private static String pythonType(String javaSimpleName) {
        String n = javaSimpleName;
        if (n.endsWith("Exception") || n.endsWith("Error")) {
            return "error";
        }
        return switch (n) {
            case "String", "Character", "CharSequence", "SafeString" -> "str";
            case "Long", "Integer", "Short", "Byte", "BigInteger" -> "int";
            case "Double", "Float", "BigDecimal", "Number" -> "float";
            case "Boolean" -> "bool";
            default -> {
                if (n.endsWith("Map") || n.endsWith("Dict")) {
                    yield "dict";
                }
                if (n.endsWith("List") || n.endsWith("Set") || n.endsWith("Collection") || n.endsWith("Iterable")) {
                    yield "list";
                }
                yield "object";
            }
        };
    }

    /**
     * Wraps each keyword argument of {@code namespace(...)} in parentheses: Jinjava parses {@code
     * namespace(n=messages|length - 1)} as {@code (n=messages|length) - 1}, Jinja as {@code n=(messages|length - 1)}.
     */
    static String parenthesizeNamespaceArguments(String template) {
        StringBuilder out = new StringBuilder(template.length() + 16);
        int from = 0;
        Matcher m = NAMESPACE_CALL.matcher(template);
        while (m.find(from)) {
            int open = m.end() - 1;
            int close = matchingParen(template, open);
            if (close < 0) {
                break;
            }
            out.append(template, from, open + 1);
            List<String> args = splitTopLevel(template.substring(open + 1, close));
            for (int i = 0; i < args.size(); i++) {
                Matcher kw = KEYWORD_ARGUMENT.matcher(args.get(i));
                out.append(i > 0 ? "," : "")
                        .append(kw.matches() ? kw.group(1) + "=(" + kw.group(2) + ")" : args.get(i));
            }
            out.append(')');
            from = close + 1;
        }
        return out.append(template.substring(from)).toString();
    }

    private static final Pattern NAMESPACE_CALL = Pattern.compile("\\bnamespace\\s*\\(");
    private static final Pattern KEYWORD_ARGUMENT = Pattern.compile("(?s)(\\s*[A-Za-z_][A-Za-z_0-9]*\\s*)=(?!=)(.*)");

    /** Index of the parenthesis closing the one at {@code open}, skipping string literals; -1 if none. */
    private static int matchingParen(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = endOfString(s, i);
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                if (--depth == 0) {
                    return c == ')' ? i : -1;
                }
            }
        }
        return -1;
    }

    private static int endOfString(String s, int quote) {
        char q = s.charAt(quote);
        for (int i = quote + 1; i < s.length(); i++) {
            if (s.charAt(i) == '\\') {
                i++;
            } else if (s.charAt(i) == q) {
                return i;
            }
        }
        return s.length();
    }

    private static List<String> splitTopLevel(String args) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < args.length(); i++) {
            char c = args.charAt(i);
            if (c == '\'' || c == '"') {
                i = endOfString(args, i);
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                parts.add(args.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(args.substring(start));
        return parts;
    }

    private static String nullToEmpty(String s) {
        return s == null ? "" : s;
    }

    /** Thrown by the template's own {@code raise_exception(message)}. */
    static final class RaisedException extends RuntimeException {
        RaisedException(String message) {
            super(message);
        }
    }

    /** {@code raise_exception(message)} as transformers defines it for templates. */
    public static String raiseException(String message) {
        throw new RaisedException(message);
    }

    /** {@code strftime_now(format)}: the current local time in Python's strftime format. */
    public static String strftimeNow(String format) {
        return strftime(ZonedDateTime.now(), format);
    }

    static String strftime(ZonedDateTime t, String format) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                sb.append(c);
                continue;
            }
            char f = format.charAt(++i);
            switch (f) {
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> sb.append(String.format("%02d", t.getMonthValue()));
                case 'd' -> sb.append(String.format("%02d", t.getDayOfMonth()));
                case 'H' -> sb.append(String.format("%02d", t.getHour()));
                case 'I' -> sb.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
                case 'M' -> sb.append(String.format("%02d", t.getMinute()));
                case 'S' -> sb.append(String.format("%02d", t.getSecond()));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> sb.append(String.format("%03d", t.getDayOfYear()));
                case 'b' -> sb.append(t.getMonth().getDisplayName(java.time.format.TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(t.getMonth().getDisplayName(java.time.format.TextStyle.FULL, Locale.ENGLISH));
                case 'a' ->
                    sb.append(t.getDayOfWeek().getDisplayName(java.time.format.TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(java.time.format.TextStyle.FULL, Locale.ENGLISH));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(f);
            }
        }
        return sb.toString();
    }

    /**
     * Python's {@code json.dumps(x, ensure_ascii=False, indent=indent)}, which transformers installs
     * as {@code tojson}: {@code ", "} and {@code ": "} separators, or one item per line with
     * {@code indent}; non-ASCII text kept.
     */
    static final class PythonToJsonFilter implements AdvancedFilter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            int spaces = indent instanceof Number n ? n.intValue() : -1;
            StringBuilder sb = new StringBuilder();
            write(var, sb, spaces, 0);
            return sb.toString();
        }

        static void write(Object v, StringBuilder sb, int indent, int level) {
            if (v == null) {
                sb.append("null");
            } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long || v instanceof Short) {
                sb.append(v);
            } else if (v instanceof Number n) {
                sb.append(Double.toString(n.doubleValue()));
            } else if (v instanceof Map<?, ?> m) {
                container('{', '}', m.entrySet(), sb, indent, level, (e, out) -> {
                    Map.Entry<?, ?> entry = (Map.Entry<?, ?>) e;
                    string(String.valueOf(entry.getKey()), out);
                    out.append(": ");
                    write(entry.getValue(), out, indent, level + 1);
                });
            } else if (v instanceof Iterable<?> it) {
                container('[', ']', it, sb, indent, level, (e, out) -> write(e, out, indent, level + 1));
            } else if (v instanceof Object[] arr) {
                write(List.of(arr), sb, indent, level);
            } else {
                string(v.toString(), sb);
            }
        }

        private interface ItemWriter {
            void write(Object item, StringBuilder sb);
        }

        private static void container(
                char open, char close, Iterable<?> items, StringBuilder sb, int indent, int level, ItemWriter w) {
            sb.append(open);
            boolean first = true;
            for (Object item : items) {
                if (!first) {
                    sb.append(indent >= 0 ? "," : ", ");
                }
                if (indent >= 0) {
                    sb.append('\n').append(" ".repeat(indent * (level + 1)));
                }
                first = false;
                w.write(item, sb);
            }
            if (!first && indent >= 0) {
                sb.append('\n').append(" ".repeat(indent * level));
            }
            sb.append(close);
        }

        private static void string(String s, StringBuilder sb) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    case '\b' -> sb.append("\\b");
                    case '\f' -> sb.append("\\f");
                    default -> {
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            sb.append('"');
        }
    }
}
