package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The loader's platform convention, and an error that lists every attempt when the library cannot be loaded. */
class NativeLibraryTest {
    @TempDir
    Path dir;

    @Test
    void platformNamesFollowTheCmakeConvention() {
        assertThat(NativeLibrary.os("Linux")).isEqualTo("linux");
        assertThat(NativeLibrary.os("Mac OS X")).isEqualTo("darwin");
        assertThat(NativeLibrary.arch("amd64")).isEqualTo("x86_64");
        assertThat(NativeLibrary.arch("aarch64")).isEqualTo("aarch64");
        assertThat(NativeLibrary.platform()).matches("[a-z0-9]+-[a-z0-9_]+");
    }

    @Test
    void theJarCarriesTheLibraryForThisPlatformAndItLoads() {
        assertThat(NativeLibrary.class.getResource(
                        "/native/" + NativeLibrary.platform() + "/" + System.mapLibraryName(NativeLibrary.JNI_LIBRARY)))
                .isNotNull();
        assertThat(NativeLibrary.isAvailable()).isTrue();
        assertThat(NativeLibrary.version()).isNotBlank();
        assertThat(NativeLibrary.cpuFeatures()).isNotBlank();
    }

    @Test
    void anExplicitPathThatDoesNotExistIsReportedWithTheNextStep() {
        Path bogus = dir.resolve("no-such-dir");
        assertThatThrownBy(() -> NativeLibrary.load(bogus.toString(), "native/" + NativeLibrary.platform(), dir))
                .isInstanceOf(UnsatisfiedLinkError.class)
                .hasMessageContaining("Attempts:")
                .hasMessageContaining("1. -Dstowage.native.path=" + bogus)
                .hasMessageContaining("does not exist")
                .hasMessageContaining("./mvnw -pl runtime-image -am package");
    }

    @Test
    void withoutAnExplicitPathEveryAttemptIsListed() {
        assertThatThrownBy(() -> NativeLibrary.load(null, "native/no-such-platform", dir))
                .isInstanceOf(UnsatisfiedLinkError.class)
                .hasMessageContaining("1. class path resource native/no-such-platform/")
                .hasMessageContaining("not found")
                .hasMessageContaining("2. System.loadLibrary(\"stowage_jni\") with java.library.path=");
    }

    @Test
    void aFileThatIsNotALibraryOrForAnotherMachineIsExplained() throws IOException {
        Path text = dir.resolve(System.mapLibraryName("stowage_jni"));
        Files.writeString(text, "this is not a shared library, just text long enough");
        assertThatThrownBy(() -> NativeLibrary.load(text.toString(), "unused", dir))
                .isInstanceOf(UnsatisfiedLinkError.class)
                .hasMessageContaining("not an ELF shared library");

        byte[] elf = new byte[64];
        elf[0] = 0x7f;
        elf[1] = 'E';
        elf[2] = 'L';
        elf[3] = 'F';
        elf[18] = (byte) (NativeLibrary.arch(System.getProperty("os.arch")).equals("x86_64") ? 0xb7 : 0x3e);
        Path foreign = dir.resolve("foreign.so");
        Files.write(foreign, elf);
        assertThat(NativeLibrary.elfArchProblem(foreign)).contains("architecture mismatch");
    }

    /** The real entry point in a fresh JVM: a bogus -Dstowage.native.path fails the first engine call, explained. */
    @Test
    void aFreshJvmWithABogusNativePathFailsWithTheAttemptsListed() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path bogus = dir.resolve("bogus");
        Process p = new ProcessBuilder(List.of(
                        java,
                        "--enable-native-access=ALL-UNNAMED",
                        "-Dstowage.native.path=" + bogus,
                        "-cp",
                        System.getProperty("java.class.path") + File.pathSeparator,
                        "io.stowage.runtime.cli.Main",
                        "generate",
                        "--model",
                        TestModels.f32().toString(),
                        "--prompt",
                        "Once",
                        "-n",
                        "2"))
                .redirectErrorStream(true)
                .start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isEqualTo(1);
        assertThat(output)
                .contains("could not load the native inference library")
                .contains("1. -Dstowage.native.path=" + bogus)
                .doesNotContain("SIGSEGV");
    }
}
