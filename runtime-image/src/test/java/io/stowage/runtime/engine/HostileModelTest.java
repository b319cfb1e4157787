package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.memory.KvCacheType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Truncated, inconsistent and unsupported GGUF files are typed exceptions that name the problem; the JVM lives on. */
class HostileModelTest {
    @TempDir
    Path dir;

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    /** After each hostile file, the engine still runs a real model: nothing was corrupted or crashed. */
    @AfterEach
    void engineStillWorks() {
        try (NativeModel m = NativeModel.open(TestModels.f32());
                Generator g = new Generator(m, 1, 8, KvCacheType.F32)) {
            assertThat(g.generate(new int[] {1}, 3, SamplerParams.greedy(), null, null)
                            .tokens())
                    .hasSize(3);
        }
    }

    @Test
    void truncatedFilesAreModelFormatErrorsThroughBothParsers() throws IOException {
        byte[] valid = new SyntheticGguf().build();
        for (int cut : new int[] {0, 3, 12, 40, valid.length / 3, valid.length / 2, valid.length - 1}) {
            Path p = write("cut-" + cut + ".gguf", Arrays.copyOf(valid, cut));
            assertThatThrownBy(() -> NativeModel.open(p))
                    .as("Java header parser, cut at %d", cut)
                    .isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining(p.toString());
            assertThatThrownBy(() -> NativeModel.openWithNativeParser(p))
                    .as("native parser, cut at %d", cut)
                    .isInstanceOf(ModelFormatException.class);
        }
    }

    @Test
    void theCoreRechecksDescriptorsAgainstTheMappedFile() throws IOException {
        byte[] valid = new SyntheticGguf().build();
        Path full = write("full.gguf", valid);
        Path truncated = write("truncated.gguf", Arrays.copyOf(valid, valid.length - 100));
        // Descriptors read from the whole file, handed to the core with the path of a shorter one.
        ModelSpec lying = ModelSpec.of(truncated, GgufReader.readFile(full));
        assertThatThrownBy(() -> NativeModel.open(lying))
                .isInstanceOf(ModelFormatException.class)
                .satisfies(e -> assertThat(((NativeEngineException) e).status()).isEqualTo(EngineStatus.BAD_MODEL))
                .hasMessageContaining("stw_model_init");
    }

    @Test
    void anUnknownArchitectureIsUnsupported() throws IOException {
        SyntheticGguf g = new SyntheticGguf();
        g.arch = "gpt-neox";
        Path p = write("neox.gguf", g.build());
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("'gpt-neox'")
                .hasMessageContaining("supported: llama");
    }

    @Test
    void anUnsupportedTensorTypeIsNamedWithItsTensor() throws IOException {
        SyntheticGguf g = new SyntheticGguf();
        g.retype.put("blk.0.ffn_up.weight", GgufType.Q4_1);
        Path p = write("q4_1.gguf", g.build());
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("'blk.0.ffn_up.weight'")
                .hasMessageContaining("Q4_1");
        assertThatThrownBy(() -> NativeModel.openWithNativeParser(p))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("blk.0.ffn_up.weight");
    }

    @Test
    void scaledRopeIsRefusedRatherThanGeneratingWrongText() throws IOException {
        SyntheticGguf yarn = new SyntheticGguf();
        yarn.ropeScalingType = "yarn";
        yarn.ropeScalingFactor = 4f;
        Path p = write("yarn.gguf", yarn.build());
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("llama.rope.scaling.type 'yarn' with factor 4.0");
        SyntheticGguf unscaled = new SyntheticGguf();
        unscaled.ropeScalingType = "linear";
        unscaled.ropeScalingFactor = 1f;
        try (NativeModel m = NativeModel.open(write("linear-1.gguf", unscaled.build()))) {
            assertThat(m.weightBytes()).isPositive();
        }
    }

    @Test
    void aMissingTensorIsNamed() throws IOException {
        SyntheticGguf g = new SyntheticGguf();
        g.omit.add("blk.0.ffn_down.weight");
        Path p = write("missing.gguf", g.build());
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("'blk.0.ffn_down.weight' is missing");
        assertThatThrownBy(() -> NativeModel.openWithNativeParser(p))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("blk.0.ffn_down.weight");
    }

    @Test
    void aTensorOfTheWrongShapeIsNamedWithBothShapes() throws IOException {
        SyntheticGguf g = new SyntheticGguf();
        g.reshape.put("blk.0.attn_k.weight", new long[] {32, 32});
        Path p = write("shape.gguf", g.build());
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("'blk.0.attn_k.weight' has shape [32, 32]")
                .hasMessageContaining("needs [32, 16]");
        assertThatThrownBy(() -> NativeModel.openWithNativeParser(p))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("blk.0.attn_k.weight");
    }

    @Test
    void aNonexistentFileIsAnIoErrorNamingThePath() {
        Path p = dir.resolve("nope.gguf");
        assertThatThrownBy(() -> NativeModel.open(p))
                .isInstanceOf(NativeEngineException.class)
                .hasMessageContaining(p.toString());
    }
}
