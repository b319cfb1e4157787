package io.stowage.runtime.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.runtime.engine.Backend;
import io.stowage.runtime.engine.CudaExpectation;
import org.junit.jupiter.api.Test;

/** {@code host --device}: the forms it takes, and a CUDA device this build cannot open failing the start. */
class DeviceOptionTest {
    @Test
    void parsesTheCpuACudaNumberAndAGpuUuid() {
        assertThat(DeviceOption.parse("cpu")).isEqualTo(DeviceOption.CPU);
        assertThat(DeviceOption.parse("cuda")).isEqualTo(new DeviceOption("cuda", true, 0, null));
        assertThat(DeviceOption.parse("cuda:3")).isEqualTo(new DeviceOption("cuda:3", true, 3, null));
        String uuid = "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c";
        assertThat(DeviceOption.parse(uuid)).isEqualTo(new DeviceOption(uuid, true, -1, uuid));
        assertThat(DeviceOption.parse("MIG-GPU-c2f76b33-7953-256e-8f33-1343419b1a1c/1/0")
                        .uuid())
                .startsWith("MIG-");
        assertThat(DeviceOption.parse("cuda:-1")).isNull();
        assertThat(DeviceOption.parse("CUDA")).isNull();
    }

    @Test
    void aCudaDeviceThisBuildCannotOpenEndsTheStartWithOneLineAndExitCode1() {
        CudaExpectation.assumeNoGpu();
        for (String device : new String[] {"cuda:0", "cuda", "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"}) {
            StartupException e = (StartupException) org.assertj.core.api.Assertions.catchThrowable(
                    () -> DeviceOption.parse(device).open(1));
            assertThat(e).as(device).isNotNull();
            assertThat(e.exitCode()).isEqualTo(StartupException.FAILED).isEqualTo(1);
            assertThat(e.getMessage())
                    .startsWith("--device " + device + ": " + CudaExpectation.refusal())
                    .contains("run the host with --device cpu")
                    .doesNotContain("\n");
            // as main prints it, through Quarkus's wrapping of what a bean throws at start
            StartupException shown = ServerMain.explain(new RuntimeException("Failed to start quarkus", e));
            assertThat(shown.exitCode()).isEqualTo(1);
            assertThat(shown.getMessage()).isEqualTo(e.getMessage());
        }
    }

    @Test
    void theCpuOpensWithItsThreads() {
        try (Backend be = DeviceOption.CPU.open(2)) {
            assertThat(be.deviceInfo().kind()).isEqualTo("cpu");
        }
        assertThatThrownBy(() -> DeviceOption.CPU.open(0))
                .isInstanceOf(StartupException.class)
                .hasMessageContaining("--device cpu: threads must be in 1..512, got 0");
    }
}
