package io.stowage.runtime.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Objects;

/** The stories260K test models and golden vectors from src/test/resources/models. */
public final class TestModels {
    private TestModels() {}

    public static Path path(String name) {
        try {
            return Path.of(Objects.requireNonNull(TestModels.class.getResource("/models/" + name), name)
                    .toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path f32() {
        return path("stories260K-f32.gguf");
    }

    public static Path q8() {
        return path("stories260K-q8_0.gguf");
    }

    public static JsonNode golden(String name) {
        try (InputStream in = TestModels.class.getResourceAsStream("/models/" + name)) {
            return new ObjectMapper().readTree(Objects.requireNonNull(in, name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = array.get(i).asInt();
        }
        return r;
    }
}
