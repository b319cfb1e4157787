package io.stowage.hostapi;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The GPU a container was given, from the environment the NVIDIA device plugin sets. */
class GpuUuidsTest {
    static final String L4 = "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c";
    static final String MIG = "MIG-8f5e7a1c-03d4-5b7e-9a2f-6c1d0e4b3a21";

    @Test
    void theDevicePluginsUuidInNvidiaVisibleDevicesIsTheHostsGpu() {
        assertThat(GpuUuids.single(Map.of("NVIDIA_VISIBLE_DEVICES", L4))).isEqualTo(L4);
    }

    @Test
    void nvidiaVisibleDevicesWinsOverCudaVisibleDevices() {
        String other = "GPU-0a1b2c3d-0000-1111-2222-333344445555";
        assertThat(GpuUuids.single(Map.of("NVIDIA_VISIBLE_DEVICES", L4, "CUDA_VISIBLE_DEVICES", other)))
                .isEqualTo(L4);
    }

    @Test
    void cudaVisibleDevicesUuidsAreAcceptedWhenNvidiaVisibleDevicesNamesNone() {
        assertThat(GpuUuids.single(Map.of("NVIDIA_VISIBLE_DEVICES", "all", "CUDA_VISIBLE_DEVICES", " " + L4 + " ")))
                .isEqualTo(L4);
    }

    @Test
    void migDevicesInTheCurrentAndTheLegacyFormAreUuids() {
        String legacy = "MIG-GPU-c2f76b33-7953-256e-8f33-1343419b1a1c/1/0";
        assertThat(GpuUuids.parse(MIG + "," + legacy)).containsExactly(MIG, legacy);
        assertThat(GpuUuids.isMig(MIG)).isTrue();
        assertThat(GpuUuids.isMig(L4)).isFalse();
    }

    @Test
    void indicesKeywordsAndGarbageNameNoGpu() {
        assertThat(GpuUuids.parse("0,1")).isEmpty();
        assertThat(GpuUuids.parse("all")).isEmpty();
        assertThat(GpuUuids.parse("none")).isEmpty();
        assertThat(GpuUuids.parse("void")).isEmpty();
        assertThat(GpuUuids.parse("GPU-")).isEmpty();
        assertThat(GpuUuids.parse("GPU-zzzz-not-hex")).isEmpty();
        assertThat(GpuUuids.single(Map.of())).isNull();
    }

    @Test
    void severalGpusKeepTheirOrderOnce() {
        String b = "GPU-0a1b2c3d-0000-1111-2222-333344445555";
        assertThat(GpuUuids.parse(L4 + "," + b + "," + L4)).containsExactly(L4, b);
    }
}
