package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.memory.KvCacheType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A model written with random weights in each supported tensor type gives the logits of an F32 copy of the same
 * (dequantized) weights, within a tolerance per type.
 *
 * <p>The weights are identical, so what differs is arithmetic: F32 is exact up to summation order; F16 and BF16
 * convert to F32 exactly, so they differ at most by summation order (measured: bit-identical); the quantized
 * types multiply against activations rounded to 8-bit blocks (as llama.cpp's CPU kernels do), measured at
 * 1.0-1.3% of the largest logit on this model (Q6_K 1.06%, Q4_0 1.17%, Q4_K 1.13%, Q8_0 1.26%), so 2% is the
 * bound. Tolerances are max |Δlogit| / max |logit| over 4 positions × 256 logits.
 */
class TensorTypesTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} within {1}")
    @CsvSource({"F32, 0.00001", "F16, 0.00001", "BF16, 0.00001", "Q8_0, 0.02", "Q4_0, 0.02", "Q4_K, 0.02", "Q6_K, 0.02"
    })
    void quantizedModelMatchesItsDequantizedF32Copy(GgufType type, double tolerance) throws IOException {
        SyntheticGguf g = new SyntheticGguf();
        g.embd = 256;
        g.ff = 512;
        g.heads = 4;
        g.headsKv = 2;
        g.vocab = 256;
        g.layers = 2;
        g.seed = 42 + type.id();
        g.weightType = type;
        Path quantized = dir.resolve(type + ".gguf");
        Files.write(quantized, g.build());
        g.weightType = GgufType.F32;
        Path reference = dir.resolve(type + "-as-f32.gguf");
        Files.write(reference, g.build(v -> SyntheticGguf.roundTrip(type, v)));

        int[] tokens = {1, 17, 200, 3};
        float[] got = logits(quantized, tokens);
        float[] want = logits(reference, tokens);
        double maxAbs = 0;
        double maxDiff = 0;
        for (int i = 0; i < want.length; i++) {
            assertThat(Float.isFinite(got[i])).as("logit %d finite", i).isTrue();
            maxAbs = Math.max(maxAbs, Math.abs(want[i]));
            maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
        }
        assertThat(maxAbs).as("the logits are not all zero").isGreaterThan(0.1);
        assertThat(maxDiff / maxAbs)
                .as("%s: max |Δ| %.5f of max |logit| %.3f", type, maxDiff, maxAbs)
                .isLessThanOrEqualTo(tolerance);
        // Not vacuous: the quantized weights differ from the original random ones for the lossy types.
        if (type != GgufType.F32) {
            float[] original = g.weights().get("blk.0.attn_q.weight");
            assertThat(SyntheticGguf.roundTrip(type, original)).isNotEqualTo(original);
        }
    }

    private static float[] logits(Path path, int[] tokens) {
        try (NativeModel m = NativeModel.open(path);
                ComputeContext ctx = m.newContext(2, tokens.length, tokens.length);
                KvPool pool = m.newKvPool(KvCacheType.F32, m.kvBytesPerToken(KvCacheType.F32) * 16);
                Sequence seq = pool.newSequence(16)) {
            float[] out = new float[tokens.length * m.vocabSize()];
            Sequence[] seqs = new Sequence[tokens.length];
            Arrays.fill(seqs, seq);
            boolean[] want = new boolean[tokens.length];
            Arrays.fill(want, true);
            ctx.decode(tokens, seqs, want, out);
            return out;
        }
    }
}
