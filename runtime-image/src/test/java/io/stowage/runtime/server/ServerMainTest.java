package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.hostapi.HostApi;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The command line of quarkus-run.jar against the host pod contract in HostApi (what the operator passes). */
class ServerMainTest {
    private static final Map<String, String> POD_ENV =
            Map.of(HostApi.TOKEN_ENV, "secret", HostApi.CACHE_DIR_ENV, "/models", HostApi.DEVICE_ID_ENV, "n/cpu");

    @Test
    void theOperatorsCpuHostArgsStartTheServerOnTheCpu() {
        ServerMain.Launch l =
                ServerMain.parse(new String[] {HostApi.HOST_COMMAND, HostApi.DEVICE_OPTION, "cpu"}, POD_ENV);
        assertThat(l.cli()).isFalse();
        assertThat(l.help()).isNull();
        assertThat(l.properties()).containsEntry("stowage.device", "cpu").doesNotContainKey("stowage.local.dir");
    }

    @Test
    void portsAreTakenFromTheCommandLine() {
        ServerMain.Launch l = ServerMain.parse(
                new String[] {"host", "--device", "cpu", "--port", "18080", "--admin-port", "18081"}, POD_ENV);
        assertThat(l.properties())
                .containsEntry("quarkus.http.port", "18080")
                .containsEntry("stowage.admin.port", "18081");
    }

    @Test
    void aCudaHostIsRefusedWithTheReasonAndTheWayOut() {
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--device", "cuda"}, POD_ENV))
                .isInstanceOf(ServerMain.UsageError.class)
                .hasMessageContaining("--device cuda")
                .hasMessageContaining("no CUDA backend")
                .hasMessageContaining("placement.device: cpu");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--device", "tpu"}, POD_ENV))
                .hasMessageContaining("must be cpu or cuda, got 'tpu'");
    }

    @Test
    void aHostWithoutItsAdminTokenIsRefused() {
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--device", "cpu"}, Map.of()))
                .isInstanceOf(ServerMain.UsageError.class)
                .hasMessageContaining(HostApi.TOKEN_ENV);
    }

    @Test
    void hostModeTakesNoManifestsAndBadPortsAreNamed() {
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "-f", "."}, POD_ENV))
                .hasMessageContaining("-f is for serve");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--port", "70000"}, POD_ENV))
                .hasMessageContaining("--port must be a port number in 0..65535, got '70000'");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--frobnicate"}, POD_ENV))
                .hasMessageContaining("host: unknown option '--frobnicate'");
    }

    @Test
    void serveStillTakesADirectoryAndTheProbesInspectGoesToTheCli() {
        ServerMain.Launch serve = ServerMain.parse(new String[] {"serve", "-f", "../examples/local"}, Map.of());
        assertThat(serve.properties())
                .containsEntry("stowage.local.dir", "../examples/local")
                .containsEntry("quarkus.log.console.json.enabled", "false");
        ServerMain.Launch inspect = ServerMain.parse(
                new String[] {"inspect", "--json", "--output", "/dev/termination-log", "file:///source/m.gguf"},
                Map.of());
        assertThat(inspect.cli()).isTrue();
    }

    @Test
    void theCacheEnvironmentVariableIsTheOneTheCacheDirPropertyReads() {
        // MicroProfile Config maps an environment variable to a property by upper-casing it and replacing every
        // character that is not a letter or digit with '_': HostService's stowage.cache-dir reads CACHE_DIR_ENV.
        String env = "stowage.cache-dir".toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_");
        assertThat(env).isEqualTo(HostApi.CACHE_DIR_ENV);
    }

    @Test
    void localModeListensOnLoopbackUnlessToldOtherwiseAndAHostOnThePodAddress() {
        assertThat(ServerMain.parse(new String[] {"serve", "-f", "../examples/local"}, Map.of())
                        .properties())
                .containsEntry("quarkus.http.host", "127.0.0.1");
        assertThat(ServerMain.parse(new String[] {"serve", "-f", "../examples/local", "--host", "0.0.0.0"}, Map.of())
                        .properties())
                .containsEntry("quarkus.http.host", "0.0.0.0");
        assertThat(ServerMain.parse(new String[] {"host", "--device", "cpu"}, POD_ENV)
                        .properties())
                .doesNotContainKey("quarkus.http.host");
    }
}
