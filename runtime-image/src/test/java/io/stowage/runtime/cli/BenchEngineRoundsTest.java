package io.stowage.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.stowage.runtime.engine.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** bench-engine --rounds: its parsing, the alternation of the engines, the medians and ratio ranges, the output. */
class BenchEngineRoundsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void roundsOutsideOneToTwentyOrNotANumberAreAOneLineUsageErrorWithExit2() {
        for (String bad : List.of("0", "21", "-3", "two", "1.5")) {
            MainTest.Run r = MainTest.run("bench-engine", "--rounds", bad);
            assertThat(r.code()).as(bad).isEqualTo(2);
            assertThat(r.err().lines().filter(l -> l.startsWith("bench-engine: --rounds")))
                    .as(r.err())
                    .hasSize(1)
                    .first()
                    .asString()
                    .containsAnyOf("must be in 1..20, got " + bad, "must be an integer, got '" + bad + "'");
            assertThat(r.out()).isEmpty();
        }
        assertThat(MainTest.run("bench-engine", "--help").out()).contains("--rounds N (1..20, default 1)");
    }

    @Test
    void theCostLineSaysRoundsMultiplyTheTime() {
        assertThat(BenchEngineCommand.Cost.roundsNote(1)).isEmpty();
        assertThat(BenchEngineCommand.Cost.roundsNote(5))
                .contains("--rounds 5 measures every model and thread count 5 times")
                .contains("about 5 times as long");
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertThat(BenchEngineCommand.Rounds.median(new double[] {3, 1, 2})).isEqualTo(2.0);
        assertThat(BenchEngineCommand.Rounds.median(new double[] {4, 1, 3, 2})).isEqualTo(2.5);
        assertThat(BenchEngineCommand.Rounds.median(new double[] {7})).isEqualTo(7.0);
    }

    /** The rounds run S, L, S, L, ...: each peer run right after the Stowage run of the same round. */
    @Test
    void theEnginesAlternateRoundByRound() {
        List<String> order = new ArrayList<>();
        BenchEngineCommand.Rounds r = BenchEngineCommand.Rounds.run(
                3,
                round -> {
                    order.add("S" + round);
                    return ours(100 + round, 20 + round);
                },
                (round, row) -> {
                    order.add("L" + round);
                    theirs(row, 100, 20);
                });
        assertThat(order).containsExactly("S0", "L0", "S1", "L1", "S2", "L2");
        assertThat(r.perRound()).hasSize(3);
    }

    /** Odd N: the medians are the middle rounds' figures; the ratio range spans the per-round ratios. */
    @Test
    void threeRoundsGiveMediansTheRatioOfMediansAndTheRangeOfRoundRatios() throws Exception {
        double[][] figures = {
            // ours pp, ours tg, theirs pp, theirs tg
            {90, 30, 100, 25}, {120, 27, 100, 30}, {100, 24, 125, 20},
        };
        List<Map<String, Object>> rows = new ArrayList<>();
        for (double[] f : figures) {
            Map<String, Object> row = ours(f[0], f[1]);
            theirs(row, f[2], f[3]);
            rows.add(row);
        }
        JsonNode s =
                JSON.readTree(Json.pretty(BenchEngineCommand.Rounds.of(rows).summary()));
        assertThat(s.get("model").asText()).isEqualTo("m.gguf");
        assertThat(s.get("rounds").asInt()).isEqualTo(3);
        assertThat(s.get("promptTokensPerSecond").asDouble()).isEqualTo(100.0);
        assertThat(s.get("decodeTokensPerSecond").asDouble()).isEqualTo(27.0);
        assertThat(s.get("llamaCppPromptTokensPerSecond").asDouble()).isEqualTo(100.0);
        assertThat(s.get("llamaCppDecodeTokensPerSecond").asDouble()).isEqualTo(25.0);
        // bandwidth follows the median decode rate: 1,000 bytes per token
        assertThat(s.get("achievedBandwidthBytesPerSecond").asLong()).isEqualTo(27_000L);
        assertThat(s.get("bandwidthShare").asDouble()).isEqualTo(0.27);
        assertThat(s.get("promptRatio").asDouble()).isEqualTo(1.0);
        assertThat(s.get("decodeRatio").asDouble()).isEqualTo(1.08);
        // per-round ratios: prompt 0.9, 1.2, 0.8; decode 1.2, 0.9, 1.2
        assertThat(s.get("promptRatioMin").asDouble()).isEqualTo(0.8);
        assertThat(s.get("promptRatioMax").asDouble()).isEqualTo(1.2);
        assertThat(s.get("decodeRatioMin").asDouble()).isEqualTo(0.9);
        assertThat(s.get("decodeRatioMax").asDouble()).isEqualTo(1.2);
        JsonNode perRound = s.get("perRound");
        assertThat(perRound).hasSize(3);
        for (int i = 0; i < 3; i++) {
            JsonNode p = perRound.get(i);
            assertThat(p.size()).isEqualTo(4);
            assertThat(p.get("promptTokensPerSecond").asDouble()).isEqualTo(figures[i][0]);
            assertThat(p.get("decodeTokensPerSecond").asDouble()).isEqualTo(figures[i][1]);
            assertThat(p.get("llamaCppPromptTokensPerSecond").asDouble()).isEqualTo(figures[i][2]);
            assertThat(p.get("llamaCppDecodeTokensPerSecond").asDouble()).isEqualTo(figures[i][3]);
        }
    }

    /** Even N: each median is the mean of the two middle rounds. */
    @Test
    void fourRoundsTakeTheMeanOfTheTwoMiddleRounds() {
        double[][] figures = {{80, 20, 100, 20}, {100, 30, 100, 25}, {90, 40, 110, 30}, {120, 10, 90, 10}};
        List<Map<String, Object>> rows = new ArrayList<>();
        for (double[] f : figures) {
            Map<String, Object> row = ours(f[0], f[1]);
            theirs(row, f[2], f[3]);
            rows.add(row);
        }
        Map<String, Object> s = BenchEngineCommand.Rounds.of(rows).summary();
        assertThat(s)
                .containsEntry("rounds", 4)
                .containsEntry("promptTokensPerSecond", 95.0)
                .containsEntry("decodeTokensPerSecond", 25.0)
                .containsEntry("llamaCppPromptTokensPerSecond", 100.0)
                .containsEntry("llamaCppDecodeTokensPerSecond", 22.5)
                .containsEntry("promptRatio", 0.95)
                .containsEntry("decodeRatio", 1.11)
                .containsEntry("promptRatioMin", 0.8)
                .containsEntry("promptRatioMax", 1.33)
                .containsEntry("decodeRatioMin", 1.0)
                .containsEntry("decodeRatioMax", 1.33);
    }

    /** One round is today's record plus rounds: 1, min and max equal to the ratio, and its one perRound entry. */
    @Test
    void oneRoundKeepsTheRecordAndItsRatio() {
        Map<String, Object> row = ours(150, 50);
        theirs(row, 200, 40);
        Map<String, Object> before = new LinkedHashMap<>(row);
        Map<String, Object> s = BenchEngineCommand.Rounds.of(List.of(row)).summary();
        assertThat(s).containsAllEntriesOf(before);
        assertThat(s)
                .containsEntry("rounds", 1)
                .containsEntry("promptRatioMin", 0.75)
                .containsEntry("promptRatioMax", 0.75)
                .containsEntry("decodeRatioMin", 1.25)
                .containsEntry("decodeRatioMax", 1.25);
        assertThat(new ArrayList<>(s.keySet()).subList(0, before.size())).containsExactlyElementsOf(before.keySet());
    }

    /** Without a peer there are no ratios to range over, only the medians of our figures. */
    @Test
    void withoutAPeerTheSummaryHasNoRatios() {
        Map<String, Object> s = BenchEngineCommand.Rounds.run(2, round -> ours(10 * (round + 1), 5), null)
                .summary();
        assertThat(s).containsEntry("promptTokensPerSecond", 15.0).containsEntry("rounds", 2);
        assertThat(s).doesNotContainKeys("promptRatio", "promptRatioMin", "decodeRatioMax");
        assertThat((List<?>) s.get("perRound")).hasSize(2);
    }

    /** The table: each round's line prefixed round i/N, then the median line with the ratio ranges. */
    @Test
    void tablePrintsEachRoundThenTheMediansAndRanges() {
        List<Map<String, Object>> rows = new ArrayList<>();
        double[][] figures = {{90, 30, 100, 25}, {120, 27, 100, 30}};
        for (double[] f : figures) {
            Map<String, Object> row = ours(f[0], f[1]);
            theirs(row, f[2], f[3]);
            rows.add(row);
        }
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        BenchEngineCommand.printTable(
                List.of(BenchEngineCommand.Rounds.of(rows)), new PrintStream(b, true, StandardCharsets.UTF_8));
        List<String> lines = b.toString(StandardCharsets.UTF_8).lines().toList();
        assertThat(lines).hasSize(4);
        assertThat(lines.get(0)).startsWith("round").contains("llama.cpp tg");
        assertThat(lines.get(1)).startsWith("round 1/2").contains("100.0 (x0.90)");
        assertThat(lines.get(2)).startsWith("round 2/2").contains("100.0 (x1.20)");
        assertThat(lines.get(3))
                .startsWith("median")
                .contains("105.0")
                .contains("100.0 (x1.05)")
                .endsWith("ratio ranges over 2 rounds: prompt x0.90..x1.20, decode x0.90..x1.20");
    }

    /** One round prints today's table: no round column. */
    @Test
    void oneRoundTableHasNoRoundColumn() {
        Map<String, Object> row = ours(150, 50);
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        BenchEngineCommand.printTable(
                List.of(BenchEngineCommand.Rounds.of(List.of(row))), new PrintStream(b, true, StandardCharsets.UTF_8));
        List<String> lines = b.toString(StandardCharsets.UTF_8).lines().toList();
        assertThat(lines).hasSize(2);
        assertThat(lines.get(0)).startsWith("model");
        assertThat(lines.get(1)).startsWith("m.gguf").doesNotContain("round").doesNotContain("median");
    }

    /** The real engine on the test model, two rounds: each record has the medians, its two rounds and no ratios. */
    @Test
    void twoRoundsOnTheTestModelGiveOneRecordPerThreadCountWithItsRounds() throws Exception {
        MainTest.Run r = MainTest.run(
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
                "--rounds",
                "2",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err().lines().findFirst().orElseThrow()).contains("about 2 times as long");
        assertThat(r.err()).contains("bench-engine: round 1/2: stories260K-q8_0.gguf, 1 thread(s)");
        assertThat(r.err()).contains("bench-engine: round 2/2: stories260K-q8_0.gguf, 2 thread(s)");
        JsonNode results = JSON.readTree(r.out()).get("results");
        assertThat(results).hasSize(2);
        for (JsonNode row : results) {
            assertThat(row.get("rounds").asInt()).isEqualTo(2);
            JsonNode perRound = row.get("perRound");
            assertThat(perRound).hasSize(2);
            double median = (perRound.get(0).get("decodeTokensPerSecond").asDouble()
                            + perRound.get(1).get("decodeTokensPerSecond").asDouble())
                    / 2;
            assertThat(row.get("decodeTokensPerSecond").asDouble()).isCloseTo(median, within(0.006));
            assertThat(row.get("workspaceBytes").asLong())
                    .isEqualTo(row.get("workspaceEstimateBytes").asLong());
            assertThat(row.has("promptRatioMin")).isFalse();
        }
    }

    /** A Stowage record as benchOn makes it: 1,000 bytes read per token, 100,000 B/s copy bandwidth. */
    private static Map<String, Object> ours(double prompt, double decode) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("model", "m.gguf");
        row.put("threads", 2);
        row.put("promptTokensPerSecond", prompt);
        row.put("decodeTokensPerSecond", decode);
        row.put("bytesReadPerToken", 1000L);
        row.put("achievedBandwidthBytesPerSecond", Math.round(1000 * decode));
        row.put("copyBandwidthBytesPerSecond", 100_000L);
        row.put("bandwidthShare", Math.round(1000 * decode / 100_000.0 * 100) / 100.0);
        return row;
    }

    /** The peer's figures and the round's ratios, as LlamaCpp.run puts them. */
    private static void theirs(Map<String, Object> row, double prompt, double decode) {
        row.put("llamaCppPeer", "native");
        row.put("llamaCppPromptTokensPerSecond", prompt);
        row.put("llamaCppDecodeTokensPerSecond", decode);
        row.put("promptRatio", Math.round((double) row.get("promptTokensPerSecond") / prompt * 100) / 100.0);
        row.put("decodeRatio", Math.round((double) row.get("decodeTokensPerSecond") / decode * 100) / 100.0);
    }
}
