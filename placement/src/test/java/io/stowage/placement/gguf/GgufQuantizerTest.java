package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The reference quantizers: bit-exact against golden outputs of ggml's own reference functions, block layouts, and
 * round-trip error bounds per type.
 */
class GgufQuantizerTest {

    private static float[] floats(byte[] b) {
        float[] f = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }

    private static float[] golden(String name) {
        return floats(TestFiles.bytes("quant-golden/" + name));
    }

    @ParameterizedTest
    @CsvSource({"Q8_0, q8_0", "Q4_0, q4_0", "Q4_K, q4_K", "Q6_K, q6_K", "F16, f16", "BF16, bf16"})
    void quantizedBytesEqualGgmlsReferenceQuantizer(GgufType type, String file) {
        float[] input = golden("input-f32.bin");

        byte[] ours = GgufQuantizer.quantize(type, input);

        byte[] ggml = TestFiles.bytes("quant-golden/" + file + ".bin");
        assertThat(ours).hasSameSizeAs(ggml);
        if (java.util.Arrays.equals(ours, ggml)) {
            return;
        }
        for (int block = 0; block < ggml.length / type.typeSize(); block++) {
            int from = block * type.typeSize();
            assertThat(java.util.Arrays.copyOfRange(ours, from, from + type.typeSize()))
                    .as("%s block %d", type, block)
                    .isEqualTo(java.util.Arrays.copyOfRange(ggml, from, from + type.typeSize()));
        }
    }

    @ParameterizedTest
    @CsvSource({"Q8_0, q8_0", "Q4_0, q4_0", "Q4_K, q4_K", "Q6_K, q6_K", "F16, f16", "BF16, bf16"})
    void dequantizedValuesEqualGgmlsDequantizer(GgufType type, String file) {
        float[] ours = GgufQuantizer.dequantize(type, TestFiles.bytes("quant-golden/" + file + ".bin"));

        float[] ggml = golden(file + "-dequant-f32.bin");
        assertThat(ours).hasSize(ggml.length);
        if (java.util.Arrays.equals(ours, ggml)) {
            return;
        }
        for (int i = 0; i < ours.length; i++) {
            assertThat(Float.floatToRawIntBits(ours[i]))
                    .as("%s value %d", type, i)
                    .isEqualTo(Float.floatToRawIntBits(ggml[i]));
        }
    }

    @Test
    void q8_0BlockIsAnFp16ScaleThenThirtyTwoInt8() {
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = j - 16; // amax 16 → d = 16/127
        x[1] = 2.5f * 16 / 127; // exactly halfway between 2 and 3 before fp16: roundf goes away from zero
        x[2] = -2.5f * 16 / 127;

        byte[] b = GgufQuantizer.quantize(GgufType.Q8_0, x);

        assertThat(b).hasSize(34);
        short d = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getShort(0);
        assertThat(Float.float16ToFloat(d)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(16f / 127)));
        assertThat(b[2]).isEqualTo((byte) -127); // x[0] = -16
        assertThat(b[33]).isEqualTo((byte) 119); // 15 * 127 / 16 = 119.06
        assertThat(b[2 + 16]).isZero();
        assertThat(b[3]).isEqualTo((byte) 3);
        assertThat(b[4]).isEqualTo((byte) -3);
    }

    @Test
    void q4_0BlockPacksElementJLowAndJPlus16High() {
        float[] x = new float[32];
        x[0] = -8; // the largest magnitude, negative → d = -8 / -8 = 1
        x[16] = 7; // q = 15
        x[1] = 0.4f; // q = trunc(8.9) = 8
        x[17] = -3; // q = 5

        byte[] b = GgufQuantizer.quantize(GgufType.Q4_0, x);

        assertThat(b).hasSize(18);
        assertThat(Float.float16ToFloat(
                        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getShort(0)))
                .isEqualTo(1f);
        assertThat(b[2] & 0xFF).isEqualTo(0 | (15 << 4));
        assertThat(b[3] & 0xFF).isEqualTo(8 | (5 << 4));
        assertThat(GgufQuantizer.dequantize(GgufType.Q4_0, b)).startsWith(-8f, 0f);
    }

    @Test
    void blockLayoutsHaveGgmlsSizes() {
        float[] x = new float[256];
        assertThat(GgufQuantizer.quantize(GgufType.Q4_K, x)).hasSize(144);
        assertThat(GgufQuantizer.quantize(GgufType.Q6_K, x)).hasSize(210);
        assertThat(GgufQuantizer.quantize(GgufType.Q8_0, x)).hasSize(8 * 34);
        assertThat(GgufQuantizer.quantize(GgufType.Q4_0, x)).hasSize(8 * 18);
        assertThat(GgufQuantizer.quantize(GgufType.BF16, x)).hasSize(512);
        assertThat(GgufQuantizer.dequantize(GgufType.Q4_K, new byte[144])).containsOnly(0f);
    }

    /** Relative RMS error bound after a round trip of seeded Gaussian data, per type. */
    @ParameterizedTest
    @CsvSource({"F32, 0", "F16, 0.0005", "BF16, 0.004", "Q8_0, 0.006", "Q6_K, 0.02", "Q4_K, 0.09", "Q4_0, 0.12"})
    void roundTripErrorStaysWithinTheTypesBound(GgufType type, double maxRelativeRmse) {
        Random rnd = new Random(7);
        float[] x = new float[256 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * 0.05f;

        float[] y = GgufQuantizer.dequantize(type, GgufQuantizer.quantize(type, x));

        double se = 0;
        double ss = 0;
        for (int i = 0; i < x.length; i++) {
            se += (x[i] - y[i]) * (double) (x[i] - y[i]);
            ss += x[i] * (double) x[i];
        }
        double relRmse = Math.sqrt(se / ss);
        assertThat(relRmse).as("%s relative RMSE", type).isLessThanOrEqualTo(maxRelativeRmse);
        if (type != GgufType.F32) {
            assertThat(relRmse).as("%s is lossy", type).isGreaterThan(0);
        }
    }

    @Test
    void q8_0ErrorIsAtMostHalfAStepPerElement() {
        Random rnd = new Random(3);
        float[] x = new float[32 * 100];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1) * (1 + i / 32);
        float[] y = GgufQuantizer.dequantize(GgufType.Q8_0, GgufQuantizer.quantize(GgufType.Q8_0, x));
        for (int b = 0; b < 100; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            float d = amax / 127;
            for (int j = 0; j < 32; j++) {
                // half a step, plus the fp16 rounding of d carried by up to 127 steps
                assertThat(Math.abs(x[b * 32 + j] - y[b * 32 + j])).isLessThanOrEqualTo(d / 2 + 127 * d / 2048);
            }
        }
    }

    @Test
    void bf16KeepsNaNQuietAndRoundsToNearestEven() {
        assertThat(Float.isNaN(GgufQuantizer.bf16ToFp32(GgufQuantizer.fp32ToBf16(Float.NaN))))
                .isTrue();
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assertThat(GgufQuantizer.bf16ToFp32(GgufQuantizer.fp32ToBf16(1f + 0x1p-8f)))
                .isEqualTo(1f);
        assertThat(GgufQuantizer.bf16ToFp32(GgufQuantizer.fp32ToBf16(1f + 0x1p-8f + 0x1p-20f)))
                .isEqualTo(1f + 0x1p-7f);
    }

    @ParameterizedTest
    @EnumSource(
            value = GgufType.class,
            names = {"Q4_1", "Q5_K", "IQ2_XXS", "MXFP4"})
    void unsupportedTypesAreNamed(GgufType type) {
        assertThatThrownBy(() -> GgufQuantizer.quantize(type, new float[256]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("type " + type + " is not supported");
    }

    @Test
    void partialBlocksAreRefused() {
        assertThatThrownBy(() -> GgufQuantizer.quantize(GgufType.Q4_K, new float[255]))
                .hasMessageContaining("255 values is not a multiple of the block size 256");
        assertThatThrownBy(() -> GgufQuantizer.dequantize(GgufType.Q8_0, new byte[35]))
                .hasMessageContaining("35 bytes is not a multiple of the block size 34 bytes");
    }
}
