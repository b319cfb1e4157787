package io.stowage.runtime.openai;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.runtime.chat.ChatMessage;
import io.stowage.runtime.engine.SamplerParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The parameters of a {@code /v1/completions} or {@code /v1/chat/completions} body, checked field by field: a
 * wrong type or an out-of-range value names the field, the value and the allowed range.
 */
record CompletionRequest(
        String model,
        boolean chat,
        String prompt,
        int[] promptTokens,
        List<ChatMessage> messages,
        Integer maxTokens,
        SamplerParams sampler,
        List<String> stop,
        int topLogprobs,
        boolean stream,
        boolean includeUsage,
        boolean echo) {

    static final int MAX_LOGPROBS = 20;
    static final int MAX_STOP = 4;
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    static CompletionRequest parse(JsonNode body, boolean chat) {
        if (body == null || !body.isObject()) {
            throw ApiException.invalid(null, "the request body must be a JSON object");
        }
        String model = text(body, "model", true);
        String prompt = null;
        int[] promptTokens = null;
        List<ChatMessage> messages = null;
        if (chat) {
            messages = messages(body.get("messages"));
        } else {
            JsonNode p = body.get("prompt");
            if (p == null || p.isNull()) {
                throw ApiException.invalid("prompt", "prompt is required");
            }
            if (p.isTextual()) {
                prompt = p.asText();
            } else if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
                prompt = p.get(0).asText();
            } else if (p.isArray() && !p.isEmpty() && p.get(0).isInt()) {
                promptTokens = new int[p.size()];
                for (int i = 0; i < p.size(); i++) {
                    if (!p.get(i).isInt() || p.get(i).asInt() < 0) {
                        throw ApiException.invalid(
                                "prompt", "prompt[" + i + "] must be a token id >= 0, got " + shown(p.get(i)));
                    }
                    promptTokens[i] = p.get(i).asInt();
                }
            } else {
                throw ApiException.invalid(
                        "prompt",
                        "prompt must be a string, an array of one string, or an array of token ids"
                                + " (batches of several prompts are not supported)");
            }
        }
        // Both are checked; in chat max_completion_tokens, when given, is the one used.
        Integer maxTokens = atLeastOne(body, "max_tokens");
        Integer maxCompletionTokens = chat ? atLeastOne(body, "max_completion_tokens") : null;
        if (maxCompletionTokens != null) {
            maxTokens = maxCompletionTokens;
        }
        if (!chat && maxTokens == null) {
            maxTokens = 16; // OpenAI's default for completions; chat defaults to the rest of the context
        }
        // the sampler takes 32-bit floats: the checks are on the values it will use
        float temperature = float32(body, "temperature", 1f, 0f, false, 2f);
        float topP = float32(body, "top_p", 1f, 0f, true, 1f);
        number(body, "frequency_penalty", 0, -2, 2);
        number(body, "presence_penalty", 0, -2, 2);
        Integer n = integer(body, "n");
        if (n != null && n != 1) {
            throw ApiException.invalid("n", "n must be 1 (one choice per request), got " + n);
        }
        JsonNode seedNode = body.get("seed");
        long seed;
        if (seedNode == null || seedNode.isNull()) {
            seed = ThreadLocalRandom.current().nextLong();
        } else if (seedNode.isIntegralNumber() && seedNode.canConvertToLong()) {
            seed = seedNode.asLong();
        } else {
            throw ApiException.invalid("seed", "seed must be an integer, got " + shown(seedNode));
        }
        // below the smallest normal float, 1/temperature overflows: that is greedy decoding, the limit as t -> 0
        SamplerParams sampler = temperature < Float.MIN_NORMAL
                ? SamplerParams.greedy()
                : new SamplerParams(temperature, 0, topP, 0f, 1f, 0, seed);
        List<String> stop = stop(body.get("stop"));
        int topLogprobs = -1;
        if (chat) {
            JsonNode lp = body.get("logprobs");
            boolean want = false;
            if (lp != null && !lp.isNull()) {
                if (!lp.isBoolean()) {
                    throw ApiException.invalid("logprobs", "logprobs must be true or false, got " + shown(lp));
                }
                want = lp.asBoolean();
            }
            Integer top = integer(body, "top_logprobs");
            if (top != null && (top < 0 || top > MAX_LOGPROBS)) {
                throw ApiException.invalid(
                        "top_logprobs", "top_logprobs must be in 0.." + MAX_LOGPROBS + ", got " + top);
            }
            if (top != null && !want) {
                throw ApiException.invalid("top_logprobs", "top_logprobs needs logprobs: true");
            }
            topLogprobs = want ? (top == null ? 0 : top) : -1;
        } else {
            Integer lp = integer(body, "logprobs");
            if (lp != null && (lp < 0 || lp > MAX_LOGPROBS)) {
                throw ApiException.invalid("logprobs", "logprobs must be in 0.." + MAX_LOGPROBS + ", got " + shown(lp));
            }
            topLogprobs = lp == null ? -1 : lp;
        }
        boolean stream = bool(body, "stream");
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) {
                throw ApiException.invalid("stream_options", "stream_options must be an object");
            }
            includeUsage = bool(so, "include_usage");
        }
        boolean echo = !chat && bool(body, "echo");
        return new CompletionRequest(
                model,
                chat,
                prompt,
                promptTokens,
                messages,
                maxTokens,
                sampler,
                stop,
                topLogprobs,
                stream,
                includeUsage,
                echo);
    }

    private static List<ChatMessage> messages(JsonNode node) {
        if (node == null || node.isNull()) {
            throw ApiException.invalid("messages", "messages is required");
        }
        if (!node.isArray() || node.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array of {role, content}");
        }
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            JsonNode m = node.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) {
                throw ApiException.invalid(where, where + " must be an object");
            }
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual() || !ROLES.contains(role.asText())) {
                throw ApiException.invalid(
                        where + ".role", where + ".role must be one of " + ROLES + ", got " + shown(role));
            }
            JsonNode content = m.get("content");
            String text;
            if (content == null || content.isNull()) {
                text = "";
            } else if (content.isTextual()) {
                text = content.asText();
            } else if (content.isArray()) {
                StringBuilder sb = new StringBuilder();
                for (JsonNode part : content) {
                    if (!"text".equals(part.path("type").asText())
                            || !part.path("text").isTextual()) {
                        throw ApiException.invalid(
                                where + ".content",
                                where + ".content: only text parts ({type: text, text}) are supported");
                    }
                    sb.append(part.get("text").asText());
                }
                text = sb.toString();
            } else {
                throw ApiException.invalid(
                        where + ".content", where + ".content must be a string or an array of text parts");
            }
            String r = role.asText().equals("developer") ? "system" : role.asText();
            out.add(new ChatMessage(r, text));
        }
        return out;
    }

    private static List<String> stop(JsonNode node) {
        if (node == null || node.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (node.isTextual()) {
            out.add(node.asText());
        } else if (node.isArray()) {
            for (JsonNode s : node) {
                if (!s.isTextual()) {
                    throw ApiException.invalid(
                            "stop", "stop must be a string or an array of strings, got " + shown(node));
                }
                out.add(s.asText());
            }
        } else {
            throw ApiException.invalid("stop", "stop must be a string or an array of strings, got " + shown(node));
        }
        if (out.size() > MAX_STOP) {
            throw ApiException.invalid("stop", "stop takes at most " + MAX_STOP + " sequences, got " + out.size());
        }
        for (String s : out) {
            if (s.isEmpty()) {
                throw ApiException.invalid("stop", "stop sequences must not be empty");
            }
        }
        return out;
    }

    private static String text(JsonNode body, String field, boolean required) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            if (required) {
                throw ApiException.invalid(field, field + " is required");
            }
            return null;
        }
        if (!v.isTextual()) {
            throw ApiException.invalid(field, field + " must be a string, got " + shown(v));
        }
        return v.asText();
    }

    private static Integer atLeastOne(JsonNode body, String field) {
        Integer v = integer(body, field);
        if (v != null && v < 1) {
            throw ApiException.invalid(field, field + " must be >= 1, got " + v);
        }
        return v;
    }

    private static Integer integer(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw ApiException.invalid(field, field + " must be an integer, got " + shown(v));
        }
        return v.asInt();
    }

    /**
     * A number in [min, max] (or (min, max] when {@code minExclusive}) as the 32-bit float it becomes: {@code top_p:
     * 5e-324} is a positive double but 0 as a float, and is refused.
     */
    private static float float32(JsonNode body, String field, float dflt, float min, boolean minExclusive, float max) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        float f = v.isNumber() ? (float) v.asDouble() : Float.NaN;
        if (!(minExclusive ? f > min : f >= min) || !(f <= max)) {
            String range = (minExclusive ? "(" : "[") + min + ", " + max + "]";
            String asFloat =
                    v.isNumber() && !Float.isNaN(f) && f != v.asDouble() ? " (" + f + " as a 32-bit float)" : "";
            throw ApiException.invalid(field, field + " must be a number in " + range + ", got " + shown(v) + asFloat);
        }
        return f;
    }

    private static double number(JsonNode body, String field, double dflt, double min, double max) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isNumber() || !(v.asDouble() >= min && v.asDouble() <= max)) {
            throw ApiException.invalid(
                    field, field + " must be a number in [" + min + ", " + max + "], got " + shown(v));
        }
        return v.asDouble();
    }

    /** A value as the client sent it, cut short: an error message never echoes a whole request body. */
    static String shown(Object value) {
        String s = String.valueOf(value);
        return s.length() <= 80 ? s : s.substring(0, Character.isHighSurrogate(s.charAt(79)) ? 79 : 80) + "...";
    }

    private static boolean bool(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) {
            return false;
        }
        if (!v.isBoolean()) {
            throw ApiException.invalid(field, field + " must be true or false, got " + shown(v));
        }
        return v.asBoolean();
    }
}
