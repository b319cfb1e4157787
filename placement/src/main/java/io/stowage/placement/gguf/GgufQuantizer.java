package io.stowage.placement.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumSet;
import java.util.Set;

/**
 * Scalar reference quantizers and dequantizers for F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K, producing the same
 * bytes as ggml's {@code quantize_row_*_ref} (and reading them back as {@code dequantize_row_*} does).
 *
 * <p>Bit-compatibility rests on doing the same float (not double) operations in the same order as ggml's C, with its
 * rounding helpers: {@code nearest_int} (round half to even through the 1.5·2^23 trick), {@code roundf} (half away from
 * zero) and fp16 conversion by round to nearest even.
 */
public final class GgufQuantizer {

    /** The types this class can quantize and dequantize. */
    public static final Set<GgufType> SUPPORTED = EnumSet.of(
            GgufType.F32, GgufType.F16, GgufType.BF16, GgufType.Q8_0, GgufType.Q4_0, GgufType.Q4_K, GgufType.Q6_K);

    private static final int QK_K = 256;
    private static final float GROUP_MAX_EPS = 1e-15f;

    private GgufQuantizer() {}

    /** Quantizes {@code x} (a whole number of blocks of {@code type}) to its stored bytes. */
    public static byte[] quantize(GgufType type, float[] x) {
        checkSupported(type);
        if (x.length % type.blockSize() != 0) {
            throw new IllegalArgumentException("quantize " + type + ": " + x.length
                    + " values is not a multiple of the block size " + type.blockSize());
        }
        long bytes = (long) x.length / type.blockSize() * type.typeSize();
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("quantize " + type + ": " + bytes + " bytes do not fit one Java array");
        }
        ByteBuffer out = ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> {
                for (float v : x) out.putFloat(v);
            }
            case F16 -> {
                for (float v : x) out.putShort(fp32ToFp16(v));
            }
            case BF16 -> {
                for (float v : x) out.putShort(fp32ToBf16(v));
            }
            case Q8_0 -> quantizeQ8_0(x, out);
            case Q4_0 -> quantizeQ4_0(x, out);
            case Q4_K -> quantizeQ4K(x, out);
            case Q6_K -> quantizeQ6K(x, out);
            default -> throw new AssertionError(type);
        }
        return out.array();
    }

    /** Dequantizes {@code data} (whole blocks of {@code type}) to floats. */
    public static float[] dequantize(GgufType type, byte[] data) {
        checkSupported(type);
        if (data.length % type.typeSize() != 0) {
            throw new IllegalArgumentException("dequantize " + type + ": " + data.length
                    + " bytes is not a multiple of the block size " + type.typeSize() + " bytes");
        }
        int blocks = data.length / type.typeSize();
        float[] y = new float[Math.multiplyExact(blocks, type.blockSize())];
        ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> {
                for (int i = 0; i < y.length; i++) y[i] = in.getFloat(4 * i);
            }
            case F16 -> {
                for (int i = 0; i < y.length; i++) y[i] = fp16ToFp32(in.getShort(2 * i));
            }
            case BF16 -> {
                for (int i = 0; i < y.length; i++) y[i] = bf16ToFp32(in.getShort(2 * i));
            }
            case Q8_0 -> {
                for (int b = 0; b < blocks; b++) {
                    int base = b * 34;
                    float d = fp16ToFp32(in.getShort(base));
                    for (int j = 0; j < 32; j++) y[b * 32 + j] = in.get(base + 2 + j) * d;
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < blocks; b++) {
                    int base = b * 18;
                    float d = fp16ToFp32(in.getShort(base));
                    for (int j = 0; j < 16; j++) {
                        int q = in.get(base + 2 + j) & 0xFF;
                        y[b * 32 + j] = ((q & 0x0F) - 8) * d;
                        y[b * 32 + j + 16] = ((q >>> 4) - 8) * d;
                    }
                }
            }
            case Q4_K -> dequantizeQ4K(in, blocks, y);
            case Q6_K -> dequantizeQ6K(in, blocks, y);
            default -> throw new AssertionError(type);
        }
        return y;
    }

    private static void checkSupported(GgufType type) {
        if (!SUPPORTED.contains(type)) {
            throw new IllegalArgumentException(
                    "GGUF quantizer: type " + type + " is not supported; supported: " + SUPPORTED);
        }
    }

    // ---- scalar conversions ----

    /** fp32 to IEEE half, round to nearest even (as F16C's {@code _cvtss_sh(x, 0)} and ggml's scalar path). */
    public static short fp32ToFp16(float f) {
        return Float.floatToFloat16(f);
    }

    public static float fp16ToFp32(short h) {
        return Float.float16ToFloat(h);
    }

    /** fp32 to bfloat16 as ggml does: round to nearest even, NaN kept quiet. */
    public static short fp32ToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return (short) ((u >>> 16) | 64);
        }
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    public static float bf16ToFp32(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    /** ggml's nearest_int: round half to even, valid for |f| <= 4194303. */
    static int nearestInt(float f) {
        float v = f + 12582912.f;
        return (Float.floatToRawIntBits(v) & 0x007fffff) - 0x00400000;
    }

    /** C's roundf: half away from zero. */
    static float roundf(float f) {
        return (float) Math.copySign(Math.floor(Math.abs((double) f) + 0.5), f);
    }

    private static float fp16Round(float f) {
        return fp16ToFp32(fp32ToFp16(f));
    }

    // ---- Q8_0: fp16 d, 32 x int8; value = d * q ----

    private static void quantizeQ8_0(float[] x, ByteBuffer out) {
        for (int b = 0; b < x.length / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            float d = amax / ((1 << 7) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            out.putShort(fp32ToFp16(d));
            for (int j = 0; j < 32; j++) out.put((byte) (int) roundf(x[b * 32 + j] * id));
        }
    }

    // ---- Q4_0: fp16 d, 16 bytes of nibbles (j low, j+16 high); value = d * (q - 8) ----

    private static void quantizeQ4_0(float[] x, ByteBuffer out) {
        for (int b = 0; b < x.length / 32; b++) {
            float amax = 0;
            float max = 0;
            for (int j = 0; j < 32; j++) {
                float v = x[b * 32 + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            out.putShort(fp32ToFp16(d));
            for (int j = 0; j < 16; j++) {
                float x0 = x[b * 32 + j] * id;
                float x1 = x[b * 32 + 16 + j] * id;
                int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
                int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
                out.put((byte) (xi0 | (xi1 << 4)));
            }
        }
    }

    // ---- Q4_K: fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles; 8 sub-blocks of 32 ----

    private static void quantizeQ4K(float[] xs, ByteBuffer out) {
        int[] l = new int[QK_K];
        int[] laux = new int[32];
        float[] weights = new float[32];
        float[] mins = new float[QK_K / 32];
        float[] scales = new float[QK_K / 32];
        float[] theMin = new float[1];
        for (int i = 0; i < xs.length / QK_K; i++) {
            int x = i * QK_K;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < QK_K / 32; j++) {
                float sumX2 = 0;
                for (int k = 0; k < 32; k++) sumX2 += xs[x + 32 * j + k] * xs[x + 32 * j + k];
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int k = 0; k < 32; k++) weights[k] = avX + Math.abs(xs[x + 32 * j + k]);
                scales[j] = makeQkx2Quants(32, 15, xs, x + 32 * j, weights, l, 32 * j, theMin, laux, -1.f, 0.1f, 20);
                mins[j] = theMin[0];
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
            float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
            byte[] sc = new byte[12];
            for (int j = 0; j < QK_K / 32; j++) {
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                if (j < 4) {
                    sc[j] = (byte) ls;
                    sc[j + 4] = (byte) lm;
                } else {
                    sc[j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
                    sc[j - 4] |= (byte) ((ls >> 4) << 6);
                    sc[j] |= (byte) ((lm >> 4) << 6);
                }
            }
            short dh = fp32ToFp16(maxScale / 63.f);
            short dminh = fp32ToFp16(maxMin / 63.f);
            float d0 = fp16ToFp32(dh);
            float dmin0 = fp16ToFp32(dminh);
            for (int j = 0; j < QK_K / 32; j++) {
                int scj = scaleK4(j, sc);
                int mj = minK4(j, sc);
                float d = d0 * scj;
                if (d == 0) continue;
                float dm = dmin0 * mj;
                for (int ii = 0; ii < 32; ii++) {
                    int q = nearestInt((xs[x + 32 * j + ii] + dm) / d);
                    l[32 * j + ii] = Math.max(0, Math.min(15, q));
                }
            }
            out.putShort(dh);
            out.putShort(dminh);
            out.put(sc);
            for (int j = 0; j < QK_K; j += 64) {
                for (int k = 0; k < 32; k++) out.put((byte) (l[j + k] | (l[j + k + 32] << 4)));
            }
        }
    }

    private static float makeQkx2Quants(
            int n,
            int nmax,
            float[] xs,
            int x,
            float[] weights,
            int[] lOut,
            int lOff,
            float[] theMin,
            int[] laux,
            float rmin,
            float rdelta,
            int nstep) {
        float min = xs[x];
        float max = xs[x];
        float sumW = weights[0];
        float sumX = sumW * xs[x];
        for (int i = 1; i < n; i++) {
            if (xs[x + i] < min) min = xs[x + i];
            if (xs[x + i] > max) max = xs[x + i];
            float w = weights[i];
            sumW += w;
            sumX += w * xs[x + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) lOut[lOff + i] = 0;
            theMin[0] = -min;
            return 0.f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (xs[x + i] - min));
            lOut[lOff + i] = Math.max(0, Math.min(nmax, l));
            float diff = scale * lOut[lOff + i] + min - xs[x + i];
            diff = diff * diff;
            bestError += weights[i] * diff;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0;
            float sumL2 = 0;
            float sumXl = 0;
            for (int i = 0; i < n; i++) {
                int l = nearestInt(iscale * (xs[x + i] - min));
                l = Math.max(0, Math.min(nmax, l));
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * xs[x + i];
            }
            float dd = sumW * sumL2 - sumL * sumL;
            if (dd > 0) {
                float thisScale = (sumW * sumXl - sumX * sumL) / dd;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / dd;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - xs[x + i];
                    diff = diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError) {
                    System.arraycopy(laux, 0, lOut, lOff, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    private static int scaleK4(int j, byte[] q) {
        return j < 4 ? q[j] & 63 : (q[j + 4] & 0xF) | (((q[j - 4] & 0xFF) >> 6) << 4);
    }

    private static int minK4(int j, byte[] q) {
        return j < 4 ? q[j + 4] & 63 : ((q[j + 4] & 0xFF) >> 4) | (((q[j] & 0xFF) >> 6) << 4);
    }

    private static void dequantizeQ4K(ByteBuffer in, int blocks, float[] y) {
        byte[] sc = new byte[12];
        int o = 0;
        for (int b = 0; b < blocks; b++) {
            int base = b * 144;
            float d = fp16ToFp32(in.getShort(base));
            float min = fp16ToFp32(in.getShort(base + 2));
            in.get(base + 4, sc);
            int q = base + 16;
            int is = 0;
            for (int j = 0; j < QK_K; j += 64) {
                float d1 = d * scaleK4(is, sc);
                float m1 = min * minK4(is, sc);
                float d2 = d * scaleK4(is + 1, sc);
                float m2 = min * minK4(is + 1, sc);
                for (int l = 0; l < 32; l++) y[o++] = d1 * (in.get(q + l) & 0xF) - m1;
                for (int l = 0; l < 32; l++) y[o++] = d2 * ((in.get(q + l) & 0xFF) >> 4) - m2;
                q += 32;
                is += 2;
            }
        }
    }

    // ---- Q6_K: 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, fp16 d; 16 sub-blocks of 16 ----

    private static void quantizeQ6K(float[] xs, ByteBuffer out) {
        int[] l = new int[QK_K];
        float[] scales = new float[QK_K / 16];
        for (int i = 0; i < xs.length / QK_K; i++) {
            int x = i * QK_K;
            float maxScale = 0;
            float maxAbsScale = 0;
            for (int ib = 0; ib < QK_K / 16; ib++) {
                float scale = makeQxQuantsRmse1(16, 32, xs, x + 16 * ib, l, 16 * ib);
                scales[ib] = scale;
                float absScale = Math.abs(scale);
                if (absScale > maxAbsScale) {
                    maxAbsScale = absScale;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < GROUP_MAX_EPS) {
                out.put(new byte[208]);
                out.putShort(fp32ToFp16(0.f));
                continue;
            }
            float iscale = -128.f / maxScale;
            short dh = fp32ToFp16(1 / iscale);
            byte[] sc = new byte[16];
            for (int ib = 0; ib < QK_K / 16; ib++) {
                sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
            }
            float d0 = fp16ToFp32(dh);
            for (int j = 0; j < QK_K / 16; j++) {
                float d = d0 * sc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++) {
                    int q = nearestInt(xs[x + 16 * j + ii] / d);
                    q = Math.max(-32, Math.min(31, q));
                    l[16 * j + ii] = q + 32;
                }
            }
            byte[] ql = new byte[128];
            byte[] qh = new byte[64];
            for (int j = 0, qlo = 0, qho = 0; j < QK_K; j += 128, qlo += 64, qho += 32) {
                for (int k = 0; k < 32; k++) {
                    int q1 = l[j + k] & 0xF;
                    int q2 = l[j + k + 32] & 0xF;
                    int q3 = l[j + k + 64] & 0xF;
                    int q4 = l[j + k + 96] & 0xF;
                    ql[qlo + k] = (byte) (q1 | (q3 << 4));
                    ql[qlo + k + 32] = (byte) (q2 | (q4 << 4));
                    qh[qho + k] = (byte) ((l[j + k] >> 4)
                            | ((l[j + k + 32] >> 4) << 2)
                            | ((l[j + k + 64] >> 4) << 4)
                            | ((l[j + k + 96] >> 4) << 6));
                }
            }
            out.put(ql);
            out.put(qh);
            out.put(sc);
            out.putShort(dh);
        }
    }

    /** ggml's make_qx_quants with rmse_type 1 and no importance weights (w = x²). */
    private static float makeQxQuantsRmse1(int n, int nmax, float[] xs, int x, int[] lOut, int lOff) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(xs[x + i]);
            if (ax > amax) {
                amax = ax;
                max = xs[x + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) lOut[lOff + i] = 0;
            return 0.f;
        }
        float iscale = -nmax / max;
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; i++) {
            float xi = xs[x + i];
            int l = nearestInt(iscale * xi);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            lOut[lOff + i] = l + nmax;
            float w = xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = 0;
            suml2 = 0;
            for (int i = 0; i < n; i++) {
                float xi = xs[x + i];
                int l = nearestInt(iscale * xi);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = xi * xi;
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    int l = nearestInt(iscale * xs[x + i]);
                    lOut[lOff + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    private static void dequantizeQ6K(ByteBuffer in, int blocks, float[] y) {
        int o = 0;
        for (int b = 0; b < blocks; b++) {
            int base = b * 210;
            float d = fp16ToFp32(in.getShort(base + 208));
            int ql = base;
            int qh = base + 128;
            int sc = base + 192;
            for (int n = 0; n < QK_K; n += 128) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int h = in.get(qh + l) & 0xFF;
                    int lo0 = in.get(ql + l) & 0xFF;
                    int lo32 = in.get(ql + l + 32) & 0xFF;
                    int q1 = ((lo0 & 0xF) | (((h >> 0) & 3) << 4)) - 32;
                    int q2 = ((lo32 & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                    int q3 = ((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32;
                    int q4 = ((lo32 >> 4) | (((h >> 6) & 3) << 4)) - 32;
                    y[o + l] = d * in.get(sc + is) * q1;
                    y[o + l + 32] = d * in.get(sc + is + 2) * q2;
                    y[o + l + 64] = d * in.get(sc + is + 4) * q3;
                    y[o + l + 96] = d * in.get(sc + is + 6) * q4;
                }
                o += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    }
}
