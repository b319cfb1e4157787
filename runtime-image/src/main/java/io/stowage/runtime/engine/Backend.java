package io.stowage.runtime.engine;

import java.nio.charset.StandardCharsets;

/**
 * One device of the native core (the CPU, or one CUDA GPU), owning that device's memory: each model's weight buffer
 * (the CPU keeps the zero-copy mapping; a GPU holds one copy per model), the KV pools, and one compute workspace
 * shared by every context on it, sized to the largest context's A_m.
 *
 * <p>Thread-safety: safe to share. Steps of all contexts on one backend run one at a time. Close it last, after
 * the models (and their pools and contexts) made on it: closing it earlier throws, and the core keeps the memory
 * still in use rather than free it under them.
 */
public final class Backend extends NativeHandle {
    /** stw_backend_kind. */
    static final int KIND_CPU = 0;

    static final int KIND_CUDA = 1;

    private final String label;

    private Backend(long pointer, String label) {
        super(pointer, null);
        this.label = label;
    }

    /** The CPU, with a thread pool of this many threads for the matrix work. */
    public static Backend cpu(int threads) {
        checkThreads(threads);
        NativeLibrary.load();
        return new Backend(NativeEngine.backendInit(KIND_CPU, 0, threads), "cpu");
    }

    /**
     * CUDA device {@code ordinal}.
     *
     * @throws UnsupportedModelException (status UNSUPPORTED) when this library has no CUDA backend or no CUDA device
     *     or driver is present, with the core's one-line reason
     */
    public static Backend cuda(int ordinal) {
        if (ordinal < 0) {
            throw new IllegalArgumentException("CUDA device ordinal must be >= 0, got " + ordinal);
        }
        NativeLibrary.load();
        return new Backend(NativeEngine.backendInit(KIND_CUDA, ordinal, 1), "cuda:" + ordinal);
    }

    /**
     * Whether the loaded native library carries the CUDA backend (built with a CUDA toolkit). It says nothing about a
     * GPU being present: {@link #cuda} tells that, refusing with "no CUDA device: ..." where none is.
     */
    public static boolean cudaBuiltIn() {
        NativeLibrary.load();
        return NativeEngine.backendKindBuilt(KIND_CUDA);
    }

    /** The visible CUDA device with this UUID ({@code GPU-…} or {@code MIG-…}). */
    public static Backend cudaByUuid(String uuid) {
        if (uuid == null || uuid.isBlank()) {
            throw new IllegalArgumentException("GPU UUID must not be empty");
        }
        NativeLibrary.load();
        return new Backend(NativeEngine.backendInitUuid(uuid.getBytes(StandardCharsets.UTF_8), 1), uuid);
    }

    static void checkThreads(int threads) {
        if (threads < 1 || threads > 512) {
            throw new IllegalArgumentException("threads must be in 1..512, got " + threads);
        }
    }

    @Override
    void free(long pointer) {
        NativeEngine.backendFree(pointer);
    }

    @Override
    String describe() {
        return "backend " + label;
    }

    /** The device as the core reports it (name, UUID, total memory). */
    public DeviceInfo deviceInfo() {
        long p = acquire();
        try {
            long[] n = new long[3];
            String[] s = NativeEngine.backendDeviceInfo(p, n);
            String kind = n[0] == KIND_CUDA ? "cuda" : "cpu";
            String uuid = s[1] == null || s[1].isEmpty() ? null : s[1];
            return new DeviceInfo(kind, (int) n[1], s[0], uuid, n[2]);
        } finally {
            release();
        }
    }

    /** The device's free and total bytes now, as its driver (CPU: /proc/meminfo) reports them: {free, total}. */
    public long[] memoryInfo() {
        long p = acquire();
        try {
            long[] out = new long[2];
            NativeEngine.backendMemoryInfo(p, out);
            return out;
        } finally {
            release();
        }
    }

    /** Bytes allocated through this backend now: weight copies, KV pools, the shared workspace, the step buffer. */
    public long allocatedBytes() {
        long p = acquire();
        try {
            return NativeEngine.backendAllocatedBytes(p);
        } finally {
            release();
        }
    }

    /** The shared workspace now: the largest A_m of the contexts on this backend (0 with none). */
    public long workspaceBytes() {
        long p = acquire();
        try {
            return NativeEngine.backendWorkspaceBytes(p);
        } finally {
            release();
        }
    }

    /** Whether the device's kernels take this ggml type as weights (kv false) or KV cache (kv true). */
    public boolean supportsType(int ggmlType, boolean kv) {
        long p = acquire();
        try {
            return NativeEngine.backendSupportsType(p, ggmlType, kv ? 1 : 0);
        } finally {
            release();
        }
    }

    /** The pointer for a call made while the caller holds this handle (package use). */
    long pointerForCall() {
        return acquire();
    }

    void endCall() {
        release();
    }
}
