// Reference (scalar) quantizers and dequantizers for the ggml block formats.
#include <math.h>

#include "quants.h"

namespace stw_cpu {

namespace {

int nearest_int(float f) { return (int)lrintf(f); }

// The smallest half that is >= v (v >= 0 and finite): a scale rounded this way never shrinks
// the range it has to cover.
uint16_t fp16_ceil(float v) {
    uint16_t h = fp32_to_fp16(v);
    if (fp16_to_fp32(h) < v && h < 0x7bffu) h++;
    return h;
}

int ceil_int(float f, int hi) {
    int v = (int)ceilf(f);
    return v < 0 ? 0 : (v > hi ? hi : v);
}

}  // namespace

// ggml quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d).
void quantize_row_q8_0_ref(const float *x, block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[i * QK + j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK; j++) y[i].qs[j] = (int8_t)roundf(x[i * QK + j] * id);
    }
}

// ggml quantize_row_q4_0_ref: the value of largest magnitude maps to -8, d = max / -8.
void quantize_row_q4_0_ref(const float *x, block_q4_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++) {
        const float *xb = x + i * QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK / 2; j++) {
            const int8_t q0 = (int8_t)(xb[j] * id + 8.5f);
            const int8_t q1 = (int8_t)(xb[j + QK / 2] * id + 8.5f);
            const uint8_t a = (uint8_t)(q0 < 15 ? q0 : 15);
            const uint8_t b = (uint8_t)(q1 < 15 ? q1 : 15);
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

// Q4_K in ggml's layout. Instead of ggml's iterative scale search, every scale and min is rounded
// up (6-bit codes with ceil, fp16 super-scales with fp16_ceil), so each sub-block's range is
// always covered and every element is within half a step of its value.
void quantize_row_q4_K_ref(const float *x, block_q4_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        float mins[8], maxs[8];
        float max_min = 0.0f;
        for (int j = 0; j < 8; j++) {
            float mn = xb[j * 32], mx = xb[j * 32];
            for (int l = 1; l < 32; l++) {
                mn = fminf(mn, xb[j * 32 + l]);
                mx = fmaxf(mx, xb[j * 32 + l]);
            }
            mins[j] = mn < 0.0f ? -mn : 0.0f;  // stored as a positive offset, as ggml does
            maxs[j] = mx;
            max_min = fmaxf(max_min, mins[j]);
        }
        const uint16_t dmin_h = fp16_ceil(max_min / 63.0f);
        const float dmin = fp16_to_fp32(dmin_h);
        uint8_t lm[8], ls[8];
        float need[8], max_need = 0.0f;
        for (int j = 0; j < 8; j++) {
            lm[j] = (uint8_t)(dmin > 0.0f ? ceil_int(mins[j] / dmin, 63) : 0);
            need[j] = fmaxf(0.0f, (maxs[j] + dmin * lm[j]) / 15.0f);
            max_need = fmaxf(max_need, need[j]);
        }
        const uint16_t d_h = fp16_ceil(max_need / 63.0f);
        const float d = fp16_to_fp32(d_h);
        for (int j = 0; j < 8; j++) ls[j] = (uint8_t)(d > 0.0f ? ceil_int(need[j] / d, 63) : 0);
        y[i].d = d_h;
        y[i].dmin = dmin_h;
        memset(y[i].scales, 0, 12);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                y[i].scales[j] = ls[j];
                y[i].scales[j + 4] = lm[j];
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                y[i].scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        uint8_t L[QK_K];
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            q4k_scale_min(j, y[i].scales, &sc, &m);
            const float dj = d * sc, mj = dmin * m;
            for (int l = 0; l < 32; l++) {
                int q = dj > 0.0f ? nearest_int((xb[j * 32 + l] + mj) / dj) : 0;
                L[j * 32 + l] = (uint8_t)(q < 0 ? 0 : (q > 15 ? 15 : q));
            }
        }
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

// Q6_K in ggml's layout: one int8 scale per 16 elements, 6-bit values offset by 32. Sub-block
// scales map max|x| to 31.5 steps (so codes use -32..31 with at most half a step of error) and
// are rounded up to int8 codes of an fp16 super-scale.
void quantize_row_q6_K_ref(const float *x, block_q6_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        float need[16], max_need = 0.0f;
        for (int j = 0; j < 16; j++) {
            float amax = 0.0f;
            for (int l = 0; l < 16; l++) amax = fmaxf(amax, fabsf(xb[j * 16 + l]));
            need[j] = amax / 31.5f;
            max_need = fmaxf(max_need, need[j]);
        }
        const uint16_t d_h = fp16_ceil(max_need / 127.0f);
        const float d = fp16_to_fp32(d_h);
        y[i].d = d_h;
        int8_t L[QK_K];
        for (int j = 0; j < 16; j++) {
            const int sc = d > 0.0f ? ceil_int(need[j] / d, 127) : 0;
            y[i].scales[j] = (int8_t)sc;
            const float dj = d * sc;
            for (int l = 0; l < 16; l++) {
                int q = dj > 0.0f ? nearest_int(xb[j * 16 + l] / dj) : 0;
                L[j * 16 + l] = (int8_t)((q < -32 ? -32 : (q > 31 ? 31 : q)) + 32);
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = (uint8_t)L[j + l], q2 = (uint8_t)L[j + l + 32];
                const uint8_t q3 = (uint8_t)L[j + l + 64], q4 = (uint8_t)L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

void dequantize_row_q8_0(const block_q8_0 *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK; j++) y[i * QK + j] = d * x[i].qs[j];
    }
}

void dequantize_row_q4_0(const block_q4_0 *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[i * QK + j] = d * ((x[i].qs[j] & 0xF) - 8);
            y[i * QK + j + QK / 2] = d * ((x[i].qs[j] >> 4) - 8);
        }
    }
}

void dequantize_row_q4_K(const block_q4_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            const int is = j / 32;
            uint8_t sc, m;
            q4k_scale_min(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
        }
    }
}

void dequantize_row_q6_K(const block_q6_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < QK_K; h += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

}  // namespace stw_cpu
