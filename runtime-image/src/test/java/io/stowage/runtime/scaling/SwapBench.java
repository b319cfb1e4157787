package io.stowage.runtime.scaling;

import io.stowage.hostapi.HostAssignment;
import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.placement.manifest.ByteSize;
import io.stowage.placement.manifest.Scaling;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import io.stowage.runtime.host.GenerationRequest;
import io.stowage.runtime.host.Host;
import io.stowage.runtime.host.HostSettings;
import io.stowage.runtime.host.ModelFetcher;
import io.stowage.runtime.host.TokenSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Benchmark of hot swap (a main, not a test): time to first token of a request for a deployment scaled to zero, with
 * its weights still resident and with them loaded from the model file, next to a deployment that stayed warm; and
 * the file's bytes per second through an activation from the file against a plain read of the same file. The time
 * runs from the request's arrival at the scaler (lease, activation, KV allocation, queueing) to its first token.
 *
 * <pre>
 * ./stowage bench-swap [--model FILE.gguf | --layers N] [--rounds N] [--threads N]
 * </pre>
 *
 * Without {@code --model} it writes a Llama-shaped F32 model of N layers (about 60 MB each, 4 by default) with
 * stories260K's tokenizer under runtime-image/target/swap-bench. The swapped deployment reads its own copy of the
 * file (the warm one's mapping would keep the pages cached), timed twice per round: from the page cache (the file was
 * just read) and from the disk, after dropping the copy's pages from the page cache with {@code dd iflag=nocache}
 * (posix_fadvise DONTNEED: no root needed); the plain read is timed the same two ways. Where the cache cannot be
 * dropped the cold lines say so. On a virtual machine "the disk" may itself be cached by the hypervisor.
 */
public final class SwapBench {
    private static final Path DIR = Path.of("runtime-image/target/swap-bench");
    private static final Path STORIES = Path.of("runtime-image/src/test/resources/models/stories260K-q8_0.gguf");
    private static final int[] PROMPT = {1, 403, 407, 261};

    private SwapBench() {}

    public static void main(String[] args) throws Exception {
        Path model = null;
        int layers = 4;
        int rounds = 10;
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                System.out.println(
                        "usage: ./stowage bench-swap [--model FILE.gguf | --layers N] [--rounds N]" + " [--threads N]");
                return;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            switch (a) {
                case "--model" -> model = Path.of(args[++i]);
                case "--layers" -> layers = positive(a, args[++i]);
                case "--rounds" -> rounds = positive(a, args[++i]);
                case "--threads" -> threads = positive(a, args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + a + " (see --help)");
            }
        }
        Files.createDirectories(DIR);
        if (model == null) {
            model = DIR.resolve("llama-" + layers + "-layers.gguf");
            if (!Files.isRegularFile(model)) {
                System.out.printf("writing a %d-layer F32 model to %s ...%n", layers, model);
                TestModels.writeLlamaShapedF32(STORIES, model, layers);
            }
        }
        run(model, rounds, threads);
        if (!model.toAbsolutePath().normalize().equals(STORIES.toAbsolutePath().normalize())
                && Files.isRegularFile(STORIES)) {
            System.out.println();
            run(STORIES, rounds, threads);
        }
    }

    private static int positive(String option, String value) {
        int n = Integer.parseInt(value);
        if (n < 1) {
            throw new IllegalArgumentException(option + " must be at least 1, got " + value);
        }
        return n;
    }

    private static void run(Path model, int rounds, int threads) throws Exception {
        long fileBytes = Files.size(model);
        Path cache = Files.createDirectories(DIR.resolve("cache"));
        Path swapFile = DIR.resolve("swap-copy-" + model.getFileName());
        Files.copy(model, swapFile, StandardCopyOption.REPLACE_EXISTING);
        boolean canDrop = dropFromPageCache(swapFile);
        if (!canDrop) {
            System.out.println(
                    "(cannot drop the page cache of a file here: no dd with iflag=nocache; cold lines left out)");
        }
        try (Host host = new Host(
                        new HostSettings(
                                "cpu", "bench/cpu", 1L << 40, 4 * fileBytes + (1L << 30), cache, threads, 64, 8, 16),
                        new ModelFetcher(cache, Map.of()));
                Scaler scaler = new Scaler(host)) {
            host.allowModelFiles(List.of(model, swapFile));
            // two digests of one file: "warm" never scales, "swap" scales to zero after 50 ms
            HostAssignment a = new HostAssignment(
                    1,
                    0,
                    List.of(
                            new ModelAssignment("bench:warm", model.toString(), null, 0, 0),
                            new ModelAssignment("bench:swap", swapFile.toString(), null, 0, 0)),
                    List.of(
                            new ReplicaAssignment("b/warm#0", "b/warm", "warm", "bench:warm", 64, 1, "f16", 0),
                            new ReplicaAssignment("b/swap#0", "b/swap", "swap", "bench:swap", 64, 1, "f16", 0)));
            scaler.apply(a, Map.of("b/swap", new Scaling(0, Duration.ofMillis(50))), Set.of());
            await(() -> host.route("warm") != null && host.route("swap") != null, "both models loaded");
            ttft(scaler, "warm"); // first use of each copy: pages mapped in
            ttft(scaler, "swap");

            long[] warm = new long[rounds];
            long[] resident = new long[rounds];
            long[] fromFile = new long[rounds];
            long[] plain = new long[rounds];
            long[] fromDisk = new long[rounds];
            long[] plainDisk = new long[rounds];
            for (int i = 0; i < rounds; i++) {
                warm[i] = ttft(scaler, "warm");
                await(() -> scaler.idleDeployments().contains("b/swap"), "swap released");
                resident[i] = ttft(scaler, "swap");
                evictWhenIdle(scaler);
                fromFile[i] = ttft(scaler, "swap");
                plain[i] = plainRead(swapFile);
                if (canDrop) {
                    // the copy's pages can leave the cache only while nothing maps them: evict first
                    evictWhenIdle(scaler);
                    dropUntilCold(swapFile);
                    fromDisk[i] = ttft(scaler, "swap");
                    evictWhenIdle(scaler);
                    dropUntilCold(swapFile);
                    plainDisk[i] = plainRead(swapFile);
                    ttft(scaler, "swap"); // loaded again for the next round's resident case (not timed)
                }
            }
            System.out.printf(
                    Locale.ROOT,
                    "hot swap of %s (%s, %d threads), median of %d rounds (min .. max):%n",
                    model.getFileName(),
                    ByteSize.human(fileBytes),
                    threads,
                    rounds);
            line("warm (never scaled)", warm, -1);
            line("after idle, weights resident", resident, -1);
            line("after idle, from the file (cached)", fromFile, fileBytes);
            line("plain read of the file (cached)", plain, fileBytes);
            if (canDrop) {
                line("after idle, from the disk", fromDisk, fileBytes);
                line("plain read from the disk", plainDisk, fileBytes);
            }
            long[] state = new long[rounds];
            for (int i = 0; i < rounds; i++) {
                long t = System.nanoTime();
                host.state();
                state[i] = System.nanoTime() - t;
            }
            line("(a read of the host's state)", state, -1);
        }
    }

    private static void line(String what, long[] nanos, long bytes) {
        long[] s = nanos.clone();
        Arrays.sort(s);
        long median = s[s.length / 2];
        String rate = bytes < 0 ? "" : String.format(Locale.ROOT, "  %6.2f GB/s", bytes / (double) median);
        System.out.printf(
                Locale.ROOT,
                "  %-36s %9.2f ms  (%.2f .. %.2f)%s%n",
                what,
                median / 1e6,
                s[0] / 1e6,
                s[s.length - 1] / 1e6,
                rate);
    }

    /** From the request's arrival (its lease) to its first token. */
    private static long ttft(Scaler scaler, String name) throws Exception {
        long start = System.nanoTime();
        CompletableFuture<Long> first = new CompletableFuture<>();
        CompletableFuture<Void> done = new CompletableFuture<>();
        try (Scaler.Lease lease = scaler.acquire(name)) {
            if (lease != null || !scaler.serving(name)) {
                scaler.whenServing(name).get(60, TimeUnit.SECONDS);
            }
            scaler.host()
                    .device()
                    .submit(
                            scaler.host().route(name),
                            new GenerationRequest(PROMPT, 2, SamplerParams.greedy(), List.of(), -1),
                            new TokenSink() {
                                @Override
                                public void onPiece(Piece piece) {
                                    first.complete(System.nanoTime());
                                }

                                @Override
                                public void onFinish(String finishReason, int promptTokens, int completionTokens) {
                                    done.complete(null);
                                }

                                @Override
                                public void onError(int httpStatus, String type, String message) {
                                    done.completeExceptionally(new IllegalStateException(message));
                                    first.completeExceptionally(new IllegalStateException(message));
                                }
                            });
        }
        long t = first.get(60, TimeUnit.SECONDS) - start;
        done.get(60, TimeUnit.SECONDS);
        return t;
    }

    /** Waits for the swapped deployment to be released, then drops its weights. */
    private static void evictWhenIdle(Scaler scaler) throws InterruptedException {
        await(() -> scaler.idleDeployments().contains("b/swap"), "swap released");
        if (!scaler.evictIdle("b/swap")) {
            throw new IllegalStateException("could not evict the idle copy of swap");
        }
    }

    /**
     * Drops the file's pages from the page cache ({@code dd iflag=nocache count=0}: posix_fadvise DONTNEED over the
     * whole file, allowed for any reader of the file); false where that is not possible.
     */
    private static boolean dropFromPageCache(Path file) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(
                            "dd", "if=" + file.toAbsolutePath(), "iflag=nocache", "count=0", "status=none")
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Drops the file's pages until {@code fincore} reports none resident: a dropped copy's mapping goes away a little
     * after its eviction, and mapped pages stay cached. Without fincore one drop is all it can do.
     */
    private static void dropUntilCold(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        long resident;
        do {
            dropFromPageCache(file);
            resident = residentBytes(file);
            if (resident <= 0) {
                return;
            }
            Thread.sleep(10);
        } while (System.nanoTime() < deadline);
        throw new IllegalStateException(file + ": " + resident + " bytes still in the page cache 10 s after its"
                + " copy was evicted (still mapped?); the cold figures would be cached ones");
    }

    /** The file's bytes in the page cache by {@code fincore}, or -1 where fincore is not there. */
    private static long residentBytes(Path file) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(
                            "fincore",
                            "-b",
                            "-n",
                            "-r",
                            "-o",
                            "RES",
                            file.toAbsolutePath().toString())
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).trim();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 && out.matches("\\d+")
                    ? Long.parseLong(out)
                    : -1;
        } catch (IOException e) {
            return -1;
        }
    }

    /** Reads the whole file once into one direct buffer. */
    private static long plainRead(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(8 << 20);
        long start = System.nanoTime();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf) >= 0) {
                buf.clear();
            }
        }
        return System.nanoTime() - start;
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("timed out waiting for: " + what);
            }
            Thread.sleep(1);
        }
    }
}
