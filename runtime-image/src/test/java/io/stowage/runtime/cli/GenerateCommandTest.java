package io.stowage.runtime.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.runtime.engine.Generator;
import io.stowage.runtime.engine.NanModels;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.engine.TestModels;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code generate} stops where the shipped tiny model ends its story (BOS), not in the next story, and reports a
 * model that produces NaN as an error, not a crash.
 */
class GenerateCommandTest {
    @TempDir
    Path dir;

    @Test
    void aMissingModelIsOneLineInWordsNotAJavaExceptionName() throws Exception {
        MainTest.Run r =
                MainTest.run("generate", "--model", dir.resolve("nope.gguf").toString(), "--prompt", "x");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip())
                .isEqualTo("generate: model " + dir.resolve("nope.gguf") + ": no such file")
                .doesNotContain("Exception");
    }

    @Test
    void generateStopsAtTheBosThatEndsTheStory() throws Exception {
        int[] prompt = {1, 403, 407, 261, 378};
        int[] free;
        try (NativeModel m = NativeModel.open(TestModels.q8());
                Generator g = new Generator(m, 1)) {
            free = g.generate(prompt, 400, SamplerParams.greedy(), null, null).tokens();
        }
        int end = IntStream.range(0, free.length)
                .filter(i -> free[i] == 1)
                .findFirst()
                .orElseThrow(() -> new AssertionError("no BOS in the model's 400-token continuation"));

        MainTest.Run json = MainTest.run(
                "generate",
                "--model",
                TestModels.q8().toString(),
                "--prompt",
                "Once upon a time",
                "-n",
                "400",
                "--threads",
                "1",
                "--json");
        assertThat(json.code()).as(json.err()).isZero();
        JsonNode j = json.json();
        assertThat(j.get("stopReason").asText()).isEqualTo("stop");
        int[] ids = new int[j.get("ids").size()];
        Arrays.setAll(ids, i -> j.get("ids").get(i).asInt());
        // the story, then the BOS that ends it
        assertThat(ids).containsExactly(Arrays.copyOf(free, end + 1));

        MainTest.Run text = MainTest.run(
                "generate",
                "--model",
                TestModels.q8().toString(),
                "--prompt",
                "Once upon a time",
                "-n",
                "400",
                "--threads",
                "1");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).startsWith("Once upon a time,");
        // exactly one story: the prompt's "Once upon a time" and no second one
        assertThat(text.out().indexOf("Once upon a time", 1)).isEqualTo(-1);
        assertThat(text.err()).contains("generation: " + (end + 1) + " tokens");
    }

    @Test
    void modelThatProducesNanIsAnErrorThatSaysSo() {
        MainTest.Run r = MainTest.run(
                "generate",
                "--model",
                NanModels.nanWeights(dir).toString(),
                "--prompt",
                "Once upon a time",
                "-n",
                "10",
                "--threads",
                "1");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err())
                .startsWith("generate: the model's logits are not finite")
                .contains("NaN");
    }
}
