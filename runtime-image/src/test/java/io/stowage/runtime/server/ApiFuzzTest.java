package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.stowage.hostapi.HostAssignment;
import jakarta.inject.Inject;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The schema-driven fuzz of both APIs (src/test/python/api_fuzz.py, schemathesis) against this host serving the test
 * model on 127.0.0.1, bounded in examples and time: no 5xx but documented ones, every response as documented, no
 * request that hangs, and a host that still serves afterwards. Needs {@code python3 -m pip install
 * schemathesis==4.32.5}; {@code -DskipApiFuzz} (or {@code -DskipFuzz}) skips it. {@code -Dstowage.apiFuzz.maxTime=S}
 * and {@code -Dstowage.apiFuzz.maxExamples=N} bound each API's run (default 45 s and 20 cases per operation).
 */
@QuarkusTest
class ApiFuzzTest {
    static final String SCHEMATHESIS = "schemathesis==4.32.5";
    static final Path SCRIPT = Path.of("src/test/python/api_fuzz.py");
    static final Path OUT = Path.of("target/api-fuzz");

    @Inject
    HostService service;

    @TestHTTPResource("/")
    URL base;

    private static HostAssignment stories() {
        return TestHost.assignment(
                1,
                List.of(TestHost.q8Model()),
                List.of(
                        TestHost.replica("default/stories#0", "stories", TestHost.Q8_DIGEST, 512, 4),
                        TestHost.replica("default/stories#1", "stories", TestHost.Q8_DIGEST, 512, 4),
                        TestHost.replica("default/small#0", "small", TestHost.Q8_DIGEST, 64, 2)));
    }

    private static String run(List<String> command, Path log, long timeoutSeconds) throws Exception {
        Process p = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            return "timeout";
        }
        return Integer.toString(p.exitValue());
    }

    @Test
    void fuzzBothApisAndTheHostStillServes() throws Exception {
        Assumptions.assumeFalse(
                Boolean.getBoolean("stowage.skipApiFuzz"), "the API fuzz is skipped (-DskipApiFuzz or -DskipFuzz)");
        Files.createDirectories(OUT);
        String probe = run(List.of("python3", "-c", "import schemathesis"), OUT.resolve("probe.log"), 120);
        assertThat(probe)
                .as("the API fuzz needs schemathesis for python3, and `python3 -c 'import schemathesis'` failed ("
                        + Files.readString(OUT.resolve("probe.log")).strip() + "). Install it with"
                        + " `python3 -m pip install " + SCHEMATHESIS + "`, or skip this test with -DskipApiFuzz")
                .isEqualTo("0");

        int admin = service.adminPort();
        TestHost.applyAndWait(admin, stories());
        int maxTime = Integer.getInteger("stowage.apiFuzz.maxTime", 45);
        int maxExamples = Integer.getInteger("stowage.apiFuzz.maxExamples", 20);
        Path log = OUT.resolve("api-fuzz.log");
        String result = run(
                List.of(
                        "python3",
                        SCRIPT.toString(),
                        "--api",
                        "http://127.0.0.1:" + base.getPort(),
                        "--admin",
                        "http://127.0.0.1:" + admin,
                        "--token",
                        TestHost.TOKEN,
                        "--max-time",
                        Integer.toString(maxTime),
                        "--max-examples",
                        Integer.toString(maxExamples),
                        "--request-timeout",
                        "20",
                        "--out",
                        OUT.toString()),
                log,
                // each API's budget, its last requests and reports, and schemathesis's start-up on a busy machine
                2L * maxTime + 300);
        String output = Files.readString(log, StandardCharsets.UTF_8);

        // The host answers afterwards: live, its admin API, and a real completion once the assignment is restored
        // (the admin fuzz replaced it).
        HttpResponse<String> live = TestHost.HTTP.send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + "/q/health/live"))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(live.statusCode()).as(live.body()).isEqualTo(200);
        TestHost.applyAndWait(admin, TestHost.assignment(2, List.of(), List.of()));
        TestHost.applyAndWait(admin, stories());
        HttpResponse<String> c = TestHost.post(
                base.toURI(),
                "/v1/completions",
                "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0}");
        assertThat(c.statusCode()).as(c.body()).isEqualTo(200);
        assertThat(TestHost.json(c.body()).at("/choices/0/text").asText()).isNotEmpty();

        assertThat(result)
                .as(
                        "api_fuzz.py %s; its output (full log %s):%n%s",
                        result.equals("timeout") ? "did not finish: the host hangs" : "exited " + result,
                        log.toAbsolutePath(),
                        failures(output))
                .isEqualTo("0");
    }

    /** The failure sections of schemathesis's output, or its tail. */
    private static String failures(String output) {
        int from = output.indexOf("=== FAILURES ===");
        int errors = output.indexOf("=== ERRORS ===");
        if (errors >= 0 && (from < 0 || errors < from)) {
            from = errors;
        }
        String s = from >= 0 ? output.substring(Math.max(0, output.lastIndexOf('\n', from))) : output;
        return s.length() > 20_000 ? s.substring(0, 20_000) + "\n[...]" : s;
    }
}
