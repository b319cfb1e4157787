package io.stowage.runtime.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.runtime.tokenizer.TestTokenizers;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Chat templates rendered as transformers renders them, and the ids their prompts encode to. */
class ChatTemplateTest {

    static Stream<Arguments> conversations() {
        return Stream.of(TestTokenizers.LLAMA3, TestTokenizers.QWEN3).flatMap(gguf -> {
            String dir = gguf.substring(0, gguf.lastIndexOf('/'));
            List<JsonNode> lines = TestTokenizers.jsonLines(dir + "/chat-template.jsonl");
            assertThat(lines).hasSize(3);
            return lines.stream()
                    .map(c -> Arguments.of(
                            gguf,
                            Named.of(
                                    dir.substring(dir.lastIndexOf('/') + 1) + " "
                                            + c.get("name").asText(),
                                    c)));
        });
    }

    private static List<ChatMessage> messages(JsonNode c) {
        List<ChatMessage> out = new ArrayList<>();
        for (JsonNode m : c.get("messages")) {
            out.add(new ChatMessage(m.get("role").asText(), m.get("content").asText()));
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("conversations")
    void rendersTheModelsTemplateLikeTransformers(String gguf, JsonNode c) {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(gguf));
        assertThat(template.isFallback()).isFalse();
        String text =
                template.render(messages(c), c.get("add_generation_prompt").asBoolean());
        assertThat(text).isEqualTo(c.get("text").asText());
    }

    @ParameterizedTest
    @MethodSource("conversations")
    void renderedPromptEncodesToTheReferenceIds(String gguf, JsonNode c) {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(gguf));
        Tokenizer tokenizer = TestTokenizers.tokenizer(gguf);
        String text =
                template.render(messages(c), c.get("add_generation_prompt").asBoolean());
        // The templates write BOS themselves where the model wants it, so none is added here.
        assertThat(tokenizer.encode(text, false)).containsExactly(TestTokenizers.ids(c.get("ids")));
    }

    @ParameterizedTest
    @MethodSource("conversations")
    void promptIdsNeverStartWithTwoBos(String gguf, JsonNode c) {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(gguf));
        Tokenizer tokenizer = TestTokenizers.tokenizer(gguf);
        // Llama 3 wants BOS and its template writes it; Qwen3 wants none.
        assertThat(template.encode(
                        tokenizer, messages(c), c.get("add_generation_prompt").asBoolean()))
                .containsExactly(TestTokenizers.ids(c.get("ids")));
    }

    @Test
    void fallbackPromptGetsBosFromTheTokenizer() {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(TestTokenizers.STORIES));
        Tokenizer tokenizer = TestTokenizers.tokenizer(TestTokenizers.STORIES);
        int[] ids = template.encode(tokenizer, List.of(ChatMessage.user("Hi")), true);
        assertThat(ids[0]).isEqualTo(1);
        assertThat(ids).containsExactly(tokenizer.encode("user: Hi\nassistant:", true));
    }

    @Test
    void runawayTemplateOutputIsStopped() {
        ChatTemplate template = ChatTemplate.of("{% for i in range(200) %}{{ 'x' * 50000 }}{% endfor %}", null, null);
        // 10 million characters against the 8 Mi limit.
        assertThatThrownBy(() -> template.render(List.of(), false))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("chat template failed to render");
    }

    @Test
    void templateErrorsAreOneLineInTemplateTerms() {
        ChatTemplate broken = ChatTemplate.of("{{ messages[0]['content'].bar() }}", null, null);
        assertThatThrownBy(() -> broken.render(List.of(ChatMessage.user("x")), false))
                .isInstanceOfSatisfying(
                        ChatTemplateException.class,
                        e -> assertThat(e.causedByMessages()).isFalse())
                .hasMessage("chat template failed to render (1 messages): line 1: Cannot find method bar with 0"
                        + " parameters in type str");
        ChatTemplate include = ChatTemplate.of("{% include 'other.jinja' %}", null, null);
        assertThatThrownBy(() -> include.render(List.of(), false)).hasMessageNotContaining("Exception");
        ChatTemplate raising = ChatTemplate.of("{{ raise_exception('no\nsystem role') }}", null, null);
        assertThatThrownBy(() -> raising.render(List.of(), false))
                .isInstanceOfSatisfying(
                        ChatTemplateException.class,
                        e -> assertThat(e.causedByMessages()).isTrue())
                .hasMessageEndingWith("the template raised: no system role");
        assertThat(ChatTemplate.clean("OutputTooBigException: Cannot coerce 'a' of class java.lang.String to class"
                        + " java.util.HashMap\n  at line 3"))
                .isEqualTo("Cannot coerce 'a' of type str to type dict at line 3");
        assertThat(ChatTemplate.clean("y".repeat(10_000))).hasSize(ChatTemplate.MAX_REASON_CHARS + 3);
    }

    @Test
    void modelWithoutTemplateGetsThePlainFallback() {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(TestTokenizers.STORIES));
        assertThat(template.isFallback()).isTrue();
        String text = template.render(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi")), true);
        assertThat(text).isEqualTo("system: Be brief.\nuser: Hi\nassistant:");
        assertThat(template.render(List.of(ChatMessage.user("Hi")), false)).isEqualTo("user: Hi\n");
    }

    @Test
    void qwen3TemplateHonoursEnableThinkingAndTools() {
        ChatTemplate template = ChatTemplate.fromGguf(TestTokenizers.gguf(TestTokenizers.QWEN3));
        List<Map<String, Object>> messages = List.of(Map.of("role", "user", "content", "Weather in Paris?"));
        String noThinking = template.render(messages, true, Map.of("enable_thinking", false));
        assertThat(noThinking).endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n");
        // Key order matters to tojson, as in Python's dicts.
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", "get_weather");
        function.put("description", "Météo");
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", function);
        String withTools = template.render(messages, true, Map.of("tools", List.of(tool)));
        assertThat(withTools)
                .startsWith("<|im_start|>system\n# Tools\n")
                .contains(
                        "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Météo\"}}")
                .endsWith("<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void raiseExceptionInATemplateBecomesAClearError() {
        ChatTemplate template = ChatTemplate.of(
                "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok",
                "<s>", "</s>");
        assertThat(template.render(List.of(ChatMessage.user("x")), false)).isEqualTo("ok");
        assertThatThrownBy(() -> template.render(List.of(ChatMessage.assistant("x")), false))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("Conversations must start with a user message");
    }

    @Test
    void pythonStringMethodsBehaveAsInPython() {
        ChatTemplate template = ChatTemplate.of(
                "{{ 'a</think>'.split('</think>')[-1] == '' }}|{{ '\\n\\nx\\n'.strip('\\n') }}|{{ 'abc'.startswith(('x', 'a')) }}"
                        + "|{{ ' a  b '.split() | length }}|{% for x in [1, 2, 3][::-1] %}{{ x }}{% endfor %}|{{ 'abc'[::-1] }}|{{ bos_token }}",
                "<s>", "</s>");
        assertThat(template.render(List.of(), false)).isEqualTo("true|x|true|2|321|cba|<s>");
    }

    @Test
    void tojsonWritesWhatPythonsJsonDumpsWrites() {
        Map<String, Object> parameters = new LinkedHashMap<>();
        parameters.put("type", "object");
        parameters.put("required", List.of("a"));
        parameters.put("properties", Map.of());
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("name", "f");
        tool.put("parameters", parameters);
        tool.put("n", java.util.Arrays.asList(1L, 2.5, true, null, "é\"\n"));
        ChatTemplate template = ChatTemplate.of("{{ tool | tojson }}|{{ tool | tojson(indent=4) }}", null, null);
        String out = template.render(List.of(), false, Map.of("tool", tool));
        // Expected strings are Python 3's json.dumps(tool, ensure_ascii=False[, indent=4]).
        assertThat(out)
                .isEqualTo(
                        "{\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"required\": [\"a\"],"
                                + " \"properties\": {}}, \"n\": [1, 2.5, true, null, \"é\\\"\\n\"]}"
                                + "|{\n    \"name\": \"f\",\n    \"parameters\": {\n        \"type\": \"object\",\n"
                                + "        \"required\": [\n            \"a\"\n        ],\n        \"properties\": {}\n    },\n"
                                + "    \"n\": [\n        1,\n        2.5,\n        true,\n        null,\n        \"é\\\"\\n\"\n    ]\n}");
    }

    @Test
    void namespaceKeywordArgumentsTakeTheWholeExpression() {
        assertThat(ChatTemplate.parenthesizeNamespaceArguments(
                        "{% set ns = namespace(a='x, y(', b=messages|length - 1, c=f(1, 2)) %}"))
                .isEqualTo("{% set ns = namespace(a=('x, y('), b=(messages|length - 1), c=(f(1, 2))) %}");
        ChatTemplate template = ChatTemplate.of(
                "{% set ns = namespace(last=messages|length - 1, s='a,b') %}{{ ns.last }}|{{ ns.s }}", null, null);
        assertThat(template.render(List.of(ChatMessage.user("a"), ChatMessage.user("b")), false))
                .isEqualTo("1|a,b");
    }

    @Test
    void trimBlocksAndLstripBlocksAreOn() {
        ChatTemplate template = ChatTemplate.of("  {% if true %}\nA\n  {% endif %}\nB", null, null);
        assertThat(template.render(List.of(), false)).isEqualTo("A\nB");
    }

    @Test
    void strftimeUsesPythonDirectives() {
        var t = java.time.ZonedDateTime.of(2024, 7, 5, 14, 3, 9, 0, java.time.ZoneOffset.UTC);
        assertThat(ChatTemplate.strftime(t, "%d %b %Y %H:%M:%S %%")).isEqualTo("05 Jul 2024 14:03:09 %");
    }
}
