package io.stowage.runtime.route;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.ManifestSet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The router's table follows its manifests: a change is read, a broken one keeps the table before. */
class RouteTableWatcherTest {
    @TempDir
    Path dir;

    private static String route(String name, String... tiers) {
        StringBuilder sb = new StringBuilder("""
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmRoute
                metadata: {name: %s, namespace: team-a}
                spec:
                  tiers:
                """.formatted(name));
        for (String t : tiers) {
            sb.append("    - deployment: ").append(t).append('\n');
        }
        return sb.toString();
    }

    private RouteTable load() throws Exception {
        ManifestSet set = ManifestReader.read(dir);
        return RouteTable.remote(set.routes(), set.deployments(), Map.of());
    }

    @Test
    void aChangedFileReplacesTheTableAndABrokenOneKeepsThePrevious() throws Exception {
        Path file = dir.resolve("routes.yaml");
        Files.writeString(file, route("chat", "small", "large"));
        AtomicReference<RouteTable> table = new AtomicReference<>(load());
        try (RouteTableWatcher w = new RouteTableWatcher(dir, this::load, table::set, Duration.ofHours(1))) {
            assertThat(w.check()).as("nothing changed").isFalse();

            Files.writeString(file, route("chat", "small", "large") + route("code", "large"));
            assertThat(w.check()).isTrue();
            assertThat(table.get().routes()).extracting(RouteTable.Route::name).containsExactly("chat", "code");
            assertThat(table.get().get("code").tiers().getFirst().baseUri().toString())
                    .isEqualTo("http://large.team-a.svc:80");

            Files.writeString(file, "apiVersion: stowage.io/v1alpha1\nkind: LlmRoute\nmetadata: {name: bad}\n");
            assertThat(w.check()).as("a route without spec does not read").isFalse();
            assertThat(table.get().routes()).extracting(RouteTable.Route::name).containsExactly("chat", "code");

            Files.delete(file);
            assertThat(w.check()).as("no routes at all is a table too").isTrue();
            assertThat(table.get().isEmpty()).isTrue();
        }
    }
}
