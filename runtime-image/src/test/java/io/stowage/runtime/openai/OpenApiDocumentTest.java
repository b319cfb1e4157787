package io.stowage.runtime.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.stowage.hostapi.AdminError;
import io.stowage.hostapi.BackendState;
import io.stowage.hostapi.DeviceState;
import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.HostState;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelState;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.hostapi.ReplicaState;
import io.stowage.runtime.admin.AdminRoutes;
import io.stowage.runtime.openapi.OpenApiDocument;
import io.vertx.core.Vertx;
import io.vertx.ext.web.Route;
import io.vertx.ext.web.Router;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The OpenAPI documents against the code: the routes each API registers are exactly the documented operations, the
 * admin schemas have exactly the host-api records' fields, the completion parser reads exactly the documented fields,
 * and a value of a type the document does not allow is refused with a 400 that names the field.
 */
class OpenApiDocumentTest {
    private static final Set<String> HTTP_METHODS = Set.of("get", "put", "post", "delete", "patch", "head", "options");
    /** Documented on port 8080 and served by Quarkus extensions (health, metrics), not by OpenAiRoutes. */
    private static final Set<String> QUARKUS_OPERATIONS =
            Set.of("GET /q/health/live", "GET /q/health/ready", "GET /q/metrics");

    private static Vertx vertx;
    private final JsonNode openAi = OpenApiDocument.openAi().tree();
    private final JsonNode admin = OpenApiDocument.admin().tree();

    @BeforeAll
    static void start() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void stop() {
        vertx.close().toCompletionStage().toCompletableFuture().join();
    }

    private static Set<String> routes(Consumer<Router> register) {
        Router router = Router.router(vertx);
        register.accept(router);
        Set<String> out = new TreeSet<>();
        for (Route r : router.getRoutes()) {
            // a route without methods is a filter (the admin API's token check on /admin/*), not an operation
            if (r.methods() == null || r.methods().isEmpty()) {
                continue;
            }
            r.methods().forEach(m -> out.add(m.name() + " " + r.getPath()));
        }
        return out;
    }

    private static Set<String> operations(JsonNode doc) {
        Set<String> out = new TreeSet<>();
        doc.get("paths")
                .properties()
                .forEach(path -> path.getValue().fieldNames().forEachRemaining(method -> {
                    if (HTTP_METHODS.contains(method)) {
                        out.add(method.toUpperCase(Locale.ROOT) + " " + path.getKey());
                    }
                }));
        return out;
    }

    @Test
    void everyOpenAiRouteIsDocumentedAndEveryDocumentedOperationIsARoute() {
        // the main server's router gets the OpenAI routes (HostService) and this API's document (OpenApiRoutes)
        Set<String> registered = routes(r -> {
            new OpenAiRoutes(null, null, new ObjectMapper(), 1).register(r);
            new io.stowage.runtime.openapi.OpenApiRoutes().routes(r);
        });
        assertThat(registered)
                .contains("GET /v1/models", "POST /v1/completions", "POST /v1/chat/completions", "GET /openapi.json");
        Set<String> documented = new TreeSet<>(operations(openAi));
        assertThat(documented).containsAll(QUARKUS_OPERATIONS);
        documented.removeAll(QUARKUS_OPERATIONS);
        assertThat(documented).isEqualTo(registered);
    }

    @Test
    void everyAdminRouteIsDocumentedAndEveryDocumentedOperationIsARoute() {
        Set<String> registered = routes(r -> new AdminRoutes(null, new ObjectMapper(), "token").register(r));
        assertThat(registered).contains("PUT /admin/v1/assignment", "GET /admin/v1/state", "GET /openapi.yaml");
        assertThat(operations(admin)).isEqualTo(registered);
    }

    @Test
    void adminOperationsNeedTheBearerTokenAndTheDocumentsDoNot() {
        assertThat(admin.at("/components/securitySchemes/bearer/scheme").asText())
                .isEqualTo("bearer");
        assertThat(admin.at("/security/0").has("bearer")).isTrue();
        for (String op : operations(admin)) {
            String[] mp = op.split(" ");
            JsonNode security = admin.get("paths")
                    .get(mp[1])
                    .get(mp[0].toLowerCase(Locale.ROOT))
                    .get("security");
            boolean isDocument = mp[1].startsWith("/openapi.");
            // the documents opt out with "security: []"; every /admin operation inherits the bearer requirement
            assertThat(security != null && security.isEmpty()).as(op).isEqualTo(isDocument);
            if (!isDocument) {
                assertThat(mp[1]).startsWith("/admin/");
            }
        }
    }

    private static Set<String> components(Class<? extends Record> record) {
        Set<String> out = new TreeSet<>();
        Arrays.stream(record.getRecordComponents()).forEach(c -> out.add(c.getName()));
        return out;
    }

    private static Set<String> properties(JsonNode schema) {
        Set<String> out = new TreeSet<>();
        schema.get("properties").fieldNames().forEachRemaining(out::add);
        return out;
    }

    @Test
    void adminSchemasHaveExactlyTheFieldsOfTheHostApiRecords() {
        JsonNode s = admin.at("/components/schemas");
        JsonNode state = s.get("HostState");
        Map<Class<? extends Record>, JsonNode> pairs = new java.util.LinkedHashMap<>();
        pairs.put(HostAssignment.class, s.get("HostAssignment"));
        pairs.put(ModelAssignment.class, s.get("ModelAssignment"));
        pairs.put(ReplicaAssignment.class, s.get("ReplicaAssignment"));
        pairs.put(HostState.class, state);
        pairs.put(DeviceState.class, state.at("/properties/device"));
        pairs.put(BackendState.class, state.at("/properties/device/properties/backend"));
        pairs.put(ModelState.class, state.at("/properties/models/items"));
        pairs.put(ReplicaState.class, state.at("/properties/replicas/items"));
        pairs.put(AdminError.class, s.get("AdminError"));
        pairs.put(io.stowage.hostapi.ScalingPolicy.class, s.get("ScalingPolicy"));
        pairs.put(io.stowage.hostapi.DormantDeployment.class, s.get("DormantDeployment"));
        pairs.put(io.stowage.hostapi.DeploymentScalingState.class, state.at("/properties/scaling/items"));
        pairs.forEach((record, schema) ->
                assertThat(properties(schema)).as(record.getSimpleName()).isEqualTo(components(record)));
    }

    /** An object that records which of its fields the parser asked for. */
    private static final class RecordingNode extends ObjectNode {
        private static final long serialVersionUID = 1L;
        final Set<String> read = new HashSet<>();

        RecordingNode(ObjectNode body) {
            super(JsonNodeFactory.instance);
            setAll(body);
        }

        @Override
        public JsonNode get(String field) {
            read.add(field);
            return super.get(field);
        }

        @Override
        public boolean has(String field) {
            read.add(field);
            return super.has(field);
        }

        @Override
        public JsonNode path(String field) {
            read.add(field);
            return super.path(field);
        }
    }

    private Set<String> documentedFields(String schema) {
        return properties(openAi.at("/components/schemas/" + schema));
    }

    private static ObjectNode body(String json) {
        try {
            return (ObjectNode) new ObjectMapper().readTree(json);
        } catch (Exception e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    private static final String COMPLETION = "{\"model\": \"m\", \"prompt\": \"Once\"}";
    private static final String CHAT = "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}";

    @Test
    void theParserReadsExactlyTheDocumentedFields() {
        // every field present and valid, so that no early refusal hides a later read
        RecordingNode completion = new RecordingNode(body("{\"model\": \"m\", \"prompt\": \"Once\", \"max_tokens\": 4,"
                + " \"temperature\": 0.5, \"top_p\": 0.9, \"frequency_penalty\": 0, \"presence_penalty\": 0,"
                + " \"n\": 1, \"seed\": 3, \"stop\": \".\", \"logprobs\": 2, \"stream\": true,"
                + " \"stream_options\": {\"include_usage\": true}, \"echo\": true}"));
        CompletionRequest.parse(completion, false);
        assertThat(new TreeSet<>(completion.read)).isEqualTo(documentedFields("CompletionRequest"));

        RecordingNode chat = new RecordingNode(body("{\"model\": \"m\", \"messages\": [{\"role\": \"user\","
                + " \"content\": \"Hi\"}], \"max_tokens\": 4, \"temperature\": 0.5, \"top_p\": 0.9,"
                + " \"frequency_penalty\": 0, \"presence_penalty\": 0, \"n\": 1, \"seed\": 3, \"stop\": \".\","
                + " \"logprobs\": true, \"top_logprobs\": 2, \"stream\": true,"
                + " \"stream_options\": {\"include_usage\": true}}"));
        CompletionRequest.parse(chat, true);
        assertThat(new TreeSet<>(chat.read)).isEqualTo(documentedFields("ChatCompletionRequest"));
    }

    @Test
    void aValueOfAnUndocumentedTypeIsRefusedNamingItsField() {
        refusesWrongTypes("CompletionRequest", COMPLETION, false);
        refusesWrongTypes("ChatCompletionRequest", CHAT, true);
    }

    @Test
    void maxTokensIsCheckedEvenWhenMaxCompletionTokensIsTheOneUsed() {
        // found by the API fuzz: an object as max_tokens was accepted because max_completion_tokens was given
        ObjectNode body = body(CHAT);
        body.put("max_completion_tokens", 8);
        body.set("max_tokens", JsonNodeFactory.instance.objectNode().put("x", 1));
        ApiException e = catchThrowableOfType(ApiException.class, () -> CompletionRequest.parse(body, true));
        assertThat(e).isNotNull();
        assertThat(e.param()).isEqualTo("max_tokens");
        body.put("max_tokens", 0);
        assertThat(catchThrowableOfType(ApiException.class, () -> CompletionRequest.parse(body, true))
                        .getMessage())
                .isEqualTo("max_tokens must be >= 1, got 0");
        body.put("max_tokens", 100);
        assertThat(CompletionRequest.parse(body, true).maxTokens()).isEqualTo(8);
    }

    private void refusesWrongTypes(String schema, String valid, boolean chat) {
        JsonNode props = openAi.at("/components/schemas/" + schema + "/properties");
        List<JsonNode> candidates = List.of(
                JsonNodeFactory.instance.textNode("x"),
                JsonNodeFactory.instance.objectNode(),
                JsonNodeFactory.instance.arrayNode(),
                JsonNodeFactory.instance.booleanNode(true),
                JsonNodeFactory.instance.numberNode(0.5));
        for (Iterator<String> it = props.fieldNames(); it.hasNext(); ) {
            String field = it.next();
            Set<String> allowed = types(props.get(field));
            assertThat(allowed).as(schema + "." + field + " has a type").isNotEmpty();
            JsonNode wrong = candidates.stream()
                    .filter(c -> !allowed.contains(typeOf(c)))
                    .findFirst()
                    .orElseThrow();
            ObjectNode body = body(valid);
            body.set(field, wrong);
            ApiException e = catchThrowableOfType(ApiException.class, () -> CompletionRequest.parse(body, chat));
            assertThat(e)
                    .as(schema + "." + field + " = " + wrong + " is refused")
                    .isNotNull();
            assertThat(e.status()).isEqualTo(400);
            assertThat(e.param()).as(e.getMessage()).isEqualTo(field);
            assertThat(e.getMessage()).contains(field);
        }
    }

    private static String typeOf(JsonNode v) {
        if (v.isNull()) {
            return "null";
        }
        return v.isTextual()
                ? "string"
                : v.isObject() ? "object" : v.isArray() ? "array" : v.isBoolean() ? "boolean" : "number";
    }

    /** The JSON types a schema allows, following $ref, allOf, oneOf, anyOf and const. */
    private Set<String> types(JsonNode schema) {
        Set<String> out = new TreeSet<>();
        if (schema.has("$ref")) {
            return types(openAi.at(schema.get("$ref").asText().substring(1)));
        }
        JsonNode type = schema.get("type");
        if (type != null) {
            (type.isArray() ? type : JsonNodeFactory.instance.arrayNode().add(type)).forEach(t -> out.add(t.asText()));
        }
        if (schema.has("const")) {
            out.add(typeOf(schema.get("const")));
        }
        for (String combinator : List.of("oneOf", "anyOf", "allOf")) {
            if (schema.has(combinator)) {
                schema.get(combinator).forEach(s -> out.addAll(types(s)));
            }
        }
        return out;
    }
}
