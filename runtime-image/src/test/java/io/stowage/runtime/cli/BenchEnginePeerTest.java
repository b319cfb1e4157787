package io.stowage.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.gguf.GgufType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bench-engine's llama.cpp peer (native build, prebuilt fallback, llama-bench's JSON) and its Q4_K_M model. */
class BenchEnginePeerTest {

    @Test
    void readsPromptAndGenerationRecordsFromLlamaBenchJson() throws IOException {
        String json = """
                [
                  {"build_commit": "de3ff815", "n_threads": 2, "n_prompt": 128, "n_gen": 0, "avg_ts": 142.25},
                  {"build_commit": "de3ff815", "n_threads": 2, "n_prompt": 0, "n_gen": 32, "avg_ts": 37.5}
                ]
                """;
        assertThat(BenchEngineCommand.LlamaCpp.parseLlamaBench(json)).containsExactly(142.25, 37.5);
    }

    @Test
    void llamaBenchJsonWithoutBothTestsIsAnErrorThatQuotesIt() {
        String json = "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 10.0}]";
        assertThatThrownBy(() -> BenchEngineCommand.LlamaCpp.parseLlamaBench(json))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("no prompt and generation records")
                .hasMessageContaining("\"n_prompt\": 128");
    }

    @Test
    void withoutNodeLlamaCppThereIsNoPeerAndTheMessageSaysWhatToInstall(@TempDir Path bench) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        assertThat(BenchEngineCommand.LlamaCpp.resolve(bench, bench.resolve("cache"), print(err)))
                .isNull();
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("run `npm install` in " + bench);
    }

    /** A native build that fails leaves the prebuilt peer, with a warning that says the ratios then flatter us. */
    @Test
    void failedNativeBuildFallsBackToThePrebuiltWithAWarning(@TempDir Path bench) throws IOException {
        Files.createDirectories(bench.resolve("node_modules/node-llama-cpp"));
        Files.writeString(bench.resolve("build-llama-cpp.sh"), "echo 'no compiler here' >&2; exit 3\n");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        BenchEngineCommand.LlamaCpp.Peer peer =
                BenchEngineCommand.LlamaCpp.resolve(bench, bench.resolve("cache"), print(err));
        assertThat(peer).isNotNull();
        assertThat(peer.isNative()).isFalse();
        assertThat(peer.describe()).startsWith("node-llama-cpp's prebuilt CPU build");
        assertThat(err.toString(StandardCharsets.UTF_8))
                .contains("WARNING: no natively built llama.cpp: build-llama-cpp.sh exited with 3")
                .contains("the ratios flatter Stowage");
    }

    /** A build that succeeds gives the native peer: the binary whose path the script printed last. */
    @Test
    void nativeBuildGivesTheNativePeer(@TempDir Path bench) throws IOException {
        Files.createDirectories(bench.resolve("node_modules/node-llama-cpp"));
        Path bin = bench.resolve("llama-bench");
        Files.writeString(bin, "#!/bin/sh\n");
        assertThat(bin.toFile().setExecutable(true)).isTrue();
        Files.writeString(bench.resolve("build-llama-cpp.sh"), "echo building >&2; echo '" + bin + "'\n");
        BenchEngineCommand.LlamaCpp.Peer peer =
                BenchEngineCommand.LlamaCpp.resolve(bench, bench.resolve("cache"), print(new ByteArrayOutputStream()));
        assertThat(peer.isNative()).isTrue();
        assertThat(peer.llamaBench()).isEqualTo(bin);
        assertThat(peer.describe()).startsWith("llama.cpp built natively (-DGGML_NATIVE=ON, CPU)");
    }

    /** The JSON record of a model and thread count carries both engines' tok/s, the ratios and which peer ran. */
    @Test
    void peerResultsAndRatiosGoIntoTheRecord(@TempDir Path bench) throws IOException {
        Path script = bench.resolve("llama-bench");
        Files.writeString(script, """
                #!/bin/sh
                echo '[{"n_prompt": 128, "n_gen": 0, "avg_ts": 200.0}, {"n_prompt": 0, "n_gen": 32, "avg_ts": 40.0}]'
                """);
        assertThat(script.toFile().setExecutable(true)).isTrue();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("promptTokensPerSecond", 150.0);
        row.put("decodeTokensPerSecond", 50.0);
        BenchEngineCommand.LlamaCpp.run(
                new BenchEngineCommand.LlamaCpp.Peer(bench, script, "test"),
                bench.resolve("m.gguf"),
                2,
                128,
                32,
                row,
                "",
                print(new ByteArrayOutputStream()));
        assertThat(row)
                .containsEntry("llamaCppPeer", "native")
                .containsEntry("llamaCppPromptTokensPerSecond", 200.0)
                .containsEntry("llamaCppDecodeTokensPerSecond", 40.0)
                .containsEntry("promptRatio", 0.75)
                .containsEntry("decodeRatio", 1.25);
    }

    /** Q4_K_M follows llama.cpp's recipe: Q6_K head, Q6_K attn_v/ffn_down in the use_more_bits layers, else Q4_K. */
    @Test
    void q4KmModelUsesQ6KWhereLlamaCppDoes() {
        assertThat(SyntheticModel.matrixType("Q4_K_M", "output.weight", -1)).isEqualTo(GgufType.Q6_K);
        assertThat(SyntheticModel.matrixType("Q4_K_M", "token_embd.weight", -1)).isEqualTo(GgufType.Q4_K);
        // 22 layers: n/8 = 2, 7n/8 = 19; layers 0, 1, 4, 7, ..., 19, 20, 21 get more bits.
        assertThat(SyntheticModel.matrixType("Q4_K_M", "blk.0.attn_v.weight", 0))
                .isEqualTo(GgufType.Q6_K);
        assertThat(SyntheticModel.matrixType("Q4_K_M", "blk.4.ffn_down.weight", 4))
                .isEqualTo(GgufType.Q6_K);
        assertThat(SyntheticModel.matrixType("Q4_K_M", "blk.3.ffn_down.weight", 3))
                .isEqualTo(GgufType.Q4_K);
        assertThat(SyntheticModel.matrixType("Q4_K_M", "blk.4.ffn_up.weight", 4))
                .isEqualTo(GgufType.Q4_K);
        assertThat(SyntheticModel.matrixType("Q4_K_M", "blk.21.attn_v.weight", 21))
                .isEqualTo(GgufType.Q6_K);
        long q6 = SyntheticModel.tensors("Q4_K_M").stream()
                .filter(t -> t.type() == GgufType.Q6_K)
                .count();
        // the head, and attn_v + ffn_down in layers 0, 1, 4, 7, 10, 13, 16, 19, 20, 21
        assertThat(q6).isEqualTo(1 + 2 * 10);
        assertThat(SyntheticModel.fileType("Q4_K_M")).isEqualTo(15);
        assertThatThrownBy(() -> SyntheticModel.mainType("Q5_K"))
                .isInstanceOf(UsageException.class)
                .hasMessageContaining("unknown synthetic model kind 'Q5_K'");
    }

    private static PrintStream print(ByteArrayOutputStream b) {
        return new PrintStream(b, true, StandardCharsets.UTF_8);
    }
}
