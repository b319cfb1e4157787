package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.MemoryParameters;
import io.stowage.placement.memory.ModelShape;
import io.stowage.runtime.engine.Backend;
import io.stowage.runtime.engine.ComputeContext;
import io.stowage.runtime.engine.KvPool;
import io.stowage.runtime.engine.ModelSpec;
import io.stowage.runtime.engine.NativeEngineException;
import io.stowage.runtime.engine.NativeLibrary;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.engine.Sequence;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.IntFunction;

/**
 * {@code bench-engine}: prompt and decode tokens/s of the native engine per model and thread count, the memory
 * bandwidth decode achieves next to the machine's measured copy bandwidth, and optionally llama.cpp's speed on
 * the same file.
 */
final class BenchEngineCommand {
    static final String USAGE = """
            usage: ./stowage bench-engine [--threads 1,2] [--model M1.gguf,M2.gguf] [--1b]
                                          [--prompt-tokens 128] [--decode-tokens 32] [--copy-mib 256]
                                          [--llama-cpp] [--rounds 1] [--json] [--device cpu|cuda|cuda:N]

            Models: stories260K (the largest test model; about 1.1 GB peak RSS with the JVM, nothing written), or the
            --model list instead. --1b adds the heavy run: a generated Llama-shaped ~1.1B-parameter model in Q8_0,
            Q4_0 and Q4_K_M (llama.cpp's recipe: Q4_K, Q6_K for the head and some attn_v/ffn_down) (random
            weights, TinyLlama's shape; written once by GgufWriter into .stowage/bench/ of the repository, a
            gitignored cache, about 2.5 GB for the three; writing one holds its weights in memory, about 1.5 GB).
            Every run first prints what it will cost: memory, and what it writes to disk.
            Per model and thread count: prompt tok/s (one batched step of --prompt-tokens random tokens) and
            decode tok/s (--decode-tokens single-token steps), the weight bytes a decode step reads, the achieved
            bandwidth (bytes read × decode tok/s) and its share of the copy bandwidth measured here with the same
            threads (STREAM convention: read + written bytes per second of a --copy-mib array copy). It also
            compares the workspace and KV pool the engine allocated with the placement memory model's estimate.
            --llama-cpp also measures llama.cpp on the same files and threads and prints the ratios (ours / theirs).
            The peer is llama-bench built natively (-DGGML_NATIVE=ON, CPU only) from the llama.cpp source that
            node-llama-cpp bundles (`npm install` in runtime-image/bench first), by runtime-image/bench/build-llama-cpp.sh
            into .stowage/llama-cpp/ (once, several minutes; then cached); when that build is not possible it falls
            back, with a warning, to node-llama-cpp's prebuilt generic CPU build (llama-cpp-bench.mjs). The output
            names the peer that ran. --json prints one record per model and thread count (both engines' prompt and
            decode tok/s, the ratios, the peer) instead of the table.
            --rounds N (1..20, default 1) measures each model and thread count N times, alternating Stowage and
            llama.cpp (S, L, S, L, ...) so both see the same machine state; the run takes about N times as long
            (each model is loaded once; a llama.cpp round is one llama-bench invocation, its mean of -r 3). It
            reports the median of each tok/s, the ratios of the medians and the min..max range of the per-round
            ratios: the table prints each round's line (prefixed round i/N), then a median line per model and
            thread count with the ranges; in --json the usual fields hold the medians and each record adds rounds,
            promptRatioMin/Max and decodeRatioMin/Max (with the peer) and perRound (each round's four tok/s).
            --device cuda (or cuda:N) runs the same models on that GPU through the library's CUDA backend: weights
            uploaded once, KV pool and workspace in device memory, one row per model (threads do not apply; no
            copy bandwidth or llama.cpp peer: those are CPU figures). Where this library has no usable CUDA device
            it says why in one line and exits 2. The CUDA path has not yet run on a GPU.
            """;

    private BenchEngineCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) throws UsageException {
        Args args = Args.parse(
                "bench-engine",
                argv,
                Set.of("threads", "model", "prompt-tokens", "decode-tokens", "copy-mib", "device", "rounds"),
                Set.of("llama-cpp", "json", "1b", "help"));
        if (args.flag("help")) {
            out.print(USAGE);
            return 0;
        }
        int[] threads = parseThreads(args.option("threads"));
        int promptTokens = args.intOption("bench-engine", "prompt-tokens", 128, 1, 4096);
        int decodeTokens = args.intOption("bench-engine", "decode-tokens", 32, 1, 4096);
        int copyMib = args.intOption("bench-engine", "copy-mib", 256, 1, 1024);
        int rounds = args.intOption("bench-engine", "rounds", 1, 1, MAX_ROUNDS);
        int cudaOrdinal = parseDevice(args.option("device"));
        if (cudaOrdinal >= 0 && args.flag("llama-cpp")) {
            throw new UsageException(
                    "bench-engine: --llama-cpp measures llama.cpp on the CPU only; drop it with --device "
                            + args.option("device"));
        }
        Backend gpu = null;
        if (cudaOrdinal >= 0) {
            // Before anything is generated or measured: a machine that cannot run it is told at once.
            try {
                gpu = Backend.cuda(cudaOrdinal);
            } catch (NativeEngineException e) {
                err.println("bench-engine: --device " + args.option("device") + ": "
                        + e.getMessage().replaceFirst("^stw_backend_init: ", ""));
                return 2;
            }
        }
        try {
            return measure(
                    args,
                    gpu == null ? threads : new int[] {1},
                    promptTokens,
                    decodeTokens,
                    copyMib,
                    rounds,
                    gpu,
                    out,
                    err);
        } finally {
            if (gpu != null) {
                gpu.close();
            }
        }
    }

    /** The device option: -1 for the CPU (absent or {@code cpu}), else the CUDA ordinal. */
    static int parseDevice(String text) throws UsageException {
        if (text == null || text.equals("cpu")) {
            return -1;
        }
        var m = java.util.regex.Pattern.compile("cuda(?::(\\d{1,4}))?").matcher(text);
        if (!m.matches()) {
            throw new UsageException("bench-engine: --device must be cpu, cuda or cuda:N, got '" + text + "'");
        }
        return m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
    }

    /** The runs on the CPU with each thread count, or on the GPU (gpu not null) once per model. */
    private static int measure(
            Args args,
            int[] threads,
            int promptTokens,
            int decodeTokens,
            int copyMib,
            int rounds,
            Backend gpu,
            PrintStream out,
            PrintStream err) {
        Path moduleDir = moduleDir();
        List<Path> models = new ArrayList<>();
        if (args.option("model") != null) {
            for (String m : args.option("model").split(",")) {
                models.add(Path.of(m.trim()));
            }
        } else {
            Path stories = moduleDir.resolve("src/test/resources/models/stories260K-f32.gguf");
            if (Files.isRegularFile(stories)) {
                models.add(stories);
            } else {
                err.println("bench-engine: " + stories + " not found; skipping stories260K");
            }
        }
        Path cache = moduleDir.getParent().resolve(".stowage/bench");
        List<String> synthetic = args.flag("1b") ? SyntheticModel.KINDS : List.of();
        Cost cost = Cost.of(models, synthetic, cache, promptTokens, decodeTokens, copyMib);
        err.println("bench-engine: " + cost.describe(cache) + Cost.roundsNote(rounds));
        String noRoom = cost.writeBytes() > 0 ? cost.noRoom(cache, usableSpace(cache)) : null;
        if (noRoom != null) {
            err.println("bench-engine: " + noRoom);
            return 1;
        }
        for (String type : synthetic) {
            try {
                models.add(SyntheticModel.ensure(cache, type, err));
            } catch (IOException e) {
                err.println("bench-engine: cannot write the 1B model to " + cache + ": " + e.getMessage());
                return 1;
            }
            // The writer held the model's weights on the heap; give that memory back before the next one.
            System.gc();
        }
        NativeLibrary.load();
        err.println("bench-engine: native core " + NativeLibrary.version() + ", CPU: " + NativeLibrary.cpuFeatures());
        Map<Integer, Double> copy = new LinkedHashMap<>();
        for (int t : gpu == null ? threads : new int[0]) {
            copy.put(t, CopyBandwidth.measure(t, copyMib << 20));
            err.printf(
                    Locale.ROOT, "bench-engine: copy bandwidth with %d thread(s): %.2f GB/s%n", t, copy.get(t) / 1e9);
        }
        List<Rounds> results = new ArrayList<>();
        LlamaCpp.Peer peer = args.flag("llama-cpp")
                ? LlamaCpp.resolve(
                        moduleDir.resolve("bench"), moduleDir.getParent().resolve(".stowage/llama-cpp"), err)
                : null;
        for (Path path : models) {
            // Each model is opened (and on a GPU uploaded) once; every thread count and round runs on it.
            ModelSpec spec = ModelSpec.read(path);
            try (NativeModel model = NativeModel.open(spec)) {
                if (gpu != null) {
                    model.load(gpu, null);
                }
                try {
                    for (int t : threads) {
                        double copyBandwidth = gpu == null ? copy.get(t) : Double.NaN;
                        results.add(Rounds.run(
                                rounds,
                                round -> benchOn(
                                        model,
                                        spec,
                                        path,
                                        t,
                                        promptTokens,
                                        decodeTokens,
                                        copyBandwidth,
                                        gpu,
                                        roundLabel(round, rounds),
                                        err),
                                peer == null
                                        ? null
                                        : (round, row) -> LlamaCpp.run(
                                                peer,
                                                path,
                                                t,
                                                promptTokens,
                                                decodeTokens,
                                                row,
                                                roundLabel(round, rounds),
                                                err)));
                    }
                } finally {
                    if (gpu != null) {
                        model.unload(gpu);
                    }
                }
            }
        }
        List<Map<String, Object>> rows = results.stream().map(Rounds::summary).toList();
        if (args.flag("json")) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("cpu", NativeLibrary.cpuFeatures());
            r.put("llamaCppPeer", peer == null ? null : peer.describe());
            r.put("copyBandwidthBytesPerSecond", copy);
            r.put("results", rows);
            out.println(Json.pretty(r));
        } else {
            if (peer != null) {
                out.println("llama.cpp peer: " + peer.describe());
            }
            printTable(results, out);
            for (Map<String, Object> r : rows) {
                out.printf(
                        Locale.ROOT,
                        "memory %s, %d thread(s): workspace %,d bytes (memory model %,d, error %+.2f%%), KV pool %,d"
                                + " bytes (memory model %,d, error %+.2f%%)%n",
                        r.get("model"),
                        (int) r.get("threads"),
                        (long) r.get("workspaceBytes"),
                        (long) r.get("workspaceEstimateBytes"),
                        error((long) r.get("workspaceEstimateBytes"), (long) r.get("workspaceBytes")),
                        (long) r.get("kvPoolBytes"),
                        (long) r.get("kvEstimateBytes"),
                        error((long) r.get("kvEstimateBytes"), (long) r.get("kvPoolBytes")));
            }
        }
        return 0;
    }

    /** The most rounds a run takes (each one is a full measurement of every model and thread count). */
    static final int MAX_ROUNDS = 20;

    /** "round i/N: " in the progress lines of a run with several rounds; nothing with one. */
    static String roundLabel(int round, int rounds) {
        return rounds == 1 ? "" : "round " + (round + 1) + "/" + rounds + ": ";
    }

    static int[] parseThreads(String text) {
        if (text == null) {
            return new int[] {1, 2};
        }
        try {
            int[] t = Arrays.stream(text.split(","))
                    .map(String::trim)
                    .mapToInt(Integer::parseInt)
                    .toArray();
            for (int v : t) {
                if (v < 1 || v > 1024) {
                    throw new UsageException("bench-engine: --threads values must be in 1..1024, got " + v);
                }
            }
            return t;
        } catch (NumberFormatException e) {
            throw new UsageException(
                    "bench-engine: --threads must be a comma-separated list of integers, got '" + text + "'");
        }
    }

    /** The runtime-image module directory: the jar's target/.. when run from the build, else ./runtime-image. */
    static Path moduleDir() {
        try {
            Path code = Path.of(BenchEngineCommand.class
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
            Path dir = code.getParent();
            while (dir != null && !Files.isRegularFile(dir.resolve("pom.xml"))) {
                dir = dir.getParent();
            }
            if (dir != null && Files.isDirectory(dir.resolve("native"))) {
                return dir;
            }
        } catch (URISyntaxException | RuntimeException ignored) {
            // fall through to the working directory
        }
        Path cwd = Path.of("").toAbsolutePath();
        return Files.isDirectory(cwd.resolve("runtime-image")) ? cwd.resolve("runtime-image") : cwd;
    }

    /**
     * What a run costs, known before it starts. Memory: writing a 1B model holds all its quantized weights plus its
     * float buffers on the heap; afterwards the copy-bandwidth arrays, then one model at a time mapped with its KV pool
     * and workspace (the placement memory model's figures for this run's step shape). Disk: the 1B models not cached
     * yet.
     *
     * @param memoryBytes the peak of the phases below, beyond the JVM's own baseline
     * @param writePeakBytes the largest model being written (0 when nothing is written)
     * @param copyBytes the two arrays of the copy-bandwidth measurement
     * @param runPeakBytes the largest model's weights, KV pool and workspace
     * @param cachedBytes the 1B models' file sizes (estimated from their tensors), cached or to write
     * @param writeBytes the part of cachedBytes that is not in the cache yet
     */
    record Cost(
            long memoryBytes,
            long writePeakBytes,
            long copyBytes,
            long runPeakBytes,
            long cachedBytes,
            long writeBytes,
            List<String> models) {

        /** The metadata of a 1B file beyond its tensors: the 32,000-token vocabulary, scores and types. */
        static final long SYNTHETIC_METADATA_BYTES = 1L << 20;

        static Cost of(
                List<Path> files,
                List<String> syntheticTypes,
                Path cache,
                int promptTokens,
                int decodeTokens,
                int copyMib) {
            MemoryModel memory = new MemoryModel(new MemoryParameters(0, 0, promptTokens, 1, KvPool.BLOCK_TOKENS, 0));
            long total = promptTokens + decodeTokens + 8;
            List<String> names = new ArrayList<>();
            long runPeak = 0;
            for (Path f : files) {
                runPeak = Math.max(runPeak, runBytes(memory, ModelSpec.read(f).shape(), total));
                names.add(f.getFileName().toString());
            }
            long writePeak = 0;
            long cached = 0;
            long write = 0;
            for (String type : syntheticTypes) {
                ModelShape shape = SyntheticModel.shape(type);
                runPeak = Math.max(runPeak, runBytes(memory, shape, total));
                long fileBytes = shape.weightBytes() + SYNTHETIC_METADATA_BYTES;
                cached += fileBytes;
                if (!Files.isRegularFile(SyntheticModel.file(cache, type))) {
                    write += fileBytes;
                    writePeak = Math.max(writePeak, shape.weightBytes() + SyntheticModel.floatBufferBytes());
                }
                names.add(SyntheticModel.file(cache, type).getFileName().toString());
            }
            long copy = 2L * copyMib << 20;
            return new Cost(
                    Math.max(writePeak, copy + runPeak), writePeak, copy, runPeak, cached, write, List.copyOf(names));
        }

        private static long runBytes(MemoryModel memory, ModelShape shape, long tokens) {
            long kv = memory.kvBytesPerToken(shape, KvCacheType.F16) * memory.slotsFor(tokens);
            return shape.weightBytes() + kv + memory.workspaceBytes(shape);
        }

        /** Why the models cannot be written to cache on a disk with {@code freeBytes} free, or null when they can. */
        String noRoom(Path cache, long freeBytes) {
            if (freeBytes < 0 || freeBytes >= writeBytes) {
                return null;
            }
            return "--1b needs " + Bytes.human(writeBytes) + " free to write its models under " + cache
                    + ", but that disk has " + Bytes.human(freeBytes) + "; free some space or run without --1b";
        }

        /** What --rounds adds to the cost line: nothing for one round, else that the time is multiplied. */
        static String roundsNote(int rounds) {
            return rounds == 1
                    ? ""
                    : "; --rounds " + rounds + " measures every model and thread count " + rounds
                            + " times, so the run takes about " + rounds + " times as long (memory and disk as above)";
        }

        /** One line: the models, the memory and its parts, and what goes to disk. */
        String describe(Path cache) {
            StringBuilder b = new StringBuilder();
            b.append(String.join(", ", models))
                    .append(": needs about ")
                    .append(Bytes.human(memoryBytes))
                    .append(" of memory beyond the JVM's own (copy-bandwidth arrays ")
                    .append(Bytes.human(copyBytes))
                    .append(", then the largest model's weights, KV pool and workspace ")
                    .append(Bytes.human(runPeakBytes));
            if (writePeakBytes > 0) {
                b.append("; writing a 1B model holds ")
                        .append(Bytes.human(writePeakBytes))
                        .append(" on the heap");
            }
            b.append(")");
            if (writeBytes > 0) {
                b.append(" and writes ")
                        .append(Bytes.human(writeBytes))
                        .append(" to ")
                        .append(cache)
                        .append(" (once; later runs reuse it; delete the directory to reclaim it)");
            } else if (cachedBytes > 0) {
                b.append("; writes nothing (the 1B models are cached in ")
                        .append(cache)
                        .append(", ")
                        .append(Bytes.human(cachedBytes))
                        .append(")");
            } else {
                b.append("; writes nothing");
            }
            return b.toString();
        }
    }

    /** Free bytes on the disk that holds dir (or its nearest existing parent); -1 when unknown. */
    private static long usableSpace(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        try {
            return p == null ? -1 : Files.getFileStore(p).getUsableSpace();
        } catch (IOException e) {
            return -1;
        }
    }

    /** Bytes one decode step reads: every weight once, but only one row of token_embd unless it doubles as the head. */
    static long bytesReadPerToken(ModelSpec spec) {
        long sum = 0;
        boolean tiedHead = spec.file().tensor("output.weight").isEmpty();
        for (GgufTensorInfo t : spec.file().tensors()) {
            if (t.name().equals("token_embd.weight") && !tiedHead) {
                sum += t.byteSize() / t.dim(1);
            } else {
                sum += t.byteSize();
            }
        }
        return sum;
    }

    /** One round of Stowage on a model already open: its result row (tok/s, bandwidth, memory figures). */
    private static Map<String, Object> benchOn(
            NativeModel model,
            ModelSpec spec,
            Path path,
            int threads,
            int promptTokens,
            int decodeTokens,
            double copyBandwidth,
            Backend gpu,
            String label,
            PrintStream err) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("model", path.getFileName().toString());
        row.put("threads", threads);
        row.put("device", gpu == null ? "cpu" : gpu.deviceInfo().name());
        {
            int vocab = model.vocabSize();
            int total = promptTokens + decodeTokens + 8;
            // The placement memory model for this run's step shape: its figures must equal what the engine allocates.
            MemoryModel memory = new MemoryModel(new MemoryParameters(0, 0, promptTokens, 1, KvPool.BLOCK_TOKENS, 0));
            long budget = memory.kvBytesPerToken(spec.shape(), KvCacheType.F16) * memory.slotsFor(total);
            try (ComputeContext ctx = gpu == null
                            ? model.newContext(threads, promptTokens, 1)
                            : model.newContext(gpu, promptTokens, 1);
                    KvPool pool = gpu == null
                            ? model.newKvPool(KvCacheType.F16, budget)
                            : model.newKvPool(gpu, KvCacheType.F16, budget)) {
                SplittableRandom random = new SplittableRandom(7);
                float[] logits = new float[vocab];
                // Warm-up: page the mapped weights in and let the threads spin up.
                try (Sequence warm = pool.newSequence(total)) {
                    step(
                            ctx,
                            warm,
                            random.ints(Math.min(8, promptTokens), 0, vocab).toArray(),
                            logits);
                    step(ctx, warm, new int[] {1}, logits);
                }
                long promptNanos;
                long decodeNanos;
                try (Sequence seq = pool.newSequence(total)) {
                    int[] prompt = random.ints(promptTokens, 0, vocab).toArray();
                    long t0 = System.nanoTime();
                    step(ctx, seq, prompt, logits);
                    promptNanos = System.nanoTime() - t0;
                    int token = argmax(logits);
                    long t1 = System.nanoTime();
                    for (int i = 0; i < decodeTokens; i++) {
                        step(ctx, seq, new int[] {token}, logits);
                        token = argmax(logits);
                    }
                    decodeNanos = System.nanoTime() - t1;
                }
                double promptTps = promptTokens * 1e9 / promptNanos;
                double decodeTps = decodeTokens * 1e9 / decodeNanos;
                long readBytes = bytesReadPerToken(spec);
                double achieved = readBytes * decodeTps;
                row.put(
                        "parameters",
                        spec.file().tensors().stream()
                                .mapToLong(GgufTensorInfo::elementCount)
                                .sum());
                row.put("weightBytes", model.weightBytes());
                row.put("promptTokens", promptTokens);
                row.put("decodeTokens", decodeTokens);
                row.put("promptTokensPerSecond", round(promptTps));
                row.put("decodeTokensPerSecond", round(decodeTps));
                row.put("bytesReadPerToken", readBytes);
                row.put("achievedBandwidthBytesPerSecond", Math.round(achieved));
                // a GPU run has no copy figure here (the host's copy bandwidth says nothing about device memory)
                boolean copied = !Double.isNaN(copyBandwidth);
                row.put("copyBandwidthBytesPerSecond", copied ? Math.round(copyBandwidth) : null);
                row.put("bandwidthShare", copied ? round(achieved / copyBandwidth) : null);
                long wsEstimate = memory.workspaceBytes(spec.shape());
                row.put("workspaceBytes", ctx.workspaceBytes());
                row.put("workspaceEstimateBytes", wsEstimate);
                row.put("kvPoolBytes", pool.allocatedBytes());
                row.put("kvEstimateBytes", budget);
                err.printf(
                        Locale.ROOT,
                        "bench-engine: %s%s, %s: prompt %.1f tok/s, decode %.2f tok/s, %.2f GB/s%s%n",
                        label,
                        path.getFileName(),
                        gpu == null ? threads + " thread(s)" : row.get("device"),
                        promptTps,
                        decodeTps,
                        achieved / 1e9,
                        copied ? String.format(Locale.ROOT, " (%.0f%% of copy)", 100 * achieved / copyBandwidth) : "");
            }
        }
        return row;
    }

    private static void step(ComputeContext ctx, Sequence seq, int[] tokens, float[] logits) {
        Sequence[] seqs = new Sequence[tokens.length];
        Arrays.fill(seqs, seq);
        boolean[] want = new boolean[tokens.length];
        want[tokens.length - 1] = true;
        ctx.decode(tokens, seqs, want, logits);
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** (estimate − measured) / measured, in percent. */
    private static double error(long estimate, long measured) {
        return measured == 0 ? 0 : 100.0 * (estimate - measured) / measured;
    }

    private static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }

    /**
     * The table: one line per model and thread count; with several rounds each round's line (prefixed round i/N) and
     * then a median line with the ranges of the per-round ratios.
     */
    static void printTable(List<Rounds> results, PrintStream out) {
        boolean several = results.stream().anyMatch(r -> r.perRound().size() > 1);
        String prefix = several ? "%-11s " : "%s";
        out.printf(
                Locale.ROOT,
                prefix + "%-32s %3s %12s %12s %11s %10s %6s %14s %14s%n",
                several ? "round" : "",
                "model",
                "thr",
                "prompt t/s",
                "decode t/s",
                "read/token",
                "GB/s",
                "% copy",
                "llama.cpp pp",
                "llama.cpp tg");
        for (Rounds result : results) {
            int n = result.perRound().size();
            if (!several) {
                printRow(prefix, "", result.summary(), "", out);
                continue;
            }
            for (int i = 0; i < n; i++) {
                printRow(prefix, "round " + (i + 1) + "/" + n, result.perRound().get(i), "", out);
            }
            Map<String, Object> s = result.summary();
            String ranges = s.get("promptRatioMin") instanceof Double
                    ? String.format(
                            Locale.ROOT,
                            "  ratio ranges over %d rounds: prompt x%.2f..x%.2f, decode x%.2f..x%.2f",
                            n,
                            (double) s.get("promptRatioMin"),
                            (double) s.get("promptRatioMax"),
                            (double) s.get("decodeRatioMin"),
                            (double) s.get("decodeRatioMax"))
                    : "  (medians of " + n + " rounds)";
            printRow(prefix, "median", s, ranges, out);
        }
    }

    private static void printRow(String prefix, String label, Map<String, Object> r, String tail, PrintStream out) {
        out.printf(
                Locale.ROOT,
                prefix + "%-32s %3d %12.1f %12.2f %11s %10.2f %6s %14s %14s%s%n",
                label,
                r.get("model"),
                (int) r.get("threads"),
                (double) r.get("promptTokensPerSecond"),
                (double) r.get("decodeTokensPerSecond"),
                Bytes.human((long) r.get("bytesReadPerToken")),
                ((long) r.get("achievedBandwidthBytesPerSecond")) / 1e9,
                r.get("bandwidthShare") instanceof Double share
                        ? String.format(Locale.ROOT, "%.0f%%", 100 * share)
                        : "-",
                ratio(r, "llamaCppPromptTokensPerSecond", "promptTokensPerSecond", "promptRatio"),
                ratio(r, "llamaCppDecodeTokensPerSecond", "decodeTokensPerSecond", "decodeRatio"),
                tail);
    }

    private static String ratio(Map<String, Object> r, String theirs, String ours, String ratio) {
        Object t = r.get(theirs);
        if (!(t instanceof Double d) || d <= 0) {
            return "-";
        }
        // the record's ratio where it has one (the ratio of the medians in a summary), else ours / theirs
        double x = r.get(ratio) instanceof Double given ? given : (double) r.get(ours) / d;
        return String.format(Locale.ROOT, "%.1f (x%.2f)", d, x);
    }

    /**
     * The rounds of one model and thread count: each round's record (Stowage's figures, then the peer's, measured
     * right after it) and their summary: the record with every tok/s (and the bandwidth figures derived from decode)
     * replaced by its median over the rounds, the ratios of the medians, the min..max of the per-round ratios, and
     * each round's four tok/s.
     */
    record Rounds(List<Map<String, Object>> perRound, Map<String, Object> summary) {
        /** Figures whose summary is their median over the rounds. */
        private static final List<String> MEDIANS = List.of(
                "promptTokensPerSecond",
                "decodeTokensPerSecond",
                "achievedBandwidthBytesPerSecond",
                "bandwidthShare",
                "llamaCppPromptTokensPerSecond",
                "llamaCppDecodeTokensPerSecond");

        /** Each round's four tok/s in perRound. */
        private static final List<String> PER_ROUND = List.of(
                "promptTokensPerSecond",
                "decodeTokensPerSecond",
                "llamaCppPromptTokensPerSecond",
                "llamaCppDecodeTokensPerSecond");

        /**
         * Runs {@code rounds} rounds alternating the engines: round i measures Stowage ({@code ours}, which returns the
         * round's record), then the peer (null: none) on the same record, before round i + 1 starts.
         */
        static Rounds run(
                int rounds, IntFunction<Map<String, Object>> ours, BiConsumer<Integer, Map<String, Object>> peer) {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int i = 0; i < rounds; i++) {
                Map<String, Object> row = ours.apply(i);
                if (peer != null) {
                    peer.accept(i, row);
                }
                rows.add(row);
            }
            return of(rows);
        }

        /** The summary of the given rounds' records (at least one). */
        static Rounds of(List<Map<String, Object>> rows) {
            if (rows.isEmpty()) {
                throw new IllegalArgumentException("no rounds to summarize");
            }
            Map<String, Object> s = new LinkedHashMap<>(rows.get(rows.size() - 1));
            for (String key : MEDIANS) {
                double[] v = rows.stream()
                        .filter(r -> r.get(key) instanceof Number)
                        .mapToDouble(r -> ((Number) r.get(key)).doubleValue())
                        .toArray();
                if (v.length == 0) {
                    continue;
                }
                double m = median(v);
                s.put(key, s.get(key) instanceof Long ? (Object) Math.round(m) : (Object) round(m));
            }
            s.put("rounds", rows.size());
            ratioFields(rows, s, "promptRatio", "promptTokensPerSecond", "llamaCppPromptTokensPerSecond");
            ratioFields(rows, s, "decodeRatio", "decodeTokensPerSecond", "llamaCppDecodeTokensPerSecond");
            List<Map<String, Object>> perRound = new ArrayList<>();
            for (Map<String, Object> r : rows) {
                Map<String, Object> p = new LinkedHashMap<>();
                for (String key : PER_ROUND) {
                    if (r.containsKey(key)) {
                        p.put(key, r.get(key));
                    }
                }
                perRound.add(p);
            }
            s.put("perRound", perRound);
            return new Rounds(List.copyOf(rows), s);
        }

        /**
         * The ratio of the medians and the range of the per-round ratios, over the rounds where the peer ran; nothing
         * when it ran in none. One round keeps its own ratio, so min, max and ratio are equal.
         */
        private static void ratioFields(
                List<Map<String, Object>> rows, Map<String, Object> s, String ratio, String ours, String theirs) {
            double[] perRound = rows.stream()
                    .filter(r -> r.get(ratio) instanceof Number)
                    .mapToDouble(r -> ((Number) r.get(ratio)).doubleValue())
                    .toArray();
            if (perRound.length == 0) {
                s.remove(ratio);
                return;
            }
            if (rows.size() > 1) {
                s.put(ratio, round((double) s.get(ours) / (double) s.get(theirs)));
            }
            s.put(ratio + "Min", Arrays.stream(perRound).min().getAsDouble());
            s.put(ratio + "Max", Arrays.stream(perRound).max().getAsDouble());
        }

        /** The middle value, or the mean of the two middle values of an even count. */
        static double median(double[] values) {
            double[] v = values.clone();
            Arrays.sort(v);
            int n = v.length;
            return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        }
    }

    /** The machine's copy bandwidth with n threads (STREAM convention: bytes read plus bytes written per second). */
    static final class CopyBandwidth {
        private CopyBandwidth() {}

        static double measure(int threads, int size) {
            byte[] src = new byte[size];
            byte[] dst = new byte[size];
            Arrays.fill(src, (byte) 1);
            Arrays.fill(dst, (byte) 2);
            double best = 0;
            for (int rep = 0; rep < 5; rep++) {
                long t0 = System.nanoTime();
                copy(src, dst, threads);
                long ns = System.nanoTime() - t0;
                best = Math.max(best, 2.0 * size * 1e9 / ns);
            }
            return best;
        }

        private static void copy(byte[] src, byte[] dst, int threads) {
            if (threads == 1) {
                System.arraycopy(src, 0, dst, 0, src.length);
                return;
            }
            Thread[] workers = new Thread[threads];
            int chunk = src.length / threads;
            for (int i = 0; i < threads; i++) {
                int from = i * chunk;
                int len = i == threads - 1 ? src.length - from : chunk;
                workers[i] = new Thread(() -> System.arraycopy(src, from, dst, from, len));
                workers[i].start();
            }
            for (Thread w : workers) {
                try {
                    w.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * The llama.cpp peer: llama-bench built natively from the source node-llama-cpp bundles, or node-llama-cpp's
     * prebuilt CPU build when that build is not possible; puts its tokens/s and our ratios into a result row.
     */
    static final class LlamaCpp {
        /** How long the one-time native build may take on a slow machine. */
        static final long BUILD_MINUTES = 90;

        private LlamaCpp() {}

        /**
         * The peer that runs: {@code llamaBench} is the natively built binary, or null for the prebuilt fallback
         * (then {@code benchDir} holds llama-cpp-bench.mjs).
         */
        record Peer(Path benchDir, Path llamaBench, String version) {
            boolean isNative() {
                return llamaBench != null;
            }

            String describe() {
                return isNative()
                        ? "llama.cpp built natively (-DGGML_NATIVE=ON, CPU) from node-llama-cpp's bundled source, "
                                + version + ", " + llamaBench
                        : "node-llama-cpp's prebuilt CPU build (generic, not tuned for this CPU), " + version;
            }
        }

        /** Builds (or finds cached) the native peer; falls back to the prebuilt with a warning; null: no peer. */
        static Peer resolve(Path benchDir, Path cacheDir, PrintStream err) {
            if (!Files.isDirectory(benchDir.resolve("node_modules/node-llama-cpp"))) {
                err.println("bench-engine: llama.cpp comparison skipped: run `npm install` in " + benchDir
                        + " first (it brings llama.cpp's source and prebuilt binaries)");
                return null;
            }
            String version = bundledVersion(benchDir);
            String why;
            try {
                Process p = new ProcessBuilder(
                                "bash",
                                benchDir.resolve("build-llama-cpp.sh").toString(),
                                cacheDir.toAbsolutePath().toString())
                        .redirectError(ProcessBuilder.Redirect.INHERIT)
                        .start();
                String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
                if (!p.waitFor(BUILD_MINUTES, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    why = "the build took longer than " + BUILD_MINUTES + " minutes";
                } else if (p.exitValue() != 0) {
                    why = "build-llama-cpp.sh exited with " + p.exitValue() + " (its output is above)";
                } else {
                    Path bin = Path.of(output.lines().reduce((a, b) -> b).orElse(""));
                    if (Files.isExecutable(bin)) {
                        return new Peer(benchDir, bin, version);
                    }
                    why = "build-llama-cpp.sh printed no executable llama-bench path (got '" + output + "')";
                }
            } catch (IOException e) {
                why = "cannot run build-llama-cpp.sh (is bash on the PATH?): " + e.getMessage();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
            err.println("bench-engine: WARNING: no natively built llama.cpp: " + why
                    + "; comparing with node-llama-cpp's prebuilt generic CPU build instead, which is slower than a"
                    + " native build on this CPU, so the ratios flatter Stowage");
            return new Peer(benchDir, null, version);
        }

        /** node-llama-cpp's version and the llama.cpp release it bundles, from its package files. */
        static String bundledVersion(Path benchDir) {
            Path pkg = benchDir.resolve("node_modules/node-llama-cpp");
            try {
                com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
                Map<?, ?> p = json.readValue(pkg.resolve("package.json").toFile(), Map.class);
                Map<?, ?> info =
                        json.readValue(pkg.resolve("llama/llama.cpp.info.json").toFile(), Map.class);
                return "node-llama-cpp " + p.get("version") + " (" + info.get("llamaCppGithubRepo") + " "
                        + info.get("tag") + ")";
            } catch (IOException | RuntimeException e) {
                return "node-llama-cpp (version unknown)";
            }
        }

        /** Runs the peer on one model and puts its tokens/s, the ratios and the peer's name into the row. */
        static void run(
                Peer peer,
                Path model,
                int threads,
                int prompt,
                int decode,
                Map<String, Object> row,
                String label,
                PrintStream err) {
            double[] tps;
            try {
                tps = peer.isNative()
                        ? runNative(peer.llamaBench(), model, threads, prompt, decode)
                        : runPrebuilt(peer.benchDir(), model, threads, prompt, decode);
            } catch (IOException e) {
                err.println("bench-engine: " + label + "llama.cpp run failed on " + model.getFileName() + ": "
                        + e.getMessage());
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            row.put("llamaCppPeer", peer.isNative() ? "native" : "prebuilt");
            row.put("llamaCppVersion", peer.version());
            row.put("llamaCppPromptTokensPerSecond", round(tps[0]));
            row.put("llamaCppDecodeTokensPerSecond", round(tps[1]));
            row.put("promptRatio", round((double) row.get("promptTokensPerSecond") / tps[0]));
            row.put("decodeRatio", round((double) row.get("decodeTokensPerSecond") / tps[1]));
            err.printf(
                    Locale.ROOT,
                    "bench-engine: %sllama.cpp (%s) %s, %d thread(s): prompt %.1f tok/s, decode %.2f tok/s%n",
                    label,
                    peer.isNative() ? "native" : "prebuilt",
                    model.getFileName(),
                    threads,
                    tps[0],
                    tps[1]);
        }

        /**
         * llama-bench -p prompt -n decode: the mean tok/s of its prompt test (one batch of {@code prompt} tokens) and of
         * its generation test ({@code decode} single-token steps), each repeated 3 times after a warm-up run.
         */
        static double[] runNative(Path llamaBench, Path model, int threads, int prompt, int decode)
                throws IOException, InterruptedException {
            Process p = new ProcessBuilder(
                            llamaBench.toString(),
                            "-m",
                            model.toAbsolutePath().toString(),
                            "-t",
                            Integer.toString(threads),
                            "-p",
                            Integer.toString(prompt),
                            "-n",
                            Integer.toString(decode),
                            "-r",
                            "3",
                            "-o",
                            "json")
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IOException("llama-bench failed (exit " + (p.isAlive() ? "timeout" : p.exitValue()) + "): "
                        + output.lines().limit(5).reduce("", (a, b) -> a + " " + b));
            }
            return parseLlamaBench(output);
        }

        /** [prompt tok/s, decode tok/s] from llama-bench's {@code -o json} array (one record per test). */
        static double[] parseLlamaBench(String json) throws IOException {
            List<?> records = new com.fasterxml.jackson.databind.ObjectMapper().readValue(json, List.class);
            double promptTps = -1;
            double decodeTps = -1;
            for (Object o : records) {
                if (!(o instanceof Map<?, ?> r) || !(r.get("avg_ts") instanceof Number ts)) {
                    continue;
                }
                long nPrompt = r.get("n_prompt") instanceof Number n ? n.longValue() : 0;
                long nGen = r.get("n_gen") instanceof Number n ? n.longValue() : 0;
                if (nPrompt > 0 && nGen == 0) {
                    promptTps = ts.doubleValue();
                } else if (nGen > 0 && nPrompt == 0) {
                    decodeTps = ts.doubleValue();
                }
            }
            if (promptTps <= 0 || decodeTps <= 0) {
                throw new IOException("llama-bench's JSON has no prompt and generation records with avg_ts: "
                        + (json.length() > 200 ? json.substring(0, 200) + "..." : json));
            }
            return new double[] {promptTps, decodeTps};
        }

        /** node-llama-cpp's prebuilt build through llama-cpp-bench.mjs. */
        static double[] runPrebuilt(Path benchDir, Path model, int threads, int prompt, int decode)
                throws IOException, InterruptedException {
            Process p = new ProcessBuilder(
                            "node",
                            benchDir.resolve("llama-cpp-bench.mjs").toString(),
                            "--model",
                            model.toAbsolutePath().toString(),
                            "--threads",
                            Integer.toString(threads),
                            "--prompt-tokens",
                            Integer.toString(prompt),
                            "--decode-tokens",
                            Integer.toString(decode))
                    .directory(benchDir.toFile())
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IOException("node llama-cpp-bench.mjs failed: " + output);
            }
            String last = output.lines().reduce((a, b) -> b).orElse("");
            Map<?, ?> r = new com.fasterxml.jackson.databind.ObjectMapper().readValue(last, Map.class);
            if (!(r.get("promptTokensPerSecond") instanceof Number pp)
                    || !(r.get("decodeTokensPerSecond") instanceof Number tg)) {
                throw new IOException("llama-cpp-bench.mjs printed no tokens/s: " + last);
            }
            return new double[] {pp.doubleValue(), tg.doubleValue()};
        }
    }
}
