package io.stowage.placement.memory;

/**
 * The constants of the memory model that a GGUF header cannot give; the defaults are estimates, to
 * be calibrated against the runtime's measurements later.
 *
 * @param hostOverheadGpuBytes O_host on a GPU: the CUDA context, the runtime's kernels and the
 *     allocator's slack; 512 MiB by default (a CUDA context alone takes 300-500 MiB)
 * @param hostOverheadCpuBytes O_host on a CPU host: the runtime process's fixed cost (the JVM, Quarkus, the
 *     native engine, heap and thread stacks; each thread's scratch of at most 64 KiB lives on its stack); 192 MiB
 *     by default, measured: {@code ./stowage serve -f examples/local} (stories260K Q8_0, 3 replicas: weights
 *     0.45 MiB, KV 5.33 MiB, workspace 1.53 MiB, so 7.3 MiB of model memory) on Temurin 25 with the JVM's default
 *     heap, then {@code VmRSS} from {@code /proc/PID/status}: 150 MiB after start, 165 MiB after 3 completions,
 *     184 MiB after 40 streamed chat completions 8 at a time; minus the model's 7.3 MiB that is 143-177 MiB, and
 *     192 MiB leaves ~15 MiB for heap growth beyond that
 * @param prefillChunkTokens B: the most tokens one step processes (the prefill chunk); 512
 * @param logitRows L: the most rows of logits one step computes; 64
 * @param kvBlockTokens KV slots are allocated in blocks of this many tokens; 16
 * @param allocatorSlackFraction extra fraction added to the KV budget and the workspace for
 *     allocator rounding; 0 by default (the runtime allocates exactly, see the memory contract)
 */
public record MemoryParameters(
        long hostOverheadGpuBytes,
        long hostOverheadCpuBytes,
        int prefillChunkTokens,
        int logitRows,
        int kvBlockTokens,
        double allocatorSlackFraction) {

    public static final long MIB = 1L << 20;

    public static final long DEFAULT_HOST_OVERHEAD_GPU_BYTES = 512 * MIB;
    public static final long DEFAULT_HOST_OVERHEAD_CPU_BYTES = 192 * MIB;
    public static final int DEFAULT_PREFILL_CHUNK_TOKENS = 512;
    public static final int DEFAULT_LOGIT_ROWS = 64;
    public static final int DEFAULT_KV_BLOCK_TOKENS = 16;
    public static final double DEFAULT_ALLOCATOR_SLACK_FRACTION = 0.0;

    public MemoryParameters {
        if (hostOverheadGpuBytes < 0 || hostOverheadCpuBytes < 0) {
            throw new IllegalArgumentException("memory parameters: host overheads must be >= 0, got "
                    + hostOverheadGpuBytes + " (gpu) and " + hostOverheadCpuBytes + " (cpu)");
        }
        if (prefillChunkTokens <= 0 || logitRows <= 0 || kvBlockTokens <= 0) {
            throw new IllegalArgumentException("memory parameters: prefillChunkTokens, logitRows and kvBlockTokens"
                    + " must be > 0, got " + prefillChunkTokens + ", " + logitRows + ", " + kvBlockTokens);
        }
        if (!(allocatorSlackFraction >= 0 && allocatorSlackFraction <= 1)) {
            throw new IllegalArgumentException(
                    "memory parameters: allocatorSlackFraction must be in [0, 1], got " + allocatorSlackFraction);
        }
    }

    /** The documented defaults. */
    public static MemoryParameters defaults() {
        return new MemoryParameters(
                DEFAULT_HOST_OVERHEAD_GPU_BYTES,
                DEFAULT_HOST_OVERHEAD_CPU_BYTES,
                DEFAULT_PREFILL_CHUNK_TOKENS,
                DEFAULT_LOGIT_ROWS,
                DEFAULT_KV_BLOCK_TOKENS,
                DEFAULT_ALLOCATOR_SLACK_FRACTION);
    }
}
