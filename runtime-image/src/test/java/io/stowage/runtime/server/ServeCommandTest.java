package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.junit.main.LaunchResult;
import io.quarkus.test.junit.main.QuarkusMainLauncher;
import io.quarkus.test.junit.main.QuarkusMainTest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The serve command as {@code ./stowage serve} runs it (ServerMain's main, Quarkus included): each startup failure is
 * one line on stderr that says what and why, with plan's exit codes, and nothing claims to serve.
 */
@QuarkusMainTest
@TestProfile(ServeCommandTest.SmallBudget.class)
class ServeCommandTest {
    private static final Path MODEL = Path.of("../examples/local/models/stories260K-q8_0.gguf")
            .toAbsolutePath()
            .normalize();

    /** A budget below the host's own overhead on a CPU (192 MiB): every replica is refused, on any machine. */
    public static class SmallBudget implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("stowage.budget-bytes", Long.toString(64L << 20));
        }
    }

    @TempDir
    Path dir;

    @Test
    void aKindTypoEndsInOneLineAfterTheHintPlanGives(QuarkusMainLauncher launcher) throws IOException {
        Files.writeString(dir.resolve("chat.yaml"), manifest("LLMDeployment", MODEL));

        LaunchResult r = launcher.launch("serve", "-f", dir.toString());

        assertThat(r.exitCode()).isEqualTo(1);
        assertThat(r.getErrorStream())
                .contains("warning: " + dir.resolve("chat.yaml") + " doc 1: skipped: kind LLMDeployment is not"
                        + " LlmDeployment");
        assertThat(failureLine(r))
                .isEqualTo("stowage serve: " + dir + ": no LlmDeployment to plan (expected documents with apiVersion:"
                        + " stowage.io/v1alpha1 and kind: LlmDeployment)");
        assertNothingServedAndNoStackTrace(r);
    }

    @Test
    void aMissingModelFileEndsInOneLineNamingTheFieldAndTheFile(QuarkusMainLauncher launcher) throws IOException {
        Path missing = dir.resolve("nope.gguf");
        Files.writeString(dir.resolve("chat.yaml"), manifest("LlmDeployment", missing));

        LaunchResult r = launcher.launch("serve", "-f", dir.toString());

        assertThat(r.exitCode()).isEqualTo(1);
        assertThat(failureLine(r))
                .startsWith("stowage serve: " + dir.resolve("chat.yaml") + " doc 1: spec.model.uri: ")
                .contains(missing.toString());
        assertNothingServedAndNoStackTrace(r);
    }

    @Test
    void aMemoryFractionAboveOneIsAUsageError(QuarkusMainLauncher launcher) throws IOException {
        Files.writeString(dir.resolve("chat.yaml"), manifest("LlmDeployment", MODEL));

        LaunchResult r = launcher.launch("serve", "-f", dir.toString(), "--memory-fraction", "2");

        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(failureLine(r))
                .isEqualTo("stowage serve: --memory-fraction must be a share of RAM in (0, 1], e.g. 0.5, got '2'");
        assertNothingServedAndNoStackTrace(r);
    }

    @Test
    void everyReplicaRefusedExitsThreeAsPlanDoesWithTheReason(QuarkusMainLauncher launcher) throws IOException {
        Files.writeString(dir.resolve("chat.yaml"), manifest("LlmDeployment", MODEL));

        LaunchResult r = launcher.launch("serve", "-f", dir.toString());

        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.getOutput()).contains("0/1").contains("refused default/chat#0: needs");
        assertThat(failureLine(r))
                .startsWith("stowage serve: nothing to serve: the only replica was refused on this machine's budget of"
                        + " 64.00 MiB")
                .contains("default/chat#0: needs")
                .contains("--memory-fraction");
        assertNothingServedAndNoStackTrace(r);
    }

    @Test
    void aTakenPortFailsBeforeAnyModelLoads(QuarkusMainLauncher launcher) throws IOException {
        Files.writeString(dir.resolve("chat.yaml"), manifest("LlmDeployment", MODEL));
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            // Under test Quarkus listens on quarkus.http.test-port; --port sets quarkus.http.port, its production twin.
            System.setProperty("quarkus.http.test-port", Integer.toString(taken.getLocalPort()));
            LaunchResult r;
            try {
                r = launcher.launch("serve", "-f", dir.toString());
            } finally {
                System.clearProperty("quarkus.http.test-port");
            }

            assertThat(r.exitCode()).isEqualTo(1);
            assertThat(failureLine(r))
                    .isEqualTo("stowage serve: cannot listen on 127.0.0.1:" + taken.getLocalPort() + ": the port is in"
                            + " use by another process; stop it, or choose another port with --port P");
            assertThat(r.getOutput()).doesNotContain("Placement on");
            assertNothingServedAndNoStackTrace(r);
        }
    }

    @Test
    void serveWithoutManifestsIsAUsageErrorNotTheClusterHost(QuarkusMainLauncher launcher) {
        LaunchResult r = launcher.launch("serve");

        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(failureLine(r)).startsWith("stowage serve: -f DIR is required");
        assertThat(r.getOutput()).doesNotContain("waiting for assignments");
        assertNothingServedAndNoStackTrace(r);
    }

    @Test
    void serveHelpShowsServeAlone(QuarkusMainLauncher launcher) {
        LaunchResult r = launcher.launch("serve", "--help");

        assertThat(r.exitCode()).isEqualTo(0);
        assertThat(r.getOutput()).contains("usage: ./stowage serve -f DIR").doesNotContain("quarkus-run.jar");
    }

    private static String manifest(String kind, Path model) {
        return """
                apiVersion: stowage.io/v1alpha1
                kind: %s
                metadata:
                  name: chat
                spec:
                  model:
                    uri: %s
                  replicas: 1
                  context:
                    maxTokens: 256
                    maxSequences: 2
                  placement:
                    device: cpu
                """.formatted(kind, model);
    }

    /** The one line a failure prints (warnings may come before it); fails unless there is exactly one. */
    private static String failureLine(LaunchResult r) {
        List<String> lines = lines(r).filter(l -> l.startsWith("stowage ")).toList();
        assertThat(lines).as("stderr: %s", r.getErrorOutput()).hasSize(1);
        return lines.getFirst();
    }

    private static void assertNothingServedAndNoStackTrace(LaunchResult r) {
        assertThat(lines(r))
                .noneMatch(l -> l.startsWith("Serving"))
                .noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by:"))
                .noneMatch(l -> l.contains("ERROR"));
    }

    private static Stream<String> lines(LaunchResult r) {
        return Stream.concat(r.getOutputStream().stream(), r.getErrorStream().stream());
    }
}
