package io.stowage.runtime.engine;

import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** What the native core says about a CUDA device on this machine, by whether the library carries the CUDA backend. */
public final class CudaExpectation {
    private CudaExpectation() {}

    /** Whether this library can open a GPU here: the CUDA backend is built in and an NVIDIA driver's device is present. */
    public static boolean gpuUsable() {
        return Backend.cudaBuiltIn() && Files.exists(Path.of("/dev/nvidiactl"));
    }

    /** How the core's refusal of a CUDA device starts where no GPU is usable. */
    public static String refusal() {
        return Backend.cudaBuiltIn() ? "no CUDA device: " : "CUDA backend not built into this library";
    }

    /** Skips a refusal test, saying why, where a GPU may open. */
    public static void assumeNoGpu() {
        assumeFalse(gpuUsable(), "skipped: an NVIDIA driver is present and the library has the CUDA backend");
    }

    /** Skips a GPU test, saying why, where none is usable. */
    public static void assumeGpu() {
        assumeTrue(
                gpuUsable(),
                Backend.cudaBuiltIn()
                        ? "skipped: no NVIDIA driver here (/dev/nvidiactl absent)"
                        : "skipped: this library has no CUDA backend");
    }
}
