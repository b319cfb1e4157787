package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quarkus.runtime.QuarkusBindException;
import io.stowage.hostapi.HostApi;
import java.net.BindException;
import java.util.List;
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
    void aHostTakesACudaDeviceByNumberOrUuidAndRefusesAnythingElse() {
        for (String device : List.of("cuda", "cuda:1", "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c")) {
            assertThat(ServerMain.parse(new String[] {"host", "--device", device}, POD_ENV)
                            .properties())
                    .containsEntry("stowage.device", device);
        }
        for (String device : List.of("tpu", "cuda:x", "cuda:", "gpu", "GPU-")) {
            assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--device", device}, POD_ENV))
                    .isInstanceOf(ServerMain.UsageError.class)
                    .hasMessageContaining(
                            "must be cpu, cuda, cuda:N or a GPU UUID (GPU-..., MIG-...), got '" + device + "'");
        }
    }

    @Test
    void aHostWithoutItsAdminTokenIsRefused() {
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"host", "--device", "cpu"}, Map.of()))
                .isInstanceOf(ServerMain.UsageError.class)
                .hasMessageContaining(HostApi.TOKEN_ENV)
                .hasMessageContaining(HostApi.TOKEN_FILE_ENV);
        // The operator mounts the token as a file (rotated without a restart): that alone is enough.
        assertThat(ServerMain.parse(
                                new String[] {"host", "--device", "cpu"},
                                Map.of(HostApi.TOKEN_FILE_ENV, "/var/run/stowage/admin-token/token"))
                        .command())
                .isEqualTo("host");
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
    void routerTakesRouteManifestsAndBackendsWithoutAnAdminToken() {
        ServerMain.Launch router = ServerMain.parse(
                new String[] {
                    "router",
                    "-f",
                    "../examples/local",
                    "--backend",
                    "small=http://10.0.0.5:8080",
                    "--backend",
                    "large=http://large.team-a.svc"
                },
                Map.of());
        assertThat(router.properties())
                .containsEntry("stowage.router.dir", "../examples/local")
                .containsEntry("stowage.router.backends", "small=http://10.0.0.5:8080,large=http://large.team-a.svc")
                .containsEntry("quarkus.http.host", "0.0.0.0")
                .doesNotContainKey("stowage.local.dir");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"router"}, Map.of()))
                .hasMessageStartingWith("router: -f DIR is required");
        assertThatThrownBy(() -> ServerMain.parse(
                        new String[] {"router", "-f", "../examples/local", "--backend", "nourl"}, Map.of()))
                .hasMessage("router: --backend must be NAME=URL, e.g. small=http://10.0.0.5:8080, got 'nourl'");
        assertThatThrownBy(() -> ServerMain.parse(
                        new String[] {"serve", "-f", "../examples/local", "--backend", "a=http://x"}, Map.of()))
                .hasMessage("serve: --backend is for router");
        assertThatThrownBy(() -> RouterMode.parseBackends("small=ftp://x"))
                .hasMessage("router: --backend small: must be an http:// or https:// URL with a host, got 'ftp://x'");
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

    @Test
    void serveWithoutManifestsIsAUsageErrorNotTheClusterHost() {
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"serve"}, POD_ENV))
                .isInstanceOf(ServerMain.UsageError.class)
                .hasMessageStartingWith("serve: -f DIR is required");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {}, POD_ENV))
                .isInstanceOf(ServerMain.UsageError.class)
                .hasMessageContaining("a command is required");
        assertThatThrownBy(() -> ServerMain.parse(new String[] {"--device", "cpu"}, POD_ENV))
                .hasMessageContaining("unknown command '--device'");
    }

    @Test
    void aMemoryFractionOutsideZeroToOneIsAUsageError() {
        for (String bad : List.of("2", "0", "-0.5", "NaN", "half", "1e-400")) {
            assertThatThrownBy(() -> ServerMain.parse(
                            new String[] {"serve", "-f", "../examples/local", "--memory-fraction", bad}, Map.of()))
                    .isInstanceOf(ServerMain.UsageError.class)
                    .hasMessage(
                            "serve: --memory-fraction must be a share of RAM in (0, 1], e.g. 0.5, got '" + bad + "'");
        }
        assertThat(ServerMain.parse(
                                new String[] {"serve", "-f", "../examples/local", "--memory-fraction", "1"}, Map.of())
                        .properties())
                .containsEntry("stowage.cpu.memory-fraction", "1");
    }

    @Test
    void eachCommandsHelpShowsOnlyItsOwnUsage() {
        String serve =
                ServerMain.parse(new String[] {"serve", "--help"}, Map.of()).help();
        assertThat(serve)
                .startsWith("usage: ./stowage serve -f DIR")
                .doesNotContain("quarkus-run.jar")
                .doesNotContain("host --device")
                .doesNotContain("--device");
        String host = ServerMain.parse(new String[] {"host", "-h"}, Map.of()).help();
        assertThat(host).startsWith("usage: quarkus-run.jar host").doesNotContain("-f DIR");
        assertThat(ServerMain.parse(new String[] {"--help"}, Map.of()).help())
                .contains("serve -f DIR")
                .contains("host [--device cpu|cuda]");
    }

    @Test
    void aStartupFailureIsExplainedByItsOwnMessageAndExitCodeThroughQuarkussWrapping() {
        StartupException ours = new StartupException(StartupException.NOTHING_PLACED, "nothing to serve: all refused");
        StartupException e = ServerMain.explain(
                new RuntimeException("Failed to start quarkus", new IllegalStateException("bean", ours)));
        assertThat(e.exitCode()).isEqualTo(3);
        assertThat(e.getMessage()).isEqualTo("nothing to serve: all refused");
    }

    @Test
    void aTakenPortIsNamedWithTheOptionThatChangesIt() {
        StartupException e = ServerMain.explain(new RuntimeException(
                "Failed to start quarkus",
                new QuarkusBindException("127.0.0.1", 8080, new BindException("Address already in use"))));
        assertThat(e.exitCode()).isEqualTo(1);
        assertThat(e.getMessage())
                .isEqualTo("cannot listen on 127.0.0.1:8080: the port is in use by another process; stop it, or"
                        + " choose another port with --port P");
    }

    @Test
    void anyOtherFailureIsItsRootCauseOnOneLine() {
        StartupException e = ServerMain.explain(new RuntimeException(
                "Failed to start quarkus",
                new IllegalArgumentException("Configuration validation failed:\n\tSRCFG00039: bad value\n")));
        assertThat(e.exitCode()).isEqualTo(1);
        assertThat(e.getMessage()).isEqualTo("cannot start: Configuration validation failed: SRCFG00039: bad value");
        assertThat(ServerMain.explain(new RuntimeException(new NullPointerException()))
                        .getMessage())
                .isEqualTo("cannot start: NullPointerException");
    }

    @Test
    void theBannerNamesTheServedModelsAndTheBoundPort() {
        String banner = LocalMode.banner(List.of("stories", "stories-batch"), "127.0.0.1", 39793);
        assertThat(banner)
                .startsWith("Serving stories, stories-batch on http://localhost:39793/v1 — try:\n")
                .contains("curl -s http://localhost:39793/v1/chat/completions")
                .contains("\"model\": \"stories\"");
        assertThat(LocalMode.banner(List.of("m"), "192.168.1.5", 8080)).contains("http://192.168.1.5:8080/v1");
        assertThat(LocalMode.banner(List.of("m"), "fe80::1", 8080)).contains("http://[fe80::1]:8080/v1");
    }
}
