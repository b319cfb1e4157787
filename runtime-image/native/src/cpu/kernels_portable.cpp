// The portable kernel set: plain C++ dot products for every weight type, used when the CPU lacks
// AVX2/FMA/F16C or when STOWAGE_CPU=portable.
#include <math.h>

#include "quants.h"

namespace stw_cpu {

namespace {

void quantize_x_portable(const float *x, block_q8_x *y, int64_t cols) {
    for (int64_t i = 0; i < cols / QK; i++) {
        const float *xb = x + i * QK;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        for (int j = 0; j < QK; j++) y[i].qs[j] = (int8_t)lrintf(xb[j] * id);
    }
}

// Eight independent partial sums: the compiler keeps them in one vector register, and the
// summation order is fixed (no -ffast-math needed).
template <typename Load>
float dot_floats(int64_t cols, const uint8_t *w, const float *x, Load load) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        for (int k = 0; k < 8; k++) s[k] += load(w, i + k) * x[i + k];
    }
    float tail = 0.0f;
    for (; i < cols; i++) tail += load(w, i) * x[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

inline float load_f32(const uint8_t *w, int64_t i) {
    float f;
    memcpy(&f, w + 4 * i, 4);
    return f;
}
inline float load_f16(const uint8_t *w, int64_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return fp16_to_fp32(h);
}
inline float load_bf16(const uint8_t *w, int64_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return bf16_to_fp32(h);
}

void dot_f32(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_floats(cols, w, (const float *)(x + j * xs), load_f32);
}
void dot_f16(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_floats(cols, w, (const float *)(x + j * xs), load_f16);
}
void dot_bf16(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_floats(cols, w, (const float *)(x + j * xs), load_bf16);
}

void dot_q8_0(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const block_q8_0 *wb = (const block_q8_0 *)w;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / QK; b++) {
            int32_t s = 0;
            for (int k = 0; k < QK; k++) s += wb[b].qs[k] * xb[b].qs[k];
            acc += fp16_to_fp32(wb[b].d) * xb[b].d * (float)s;
        }
        out[j * os] = acc;
    }
}

void dot_q4_0(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const block_q4_0 *wb = (const block_q4_0 *)w;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / QK; b++) {
            int32_t s = 0;
            for (int k = 0; k < QK / 2; k++) {
                s += ((wb[b].qs[k] & 0xF) - 8) * xb[b].qs[k];
                s += ((wb[b].qs[k] >> 4) - 8) * xb[b].qs[k + QK / 2];
            }
            acc += fp16_to_fp32(wb[b].d) * xb[b].d * (float)s;
        }
        out[j * os] = acc;
    }
}

// Per 32-element sub-block j: d*sc_j*dx*sum(q*x) - dmin*m_j*dx*sum(x).
void dot_q4_K(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const block_q4_K *wb = (const block_q4_K *)w;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / QK_K; b++) {
            const float d = fp16_to_fp32(wb[b].d), dmin = fp16_to_fp32(wb[b].dmin);
            const uint8_t *q = wb[b].qs;
            float sumf = 0.0f, summ = 0.0f;
            for (int sb = 0; sb < 8; sb++) {
                const block_q8_x &xq = xb[b * 8 + sb];
                const int shift = (sb & 1) * 4;
                const uint8_t *qq = q + (sb / 2) * 32;
                int32_t s = 0, sx = 0;
                for (int k = 0; k < 32; k++) {
                    s += ((qq[k] >> shift) & 0xF) * xq.qs[k];
                    sx += xq.qs[k];
                }
                uint8_t sc, m;
                q4k_scale_min(sb, wb[b].scales, &sc, &m);
                sumf += xq.d * (float)(s * sc);
                summ += xq.d * (float)(sx * m);
            }
            acc += d * sumf - dmin * summ;
        }
        out[j * os] = acc;
    }
}

// Per 32-element chunk c of a 128-element half: element l takes ql bits (chunk 0,1: low nibble of
// ql[l], ql[32+l]; chunk 2,3: high nibbles) and qh bits 2c..2c+1; scales per 16 elements.
void dot_q6_K(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const block_q6_K *wb = (const block_q6_K *)w;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / QK_K; b++) {
            float sumf = 0.0f;
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = wb[b].ql + h * 64;
                const uint8_t *qh = wb[b].qh + h * 32;
                const int8_t *sc = wb[b].scales + h * 8;
                for (int c = 0; c < 4; c++) {
                    const block_q8_x &xq = xb[b * 8 + h * 4 + c];
                    const uint8_t *qlc = ql + (c & 1) * 32;
                    const int shift = (c >> 1) * 4;
                    int32_t s0 = 0, s1 = 0;
                    for (int l = 0; l < 16; l++) {
                        const int q = (int)(((qlc[l] >> shift) & 0xF) | (((qh[l] >> (2 * c)) & 3) << 4)) - 32;
                        s0 += q * xq.qs[l];
                    }
                    for (int l = 16; l < 32; l++) {
                        const int q = (int)(((qlc[l] >> shift) & 0xF) | (((qh[l] >> (2 * c)) & 3) << 4)) - 32;
                        s1 += q * xq.qs[l];
                    }
                    sumf += xq.d * (float)(s0 * sc[2 * c] + s1 * sc[2 * c + 1]);
                }
            }
            acc += fp16_to_fp32(wb[b].d) * sumf;
        }
        out[j * os] = acc;
    }
}

template <dot_fn Dot>
void rows_of(int64_t cols, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *x, float *out) {
    for (int r = 0; r < nr; r++) Dot(cols, w + (size_t)r * row_bytes, x, 0, 1, out + r, 1);
}

}  // namespace

const kernel_set kernel_set_portable = {
    "portable",
    quantize_x_portable,
    {rows_of<dot_f32>, dot_f32},
    {rows_of<dot_f16>, dot_f16},
    {rows_of<dot_bf16>, dot_bf16},
    {rows_of<dot_q8_0>, dot_q8_0},
    {rows_of<dot_q4_0>, dot_q4_0},
    {rows_of<dot_q4_K>, dot_q4_K},
    {rows_of<dot_q6_K>, dot_q6_K},
};

}  // namespace stw_cpu
