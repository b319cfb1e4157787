package io.stowage.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.placement.memory.KvCacheType;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Golden greedy tokens of stories260K through JNI, against the independent numpy reference. */
class GoldenTokensTest {
    private static final JsonNode GOLDEN = TestModels.golden("stories260K.golden.json");
    private static final JsonNode GOLDEN_BOS_200 = TestModels.golden("stories260K.golden-bos-200.json");

    private static int[] generate(java.nio.file.Path model, int[] prompt, int n, KvCacheType kv, int threads) {
        try (NativeModel m = NativeModel.open(model);
                Generator g = new Generator(m, threads, 64, kv)) {
            return g.generate(prompt, n, SamplerParams.greedy(), null, null).tokens();
        }
    }

    @Test
    void f32ModelReproducesTheGoldenFortyTokensExactly() {
        int[] prompt = TestModels.ints(GOLDEN.get("prompt_token_ids"));
        int[] expected = TestModels.ints(GOLDEN.get("generated_token_ids"));
        assertThat(generate(TestModels.f32(), prompt, expected.length, KvCacheType.F32, 1))
                .containsExactly(expected);
    }

    @Test
    void f32ModelReproducesTheTwoHundredTokenBosOnlyGoldenWithTwoThreads() {
        int[] prompt = TestModels.ints(GOLDEN_BOS_200.get("prompt_token_ids"));
        int[] expected = TestModels.ints(GOLDEN_BOS_200.get("generated_token_ids"));
        assertThat(generate(TestModels.f32(), prompt, expected.length, KvCacheType.F32, 2))
                .containsExactly(expected);
    }

    @Test
    void f32FirstStepLogitsMatchTheReferenceToRounding() {
        int[] prompt = TestModels.ints(GOLDEN.get("prompt_token_ids"));
        JsonNode ref = GOLDEN.get("first_step_logits");
        try (NativeModel m = NativeModel.open(TestModels.f32());
                ComputeContext ctx = m.newContext(1, 16, 1);
                KvPool pool = m.newKvPool(KvCacheType.F32, m.kvBytesPerToken(KvCacheType.F32) * 16);
                Sequence seq = pool.newSequence(16)) {
            float[] logits = new float[m.vocabSize()];
            Sequence[] seqs = new Sequence[prompt.length];
            Arrays.fill(seqs, seq);
            boolean[] want = new boolean[prompt.length];
            want[prompt.length - 1] = true;
            ctx.decode(prompt, seqs, want, logits);
            double maxDiff = 0;
            for (int i = 0; i < logits.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(logits[i] - ref.get(i).asDouble()));
            }
            // The reference is rounded to 5 decimals; float32 summation order adds ~1e-5.
            assertThat(maxDiff).isLessThan(1e-4);
            assertThat(seq.length()).isEqualTo(prompt.length);
        }
    }

    /**
     * Q8_0: the issue allows differences only where the reference's top-2 gap is within quantization noise. The
     * smallest gap over these 40 steps is 0.13 and the Q8_0 file's first-step logits are within 0.152 of F32, so a
     * difference would be explainable; the reference run with Q8_0 activation rounding matched all 40, and so must
     * we.
     */
    @Test
    void q8ModelReproducesTheGoldenFortyTokens() {
        int[] prompt = TestModels.ints(GOLDEN.get("prompt_token_ids"));
        int[] expected = TestModels.ints(GOLDEN.get("generated_token_ids"));
        assertThat(generate(TestModels.q8(), prompt, expected.length, KvCacheType.F32, 1))
                .containsExactly(expected);
    }

    @Test
    void f16AndQ8KvCachesKeepTheGoldenTokens() {
        int[] prompt = TestModels.ints(GOLDEN.get("prompt_token_ids"));
        int[] expected = TestModels.ints(GOLDEN.get("generated_token_ids"));
        assertThat(generate(TestModels.f32(), prompt, expected.length, KvCacheType.F16, 1))
                .containsExactly(expected);
        // q8_0 KV needs a row width that is a multiple of 32: n_head_kv 4 × head dim 8 = 32.
        assertThat(generate(TestModels.f32(), prompt, expected.length, KvCacheType.Q8_0, 1))
                .containsExactly(expected);
    }

    @Test
    void nativeParserOpensTheSameModelWithTheSameHyperparameters() {
        try (NativeModel viaJava = NativeModel.open(TestModels.q8());
                NativeModel viaNative = NativeModel.openWithNativeParser(TestModels.q8())) {
            assertThat(viaNative.hparams()).isEqualTo(viaJava.hparams());
            assertThat(viaNative.weightBytes()).isEqualTo(viaJava.weightBytes()).isEqualTo(474_848L);
        }
    }
}
