package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.runtime.engine.SyntheticGguf;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Local mode's start on a real host: a model whose header plans fine but that the engine refuses to load is a warning
 * while another model serves, and the one-line failure when nothing serves.
 */
class LocalModeStartTest {
    private static final Path GOOD = Path.of("../examples/local/models/stories260K-q8_0.gguf")
            .toAbsolutePath()
            .normalize();

    @TempDir
    Path dir;

    private Path broken;
    private Host host;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @BeforeEach
    void setUp() throws IOException {
        // YaRN-scaled RoPE: the header gives every size the planner needs; the engine refuses it (no wrong text).
        SyntheticGguf yarn = new SyntheticGguf();
        yarn.ropeScalingType = "yarn";
        yarn.ropeScalingFactor = 4f;
        broken = Files.write(dir.resolve("yarn.gguf"), yarn.build());
        Path cache = Files.createDirectories(dir.resolve("cache"));
        host = new Host(
                new HostSettings("cpu", "test/cpu", 1L << 30, 512L << 20, cache, 1, 64, 8, 2),
                new ModelFetcher(cache, Map.of()));
    }

    @AfterEach
    void tearDown() {
        host.close();
    }

    @Test
    void aModelThatCannotLoadEndsTheStartInOneLineWithItsReason() throws IOException {
        Path manifests = Files.createDirectories(dir.resolve("manifests"));
        Files.writeString(manifests.resolve("m.yaml"), manifest("broken", broken));

        assertThatThrownBy(() -> start(manifests))
                .isInstanceOfSatisfying(
                        StartupException.class, e -> assertThat(e.exitCode()).isEqualTo(StartupException.FAILED))
                .hasMessageStartingWith(
                        "nothing to serve: no model could be loaded (model " + broken + " failed to load: ")
                .hasMessageContaining("rope.scaling.type 'yarn'")
                .hasMessageNotContaining("\n");
        assertThat(host.servedModelNames()).isEmpty();
        assertThat(out.toString(StandardCharsets.UTF_8))
                .contains("default/broken")
                .doesNotContain("Measured");
    }

    @Test
    void aModelThatCannotLoadBesideOneThatDoesIsAWarningAndTheOtherServes() throws IOException {
        Path manifests = Files.createDirectories(dir.resolve("manifests"));
        Files.writeString(manifests.resolve("m.yaml"), manifest("broken", broken) + "---\n" + manifest("good", GOOD));

        start(manifests);

        assertThat(host.servedModelNames()).containsExactly("good");
        assertThat(err.toString(StandardCharsets.UTF_8))
                .contains("warning: model " + broken + " failed to load: ")
                .doesNotContain("good");
        assertThat(out.toString(StandardCharsets.UTF_8)).contains("Measured: weights");
    }

    private void start(Path manifests) {
        LocalMode.start(
                manifests,
                host,
                "test",
                new ModelFetcher(host.settings().cacheDir(), Map.of()),
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private static String manifest(String name, Path model) {
        return """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata:
                  name: %s
                spec:
                  model:
                    uri: %s
                  context:
                    maxTokens: 64
                    maxSequences: 1
                  placement:
                    device: cpu
                """.formatted(name, model);
    }
}
