package io.stowage.placement.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.cli.Main;
import io.stowage.placement.cli.MiniJson;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BenchCommandTest {

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Main.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    @SuppressWarnings("unchecked")
    void jsonOutputIsOneDocumentWithEveryInstanceAndTheScaleCase() {
        Run r = run("bench", "--size", "tiny", "--json", "--changes", "5");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("bench: scale:");
        Map<String, Object> doc = (Map<String, Object>) MiniJson.parse(r.out());
        List<Map<String, Object>> instances = (List<Map<String, Object>>) doc.get("instances");
        assertThat(instances).hasSize(2 * BenchCommand.specs(true).size());
        for (Map<String, Object> i : instances) {
            assertThat(i)
                    .containsKeys(
                            "name",
                            "memoryBound",
                            "computeCap",
                            "replicas",
                            "wholeGpu",
                            "noSharing",
                            "stowage",
                            "lowerBound",
                            "planMillis");
            assertThat(i.get("memoryBound")).isInstanceOf(Boolean.class);
            double replicas = (Double) i.get("replicas");
            // nothing is refused in the generated fleets, so the bound holds and whole-GPU uses one per replica
            assertThat((Double) i.get("stowageRefused")).isZero();
            assertThat((Double) i.get("lowerBound")).isLessThanOrEqualTo((Double) i.get("stowage"));
            assertThat((Double) i.get("wholeGpu")).isEqualTo(replicas);
        }
        assertThat(instances.getFirst().get("name")).isEqualTo("small/cap0.25");
        assertThat(instances.get(1).get("computeCap")).isEqualTo(0.0);
        assertThat((Double) doc.get("fullPlanMillis")).isPositive();
        assertThat((Double) doc.get("incrementalP99Millis")).isPositive();
        assertThat(((Map<String, Object>) doc.get("scale")).get("changes")).isEqualTo(5.0);
    }

    @Test
    void textOutputIsDeterministicApartFromTimes() {
        String a = run("bench", "--size", "tiny", "--no-scale", "--seed", "9").out();
        String b = run("bench", "--size", "tiny", "--no-scale", "--seed", "9").out();
        assertThat(stripTimes(a)).isEqualTo(stripTimes(b)).contains("memory-bound-repeated/nocap");
    }

    @Test
    @SuppressWarnings("unchecked")
    void replaysTheExampleCsvTrace() {
        Run r = run(
                "bench",
                "--csv",
                Path.of("..", "examples", "plan", "bench-trace.csv").toString(),
                "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> doc = (Map<String, Object>) MiniJson.parse(r.out());
        List<Map<String, Object>> instances = (List<Map<String, Object>>) doc.get("instances");
        assertThat(instances).hasSize(1);
        assertThat(instances.getFirst().get("name")).isEqualTo("bench-trace.csv");
        assertThat(instances.getFirst().get("replicas")).isEqualTo(13.0);
        assertThat(doc.get("fullPlanMillis")).isNull();
    }

    @Test
    void traceRowsAreParsedAndCheckedWithTheirLineNumbers() {
        Fleet f = TraceReader.parse("t.csv", """
                # devices then demands
                device,n1/gpu-0,n1,gpu,80Gi,1Gi,2Gi,pool=a
                demand,chat,m1,4Gi,100Mi,1Gi,3,0.25,5,1,pool=a
                demand,batch,m1,4Gi,100Mi,512Mi,2
                """);
        assertThat(f.devices().getFirst().capacityBytes()).isEqualTo(77L << 30);
        assertThat(f.deployments()).hasSize(2);
        assertThat(f.deployments().getFirst().maxReplicasPerNode()).isEqualTo(1);
        assertThat(f.deployments().getFirst().nodeSelector()).containsEntry("pool", "a");
        assertThat(f.deployments().get(1).computeShare()).isEqualTo(0.25);
        assertThat(f.replicas()).isEqualTo(5);
        assertThatThrownBy(() -> TraceReader.parse(
                        "t.csv", "device,d,n,gpu,80Gi\ndemand,x,m1,4Gi,1Mi,1Gi,1\ndemand,y,m1,5Gi,1Mi,1Gi,1\n"))
                .hasMessage("t.csv line 3: model m1 has other weight or workspace bytes than on an earlier line");
        assertThatThrownBy(() -> TraceReader.parse("t.csv", "gpu,d\n"))
                .hasMessage("t.csv line 1: the first column must be device or demand, got \"gpu\"");
        assertThatThrownBy(() -> TraceReader.parse("t.csv", "device,d,n,gpu,lots\n"))
                .hasMessageStartingWith("t.csv line 1: MEMORY: not a byte size");
    }

    @Test
    void usageErrorsExitWith2() {
        assertThat(run("bench", "--size", "huge").exit()).isEqualTo(2);
        assertThat(run("bench", "--seed", "abc").err()).contains("option --seed must be an integer, got \"abc\"");
        assertThat(run("bench", "--help").out()).contains("--csv FILE", "demand,ID,MODEL");
    }

    private static String stripTimes(String s) {
        return s.replaceAll("\\s+[0-9.]+\\s+(\\d+/\\d+/\\d+)", " T $1");
    }
}
