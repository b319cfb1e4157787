package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.KvCacheType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The device backend through JNI: what it reports, the memory it owns, and a CUDA device this build cannot open. */
class BackendTest {
    @Test
    void theCpuBackendReportsTheMachineAndOwnsOnlyWhatItAllocates() {
        try (Backend be = Backend.cpu(2);
                NativeModel m = NativeModel.open(TestModels.q8())) {
            DeviceInfo info = be.deviceInfo();
            assertThat(info.kind()).isEqualTo("cpu");
            assertThat(info.uuid()).isNull();
            assertThat(info.name()).isNotBlank();
            assertThat(info.totalBytes()).isPositive();
            long[] mem = be.memoryInfo();
            assertThat(mem[1]).isEqualTo(info.totalBytes());
            assertThat(mem[0]).isPositive().isLessThanOrEqualTo(mem[1]);
            assertThat(be.supportsType(8, false)).isTrue(); // Q8_0 weights
            assertThat(be.supportsType(2, true)).isFalse(); // Q4_0 is no KV type

            // the CPU keeps the weights in the mapping: nothing allocated for them, the span reported
            List<Long> progress = new ArrayList<>();
            m.load(be, (done, total) -> progress.add(done));
            assertThat(m.deviceBytes(be)).isGreaterThanOrEqualTo(m.weightBytes());
            assertThat(progress).containsExactly(m.deviceBytes(be));
            assertThat(be.allocatedBytes()).isZero();

            // two contexts of different sizes share one workspace: the larger A_m, allocated once
            try (ComputeContext small = m.newContext(be, 8, 2);
                    ComputeContext large = m.newContext(be, 64, 8);
                    KvPool pool = m.newKvPool(be, KvCacheType.F16, 1 << 20)) {
                assertThat(be.workspaceBytes()).isEqualTo(large.workspaceBytes());
                assertThat(be.allocatedBytes()).isEqualTo(large.workspaceBytes() + pool.allocatedBytes());
                try (Sequence s = pool.newSequence(32)) {
                    float[] logits = new float[m.vocabSize()];
                    small.decode(new int[] {1, 403}, new Sequence[] {s, s}, new boolean[] {false, true}, logits);
                    assertThat(s.length()).isEqualTo(2);
                    assertThat(logits).isNotEqualTo(new float[m.vocabSize()]);
                }
            }
            assertThat(be.workspaceBytes()).isZero();
            m.unload(be);
            assertThat(m.deviceBytes(be)).isZero();
            assertThat(be.allocatedBytes()).isZero();
        }
    }

    @Test
    void theLibraryCarriesTheCudaBackendAsTheBuildAsked() {
        // pom.xml stw.cuda, passed by surefire: OFF leaves it out, ON requires it, AUTO follows the toolkit
        String asked = System.getProperty("stw.cuda", "AUTO");
        if (asked.equals("OFF")) {
            assertThat(Backend.cudaBuiltIn()).isFalse();
        } else if (asked.equals("ON")) {
            assertThat(Backend.cudaBuiltIn()).isTrue();
        }
        assertThat(CudaExpectation.refusal())
                .isEqualTo(Backend.cudaBuiltIn() ? "no CUDA device: " : "CUDA backend not built into this library");
    }

    @Test
    void aCudaDeviceIsRefusedWithOneLineWhereTheLibraryCannotUseOne() {
        CudaExpectation.assumeNoGpu();
        // without the backend: "CUDA backend not built into this library"; with it and no driver: "no CUDA device: ..."
        assertThatThrownBy(() -> Backend.cuda(0))
                .isInstanceOf(NativeEngineException.class)
                .satisfies(e -> assertThat(((NativeEngineException) e).status()).isEqualTo(EngineStatus.UNSUPPORTED))
                .hasMessageContaining(CudaExpectation.refusal())
                .hasMessageNotContaining("\n");
        assertThatThrownBy(() -> Backend.cudaByUuid("GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"))
                .isInstanceOf(NativeEngineException.class)
                .satisfies(e -> assertThat(((NativeEngineException) e).status()).isEqualTo(EngineStatus.UNSUPPORTED))
                .hasMessageContaining(CudaExpectation.refusal());
        assertThatThrownBy(() -> Backend.cuda(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Backend.cpu(0)).hasMessageContaining("threads must be in 1..512, got 0");
    }

    @Test
    void aVisibleGpuOpensAsCudaDeviceZeroWithItsUuid() {
        CudaExpectation.assumeGpu();
        try (Backend be = Backend.cuda(0)) {
            DeviceInfo info = be.deviceInfo();
            assertThat(info.kind()).isEqualTo("cuda");
            assertThat(info.uuid()).matches("(GPU|MIG)-.+");
            try (Backend same = Backend.cudaByUuid(info.uuid())) {
                assertThat(same.deviceInfo().uuid()).isEqualTo(info.uuid());
            }
        }
    }

    @Test
    void closingTheBackendBeforeItsModelsIsRefused() {
        Backend be = Backend.cpu(1);
        try (NativeModel m = NativeModel.open(TestModels.q8())) {
            ComputeContext c = m.newContext(be, 4, 1);
            assertThatThrownBy(be::close).hasMessageContaining("free them first");
            c.close();
        }
    }
}
