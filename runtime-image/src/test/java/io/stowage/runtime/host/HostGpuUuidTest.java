package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.hostapi.HostState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A host reports the UUID of the GPU it was given, so that the operator can key its ledger and DCGM usage on it. */
class HostGpuUuidTest {
    static final String UUID = "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c";

    @TempDir
    Path dir;

    @Test
    void theStateCarriesTheGpuUuidOfTheSettingsAndItsJsonNamesIt() throws Exception {
        Path cache = Files.createDirectories(dir.resolve("cache"));
        try (Host host = new Host(
                new HostSettings("gpu", "n/gpu-0", 1L << 30, 1L << 27, cache, 1, 16, 4, 1, UUID),
                new ModelFetcher(cache, Map.of()))) {
            HostState s = host.state();

            assertThat(s.device().gpuUuid()).isEqualTo(UUID);
            String json = new ObjectMapper().writeValueAsString(s);
            assertThat(new ObjectMapper().readTree(json).at("/device/gpuUuid").asText())
                    .isEqualTo(UUID);
            assertThat(new ObjectMapper().readValue(json, HostState.class)).isEqualTo(s);
        }
    }

    @Test
    void aHostGivenNoGpuByUuidReportsNull() throws Exception {
        Path cache = Files.createDirectories(dir.resolve("cache"));
        try (Host host = new Host(
                new HostSettings("cpu", "n/cpu", 1L << 30, 1L << 27, cache, 1, 16, 4, 1),
                new ModelFetcher(cache, Map.of()))) {
            assertThat(host.state().device().gpuUuid()).isNull();
        }
    }
}
