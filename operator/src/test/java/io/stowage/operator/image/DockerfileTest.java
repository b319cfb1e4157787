package io.stowage.operator.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The two Dockerfiles (the operator's at the root, the runtime's in runtime-image/): their base image is a build
 * argument, their build context carries exactly what they copy, and no step hides a failure. The cluster e2e
 * builds both for real (e2e/cluster/project-images.sh).
 */
class DockerfileTest {
    static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();

    /** Each Dockerfile with its build context directory. */
    static final List<Path[]> IMAGES = List.of(
            new Path[] {ROOT.resolve("Dockerfile"), ROOT},
            new Path[] {ROOT.resolve("runtime-image/Dockerfile"), ROOT.resolve("runtime-image")});

    /** Instructions with their continuation lines joined, comments dropped. */
    static List<String> instructions(Path dockerfile) throws IOException {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : Files.readAllLines(dockerfile)) {
            String t = line.strip();
            if (t.startsWith("#") || (t.isEmpty() && cur.isEmpty())) {
                continue;
            }
            if (t.endsWith("\\")) {
                cur.append(t, 0, t.length() - 1).append(' ');
                continue;
            }
            cur.append(t);
            out.add(cur.toString().strip());
            cur.setLength(0);
        }
        return out;
    }

    @Test
    void bothBuildFromABaseImageGivenAsABuildArgument() throws IOException {
        for (Path[] image : IMAGES) {
            List<String> ins = instructions(image[0]);
            int arg = indexOf(ins, "ARG BASE_IMAGE=");
            int from = indexOf(ins, "FROM ");
            assertThat(arg).as("%s: ARG BASE_IMAGE before the FROM", image[0]).isGreaterThanOrEqualTo(0);
            assertThat(from).as("%s: one FROM", image[0]).isGreaterThan(arg);
            assertThat(ins.get(from)).as(image[0].toString()).isEqualTo("FROM ${BASE_IMAGE}");
            assertThat(ins.stream().filter(i -> i.startsWith("FROM ")))
                    .as("%s: a single stage (the application is built before the image)", image[0])
                    .hasSize(1);
        }
    }

    @Test
    void everyCopiedPathIsInTheBuildContextAndNothingElseIs() throws IOException {
        for (Path[] image : IMAGES) {
            List<String> ignore = Files.readAllLines(image[1].resolve(".dockerignore")).stream()
                    .map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#"))
                    .toList();
            assertThat(ignore.get(0))
                    .as("%s/.dockerignore leaves everything out first", image[1])
                    .isEqualTo("*");
            List<String> kept = ignore.stream()
                    .skip(1)
                    .peek(l -> assertThat(l).as("an exception").startsWith("!"))
                    .map(l -> l.substring(1).replaceAll("/+$", ""))
                    .toList();
            for (String ins : instructions(image[0])) {
                if (!ins.startsWith("COPY ")) {
                    continue;
                }
                List<String> parts =
                        new ArrayList<>(List.of(ins.substring(5).strip().split("\\s+")));
                parts.removeIf(p -> p.startsWith("--"));
                for (String src : parts.subList(0, parts.size() - 1)) {
                    String s = src.replaceAll("/+$", "");
                    assertThat(kept)
                            .as("%s copies %s: .dockerignore must keep it", image[0], s)
                            .anySatisfy(k -> assertThat(s.equals(k) || s.startsWith(k + "/"))
                                    .isTrue());
                }
            }
        }
    }

    @Test
    void theRuntimeImageInstallsAJreOnlyWhenItsBaseHasNone() throws IOException {
        // A base with a JRE (the e2e's debootstrap image, eclipse-temurin) builds with --network none.
        List<String> apt = instructions(IMAGES.get(1)[0]).stream()
                .filter(i -> i.contains("apt-get install"))
                .toList();
        assertThat(apt).singleElement().satisfies(i -> assertThat(i).contains("if ! command -v java"));
    }

    @Test
    void theRuntimeImageBuildsACpuAndACudaVariantThatAskTheNvidiaRuntimeForNoGpuAndForItsGpu() throws Exception {
        List<String> ins = instructions(IMAGES.get(1)[0]);
        int from = indexOf(ins, "FROM ");
        assertThat(ins.get(indexOf(ins, "ARG BASE_IMAGE="))).isEqualTo("ARG BASE_IMAGE=ubuntu:24.04");
        assertThat(indexOf(ins, "ARG VARIANT=cpu"))
                .as("the variant, after the FROM")
                .isGreaterThan(from);
        assertThat(indexOf(ins, "ARG NVIDIA_VISIBLE_DEVICES=void")).isGreaterThan(from);
        String env = ins.stream().filter(i -> i.startsWith("ENV ")).reduce("", String::concat);
        assertThat(env)
                .contains("STOWAGE_IMAGE_VARIANT=${VARIANT}")
                .contains("NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES}")
                .contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility");
        // The step that checks the variant's arguments, run as the build runs it: a wrong pair fails the build.
        String check = ins.stream()
                .filter(i -> i.startsWith("RUN case \"${VARIANT}:${NVIDIA_VISIBLE_DEVICES}\""))
                .findFirst()
                .orElseThrow()
                .substring(4);
        assertThat(runCheck(check, "cpu", "void")).isZero();
        assertThat(runCheck(check, "cuda", "all")).isZero();
        assertThat(runCheck(check, "cuda", "void")).isEqualTo(1);
        assertThat(runCheck(check, "cpu", "all")).isEqualTo(1);
        assertThat(runCheck(check, "gpu", "void")).isEqualTo(1);
    }

    @Test
    void theClusterE2eBuildsTheCudaVariantOnItsLocalBase() throws IOException {
        String script = Files.readString(ROOT.resolve("e2e/cluster/project-images.sh"));
        assertThat(script)
                .contains("build runtime \"$ROOT/runtime-image/Dockerfile\" \"$ROOT/runtime-image\"")
                .contains("build runtime-cuda \"$ROOT/runtime-image/Dockerfile\" \"$ROOT/runtime-image\" "
                        + "--build-arg VARIANT=cuda --build-arg NVIDIA_VISIBLE_DEVICES=all");
    }

    private static int runCheck(String shell, String variant, String devices) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", shell)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        // as docker passes build arguments to a RUN step: environment variables
        pb.environment().put("VARIANT", variant);
        pb.environment().put("NVIDIA_VISIBLE_DEVICES", devices);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the variant check did not end within 30 s");
        }
        return p.exitValue() == 0 ? 0 : 1;
    }

    @Test
    void noBuildStepHidesAFailure() throws IOException {
        for (Path[] image : IMAGES) {
            for (String ins : instructions(image[0])) {
                assertThat(ins).as("%s: %s", image[0], ins).doesNotContain("|| true");
            }
        }
    }

    private static int indexOf(List<String> ins, String prefix) {
        for (int i = 0; i < ins.size(); i++) {
            if (ins.get(i).startsWith(prefix)) {
                return i;
            }
        }
        return -1;
    }
}
