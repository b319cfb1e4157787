package io.stowage.operator.helm;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import org.luaj.vm2.Globals;
import org.luaj.vm2.LuaTable;
import org.luaj.vm2.LuaValue;
import org.luaj.vm2.lib.jse.JsePlatform;

/**
 * Runs the chart's Argo CD health check ({@code helm/stowage/argocd/health.lua}) on a resource, the way Argo CD
 * does: the object as a Lua table in the global {@code obj}, the script returning {@code {status, message}}.
 */
public final class ArgoHealth {
    /** What the script returned. */
    public record Health(String status, String message) {}

    private static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();

    private ArgoHealth() {}

    public static Path script() {
        return Path.of(System.getProperty("repo.root", ".."))
                .toAbsolutePath()
                .normalize()
                .resolve("helm/stowage/argocd/health.lua");
    }

    /** The health of {@code resource} (any object Jackson can serialise, e.g. an LlmDeployment). */
    public static Health of(Object resource) throws IOException {
        JsonNode json = SERIALIZATION.convertValue(resource, JsonNode.class);
        Globals g = JsePlatform.standardGlobals();
        g.set("obj", lua(json));
        LuaValue hs = g.load(Files.readString(script()), "health.lua").call();
        return new Health(
                hs.get("status").isnil() ? null : hs.get("status").tojstring(),
                hs.get("message").isnil() ? null : hs.get("message").tojstring());
    }

    private static LuaValue lua(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return LuaValue.NIL;
        }
        if (n.isObject()) {
            LuaTable t = new LuaTable();
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                t.set(e.getKey(), lua(e.getValue()));
            }
            return t;
        }
        if (n.isArray()) {
            LuaTable t = new LuaTable();
            for (int i = 0; i < n.size(); i++) {
                t.set(i + 1, lua(n.get(i)));
            }
            return t;
        }
        if (n.isBoolean()) {
            return LuaValue.valueOf(n.booleanValue());
        }
        if (n.isIntegralNumber()) {
            return org.luaj.vm2.LuaInteger.valueOf(n.longValue());
        }
        if (n.isNumber()) {
            return LuaValue.valueOf(n.doubleValue());
        }
        return LuaValue.valueOf(n.asText());
    }
}
