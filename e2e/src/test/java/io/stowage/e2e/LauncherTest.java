package io.stowage.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./stowage} launcher as a user meets it: its refusals (one line, exit 2), the staleness check that decides
 * whether a command builds first, and a failed build. Builds run against a copy of the launcher in a temporary tree
 * with a stand-in {@code mvnw}, so nothing here builds the project or touches the checkout.
 */
class LauncherTest {
    private static final Instant SOURCES = Instant.parse("2026-01-01T00:00:00Z");
    private static final Instant JAR = Instant.parse("2026-01-02T00:00:00Z");
    private static final Instant LATER = Instant.parse("2026-01-03T00:00:00Z");

    private final Path root =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();

    @TempDir
    Path tree;

    record Result(int code, String out, String err) {
        List<String> errLines() {
            return err.lines().toList();
        }
    }

    @BeforeEach
    void copyTheLauncherIntoAFakeCheckout() throws IOException {
        Files.createDirectories(tree.resolve(".ci"));
        Files.copy(root.resolve("stowage"), tree.resolve("stowage"));
        Files.copy(root.resolve(".ci/jdk.sh"), tree.resolve(".ci/jdk.sh"));
        source("pom.xml", "<project/>");
        for (String m : List.of("placement", "host-api", "runtime-image")) {
            source(m + "/pom.xml", "<project/>");
            source(m + "/src/main/java/io/stowage/Some" + m.replace("-", "") + ".java", "class X {}");
        }
        source("runtime-image/native/CMakeLists.txt", "project(stw)");
        source("runtime-image/native/src/core/engine.cpp", "int x;");
        Path jar = tree.resolve("runtime-image/target/runtime-image.jar");
        Files.createDirectories(jar.getParent());
        Files.writeString(jar, "jar");
        Files.setLastModifiedTime(jar, FileTime.from(JAR));
    }

    @Test
    void anUnknownCommandIsOneLineWithExitTwo() throws Exception {
        Result r = stowage(root, Map.of(), "frobnicate", "--json");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.out()).isEmpty();
        assertThat(r.errLines()).hasSize(1);
        assertThat(r.err())
                .contains("unknown command 'frobnicate'")
                .contains("bench-engine")
                .contains("test");
    }

    @Test
    void testClusterWithoutItsPrerequisitesIsOneLineWithExitTwoAndBuildsNothing() throws Exception {
        // Without sbin on PATH, dockerd, iptables and debootstrap are not found (and a non-root user is refused
        // first): either way one line that says what is missing, before anything is built or started.
        for (String[] args :
                List.of(new String[] {"test", "--cluster"}, new String[] {"test", "--cluster", "1", "2"})) {
            Result r = stowage(tree, Map.of("PATH", "/usr/bin:/bin"), args);
            assertThat(r.code()).as(String.join(" ", args)).isEqualTo(2);
            assertThat(r.out()).isEmpty();
            assertThat(r.errLines()).hasSize(1);
            assertThat(r.err()).containsAnyOf("test --cluster needs root", "test --cluster needs ");
            assertThat(r.err()).doesNotContain("building");
        }
    }

    @Test
    void testHelpSaysExtraArgumentsGoToMaven() throws Exception {
        Result r = stowage(root, Map.of(), "test", "--help");
        assertThat(r.code()).isZero();
        assertThat(r.out())
                .contains("./mvnw -B -ntp verify")
                .contains("Extra arguments go to Maven")
                .contains("./stowage test --cluster [SCENARIO...]");
    }

    @Test
    void buildCheckNeedsOneCommandName() throws Exception {
        Result r = stowage(tree, Map.of(), "--build-check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.errLines()).hasSize(1);
        assertThat(r.err()).contains("--build-check takes one command name");
    }

    @Test
    void aJarNewerThanItsSourcesIsUpToDate() throws Exception {
        assertThat(buildCheck("inspect")).isEqualTo("runtime-image is up to date");
    }

    /** npm install in runtime-image/bench, CMake's build tree, the bench cache and test sources are not the jar's sources. */
    @Test
    void nodeModulesBuildTreesAndTestSourcesDoNotMakeTheJarStale() throws Exception {
        touch("runtime-image/bench/node_modules/node-llama-cpp/package.json");
        touch("runtime-image/bench/node_modules/.bin/tool");
        touch("runtime-image/native/build/CMakeCache.txt");
        touch("runtime-image/src/test/java/io/stowage/SomeTest.java");
        touch(".stowage/bench/llama-1.1b-random-v2-q8_0.gguf");
        touch(".stowage/build-runtime-image.log");
        touch("runtime-image/target/classes/io/stowage/X.class");
        assertThat(buildCheck("inspect")).isEqualTo("runtime-image is up to date");
        assertThat(buildCheck("bench-engine")).isEqualTo("runtime-image is up to date");
    }

    @Test
    void aChangedSourceOfTheModuleOrOfAModuleItUsesMakesTheJarStale() throws Exception {
        for (String changed : List.of(
                "runtime-image/native/src/core/engine.cpp",
                "runtime-image/src/main/java/io/stowage/Someruntimeimage.java",
                "host-api/src/main/java/io/stowage/Somehostapi.java",
                "placement/pom.xml",
                "pom.xml")) {
            Files.setLastModifiedTime(tree.resolve(changed), FileTime.from(LATER));
            assertThat(buildCheck("generate"))
                    .isEqualTo("runtime-image needs a build: " + changed + " is newer than"
                            + " runtime-image/target/runtime-image.jar");
            Files.setLastModifiedTime(tree.resolve(changed), FileTime.from(SOURCES));
        }
    }

    @Test
    void aMissingJarNeedsABuild() throws Exception {
        assertThat(buildCheck("plan")).isEqualTo("placement needs a build: placement/target/placement.jar is missing");
        assertThat(buildCheck("serve"))
                .isEqualTo("runtime-image needs a build: runtime-image/target/quarkus-app/quarkus-run.jar is missing");
    }

    /** A failed build: one line that says so, the log's tail, where the full log is; exit 1 and no jar left behind. */
    @Test
    void aFailedBuildPrintsItsTailAndWhereTheFullLogIs() throws Exception {
        fakeMaven("""
                echo "[INFO] ------------------------< io.stowage:placement >------------------------"
                echo "[INFO] Building Stowage placement 0.1.0-SNAPSHOT                          [2/4]"
                for i in $(seq 1 200); do echo "[INFO] noise line $i"; done
                echo "[ERROR] /src/Foo.java:[3,1] cannot find symbol: class Bar"
                echo "[ERROR] BUILD FAILURE"
                exit 1
                """);
        Result r = stowage(tree, Map.of(), "plan", "-f", "x");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).isEmpty();
        Path log = tree.resolve(".stowage/build-placement.log");
        assertThat(r.err())
                .contains("stowage: building placement (placement/target/placement.jar is missing)")
                .contains("stowage: building placement: [2/4] placement")
                .contains("stowage: the build of placement failed (./mvnw exit 1)")
                .contains("cannot find symbol: class Bar")
                .contains("full log: " + log)
                .doesNotContain("noise line 150");
        assertThat(r.errLines()).hasSizeLessThan(40);
        assertThat(Files.readAllLines(log)).contains("[INFO] noise line 1", "[INFO] noise line 200");
        assertThat(tree.resolve("placement/target/placement.jar")).doesNotExist();
    }

    @Test
    void aCommandWhoseModuleIsMissingIsOneLineWithExitTwo() throws Exception {
        Files.delete(tree.resolve("placement/pom.xml"));
        Result r = stowage(tree, Map.of(), "plan", "-f", "x");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.errLines()).hasSize(1);
        assertThat(r.err()).contains("'plan' needs the placement module, which this checkout does not have yet");
    }

    /** A build that exits 0 without writing the jar is a failure too, not a run of a missing jar. */
    @Test
    void aBuildThatWritesNoJarFailsInOneLine() throws Exception {
        fakeMaven("echo \"[INFO] BUILD SUCCESS\"\n");
        Result r = stowage(tree, Map.of(), "plan", "-f", "x");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.errLines().getLast())
                .isEqualTo("stowage: the build of placement succeeded but did not write placement/target/placement.jar;"
                        + " full log: " + tree.resolve(".stowage/build-placement.log"));
        assertThat(tree.resolve("placement/target/placement.jar")).doesNotExist();
    }

    /** The jar plugin keeps a current jar's old timestamp; the launcher marks it built, so the next command does not rebuild. */
    @Test
    void aSuccessfulBuildIsNotRepeatedByTheNextCommand() throws Exception {
        fakeMaven("""
                mkdir -p placement/target
                [ -f placement/target/placement.jar ] || echo jar > placement/target/placement.jar
                touch -d @0 placement/target/placement.jar
                echo "[INFO] BUILD SUCCESS"
                """);
        assertThat(buildCheck("plan")).contains("needs a build");
        Result r = stowage(tree, Map.of(), "plan", "--help");
        assertThat(r.err()).contains("stowage: built placement in");
        assertThat(buildCheck("plan")).isEqualTo("placement is up to date");
    }

    private String buildCheck(String command) throws Exception {
        Result r = stowage(tree, Map.of(), "--build-check", command);
        assertThat(r.code()).as(r.err()).isZero();
        return r.out().strip();
    }

    private void source(String path, String text) throws IOException {
        Path p = tree.resolve(path);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        Files.setLastModifiedTime(p, FileTime.from(SOURCES));
    }

    private void touch(String path) throws IOException {
        Path p = tree.resolve(path);
        Files.createDirectories(p.getParent());
        Files.writeString(p, "x");
        Files.setLastModifiedTime(p, FileTime.from(LATER));
    }

    /** A stand-in ./mvnw for the fake checkout: runs the given shell body in the checkout's root. */
    private void fakeMaven(String body) throws IOException {
        Path mvnw = tree.resolve("mvnw");
        Files.writeString(mvnw, "#!/usr/bin/env bash\nset -e\ncd \"$(dirname \"$0\")\"\n" + body);
        Files.setPosixFilePermissions(mvnw, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** Runs DIR/stowage ARGS with this JVM's JDK as JAVA_HOME (21+: it runs the build); bounded at 60 s. */
    private static Result stowage(Path dir, Map<String, String> env, String... args) throws Exception {
        List<String> command =
                new ArrayList<>(List.of("bash", dir.resolve("stowage").toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().putAll(env);
        Path out = Files.createTempFile("launcher-out", ".txt");
        Path err = Files.createTempFile("launcher-err", ".txt");
        try {
            pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
            Process p = pb.start();
            p.getOutputStream().close();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                throw new AssertionError("./stowage " + String.join(" ", args) + " did not finish in 60 s");
            }
            return new Result(
                    p.exitValue(),
                    Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
