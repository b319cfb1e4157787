// The portable kernel set: plain C++ dot products for every weight type, used when the CPU lacks
// AVX2/FMA/F16C or when STOWAGE_CPU=portable.
#include <math.h>

#include "portable_q4_K_r8.h"  // q4_K_r8_portable
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
// summation order is fixed (no -ffast-math needed). Half-precision rows are converted 64 at a time
// into a float buffer first, which keeps both loops simple enough to vectorize.
inline void dot8(const float *w, const float *x, int64_t len, float s[8]) {
    // Local accumulators: s may alias w or x as far as the compiler knows, which would force a
    // store and reload of s on every step.
    float a[8];
    for (int k = 0; k < 8; k++) a[k] = s[k];
    for (int64_t i = 0; i < len; i += 8) {
        for (int k = 0; k < 8; k++) a[k] += w[i + k] * x[i + k];
    }
    for (int k = 0; k < 8; k++) s[k] = a[k];
}

template <float (*Convert)(uint16_t)>
float dot_halves(int64_t cols, const uint8_t *w, const float *x) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float f[64];
    int64_t i = 0;
    for (; i + 64 <= cols; i += 64) {
        for (int k = 0; k < 64; k++) {
            uint16_t h;
            memcpy(&h, w + 2 * (i + k), 2);  // an unaligned 16-bit load, vectorized
            f[k] = Convert(h);
        }
        dot8(f, x + i, 64, s);
    }
    float tail = 0.0f;
    for (; i < cols; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * i, 2);
        tail += Convert(h) * x[i];
    }
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

float dot_f32_row(int64_t cols, const uint8_t *w, const float *x) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float f[64];
    int64_t i = 0;
    for (; i + 64 <= cols; i += 64) {
        // Through a local buffer: GGUF tensors need not be 4-byte aligned.
        for (int k = 0; k < 64; k++) memcpy(&f[k], w + 4 * (i + k), 4);
        dot8(f, x + i, 64, s);
    }
    float tail = 0.0f;
    for (; i < cols; i++) {
        float v;
        memcpy(&v, w + 4 * i, 4);
        tail += v * x[i];
    }
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

void dot_f32(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_f32_row(cols, w, (const float *)(x + j * xs));
}
void dot_f16(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_halves<fp16_to_fp32>(cols, w, (const float *)(x + j * xs));
}
void dot_bf16(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    for (int j = 0; j < nx; j++) out[j * os] = dot_halves<bf16_to_fp32>(cols, w, (const float *)(x + j * xs));
}

// The integer loops below work on plain int8 arrays of a fixed length so that the compiler
// vectorizes them (SSE2, NEON); the nibble and 6-bit formats are unpacked into such arrays first.
inline int32_t dot_i8(const int8_t *a, const int8_t *b, int len) {
    int32_t s = 0;
    for (int k = 0; k < len; k++) s += (int32_t)a[k] * (int32_t)b[k];
    return s;
}

inline int32_t sum_i8(const int8_t *a, int len) {
    int32_t s = 0;
    for (int k = 0; k < len; k++) s += a[k];
    return s;
}

void dot_q8_0(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const block_q8_0 *wb = (const block_q8_0 *)w;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc = 0.0f;
        for (int64_t b = 0; b < cols / QK; b++) {
            const int32_t s = dot_i8(wb[b].qs, xb[b].qs, QK);
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
            int8_t q[QK];
            for (int k = 0; k < QK / 2; k++) {
                q[k] = (int8_t)((wb[b].qs[k] & 0xF) - 8);
                q[k + QK / 2] = (int8_t)((wb[b].qs[k] >> 4) - 8);
            }
            acc += fp16_to_fp32(wb[b].d) * xb[b].d * (float)dot_i8(q, xb[b].qs, QK);
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
            int8_t q[QK_K];  // nibbles 0..15
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    q[64 * c + l] = (int8_t)(wb[b].qs[32 * c + l] & 0xF);
                    q[64 * c + 32 + l] = (int8_t)(wb[b].qs[32 * c + l] >> 4);
                }
            }
            float sumf = 0.0f, summ = 0.0f;
            for (int sb = 0; sb < 8; sb++) {
                const block_q8_x &xq = xb[b * 8 + sb];
                uint8_t sc, m;
                q4k_scale_min(sb, wb[b].scales, &sc, &m);
                sumf += xq.d * (float)(dot_i8(q + 32 * sb, xq.qs, 32) * sc);
                summ += xq.d * (float)(sum_i8(xq.qs, 32) * m);
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
            int8_t q[QK_K];  // -32..31
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = wb[b].ql + h * 64;
                const uint8_t *qh = wb[b].qh + h * 32;
                int8_t *qq = q + h * 128;
                for (int l = 0; l < 32; l++) {
                    qq[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                    qq[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    qq[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    qq[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
            float sumf = 0.0f;
            for (int c = 0; c < 8; c++) {
                const block_q8_x &xq = xb[b * 8 + c];
                const int32_t s0 = dot_i8(q + 32 * c, xq.qs, 16), s1 = dot_i8(q + 32 * c + 16, xq.qs + 16, 16);
                sumf += xq.d * (float)(s0 * wb[b].scales[2 * c] + s1 * wb[b].scales[2 * c + 1]);
            }
            acc += fp16_to_fp32(wb[b].d) * sumf;
        }
        out[j * os] = acc;
    }
}

// Q4_0 R8 (repack.cpp's layout): per block, each row's integer dot of its unsigned nibbles with the
// activation block minus 8 * sum(x), exact in int32, then one multiply-add by (row scale * activation
// scale): the order of the AVX2 kernels, one float sum per (row, activation) whatever nx is.
void r8_q4_0(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const int64_t nb = cols / QK;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + j * xs);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *p = w + (size_t)b * 8 * sizeof(block_q4_0);
            const int32_t xsum = sum_i8(xb[b].qs, QK);
            for (int r = 0; r < 8; r++) {
                int8_t q[QK];
                for (int v = 0; v < 4; v++) {
                    for (int i = 0; i < 4; i++) {
                        const uint8_t byte = p[16 + 32 * v + 4 * r + i];
                        q[4 * v + i] = (int8_t)(byte & 0xF);
                        q[16 + 4 * v + i] = (int8_t)(byte >> 4);
                    }
                }
                uint16_t d;
                memcpy(&d, p + 2 * r, 2);
                const int32_t is = dot_i8(q, xb[b].qs, QK) - 8 * xsum;
                acc[r] += fp16_to_fp32(d) * xb[b].d * (float)is;
            }
        }
        for (int r = 0; r < 8; r++) out[r + j * os] = acc[r];
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
    {rows_of<dot_f32>, dot_f32, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_f16>, dot_f16, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_bf16>, dot_bf16, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_q8_0>, dot_q8_0, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_q4_0>, dot_q4_0, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_q4_K>, dot_q4_K, nullptr, nullptr, nullptr, nullptr, nullptr},
    {rows_of<dot_q6_K>, dot_q6_K, nullptr, nullptr, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr, r8_q4_0, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr, q4_K_r8_portable, nullptr},
};

}  // namespace stw_cpu
