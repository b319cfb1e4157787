package io.stowage.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.stowage.hostapi.ModelHeader;
import io.stowage.placement.gguf.GgufType;
import io.stowage.runtime.engine.CudaExpectation;
import io.stowage.runtime.engine.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runtime commands run in-process: inspect, generate, tokenize, and their usage errors. */
class MainTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The operator's fixture of the probe's termination message (the tests run in the runtime-image directory). */
    private static final String PROBE_FIXTURE = "../operator/src/test/resources/probe/stories260K-q8_0.header.json";

    record Run(int code, String out, String err) {
        JsonNode json() throws Exception {
            return JSON.readTree(out);
        }
    }

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void inspectJsonStatesTheFactsOfTheQ8Model() throws Exception {
        Run r = run("inspect", TestModels.q8().toString(), "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode j = r.json();
        assertThat(j.get("architecture").asText()).isEqualTo("llama");
        assertThat(j.get("name").asText()).isEqualTo("stories260K");
        assertThat(j.get("quantization").asText()).isEqualTo("Q8_0");
        assertThat(j.get("tensorCount").asInt()).isEqualTo(48);
        assertThat(j.get("engine").asText()).isEqualTo("supported");
        JsonNode h = j.get("hyperparameters");
        assertThat(h.get("layers").asInt()).isEqualTo(5);
        assertThat(h.get("headCount").asInt()).isEqualTo(8);
        assertThat(h.get("headCountKv").asInt()).isEqualTo(4);
        assertThat(h.get("vocabSize").asInt()).isEqualTo(512);
        // Independently from the README's shapes: sum of elements, and Q8_0 vs F32 bytes.
        long embd = 64, ff = 172, vocab = 512, kv = 32;
        long perLayer = embd * embd * 2 + embd * kv * 2 + embd * ff * 3 + embd * 2;
        long params = embd * vocab * 2 + embd + 5 * perLayer;
        assertThat(j.get("parameters").asLong()).isEqualTo(params);
        long f32Bytes = 4 * (embd + 5 * (2 * embd + ff * embd));
        assertThat(j.at("/bytesByType/F32/bytes").asLong()).isEqualTo(f32Bytes);
        assertThat(j.get("weightBytes").asLong()).isEqualTo(474_848L);
        assertThat(j.get("tensors").get(0).get("name").asText()).isEqualTo("token_embd.weight");
        assertThat(j.get("tensors").get(0).get("type").asText()).isEqualTo("Q8_0");
        JsonNode m = j.get("memory");
        assertThat(m.get("kvBytesPerToken").asLong()).isEqualTo(5 * 2 * kv * 2);
        assertThat(m.get("kvBytes").asLong()).isEqualTo(5 * 2 * kv * 2 * 512);
        assertThat(m.get("weightBytes").asLong()).isEqualTo(474_848L);
        assertThat(m.get("hostOverheadBytes").asLong()).isPositive();
        assertThat(m.get("totalBytes").asLong())
                .isEqualTo(m.get("weightBytes").asLong()
                        + m.get("kvBytes").asLong()
                        + m.get("workspaceBytes").asLong()
                        + m.get("hostOverheadBytes").asLong());
    }

    /**
     * The operator's probe pod runs {@code inspect --json --output /dev/termination-log URI}: the file gets the
     * host-api ModelHeader summary, byte for byte the fixture the operator's parser test reads.
     */
    @Test
    void inspectOutputWritesTheProbeSummaryTheOperatorReads(@TempDir Path dir) throws Exception {
        Path termination = dir.resolve("termination-log");
        String uri = TestModels.q8().toUri().toString();
        assertThat(uri).startsWith("file:/");
        Run r = run("inspect", "--json", "--output", termination.toString(), uri);
        assertThat(r.code()).as(r.err()).isZero();

        String written = Files.readString(termination, StandardCharsets.UTF_8);
        assertThat(written).isEqualTo(Files.readString(Path.of(PROBE_FIXTURE), StandardCharsets.UTF_8));
        ModelHeader h = JSON.readValue(written, ModelHeader.class);
        assertThat(h.architecture()).isEqualTo("llama");
        assertThat(h.quantization()).isEqualTo("Q8_0");
        assertThat(h.shape().layers()).isEqualTo(5);
        assertThat(h.shape().headCountKv()).isEqualTo(4);
        assertThat(h.shape().contextLength()).isEqualTo(512);
        // The people's JSON still goes to stdout, with the same summary as its "header" field.
        JsonNode report = r.json();
        assertThat(report.get("tensors").size()).isPositive();
        assertThat(report.get("header")).isEqualTo(JSON.readTree(written));
    }

    /** An http(s) source (hf and s3 URIs resolve to one): the header alone over Range requests, no download. */
    @Test
    void inspectReadsARemoteHeaderOverRangeRequests(@TempDir Path dir) throws Exception {
        byte[] model = Files.readAllBytes(TestModels.q8());
        List<String> ranges = new CopyOnWriteArrayList<>();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/m.gguf", ex -> {
            String range = ex.getRequestHeaders().getFirst("Range");
            ranges.add(String.valueOf(range));
            int from = 0;
            int to = model.length - 1;
            if (range != null && range.startsWith("bytes=")) {
                String[] p = range.substring(6).split("-");
                from = Integer.parseInt(p[0]);
                if (p.length > 1 && !p[1].isEmpty()) {
                    to = Math.min(to, Integer.parseInt(p[1]));
                }
                ex.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + to + "/" + model.length);
            }
            ex.sendResponseHeaders(range == null ? 200 : 206, to - from + 1);
            ex.getResponseBody().write(model, from, to - from + 1);
            ex.close();
        });
        server.start();
        try {
            Path termination = dir.resolve("termination-log");
            String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/m.gguf";
            Run r = run("inspect", "--output", termination.toString(), url);
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(Files.readString(termination))
                    .isEqualTo(Files.readString(Path.of(PROBE_FIXTURE), StandardCharsets.UTF_8));
            assertThat(ranges).isNotEmpty().allSatisfy(x -> assertThat(x).startsWith("bytes="));
        } finally {
            server.stop(0);
        }
    }

    @Test
    void inspectOutputCarriesTheErrorWhenTheModelCannotBeRead(@TempDir Path dir) throws Exception {
        Path termination = dir.resolve("termination-log");
        Path junk = dir.resolve("junk.gguf");
        Files.writeString(junk, "not a gguf at all");
        Run bad = run(
                "inspect",
                "--json",
                "--output",
                termination.toString(),
                junk.toUri().toString());
        assertThat(bad.code()).isEqualTo(1);
        assertThat(Files.readString(termination))
                .contains("is not a valid GGUF file")
                .contains("junk.gguf");

        Run missing = run("inspect", "--output", termination.toString(), "file:///source/absent.gguf");
        assertThat(missing.code()).isEqualTo(1);
        assertThat(Files.readString(termination)).contains("file:///source/absent.gguf does not exist");

        Run scheme = run("inspect", "--output", termination.toString(), "ftp://example.com/m.gguf");
        assertThat(scheme.code()).isEqualTo(1);
        assertThat(scheme.err()).contains("unknown URI scheme 'ftp'");
    }

    @Test
    void inspectTextShowsTheTensorTableAndBreakdown() {
        Run r = run(
                "inspect", TestModels.f32().toString(), "--max-tokens", "100", "--max-sequences", "2", "--kv", "q8_0");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("architecture   llama")
                .contains("quantization   F32")
                .contains("100 tokens × 2 sequences, KV q8_0")
                .contains("blk.4.ffn_down.weight");
    }

    @Test
    void generateJsonGivesTheGoldenIdsAndText() throws Exception {
        JsonNode golden = TestModels.golden("stories260K.golden.json");
        Run r = run(
                "generate",
                "--model",
                TestModels.f32().toString(),
                "--prompt",
                "Once upon a time",
                "-n",
                "40",
                "--temp",
                "0",
                "--threads",
                "1",
                "--kv",
                "f32",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode j = r.json();
        assertThat(j.get("promptIds")).isEqualTo(golden.get("prompt_token_ids"));
        assertThat(j.get("ids")).isEqualTo(golden.get("generated_token_ids"));
        assertThat("Once upon a time" + j.get("text").asText())
                .isEqualTo(golden.get("full_text").asText());
        assertThat(r.err()).contains("prompt: 5 tokens").contains("tok/s");
    }

    @Test
    void generateStreamsTextToStdoutAndSpeedsToStderr() {
        Run r = run(
                "generate",
                "--model",
                TestModels.q8().toString(),
                "--prompt",
                "Once upon a time",
                "-n",
                "12",
                "--threads",
                "1");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("Once upon a time, there was a little girl named Lily");
        assertThat(r.err()).containsPattern("generation: 12 tokens, 11 decode steps in [0-9.]+ ms");
    }

    @Test
    void tokenizePrintsIdsAsAJsonArray() {
        assertThat(run("tokenize", "--model", TestModels.f32().toString(), "--text", "Once upon a time", "--bos")
                        .out()
                        .trim())
                .isEqualTo("[1,403,407,261,378]");
        assertThat(run("tokenize", "--model", TestModels.f32().toString(), "--text", "Once upon a time")
                        .out()
                        .trim())
                .isEqualTo("[403,407,261,378]");
    }

    @Test
    void usageErrorsExitWithTwoAndSayWhatIsWrong() {
        Run missing = run("generate", "--prompt", "x");
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).contains("--model is required");
        Run badTemp = run("generate", "--model", TestModels.f32().toString(), "--prompt", "x", "--temp", "hot");
        assertThat(badTemp.code()).isEqualTo(2);
        assertThat(badTemp.err()).contains("--temp must be a number, got 'hot'");
        Run unknown = run("inspect", TestModels.f32().toString(), "--frobnicate");
        assertThat(unknown.code()).isEqualTo(2);
        assertThat(unknown.err()).contains("unknown option --frobnicate");
        assertThat(run("bogus").code()).isEqualTo(2);
        assertThat(run("generate", "--help").out()).contains("usage: ./stowage generate");
    }

    @Test
    void badModelFilesAreReportedNotThrown(@TempDir Path dir) throws Exception {
        Path junk = dir.resolve("junk.gguf");
        Files.writeString(junk, "not a gguf at all");
        Run inspect = run("inspect", junk.toString());
        assertThat(inspect.code()).isEqualTo(1);
        assertThat(inspect.err()).contains("is not a valid GGUF file");
        Run generate = run("generate", "--model", junk.toString(), "--prompt", "x");
        assertThat(generate.code()).isEqualTo(1);
        assertThat(generate.err()).contains(junk.toString());
        Run tooLong = run("generate", "--model", TestModels.f32().toString(), "--prompt", "x", "-n", "600");
        assertThat(tooLong.code()).isEqualTo(1);
        assertThat(tooLong.err()).contains("exceeds the model's context of 512 tokens");
    }

    /** The benchmark's bookkeeping (not its timings): rows per model and thread count, bytes read, memory model agreement. */
    @Test
    void benchEngineJsonReportsEveryRowAndTheMemoryModelAgrees() throws Exception {
        Run r = run(
                "bench-engine",
                "--model",
                TestModels.q8().toString(),
                "--threads",
                "1,2",
                "--prompt-tokens",
                "8",
                "--decode-tokens",
                "4",
                "--copy-mib",
                "4",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode results = r.json().get("results");
        assertThat(results).hasSize(2);
        for (JsonNode row : results) {
            assertThat(row.get("model").asText()).isEqualTo("stories260K-q8_0.gguf");
            assertThat(row.get("promptTokensPerSecond").asDouble()).isPositive();
            assertThat(row.get("decodeTokensPerSecond").asDouble()).isPositive();
            // Every weight once, output.weight included, but one row of token_embd (34,816 bytes / 512 rows).
            assertThat(row.get("bytesReadPerToken").asLong()).isEqualTo(474_848L - 34_816L + 68L);
            assertThat(row.get("workspaceBytes").asLong())
                    .isEqualTo(row.get("workspaceEstimateBytes").asLong());
            assertThat(row.get("kvPoolBytes").asLong())
                    .isEqualTo(row.get("kvEstimateBytes").asLong());
        }
        assertThat(results.get(0).get("threads").asInt()).isEqualTo(1);
        assertThat(results.get(1).get("threads").asInt()).isEqualTo(2);
    }

    /** The default run is the light one: stories260K only, its cost printed first, nothing written to disk. */
    @Test
    void benchEngineDefaultRunsTheTestModelOnlyAndSaysWhatItCostsFirst() throws Exception {
        Run r = run(
                "bench-engine",
                "--threads",
                "1",
                "--prompt-tokens",
                "8",
                "--decode-tokens",
                "4",
                "--copy-mib",
                "4",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode results = r.json().get("results");
        assertThat(results).hasSize(1);
        assertThat(results.get(0).get("model").asText()).isEqualTo("stories260K-f32.gguf");
        String first = r.err().lines().findFirst().orElseThrow();
        assertThat(first)
                .startsWith("bench-engine: stories260K-f32.gguf: needs about ")
                .contains("copy-bandwidth arrays 8.00 MiB")
                .endsWith("; writes nothing");
        assertThat(r.err()).doesNotContain("1.1B").doesNotContain("writing");
    }

    @Test
    void benchEngineOnACudaDeviceThisMachineCannotUseSaysWhyInOneLineAndExits2() {
        CudaExpectation.assumeNoGpu();
        for (String device : List.of("cuda", "cuda:1")) {
            Run r = run("bench-engine", "--device", device, "--json");
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            assertThat(r.err().strip())
                    .startsWith("bench-engine: --device " + device + ": " + CudaExpectation.refusal())
                    .doesNotContain("\n");
            assertThat(r.out()).isEmpty();
        }
    }

    @Test
    void benchEngineTakesCpuOrACudaDeviceAndNoPeerOnTheGpu() {
        assertThat(run("bench-engine", "--device", "tpu").err())
                .contains("bench-engine: --device must be cpu, cuda or cuda:N, got 'tpu'");
        assertThat(run("bench-engine", "--device", "tpu").code()).isEqualTo(2);
        Run peer = run("bench-engine", "--device", "cuda", "--llama-cpp");
        assertThat(peer.code()).isEqualTo(2);
        assertThat(peer.err()).contains("--llama-cpp measures llama.cpp on the CPU only");
    }

    @Test
    void benchEngineNoLongerTakesNo1bAndTells() {
        Run r = run("bench-engine", "--no-1b");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--no-1b");
        assertThat(run("bench-engine", "--help").out()).contains("--1b adds the heavy run");
    }

    /** The 1B model's size comes from its tensor list; checked here against the shape worked out by hand. */
    @Test
    void syntheticModelShapeCountsEveryTensorByte() {
        long embd = 2048, ff = 5632, vocab = 32000, kv = 256, layers = 22;
        long quantized = 2 * embd * vocab + layers * (2 * embd * embd + 2 * embd * kv + 3 * embd * ff);
        long f32 = embd + layers * 2 * embd;
        // Q8_0: 34 bytes per block of 32 values; Q4_0: 18 bytes per 32.
        assertThat(SyntheticModel.shape(GgufType.Q8_0).weightBytes()).isEqualTo(quantized / 32 * 34 + 4 * f32);
        assertThat(SyntheticModel.shape(GgufType.Q4_0).weightBytes()).isEqualTo(quantized / 32 * 18 + 4 * f32);
        assertThat(SyntheticModel.tensors(GgufType.Q8_0)).hasSize(3 + 9 * 22);
    }

    /**
     * --1b's cost with an empty cache: both models to write (their file sizes), the writer's peak for the larger one
     * (its weights and one float buffer per tensor size), and the run's peak from the memory model, all before anything runs.
     */
    @Test
    void benchEngineCostOfThe1bRunIsKnownBeforeItStarts(@TempDir Path cache) throws Exception {
        var q8 = SyntheticModel.shape(GgufType.Q8_0);
        var q4 = SyntheticModel.shape(GgufType.Q4_0);
        BenchEngineCommand.Cost cost =
                BenchEngineCommand.Cost.of(List.of(TestModels.f32()), List.of("Q8_0", "Q4_0"), cache, 128, 32, 256);
        long meta = BenchEngineCommand.Cost.SYNTHETIC_METADATA_BYTES;
        // Float buffers: token_embd/output (2048 x 32000), attn_q/attn_output (2048 x 2048), attn_k/attn_v (2048 x
        // 256),
        // ffn_gate/ffn_up/ffn_down (2048 x 5632).
        long buffers = 4L * (2048 * 32000 + 2048 * 2048 + 2048 * 256 + 2048 * 5632);
        assertThat(SyntheticModel.floatBufferBytes()).isEqualTo(buffers);
        assertThat(cost.writeBytes()).isEqualTo(q8.weightBytes() + q4.weightBytes() + 2 * meta);
        assertThat(cost.cachedBytes()).isEqualTo(cost.writeBytes());
        assertThat(cost.writePeakBytes()).isEqualTo(q8.weightBytes() + buffers);
        assertThat(cost.copyBytes()).isEqualTo(512L << 20);
        assertThat(cost.runPeakBytes()).isGreaterThan(q8.weightBytes()).isLessThan(q8.weightBytes() + (64L << 20));
        assertThat(cost.memoryBytes())
                .isEqualTo(Math.max(cost.writePeakBytes(), cost.copyBytes() + cost.runPeakBytes()));
        assertThat(cost.describe(cache)).contains("and writes " + Bytes.human(cost.writeBytes()) + " to " + cache);
        assertThat(cost.noRoom(cache, cost.writeBytes())).isNull();
        assertThat(cost.noRoom(cache, cost.writeBytes() - 1))
                .isEqualTo("--1b needs " + Bytes.human(cost.writeBytes()) + " free to write its models under " + cache
                        + ", but that disk has " + Bytes.human(cost.writeBytes() - 1)
                        + "; free some space or run without --1b");

        // Once the Q8_0 file is cached, only the Q4_0 one is left to write, and the writer's peak is the Q4_0 model's.
        Files.writeString(SyntheticModel.file(cache, "Q8_0"), "cached");
        BenchEngineCommand.Cost later =
                BenchEngineCommand.Cost.of(List.of(), List.of("Q8_0", "Q4_0"), cache, 128, 32, 256);
        assertThat(later.writeBytes()).isEqualTo(q4.weightBytes() + meta);
        assertThat(later.writePeakBytes()).isEqualTo(q4.weightBytes() + buffers);
    }
}
