package io.stowage.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Loads the checked-in tokenizer GGUFs and vector files once per test run. */
public final class TestTokenizers {
    public static final String LLAMA3 = "/tokenizers/llama3/llama3-vocab.gguf";
    public static final String QWEN3 = "/tokenizers/qwen3/qwen3-vocab.gguf";
    public static final String LLAMA_SPM = "/tokenizers/llama-cpp-vocab/ggml-vocab-llama-spm.gguf";
    public static final String STORIES = "/tokenizers/stories260K/stories260K-f32.gguf";

    private static final Map<String, GgufFile> FILES = new ConcurrentHashMap<>();
    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestTokenizers() {}

    public static GgufFile gguf(String resource) {
        return FILES.computeIfAbsent(resource, r -> GgufReader.readBytes(bytes(r)));
    }

    public static TokenizerVocabulary vocabulary(String resource) {
        return TokenizerVocabulary.fromGguf(gguf(resource));
    }

    public static Tokenizer tokenizer(String resource) {
        return TOKENIZERS.computeIfAbsent(resource, r -> Tokenizer.create(vocabulary(r)));
    }

    public static byte[] bytes(String resource) {
        try (InputStream in = TestTokenizers.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("missing test resource " + resource);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static String text(String resource) {
        return new String(bytes(resource), StandardCharsets.UTF_8);
    }

    public static List<JsonNode> jsonLines(String resource) {
        List<JsonNode> out = new ArrayList<>();
        for (String line : text(resource).split("\n")) {
            if (!line.isBlank()) {
                try {
                    out.add(JSON.readTree(line));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }
        return out;
    }

    public static int[] ids(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = array.get(i).asInt();
        }
        return r;
    }

    /** llama.cpp's .inp/.out pair: inputs split on the separator line, one line of ids per input. */
    public record VocabCase(int index, String input, int[] expected) {
        @Override
        public String toString() {
            return "#" + index + " " + JSON.valueToTree(input);
        }
    }

    public static List<VocabCase> llamaCppCases(String base) {
        String inp = text(base + ".inp");
        List<String> inputs = new ArrayList<>(Arrays.asList(inp.split("\n__ggml_vocab_test__\n", -1)));
        if (inputs.get(inputs.size() - 1).isEmpty()) {
            inputs.remove(inputs.size() - 1);
        }
        String[] lines = text(base + ".out").split("\n", -1);
        List<VocabCase> cases = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            String line = lines[i].trim();
            int[] ids = line.isEmpty()
                    ? new int[0]
                    : Arrays.stream(line.split("\\s+"))
                            .mapToInt(Integer::parseInt)
                            .toArray();
            cases.add(new VocabCase(i, inputs.get(i), ids));
        }
        return cases;
    }
}
