package io.stowage.runtime.openapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.ext.web.Router;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * One of the host's OpenAPI documents (hand-written YAML under {@code openapi/} in the jar), served on its API's own
 * server as {@code GET /openapi.json} and {@code GET /openapi.yaml}, without authentication on either port: the
 * documents describe the APIs, the same on every host of a version, and say nothing about the host itself.
 */
public final class OpenApiDocument {
    public static final String JSON_PATH = "/openapi.json";
    public static final String YAML_PATH = "/openapi.yaml";
    static final String OPENAI_RESOURCE = "openapi/openai-api.yaml";
    static final String ADMIN_RESOURCE = "openapi/admin-api.yaml";

    private final String resource;
    private final String yaml;
    private final JsonNode tree;
    private final String json;

    private OpenApiDocument(String resource, String yaml, JsonNode tree) {
        this.resource = resource;
        this.yaml = yaml;
        this.tree = tree;
        this.json = tree.toString();
    }

    // Parsed once per process, on first use: the documents never change while it runs.
    private static final class OpenAi {
        static final OpenApiDocument DOC = load(OPENAI_RESOURCE);
    }

    private static final class Admin {
        static final OpenApiDocument DOC = load(ADMIN_RESOURCE);
    }

    /** The document of the OpenAI-compatible API (port 8080). */
    public static OpenApiDocument openAi() {
        return OpenAi.DOC;
    }

    /** The document of the admin API (port 8081). */
    public static OpenApiDocument admin() {
        return Admin.DOC;
    }

    static OpenApiDocument load(String resource) {
        String text;
        try (InputStream in = OpenApiDocument.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("the OpenAPI document " + resource
                        + " is missing from the runtime's class path; the jar was built without its resources");
            }
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the OpenAPI document " + resource + ": " + e.getMessage(), e);
        }
        Object parsed;
        try {
            parsed = new Yaml(new SafeConstructor(new LoaderOptions())).load(text);
        } catch (RuntimeException e) {
            throw new IllegalStateException(
                    "the OpenAPI document " + resource + " is not valid YAML: " + e.getMessage(), e);
        }
        JsonNode tree = new ObjectMapper().valueToTree(parsed);
        if (tree == null
                || !tree.path("openapi").isTextual()
                || !tree.path("paths").isObject()) {
            throw new IllegalStateException(
                    "the OpenAPI document " + resource + " has no openapi version or no paths object");
        }
        return new OpenApiDocument(resource, text, tree);
    }

    /** Adds {@code GET /openapi.json} and {@code GET /openapi.yaml} to a router. */
    public void register(Router router) {
        router.get(JSON_PATH)
                .handler(rc -> rc.response()
                        .putHeader("Content-Type", "application/json")
                        .end(json));
        router.get(YAML_PATH)
                .handler(rc -> rc.response()
                        .putHeader("Content-Type", "application/yaml; charset=utf-8")
                        .end(yaml));
    }

    /** The document as a JSON tree (a copy: callers may change it). */
    public JsonNode tree() {
        return tree.deepCopy();
    }

    /** The YAML text as shipped. */
    public String yaml() {
        return yaml;
    }

    @Override
    public String toString() {
        return resource;
    }
}
