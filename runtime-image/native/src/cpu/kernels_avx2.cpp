// The AVX2/FMA/F16C kernel set. This translation unit is compiled with -mavx2 -mfma -mf16c and is
// only reached through kernel_set_avx2 after cpuid confirmed the CPU supports all three; every
// helper here has internal linkage so no AVX2 copy of a shared inline function leaks out.
//
// Quantized weights follow llama.cpp's approach: activations arrive as int8 blocks of 32 with a
// float scale, each block product is an integer dot (maddubs + madd) scaled once in float.
#include <immintrin.h>

#include "quants.h"

// kernels_avx2_vnni.cpp compiles this file again with AVX-VNNI as the set "avx2-vnni".
#if !defined(STW_CPU_SET_SYMBOL)
#define STW_CPU_SET_SYMBOL kernel_set_avx2
#define STW_CPU_SET_NAME "avx2"
#endif

namespace stw_cpu {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

inline __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

// Eight int32 lanes, lane k the sum of the four products u[4k+i] * s[4k+i] (u unsigned, s signed
// bytes). AVX2 forms the pair sums in int16 (maddubs) and adds pairs (madd with ones); AVX-VNNI's
// dpbusd does both in one instruction with no int16 step. Every caller keeps each int16 pair sum
// within range (|u| <= 128, |s| <= 127), so both forms give the same integers and the two kernel
// sets agree bit for bit.
inline __m256i mul_sum_us8(__m256i u, __m256i s) {
#if defined(STW_CPU_VNNI)
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// mul_sum_us8(u1, s1) + mul_sum_us8(u2, s2); AVX2 adds the two in int16 first, so callers keep
// each maddubs lane within half the int16 range (4-bit weights: 2 * 15 * 128).
inline __m256i mul_sum2_us8(__m256i u1, __m256i s1, __m256i u2, __m256i s2) {
#if defined(STW_CPU_VNNI)
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u1, s1), u2, s2);
#else
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(u1, s1), _mm256_maddubs_epi16(u2, s2)),
                             _mm256_set1_epi16(1));
#endif
}

// sum over pairs of a[i]*b[i] for signed int8 a, b, as 8 int32 lanes (lane k: bytes 4k..4k+3).
// maddubs wants an unsigned first operand: move a's sign onto b. |a| <= 128 and |b| <= 127 keep
// each int16 pair sum below 32767.
inline __m256i dot_i8(__m256i a, __m256i b) {
    return mul_sum_us8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

// [sum(v[0]), ..., sum(v[7])] of eight int32 vectors. hadd pairs neighbours inside each 128-bit
// lane, so after two rounds lane k of the low half holds the low-half sum of v[k]; the permutes
// then add the two halves.
inline __m256i hsum8_epi32(const __m256i v[8]) {
    const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// The scales of eight consecutive activation blocks.
inline __m256 load_dx8(const block_q8_x *x) {
    return _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d);
}

// --- activations ----------------------------------------------------------------------------

void quantize_x_avx2(const float *x, block_q8_x *y, int64_t cols) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < cols / QK; i++) {
        const float *xb = x + i * QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        const __m256 vid = _mm256_set1_ps(id);
        // cvtps rounds to nearest even, like lrintf in the portable set: both sets agree bit for bit.
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        // The packs work per 128-bit lane; the permute restores element order.
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[i].qs, i0);
    }
}

// --- float weights --------------------------------------------------------------------------

inline __m256 load8_f32(const uint8_t *w, int64_t i) { return _mm256_loadu_ps((const float *)w + i); }
inline __m256 load8_f16(const uint8_t *w, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * i)));
}
inline __m256 load8_bf16(const uint8_t *w, int64_t i) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
inline float load1_f32(const uint8_t *w, int64_t i) {
    float f;
    memcpy(&f, w + 4 * i, 4);
    return f;
}
inline float load1_f16(const uint8_t *w, int64_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return h2f(h);
}
inline float load1_bf16(const uint8_t *w, int64_t i) {
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return bf16_to_fp32(h);
}

// Two accumulators per activation vector hide the FMA latency; each weight vector is converted
// once and used for all NX activations.
template <int NX, __m256 (*Load8)(const uint8_t *, int64_t), float (*Load1)(const uint8_t *, int64_t)>
void dot_floats(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const float *xv[NX];
    for (int j = 0; j < NX; j++) xv[j] = (const float *)(x + j * xs);
    __m256 a[NX], b[NX];
    for (int j = 0; j < NX; j++) a[j] = b[j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
        const __m256 w0 = Load8(w, i), w1 = Load8(w, i + 8);
        for (int j = 0; j < NX; j++) {
            a[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xv[j] + i), a[j]);
            b[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xv[j] + i + 8), b[j]);
        }
    }
    for (; i + 8 <= cols; i += 8) {
        const __m256 w0 = Load8(w, i);
        for (int j = 0; j < NX; j++) a[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xv[j] + i), a[j]);
    }
    for (int j = 0; j < NX; j++) {
        float s = hsum(_mm256_add_ps(a[j], b[j]));
        for (int64_t k = i; k < cols; k++) s += Load1(w, k) * xv[j][k];
        out[j * os] = s;
    }
}

// NR rows x NX activations: per 8 elements NR weight loads (and conversions) and NX activation
// loads feed NR * NX independent FMA chains.
template <int NR, int NX, __m256 (*Load8)(const uint8_t *, int64_t), float (*Load1)(const uint8_t *, int64_t)>
void tile_floats(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const float *xv[NX];
    for (int j = 0; j < NX; j++) xv[j] = (const float *)(x + j * xs);
    __m256 a[NR][NX];
    for (int r = 0; r < NR; r++)
        for (int j = 0; j < NX; j++) a[r][j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        __m256 wv[NR];
        for (int r = 0; r < NR; r++) wv[r] = Load8(w + r * rb, i);
        for (int j = 0; j < NX; j++) {
            const __m256 xx = _mm256_loadu_ps(xv[j] + i);
            for (int r = 0; r < NR; r++) a[r][j] = _mm256_fmadd_ps(wv[r], xx, a[r][j]);
        }
    }
    for (int r = 0; r < NR; r++) {
        for (int j = 0; j < NX; j++) {
            float s = hsum(a[r][j]);
            for (int64_t k = i; k < cols; k++) s += Load1(w + r * rb, k) * xv[j][k];
            out[r + j * os] = s;
        }
    }
}

template <__m256 (*Load8)(const uint8_t *, int64_t), float (*Load1)(const uint8_t *, int64_t)>
void tile_floats_any(int64_t cols, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs, int nx,
                     float *out, int64_t os) {
    if (nr >= 2) {
        switch (nx) {
            case 1: tile_floats<2, 1, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            case 2: tile_floats<2, 2, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            case 3: tile_floats<2, 3, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            default: tile_floats<2, 4, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
        }
    } else {
        switch (nx) {
            case 1: tile_floats<1, 1, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            case 2: tile_floats<1, 2, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            case 3: tile_floats<1, 3, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
            default: tile_floats<1, 4, Load8, Load1>(cols, w, rb, x, xs, out, os); break;
        }
    }
}

// --- Q8_0 / Q4_0 ----------------------------------------------------------------------------

inline __m256i unpack_q8_0(const block_q8_0 *b) { return load32(b->qs); }

// Nibbles to int8 in -8..7: the low nibbles are elements 0..15, the high ones 16..31.
inline __m256i unpack_q4_0(const block_q4_0 *b) {
    const __m128i t = _mm_loadu_si128((const __m128i *)b->qs);
    const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

// The nibbles of a Q4_0 block as unsigned bytes 0..15, elements 0..15 (low nibbles) in the low lane
// and 16..31 (high nibbles) in the high lane: one broadcast load, one shift of the high lane's dwords
// by 4 (a byte's high nibble becomes its low one; what the shift brings in from the next byte is
// masked off) and one and, where the srli + insert + and of unpack_q4_0 cost a shuffle more.
inline __m256i unpack_q4_0_u(const uint8_t *qs) {
    const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi32(t, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
}

// The fp16 scales of eight consecutive blocks of bb bytes (the scale first in each) as floats:
// one insert per scale. Storing them to a stack array and loading it as a vector, as this once
// did, stalls on store forwarding (eight 2-byte stores read back by one 16-byte load).
inline __m256 load_d8(const uint8_t *w, size_t bb) {
    uint16_t d[8];
    for (int k = 0; k < 8; k++) memcpy(&d[k], w + k * bb, 2);
    __m128i v = _mm_cvtsi32_si128(d[0]);
    v = _mm_insert_epi16(v, d[1], 1);
    v = _mm_insert_epi16(v, d[2], 2);
    v = _mm_insert_epi16(v, d[3], 3);
    v = _mm_insert_epi16(v, d[4], 4);
    v = _mm_insert_epi16(v, d[5], 5);
    v = _mm_insert_epi16(v, d[6], 6);
    v = _mm_insert_epi16(v, d[7], 7);
    return _mm256_cvtph_ps(v);
}

// Eight blocks per step. The integer dot of each (block, activation) pair stays int32 until the
// eight are reduced by hadd and two lane permutes into one vector [b0 .. b7], which is converted
// and scaled by a vector of eight (weight scale * activation scale): one cvt and one FMA per eight
// blocks instead of one per block, and the weight sign is taken once per block for all
// activations (decode is bound by instructions per weight byte as much as by memory on one core).
template <int NX, typename Block, __m256i (*Unpack)(const Block *)>
void dot_q32(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const Block *wb = (const Block *)w;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    __m256 a[NX];
    for (int j = 0; j < NX; j++) a[j] = _mm256_setzero_ps();
    const int64_t nb = cols / QK;
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        const Block *wi = wb + i;
        const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16((short)wi[0].d, (short)wi[1].d, (short)wi[2].d,
                                                         (short)wi[3].d, (short)wi[4].d, (short)wi[5].d,
                                                         (short)wi[6].d, (short)wi[7].d));
        __m256i h[NX][2];
        for (int g = 0; g < 2; g++) {
            __m256i aw[4], sw[4];
            for (int k = 0; k < 4; k++) {
                sw[k] = Unpack(wi + 4 * g + k);
                aw[k] = _mm256_sign_epi8(sw[k], sw[k]);
            }
            for (int j = 0; j < NX; j++) {
                const block_q8_x *xj = xb[j] + i + 4 * g;
                __m256i p[4];
                for (int k = 0; k < 4; k++) {
                    // |w| * (x with w's sign): maddubs wants the unsigned operand first
                    p[k] = mul_sum_us8(aw[k], _mm256_sign_epi8(load32(xj[k].qs), sw[k]));
                }
                // [b0 b1 b2 b3 | b0 b1 b2 b3]: the low and high halves of four blocks
                h[j][g] = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
            }
        }
        for (int j = 0; j < NX; j++) {
            const block_q8_x *xj = xb[j] + i;
            const __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(h[j][0], h[j][1], 0x20),
                                                 _mm256_permute2x128_si256(h[j][0], h[j][1], 0x31));
            const __m256 dx =
                _mm256_setr_ps(xj[0].d, xj[1].d, xj[2].d, xj[3].d, xj[4].d, xj[5].d, xj[6].d, xj[7].d);
            a[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(sum), a[j]);
        }
    }
    for (; i < nb; i++) {
        const __m256i q0 = Unpack(wb + i);
        const float d0 = h2f(wb[i].d);
        for (int j = 0; j < NX; j++) {
            const __m256i p0 = dot_i8(q0, load32(xb[j][i].qs));
            a[j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * xb[j][i].d), _mm256_cvtepi32_ps(p0), a[j]);
        }
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(a[j]);
}

// Prefill form of the Q8_0 / Q4_0 dot (one row x nx activation vectors) with the activation scales
// and scaled block sums precomputed per tile (pre, see dot_pre_fn): the eight activation scales
// are one load instead of eight, and Q4_0 keeps its nibbles unsigned (no sign trick per
// activation block) and subtracts 8 * dx * sum(x) per block through the precomputed sums.
// Only Q4_0 uses it: for Q8_0, building the pre tables per row tile costs more instructions than
// the scale loads save (callgrind, 2048-wide model, 8-token prefill), so Q8_0 keeps dot_q32.
template <int NX, bool Q4>
void dot_q32_pre(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, const float *pre, int64_t ps,
                 float *out, int64_t os) {
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 a[NX], c[NX];
    for (int j = 0; j < NX; j++) a[j] = c[j] = _mm256_setzero_ps();
    const int64_t nb = cols / QK;
    const size_t bb = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        const uint8_t *wi = w + (size_t)i * bb;
        const __m256 dw = load_d8(wi, bb);
        __m256i h[NX][2];
        for (int g = 0; g < 2; g++) {
            __m256i uw[4], sw[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *blk = wi + (4 * g + k) * bb + 2;
                if (Q4) {
                    uw[k] = unpack_q4_0_u(blk);
                } else {
                    sw[k] = load32(blk);
                    uw[k] = _mm256_sign_epi8(sw[k], sw[k]);
                }
            }
            for (int j = 0; j < NX; j++) {
                const block_q8_x *xj = xb[j] + i + 4 * g;
                __m256i p[4];
                for (int k = 0; k < 4; k++) {
                    const __m256i xv = load32(xj[k].qs);
                    p[k] = mul_sum_us8(uw[k], Q4 ? xv : _mm256_sign_epi8(xv, sw[k]));
                }
                h[j][g] = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
            }
        }
        for (int j = 0; j < NX; j++) {
            const float *pj = pre + j * ps + (i / 8) * 16;
            const __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(h[j][0], h[j][1], 0x20),
                                                 _mm256_permute2x128_si256(h[j][0], h[j][1], 0x31));
            a[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_loadu_ps(pj)), _mm256_cvtepi32_ps(sum), a[j]);
            if (Q4) c[j] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(pj + 8), c[j]);
        }
    }
    float tail[NX] = {};
    for (; i < nb; i++) {
        const uint8_t *blk = w + (size_t)i * bb;
        uint16_t dh;
        memcpy(&dh, blk, 2);
        const float d0 = h2f(dh);
        __m256i q;
        if (Q4) {
            const __m128i t = _mm_loadu_si128((const __m128i *)(blk + 2));
            q = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4), _mm256_set1_epi8(8));
        } else {
            q = load32(blk + 2);
        }
        for (int j = 0; j < NX; j++) tail[j] += d0 * pre[j * ps + (i / 8) * 16 + i % 8] *
                                              (float)hsum_epi32(dot_i8(q, load32(xb[j][i].qs)));
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(a[j]) - (Q4 ? 8.0f * hsum(c[j]) : 0.0f) + tail[j];
}

template <bool Q4>
void dot_q32_pre_any(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, const float *pre,
                     int64_t ps, float *out, int64_t os) {
    switch (nx) {
        case 1: dot_q32_pre<1, Q4>(cols, w, x, xs, pre, ps, out, os); break;
        case 2: dot_q32_pre<2, Q4>(cols, w, x, xs, pre, ps, out, os); break;
        case 3: dot_q32_pre<3, Q4>(cols, w, x, xs, pre, ps, out, os); break;
        default: dot_q32_pre<4, Q4>(cols, w, x, xs, pre, ps, out, os); break;
    }
}

// --- Q4_K -----------------------------------------------------------------------------------

// The 8 scales and 8 mins of a Q4_K block as float vectors (get_scale_min_k4 for all 16 at once),
// and d and dmin broadcast: scales and mins 0-3 are the low 6 bits of bytes 0-3 and 4-7; 4-7 take
// their low 4 bits from the low (scales) or high (mins) nibbles of bytes 8-11 and their top 2 bits
// from the top of bytes 0-3 / 4-7. One 16-byte load covers d, dmin and the 12 bytes; ~15 vector
// instructions where the scalar bit work on three words, and the scalar d and dmin, took ~30.
inline void q4k_block_consts(const block_q4_K *blk, __m256 *d, __m256 *dmin, __m256 *scf, __m256 *mf) {
    static_assert(sizeof(block_q4_K) == 144, "Q4_K block: d, dmin, 12 scale bytes, 128 nibble bytes");
    const __m128i v = _mm_loadu_si128((const __m128i *)blk);
    // bytes 0-7: scale bytes 0-7; bytes 8-15: scale bytes 8-11 twice
    const __m128i c = _mm_shuffle_epi8(v, _mm_setr_epi8(4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 12, 13, 14, 15));
    const __m128i lo6 = _mm_and_si128(c, _mm_set1_epi8(0x3F));
    // low nibbles of bytes 8-11 for scales 4-7, high nibbles for mins 4-7
    const __m128i nib =
        _mm_and_si128(_mm_srlv_epi32(_mm_srli_si128(c, 8), _mm_setr_epi32(0, 4, 0, 0)), _mm_set1_epi8(0x0F));
    // bits 6-7 of bytes 0-7 moved to bits 4-5 (a 16-bit shift; the and drops what crosses bytes)
    const __m128i top = _mm_and_si128(_mm_srli_epi16(c, 2), _mm_set1_epi8(0x30));
    // [scales 0-3, scales 4-7, mins 0-3, mins 4-7]
    const __m128i sm = _mm_unpacklo_epi32(lo6, _mm_or_si128(nib, top));
    *scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
    *mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
    const __m256 dd = _mm256_castps128_ps256(_mm_cvtph_ps(v));
    *d = _mm256_broadcastss_ps(_mm256_castps256_ps128(dd));
    *dmin = _mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(1));
}

inline void q4k_scales_mins(const block_q4_K *blk, __m256 *scf, __m256 *mf) {
    __m256 d, dmin;
    q4k_block_consts(blk, &d, &dmin, scf, mf);
}

// Per 32-element sub-block s with 6-bit scale sc and min m:
//   dot = d*dx*sc*sum(q*x) - dmin*dx*m*sum(x)
// Per super-block and activation vector the eight sub-block dots and the eight sums of x are
// each reduced to one vector (hsum8), so the float work is per 256 elements, not per 32; the
// unpacked nibbles and the scales are shared by the NX activation vectors.
template <int NX>
void dot_q4_K(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const block_q4_K *wb = (const block_q4_K *)w;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    __m256 a[NX];
    for (int j = 0; j < NX; j++) a[j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones8 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const block_q4_K *blk = wb + i;
        __m256 scf, mf;
        __m256 d, dmin;
        q4k_block_consts(blk, &d, &dmin, &scf, &mf);
        __m256i q[8];
        for (int k = 0; k < 4; k++) {
            const __m256i qv = load32(blk->qs + 32 * k);
            q[2 * k] = _mm256_and_si256(qv, m4);
            q[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        }
        for (int j = 0; j < NX; j++) {
            const block_q8_x *xq = xb[j] + 8 * i;
            __m256i p[8], t[8];
            for (int s = 0; s < 8; s++) {
                const __m256i xv = load32(xq[s].qs);
                // q is 0..15, so the unsigned-by-signed maddubs is exact.
                p[s] = mul_sum_us8(q[s], xv);
                t[s] = mul_sum_us8(ones8, xv);
            }
            const __m256 dxv = load_dx8(xq);
            const __m256 dots = _mm256_cvtepi32_ps(hsum8_epi32(p)), sums = _mm256_cvtepi32_ps(hsum8_epi32(t));
            a[j] = _mm256_fmadd_ps(d, _mm256_mul_ps(dots, _mm256_mul_ps(scf, dxv)), a[j]);
            a[j] = _mm256_fnmadd_ps(dmin, _mm256_mul_ps(sums, _mm256_mul_ps(mf, dxv)), a[j]);
        }
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(a[j]);
}

// dot_q4_K with the activation scales and sums precomputed (see dot_pre_fn): per sub-block only
// the maddubs and madd of the weights against x remain, half the multiply work of dot_q4_K.
template <int NX>
void dot_q4_K_pre(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, const float *pre, int64_t ps,
                  float *out, int64_t os) {
    const block_q4_K *wb = (const block_q4_K *)w;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    __m256 a[NX];
    for (int j = 0; j < NX; j++) a[j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const block_q4_K *blk = wb + i;
        __m256 scf, mf;
        __m256 d, dmin;
        q4k_block_consts(blk, &d, &dmin, &scf, &mf);
        __m256i q[8];
        for (int k = 0; k < 4; k++) {
            const __m256i qv = load32(blk->qs + 32 * k);
            q[2 * k] = _mm256_and_si256(qv, m4);
            q[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        }
        for (int j = 0; j < NX; j++) {
            const block_q8_x *xq = xb[j] + 8 * i;
            __m256i p[8];
            for (int s = 0; s < 8; s++) p[s] = mul_sum_us8(q[s], load32(xq[s].qs));
            const float *pj = pre + j * ps + 16 * i;
            const __m256 dxv = _mm256_loadu_ps(pj), fsx = _mm256_loadu_ps(pj + 8);
            a[j] = _mm256_fmadd_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(hsum8_epi32(p)), _mm256_mul_ps(scf, dxv)), a[j]);
            a[j] = _mm256_fnmadd_ps(dmin, _mm256_mul_ps(mf, fsx), a[j]);
        }
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(a[j]);
}

void dot_q4_K_pre_any(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, const float *pre,
                      int64_t ps, float *out, int64_t os) {
    switch (nx) {
        case 1: dot_q4_K_pre<1>(cols, w, x, xs, pre, ps, out, os); break;
        case 2: dot_q4_K_pre<2>(cols, w, x, xs, pre, ps, out, os); break;
        case 3: dot_q4_K_pre<3>(cols, w, x, xs, pre, ps, out, os); break;
        default: dot_q4_K_pre<4>(cols, w, x, xs, pre, ps, out, os); break;
    }
}

// --- Q6_K -----------------------------------------------------------------------------------

// Each 128-element half: chunk c (32 elements) takes the low (c < 2) or high nibbles of
// ql[(c & 1) * 32 ...] and bits 2c..2c+1 of qh; elements 0..15 of a chunk use scale 2c, 16..31
// scale 2c+1 (so the madd scale vector differs between the two 128-bit lanes).
template <int NX>
void dot_q6_K(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const block_q6_K *wb = (const block_q6_K *)w;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    __m256 a[NX], b[NX];
    for (int j = 0; j < NX; j++) a[j] = b[j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const float d = h2f(wb[i].d);
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load32(wb[i].ql + 64 * h), ql1 = load32(wb[i].ql + 64 * h + 32);
            const __m256i qh = load32(wb[i].qh + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            const int8_t *sc = wb[i].scales + 8 * h;
            for (int c = 0; c < 4; c++) {
                const __m256i qs = _mm256_sub_epi8(q[c], k32);  // -32..31
                const __m256i scv =
                    _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]), _mm_set1_epi16(sc[2 * c]));
                const __m256i aq = _mm256_sign_epi8(qs, qs);
                for (int j = 0; j < NX; j++) {
                    const block_q8_x &xq = xb[j][i * 8 + h * 4 + c];
                    const __m256i p16 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(load32(xq.qs), qs));
                    const __m256i p = _mm256_madd_epi16(p16, scv);
                    // Alternate accumulators by chunk parity to halve the FMA dependency chain.
                    if (c & 1) {
                        b[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * xq.d), _mm256_cvtepi32_ps(p), b[j]);
                    } else {
                        a[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * xq.d), _mm256_cvtepi32_ps(p), a[j]);
                    }
                }
            }
        }
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(_mm256_add_ps(a[j], b[j]));
}

// dot_q6_K with the activation scales and the 16-element activation sums from the precomputed
// table (see dot_pre_fn; for Q6_K the table holds, after the 8 scales, the 16 int16 sums of each
// 16-element half-block, as Q6_K's scales are per 16 elements). The 6-bit values stay unsigned
// (0..63), so each 32-element chunk is one int8 dot with no sign trick, and the offset of 32 is
// taken off once per 256 elements: sum((q - 32) x) = sum(q x) - 32 sum(x), with
// sum_k sc_k * 32 * sum16_k for all 16 scales in one madd against the table's sums. Per 128
// elements and activation the four chunks reduce in one hadd tree to the eight 16-element dots in
// the order [0 2 4 6 | 1 3 5 7], which are scaled in int32 by the 6-bit block scales shuffled into
// that order; the two halves then add into one vector of the eight chunks' dots [0 .. 7], which is
// converted and scaled once per 256 elements. Exact in int32: every sum stays below 2^26.
// Callgrind (avx2 set, 1024 x 2048, one row at a time): 127 -> 93 instructions per 210-byte
// block, where the sign trick spent a subtract and two sign operations per chunk and activation.
// The decode (n = 1) kernel of Q6_K.
template <int NX>
void dot_q6_K_pre(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, const float *pre, int64_t ps,
                  float *out, int64_t os) {
    const block_q6_K *wb = (const block_q6_K *)w;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m128i order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    __m256 a[NX];
    for (int j = 0; j < NX; j++) a[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const block_q6_K *blk = wb + i;
        const __m128i sc_raw = _mm_loadu_si128((const __m128i *)blk->scales);
        const __m128i sc = _mm_shuffle_epi8(sc_raw, order);
        const __m256i sc_h[2] = {_mm256_cvtepi8_epi32(sc), _mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))};
        // scales 0..15 as int16, in the order of the table's half-block sums
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc_raw);
        __m256i dh[NX][2];
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load32(blk->ql + 64 * h), ql1 = load32(blk->ql + 64 * h + 32);
            const __m256i qh = load32(blk->qh + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int j = 0; j < NX; j++) {
                const block_q8_x *xq = xb[j] + 8 * i + 4 * h;
                __m256i p[4];
                // q is 0..63: each maddubs pair sum is at most 2 * 63 * 127 < 32767.
                for (int c = 0; c < 4; c++) p[c] = mul_sum_us8(q[c], load32(xq[c].qs));
                const __m256i d16 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
                dh[j][h] = _mm256_mullo_epi32(d16, sc_h[h]);
            }
        }
        const __m256 d = _mm256_set1_ps(h2f(blk->d));
        for (int j = 0; j < NX; j++) {
            const float *pj = pre + j * ps + 16 * i;
            // [chunk 0 .. 7]: the first and second 16 elements of each chunk, scaled
            const __m256i dots = _mm256_add_epi32(_mm256_permute2x128_si256(dh[j][0], dh[j][1], 0x20),
                                                  _mm256_permute2x128_si256(dh[j][0], dh[j][1], 0x31));
            // lane c: sc_2c * sum16_2c + sc_2c+1 * sum16_2c+1, the offset's share of chunk c
            const __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(pj + 8)));
            const __m256i s = _mm256_sub_epi32(dots, _mm256_slli_epi32(off, 5));
            a[j] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_loadu_ps(pj)), _mm256_cvtepi32_ps(s), a[j]);
        }
    }
    for (int j = 0; j < NX; j++) out[j * os] = hsum(a[j]);
}

void dot_q6_K_pre_any(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, const float *pre,
                      int64_t ps, float *out, int64_t os) {
    switch (nx) {
        case 1: dot_q6_K_pre<1>(cols, w, x, xs, pre, ps, out, os); break;
        case 2: dot_q6_K_pre<2>(cols, w, x, xs, pre, ps, out, os); break;
        case 3: dot_q6_K_pre<3>(cols, w, x, xs, pre, ps, out, os); break;
        default: dot_q6_K_pre<4>(cols, w, x, xs, pre, ps, out, os); break;
    }
}


// --- several rows x one activation vector (decode) ---------------------------------------------

template <int NR, __m256 (*Load8)(const uint8_t *, int64_t), float (*Load1)(const uint8_t *, int64_t)>
void rows_floats(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, float *out) {
    const float *xv = (const float *)x;
    __m256 a[NR];
    for (int r = 0; r < NR; r++) a[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        const __m256 xx = _mm256_loadu_ps(xv + i);
        for (int r = 0; r < NR; r++) a[r] = _mm256_fmadd_ps(Load8(w + r * rb, i), xx, a[r]);
    }
    for (int r = 0; r < NR; r++) {
        float s = hsum(a[r]);
        for (int64_t k = i; k < cols; k++) s += Load1(w + r * rb, k) * xv[k];
        out[r] = s;
    }
}

// Q8_0 has nothing to share between rows (the sign trick needs each weight's sign against x),
// and in cache the one-row kernel with two interleaved blocks measured faster than four
// interleaved rows (3 of 3 paired runs, Zen 5, a busy shared machine), so the rows form calls it
// per row.
template <int NR>
void rows_q8_0(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, float *out) {
    for (int r = 0; r < NR; r++) dot_q32<1, block_q8_0, unpack_q8_0>(cols, w + r * rb, x, 0, out + r, 1);
}

// sum((q - 8) * x) = sum(q * x) - 8 * sum(x): the nibbles stay unsigned for maddubs and the
// 8 * sum(x) term is computed once per activation block for all rows.
template <int NR>
void rows_q4_0(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, float *out) {
    const block_q8_x *xb = (const block_q8_x *)x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), k8 = _mm256_set1_epi8(8);
    __m256 a[NR];
    for (int r = 0; r < NR; r++) a[r] = _mm256_setzero_ps();
    const int64_t nb = cols / QK;
    int64_t b = 0;
    // Eight blocks per step, as four pairs in the layout below; the pairs' int32 dots are reduced
    // by two rounds of hadd to [b0 b2 b4 b6 | b1 b3 b5 b7] before one subtraction of 8 * sum(x),
    // one convert and one FMA per row (the scales are gathered in that lane order).
    for (; b + 8 <= nb; b += 8) {
        __m256i xlo[4], xhi[4], sx[4];
        for (int k = 0; k < 4; k++) {
            const __m256i x0 = load32(xb[b + 2 * k].qs), x1 = load32(xb[b + 2 * k + 1].qs);
            xlo[k] = _mm256_permute2x128_si256(x0, x1, 0x20);
            xhi[k] = _mm256_permute2x128_si256(x0, x1, 0x31);
            sx[k] = mul_sum2_us8(k8, xlo[k], k8, xhi[k]);
        }
        const __m256i sx8 = _mm256_hadd_epi32(_mm256_hadd_epi32(sx[0], sx[1]), _mm256_hadd_epi32(sx[2], sx[3]));
        const block_q8_x *xq = xb + b;
        const __m256 dx =
            _mm256_setr_ps(xq[0].d, xq[2].d, xq[4].d, xq[6].d, xq[1].d, xq[3].d, xq[5].d, xq[7].d);
        for (int r = 0; r < NR; r++) {
            const block_q4_0 *wr = (const block_q4_0 *)(w + r * rb) + b;
            __m256i p[4];
            for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)wr[2 * k + 1].qs),
                                                   _mm_loadu_si128((const __m128i *)wr[2 * k].qs));
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                // Each maddubs lane is at most 2 * 15 * 127, so the sum of the two stays in int16.
                p[k] = mul_sum2_us8(lo, xlo[k], hi, xhi[k]);
            }
            const __m256i s = _mm256_sub_epi32(
                _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3])), sx8);
            const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16((short)wr[0].d, (short)wr[2].d, (short)wr[4].d,
                                                             (short)wr[6].d, (short)wr[1].d, (short)wr[3].d,
                                                             (short)wr[5].d, (short)wr[7].d));
            a[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(s), a[r]);
        }
    }
    for (; b + 2 <= nb; b += 2) {
        const __m256i x0 = load32(xb[b].qs), x1 = load32(xb[b + 1].qs);
        const __m256i xlo = _mm256_permute2x128_si256(x0, x1, 0x20);
        const __m256i xhi = _mm256_permute2x128_si256(x0, x1, 0x31);
        const __m256i sx8 = mul_sum2_us8(k8, xlo, k8, xhi);
        const __m256 dx = _mm256_set_m128(_mm_set1_ps(xb[b + 1].d), _mm_set1_ps(xb[b].d));
        for (int r = 0; r < NR; r++) {
            const block_q4_0 *wr = (const block_q4_0 *)(w + r * rb) + b;
            const __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)wr[1].qs),
                                               _mm_loadu_si128((const __m128i *)wr[0].qs));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            // Each maddubs lane is at most 2 * 15 * 127, so the sum of the two stays in int16.
            const __m256i p = _mm256_sub_epi32(mul_sum2_us8(lo, xlo, hi, xhi), sx8);
            const __m256 dw = _mm256_set_m128(_mm_set1_ps(h2f(wr[1].d)), _mm_set1_ps(h2f(wr[0].d)));
            a[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(p), a[r]);
        }
    }
    for (; b < nb; b++) {
        const __m256i xv = load32(xb[b].qs);
        const __m256i sx8 = mul_sum_us8(k8, xv);
        const float dx = xb[b].d;
        for (int r = 0; r < NR; r++) {
            const block_q4_0 *wr = (const block_q4_0 *)(w + r * rb) + b;
            const __m128i t = _mm_loadu_si128((const __m128i *)wr->qs);
            const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
            const __m256i p = _mm256_sub_epi32(mul_sum_us8(q, xv), sx8);
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(wr->d) * dx), _mm256_cvtepi32_ps(p), a[r]);
        }
    }
    for (int r = 0; r < NR; r++) out[r] = hsum(a[r]);
}

// Per super-block the eight sub-block dots are reduced to one vector (hsum8) and scaled by
// vectors of (6-bit scale, activation scale), so the float work is per 256 elements, not per 32.
// The mins term needs dx * sum(x) per sub-block, computed once for all rows.
template <int NR>
void rows_q4_K(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, float *out) {
    const block_q8_x *xb = (const block_q8_x *)x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones8 = _mm256_set1_epi8(1);
    __m256 a[NR];
    for (int r = 0; r < NR; r++) a[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const block_q8_x *xs = xb + 8 * i;
        const __m256 dxv = load_dx8(xs);
        __m256i t[8];
        for (int s = 0; s < 8; s++) t[s] = mul_sum_us8(ones8, load32(xs[s].qs));
        const __m256 fsx = _mm256_mul_ps(dxv, _mm256_cvtepi32_ps(hsum8_epi32(t)));
        for (int r = 0; r < NR; r++) {
            const block_q4_K *blk = (const block_q4_K *)(w + r * rb) + i;
            __m256 scf, mf;
            q4k_scales_mins(blk, &scf, &mf);
            __m256i p[8];
            for (int k = 0; k < 4; k++) {
                const __m256i qv = load32(blk->qs + 32 * k);
                const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                p[2 * k] = mul_sum_us8(lo, load32(xs[2 * k].qs));
                p[2 * k + 1] = mul_sum_us8(hi, load32(xs[2 * k + 1].qs));
            }
            const __m256 dots = _mm256_cvtepi32_ps(hsum8_epi32(p));
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk->d)), _mm256_mul_ps(dots, _mm256_mul_ps(scf, dxv)), a[r]);
            a[r] = _mm256_fnmadd_ps(_mm256_set1_ps(h2f(blk->dmin)), _mm256_mul_ps(mf, fsx), a[r]);
        }
    }
    for (int r = 0; r < NR; r++) out[r] = hsum(a[r]);
}

// Two reduction trees of four 32-element chunks each keep the 16-element halves apart, giving
// the sixteen sub-block dots in the order [0 2 4 6 | 1 3 5 7] and [8 10 12 14 | 9 11 13 15];
// the int8 scales are shuffled into the same order.
template <int NR>
void rows_q6_K(int64_t cols, const uint8_t *w, size_t rb, const uint8_t *x, float *out) {
    const block_q8_x *xb = (const block_q8_x *)x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
    const __m128i order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    __m256 a[NR];
    for (int r = 0; r < NR; r++) a[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < cols / QK_K; i++) {
        const block_q8_x *xs = xb + 8 * i;
        const __m256 dxa = _mm256_setr_ps(xs[0].d, xs[1].d, xs[2].d, xs[3].d, xs[0].d, xs[1].d, xs[2].d, xs[3].d);
        const __m256 dxb = _mm256_setr_ps(xs[4].d, xs[5].d, xs[6].d, xs[7].d, xs[4].d, xs[5].d, xs[6].d, xs[7].d);
        for (int r = 0; r < NR; r++) {
            const block_q6_K *blk = (const block_q6_K *)(w + r * rb) + i;
            const __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)blk->scales), order);
            const __m256 sca = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), dxa);
            const __m256 scb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), dxb);
            __m256i p[8];
            for (int h = 0; h < 2; h++) {
                const __m256i ql0 = load32(blk->ql + 64 * h), ql1 = load32(blk->ql + 64 * h + 32);
                const __m256i qh = load32(blk->qh + 32 * h);
                __m256i q[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
                q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
                for (int c = 0; c < 4; c++) {
                    const __m256i qs = _mm256_sub_epi8(q[c], k32);
                    const __m256i xv = load32(xs[4 * h + c].qs);
                    p[4 * h + c] = mul_sum_us8(_mm256_sign_epi8(qs, qs), _mm256_sign_epi8(xv, qs));
                }
            }
            const __m256i da = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
            const __m256i db = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
            const __m256 sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db), scb, _mm256_mul_ps(_mm256_cvtepi32_ps(da), sca));
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk->d)), sum, a[r]);
        }
    }
    for (int r = 0; r < NR; r++) out[r] = hsum(a[r]);
}

template <template <int> class K>
void by_nr(int64_t cols, const uint8_t *w, size_t rb, int nr, const uint8_t *x, float *out) {
    switch (nr) {
        case 1: K<1>::rows(cols, w, rb, x, out); break;
        case 2: K<2>::rows(cols, w, rb, x, out); break;
        case 3: K<3>::rows(cols, w, rb, x, out); break;
        default: K<4>::rows(cols, w, rb, x, out); break;
    }
}

// --- prefill GEMM (Q4_0 everywhere, Q8_0 with AVX-VNNI) ---------------------------------------
//
// The rows are repacked, per call and on the stack, into a panel of up to 8 rows: for block b and
// step s (4 columns) one 32-byte vector holds the 4 int8 weights of rows 0..7 (row r in bytes
// 4r..4r+3), with each row's scale and 128 * sum(weights) per block beside it. A register tile of
// 8 rows x 4 activation vectors then costs, per 4 columns, one weight load, four 4-byte activation
// broadcasts and four int8 dots of 8 rows each (dpbusd, or maddubs into int16 for 4-bit weights),
// and the float work is once per block for 8 rows: where the one-row kernels above spend a sign
// operation, a reduction and a separate activation load for every (row, activation, block).
// Activations arrive offset by 128 (unsigned), so the product needs no sign trick:
// sum((x + 128) * w) - 128 * sum(w) = sum(x * w), exactly, in int32.
//
// Without VNNI, maddubs forms int16 pair sums: (x + 128) <= 255 times |w| <= 8 (Q4_0 minus 8)
// gives at most 4080 per pair and 32640 over the 8 steps of a block, inside int16; 8-bit weights
// would overflow, so Q8_0 uses the GEMM only in the avx2-vnni set.

// Columns per panel: 64 blocks (2048 columns) keep the panel at 16 KiB + 4 KiB of scales and sums,
// L1-resident while every activation vector of the tile streams past it.
constexpr int64_t kGemmSliceBlocks = 64;

// v[r] lane s -> v[s] lane r (an 8x8 transpose of 32-bit lanes).
inline void transpose8_epi32(__m256i v[8]) {
    __m256i t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_epi32(v[2 * k], v[2 * k + 1]);      // r0s0 r1s0 r0s1 r1s1 | s4 s5
        t[2 * k + 1] = _mm256_unpackhi_epi32(v[2 * k], v[2 * k + 1]);  // r0s2 r1s2 r0s3 r1s3 | s6 s7
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);  // 4 rows of s0 | s4
        u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);  // s1 | s5
        u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);  // s2 | s6
        u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);  // s3 | s7
    }
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

inline int32_t hsum_sad(__m256i sad) {  // the four 64-bit sums of _mm256_sad_epu8
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
    return (int32_t)(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
}

// One block column of the panel: rows nr..7 are zero (scale 0), so a partial panel computes zeros.
template <bool Q4>
void gemm_pack_block(const uint8_t *w, size_t rb, int nr, int64_t b, __m256i *q, float *dw, int32_t *ws) {
    const size_t bb = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const __m256i zero = _mm256_setzero_si256();
    __m256i v[8];
    for (int r = 0; r < 8; r++) {
        if (r >= nr) {
            v[r] = zero;
            dw[r] = 0.0f;
            ws[r] = 0;
            continue;
        }
        const uint8_t *blk = w + (size_t)r * rb + (size_t)b * bb;
        uint16_t d;
        memcpy(&d, blk, 2);
        dw[r] = h2f(d);
        int32_t sum;
        if (Q4) {
            const __m128i t = _mm_loadu_si128((const __m128i *)(blk + 2));
            const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
            sum = hsum_sad(_mm256_sad_epu8(u, zero)) - 8 * 32;
            v[r] = _mm256_sub_epi8(u, _mm256_set1_epi8(8));
        } else {
            v[r] = load32(blk + 2);
            sum = hsum_sad(_mm256_sad_epu8(_mm256_xor_si256(v[r], _mm256_set1_epi8((char)0x80)), zero)) - 128 * 32;
        }
        ws[r] = 128 * sum;
    }
    transpose8_epi32(v);
    for (int s = 0; s < 8; s++) _mm256_store_si256(q + s, v[s]);
}

// NT activation vectors against the panel's kb blocks (starting at activation block b0); adds to
// out (add) or stores: out[r + t * os] for r < nr. Chain (R8 panels, nr == 8): with add, the
// accumulators start from out instead, so the float sums run in one chain per (row, vector) across
// the slices, the order of the R8 decode kernel (which the R8 GEMM matches bit for bit).
template <int NT, bool Q4, bool Chain = false>
void gemm_tile(const __m256i *q, const float *dw, const int32_t *ws, int64_t kb, const uint8_t *x, size_t xs,
               int64_t b0, int nr, float *out, int64_t os, bool add) {
    const block_q8_x *xb[NT];
    for (int t = 0; t < NT; t++) xb[t] = (const block_q8_x *)(x + t * xs) + b0;
    __m256 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = Chain && add ? _mm256_loadu_ps(out + t * os) : _mm256_setzero_ps();
    for (int64_t b = 0; b < kb; b++) {
        __m256i is[NT];
        const __m256i wsv = _mm256_load_si256((const __m256i *)(ws + 8 * b));
#if defined(STW_CPU_VNNI)
        // The chains start at -128 sum(w) (the same exact int32 as subtracting it after the dots):
        // one subtract per block instead of one per block and activation.
        const __m256i nws = _mm256_sub_epi32(_mm256_setzero_si256(), wsv);
        for (int t = 0; t < NT; t++) is[t] = nws;
        for (int s = 0; s < 8; s++) {
            const __m256i wv = _mm256_load_si256(q + 8 * b + s);
            for (int t = 0; t < NT; t++) {
                int32_t xv;
                memcpy(&xv, xb[t][b].qs + 4 * s, 4);
                is[t] = _mm256_dpbusd_avx_epi32(is[t], _mm256_set1_epi32(xv), wv);
            }
        }
#else
        static_assert(Q4, "8-bit weights overflow the int16 sums of maddubs; the AVX2 GEMM is Q4_0 only");
        __m256i p[NT];
        for (int t = 0; t < NT; t++) p[t] = _mm256_setzero_si256();
        for (int s = 0; s < 8; s++) {
            const __m256i wv = _mm256_load_si256(q + 8 * b + s);
            for (int t = 0; t < NT; t++) {
                int32_t xv;
                memcpy(&xv, xb[t][b].qs + 4 * s, 4);
                p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(_mm256_set1_epi32(xv), wv));
            }
        }
        for (int t = 0; t < NT; t++) is[t] = _mm256_sub_epi32(_mm256_madd_epi16(p[t], _mm256_set1_epi16(1)), wsv);
#endif
        const __m256 dwv = _mm256_load_ps(dw + 8 * b);
        for (int t = 0; t < NT; t++) {
            const __m256 scale = _mm256_mul_ps(dwv, _mm256_set1_ps(xb[t][b].d));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), scale, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) {
        float *o = out + t * os;
        if (Chain) {
            _mm256_storeu_ps(o, acc[t]);
        } else if (nr == 8) {
            _mm256_storeu_ps(o, add ? _mm256_add_ps(_mm256_loadu_ps(o), acc[t]) : acc[t]);
        } else {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, acc[t]);
            for (int r = 0; r < nr; r++) o[r] = add ? o[r] + tmp[r] : tmp[r];
        }
    }
}

// The slice loop of the 32-block GEMMs: per slice of kGemmSliceBlocks blocks, pack(b, q, dw, ws)
// fills block b's stack panel, then the tiles run over all nx activations (8 at a time with VNNI, else
// 4, then the rest), their float sums added to the previous slices'.
template <bool Q4, bool Chain, class Pack>
void gemm_slices(int64_t cols, int nr, const uint8_t *x, size_t xs, int nx, float *out, int64_t os, Pack pack) {
    alignas(32) __m256i q[kGemmSliceBlocks * 8];
    alignas(32) float dw[kGemmSliceBlocks * 8];
    alignas(32) int32_t ws[kGemmSliceBlocks * 8];
    const int64_t nb = cols / QK;
    for (int64_t b0 = 0; b0 < nb; b0 += kGemmSliceBlocks) {
        const int64_t kb = nb - b0 < kGemmSliceBlocks ? nb - b0 : kGemmSliceBlocks;
        for (int64_t b = 0; b < kb; b++) pack(b0 + b, q + 8 * b, dw + 8 * b, ws + 8 * b);
        const bool add = b0 > 0;
        int j = 0;
#if defined(STW_CPU_VNNI)
        // With dpbusd, 8 activations per tile (8 accumulator chains, one weight load per 8 dots) ran
        // Q4_0 prefill 3-8% faster than 4 (157.2/152.5/161.8/154.0 against 148.7/143.7/149.9/149.3
        // GMAC/s, paired, 2048x2048 in cache, 128 activations, one thread, Zen 5, a busy shared
        // machine); the maddubs form needs twice the registers per activation and spills at 8.
        for (; j + 8 <= nx; j += 8)
            gemm_tile<8, Q4, Chain>(q, dw, ws, kb, x + (size_t)j * xs, xs, b0, nr, out + j * os, os, add);
#endif
        for (; j + 4 <= nx; j += 4)
            gemm_tile<4, Q4, Chain>(q, dw, ws, kb, x + (size_t)j * xs, xs, b0, nr, out + j * os, os, add);
        const uint8_t *xj = x + (size_t)j * xs;
        switch (nx - j) {
            case 3: gemm_tile<3, Q4, Chain>(q, dw, ws, kb, xj, xs, b0, nr, out + j * os, os, add); break;
            case 2: gemm_tile<2, Q4, Chain>(q, dw, ws, kb, xj, xs, b0, nr, out + j * os, os, add); break;
            case 1: gemm_tile<1, Q4, Chain>(q, dw, ws, kb, xj, xs, b0, nr, out + j * os, os, add); break;
            default: break;
        }
    }
}

template <bool Q4>
void gemm_q32(int64_t cols, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs, int nx, float *out,
              int64_t os) {
    gemm_slices<Q4, false>(cols, nr, x, xs, nx, out, os, [&](int64_t b, __m256i *q, float *dw, int32_t *ws) {
        gemm_pack_block<Q4>(w, rb, nr, b, q, dw, ws);
    });
}

// Q4_K through the same panels: a 32-element sub-block plays the part of a block. Its weights are
// the unsigned nibbles q (0..15) with float scale d * sc_j per row, and the mins add
// -dmin * m_j * sum(x) per sub-block, so beside the scales the panel keeps dmin * m_j per row and
// the tile sums each activation block once per 4 activations (psadbw) for all 8 rows. Without
// VNNI, maddubs's int16 sums of (x + 128) * q reach 2 * 255 * 15 per step, so they are widened
// every 4 steps instead of every 8.
void gemm_pack_q4_K(const uint8_t *w, size_t rb, int nr, int64_t i, __m256i *q, float *dw, float *mw, int32_t *ws) {
    const __m256i zero = _mm256_setzero_si256(), m4 = _mm256_set1_epi8(0x0F);
    __m256i v[8][8];  // [sub-block][row]
    for (int r = 0; r < 8; r++) {
        if (r >= nr) {
            for (int j = 0; j < 8; j++) {
                v[j][r] = zero;
                dw[8 * j + r] = mw[8 * j + r] = 0.0f;
                ws[8 * j + r] = 0;
            }
            continue;
        }
        const block_q4_K *blk = (const block_q4_K *)(w + (size_t)r * rb) + i;
        const float d = h2f(blk->d), dmin = h2f(blk->dmin);
        for (int k = 0; k < 4; k++) {
            const __m256i qv = load32(blk->qs + 32 * k);
            v[2 * k][r] = _mm256_and_si256(qv, m4);
            v[2 * k + 1][r] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        }
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            q4k_scale_min(j, blk->scales, &sc, &m);
            dw[8 * j + r] = d * (float)sc;
            mw[8 * j + r] = dmin * (float)m;
            ws[8 * j + r] = 128 * hsum_sad(_mm256_sad_epu8(v[j][r], zero));
        }
    }
    for (int j = 0; j < 8; j++) {
        transpose8_epi32(v[j]);
        for (int s = 0; s < 8; s++) _mm256_store_si256(q + 8 * j + s, v[j][s]);
    }
}

template <int NT>
void gemm_tile_q4_K(const __m256i *q, const float *dw, const float *mw, const int32_t *ws, int64_t kb,
                    const uint8_t *x, size_t xs, int64_t b0, int nr, float *out, int64_t os, bool add) {
    const block_q8_x *xb[NT];
    for (int t = 0; t < NT; t++) xb[t] = (const block_q8_x *)(x + t * xs) + b0;
    const __m256i zero = _mm256_setzero_si256();
    __m256 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < kb; b++) {
        __m256i is[NT];
#if defined(STW_CPU_VNNI)
        for (int t = 0; t < NT; t++) is[t] = zero;
        for (int s = 0; s < 8; s++) {
            const __m256i wv = _mm256_load_si256(q + 8 * b + s);
            for (int t = 0; t < NT; t++) {
                int32_t xv;
                memcpy(&xv, xb[t][b].qs + 4 * s, 4);
                is[t] = _mm256_dpbusd_avx_epi32(is[t], _mm256_set1_epi32(xv), wv);
            }
        }
#else
        for (int t = 0; t < NT; t++) is[t] = zero;
        for (int h = 0; h < 2; h++) {
            __m256i p[NT];
            for (int t = 0; t < NT; t++) p[t] = zero;
            for (int s = 4 * h; s < 4 * h + 4; s++) {
                const __m256i wv = _mm256_load_si256(q + 8 * b + s);
                for (int t = 0; t < NT; t++) {
                    int32_t xv;
                    memcpy(&xv, xb[t][b].qs + 4 * s, 4);
                    p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(_mm256_set1_epi32(xv), wv));
                }
            }
            for (int t = 0; t < NT; t++) is[t] = _mm256_add_epi32(is[t], _mm256_madd_epi16(p[t], _mm256_set1_epi16(1)));
        }
#endif
        const __m256i wsv = _mm256_load_si256((const __m256i *)(ws + 8 * b));
        const __m256 dwv = _mm256_load_ps(dw + 8 * b), mwv = _mm256_load_ps(mw + 8 * b);
        for (int t = 0; t < NT; t++) {
            const float dx = xb[t][b].d;
            // sum(x) of the block: the stored bytes are x + 128.
            const int32_t sx = hsum_sad(_mm256_sad_epu8(load32(xb[t][b].qs), zero)) - 128 * 32;
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(is[t], wsv)),
                                     _mm256_mul_ps(dwv, _mm256_set1_ps(dx)), acc[t]);
            acc[t] = _mm256_fnmadd_ps(mwv, _mm256_set1_ps(dx * (float)sx), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) {
        float *o = out + t * os;
        if (nr == 8) {
            _mm256_storeu_ps(o, add ? _mm256_add_ps(_mm256_loadu_ps(o), acc[t]) : acc[t]);
        } else {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, acc[t]);
            for (int r = 0; r < nr; r++) o[r] = add ? o[r] + tmp[r] : tmp[r];
        }
    }
}

void gemm_q4_K(int64_t cols, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs, int nx, float *out,
               int64_t os) {
    alignas(32) __m256i q[kGemmSliceBlocks * 8];
    alignas(32) float dw[kGemmSliceBlocks * 8], mw[kGemmSliceBlocks * 8];
    alignas(32) int32_t ws[kGemmSliceBlocks * 8];
    const int64_t nb = cols / QK;  // 32-element sub-blocks; a slice is 8 whole super-blocks
    for (int64_t b0 = 0; b0 < nb; b0 += kGemmSliceBlocks) {
        const int64_t kb = nb - b0 < kGemmSliceBlocks ? nb - b0 : kGemmSliceBlocks;
        for (int64_t j = 0; j < kb; j += 8)
            gemm_pack_q4_K(w, rb, nr, (b0 + j) / 8, q + 8 * j, dw + 8 * j, mw + 8 * j, ws + 8 * j);
        const bool add = b0 > 0;
        int t = 0;
        for (; t + 4 <= nx; t += 4)
            gemm_tile_q4_K<4>(q, dw, mw, ws, kb, x + (size_t)t * xs, xs, b0, nr, out + t * os, os, add);
        const uint8_t *xt = x + (size_t)t * xs;
        switch (nx - t) {
            case 3: gemm_tile_q4_K<3>(q, dw, mw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            case 2: gemm_tile_q4_K<2>(q, dw, mw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            case 1: gemm_tile_q4_K<1>(q, dw, mw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            default: break;
        }
    }
}

// Q6_K through the panels: weights q - 32 (signed, -32..31), and two scales per 32-element
// sub-block (one per 16 elements), so the 8 steps of a sub-block are summed as two halves, each
// with its own scale and 128 * sum(w). Without VNNI, maddubs's int16 sums of (x + 128) * |w| reach
// 2 * 255 * 32 per step and are widened every 2 steps.
void gemm_pack_q6_K(const uint8_t *w, size_t rb, int nr, int64_t i, __m256i *q, float *dw, int32_t *ws) {
    const __m256i zero = _mm256_setzero_si256(), m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i k32 = _mm256_set1_epi8(32), bias = _mm256_set1_epi8((char)0x80);
    __m256i v[8][8];  // [sub-block][row]
    for (int r = 0; r < 8; r++) {
        if (r >= nr) {
            for (int j = 0; j < 8; j++) {
                v[j][r] = zero;
                dw[16 * j + r] = dw[16 * j + 8 + r] = 0.0f;
                ws[16 * j + r] = ws[16 * j + 8 + r] = 0;
            }
            continue;
        }
        const block_q6_K *blk = (const block_q6_K *)(w + (size_t)r * rb) + i;
        const float d = h2f(blk->d);
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load32(blk->ql + 64 * h), ql1 = load32(blk->ql + 64 * h + 32);
            const __m256i qh = load32(blk->qh + 32 * h);
            v[4 * h + 0][r] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            v[4 * h + 1][r] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            v[4 * h + 2][r] =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            v[4 * h + 3][r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                              _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        }
        for (int j = 0; j < 8; j++) {
            v[j][r] = _mm256_sub_epi8(v[j][r], k32);
            // sums of the two 16-element halves: psadbw of w + 128 (lanes 0-1 and 2-3), minus 16 * 128
            const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v[j][r], bias), zero);
            const __m128i lo = _mm256_castsi256_si128(sad), hi = _mm256_extracti128_si256(sad, 1);
            const int32_t slo = (int32_t)(_mm_cvtsi128_si64(lo) + _mm_extract_epi64(lo, 1)) - 16 * 128;
            const int32_t shi = (int32_t)(_mm_cvtsi128_si64(hi) + _mm_extract_epi64(hi, 1)) - 16 * 128;
            dw[16 * j + r] = d * (float)blk->scales[2 * j];
            dw[16 * j + 8 + r] = d * (float)blk->scales[2 * j + 1];
            ws[16 * j + r] = 128 * slo;
            ws[16 * j + 8 + r] = 128 * shi;
        }
    }
    for (int j = 0; j < 8; j++) {
        transpose8_epi32(v[j]);
        for (int s = 0; s < 8; s++) _mm256_store_si256(q + 8 * j + s, v[j][s]);
    }
}

template <int NT>
void gemm_tile_q6_K(const __m256i *q, const float *dw, const int32_t *ws, int64_t kb, const uint8_t *x, size_t xs,
                    int64_t b0, int nr, float *out, int64_t os, bool add) {
    const block_q8_x *xb[NT];
    for (int t = 0; t < NT; t++) xb[t] = (const block_q8_x *)(x + t * xs) + b0;
    const __m256i zero = _mm256_setzero_si256();
    __m256 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < kb; b++) {
        __m256i is[2][NT];  // the two 16-element halves
        for (int h = 0; h < 2; h++) {
            for (int t = 0; t < NT; t++) is[h][t] = zero;
#if defined(STW_CPU_VNNI)
            for (int s = 4 * h; s < 4 * h + 4; s++) {
                const __m256i wv = _mm256_load_si256(q + 8 * b + s);
                for (int t = 0; t < NT; t++) {
                    int32_t xv;
                    memcpy(&xv, xb[t][b].qs + 4 * s, 4);
                    is[h][t] = _mm256_dpbusd_avx_epi32(is[h][t], _mm256_set1_epi32(xv), wv);
                }
            }
#else
            for (int s = 4 * h; s < 4 * h + 4; s += 2) {
                const __m256i w0 = _mm256_load_si256(q + 8 * b + s), w1 = _mm256_load_si256(q + 8 * b + s + 1);
                for (int t = 0; t < NT; t++) {
                    int32_t x0, x1;
                    memcpy(&x0, xb[t][b].qs + 4 * s, 4);
                    memcpy(&x1, xb[t][b].qs + 4 * s + 4, 4);
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_set1_epi32(x0), w0),
                                                       _mm256_maddubs_epi16(_mm256_set1_epi32(x1), w1));
                    is[h][t] = _mm256_add_epi32(is[h][t], _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
                }
            }
#endif
        }
        const __m256i wlo = _mm256_load_si256((const __m256i *)(ws + 16 * b));
        const __m256i whi = _mm256_load_si256((const __m256i *)(ws + 16 * b + 8));
        const __m256 dlo = _mm256_load_ps(dw + 16 * b), dhi = _mm256_load_ps(dw + 16 * b + 8);
        for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_set1_ps(xb[t][b].d);
            const __m256 sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(is[1][t], whi)), dhi,
                                               _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(is[0][t], wlo)), dlo));
            acc[t] = _mm256_fmadd_ps(sum, dx, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) {
        float *o = out + t * os;
        if (nr == 8) {
            _mm256_storeu_ps(o, add ? _mm256_add_ps(_mm256_loadu_ps(o), acc[t]) : acc[t]);
        } else {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, acc[t]);
            for (int r = 0; r < nr; r++) o[r] = add ? o[r] + tmp[r] : tmp[r];
        }
    }
}

void gemm_q6_K(int64_t cols, const uint8_t *w, size_t rb, int nr, const uint8_t *x, size_t xs, int nx, float *out,
               int64_t os) {
    alignas(32) __m256i q[kGemmSliceBlocks * 8];
    alignas(32) float dw[kGemmSliceBlocks * 16];
    alignas(32) int32_t ws[kGemmSliceBlocks * 16];
    const int64_t nb = cols / QK;
    for (int64_t b0 = 0; b0 < nb; b0 += kGemmSliceBlocks) {
        const int64_t kb = nb - b0 < kGemmSliceBlocks ? nb - b0 : kGemmSliceBlocks;
        for (int64_t j = 0; j < kb; j += 8) gemm_pack_q6_K(w, rb, nr, (b0 + j) / 8, q + 8 * j, dw + 16 * j, ws + 16 * j);
        const bool add = b0 > 0;
        int t = 0;
        for (; t + 4 <= nx; t += 4)
            gemm_tile_q6_K<4>(q, dw, ws, kb, x + (size_t)t * xs, xs, b0, nr, out + t * os, os, add);
        const uint8_t *xt = x + (size_t)t * xs;
        switch (nx - t) {
            case 3: gemm_tile_q6_K<3>(q, dw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            case 2: gemm_tile_q6_K<2>(q, dw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            case 1: gemm_tile_q6_K<1>(q, dw, ws, kb, xt, xs, b0, nr, out + t * os, os, add); break;
            default: break;
        }
    }
}

// --- dispatch on the number of activation vectors ---------------------------------------------

template <template <int> class K>
void by_nx(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    switch (nx) {
        case 1: K<1>::run(cols, w, x, xs, out, os); break;
        case 2: K<2>::run(cols, w, x, xs, out, os); break;
        case 3: K<3>::run(cols, w, x, xs, out, os); break;
        default: K<4>::run(cols, w, x, xs, out, os); break;
    }
}

template <int NX>
struct k_f32 {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_floats<NX, load8_f32, load1_f32>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_floats<NX, load8_f32, load1_f32>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_f16 {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_floats<NX, load8_f16, load1_f16>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_floats<NX, load8_f16, load1_f16>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_bf16 {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_floats<NX, load8_bf16, load1_bf16>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_floats<NX, load8_bf16, load1_bf16>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_q8_0 {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_q32<NX, block_q8_0, unpack_q8_0>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_q8_0<NX>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_q4_0 {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_q32<NX, block_q4_0, unpack_q4_0>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_q4_0<NX>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_q4_K {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_q4_K<NX>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_q4_K<NX>(c, w, rb, x, o);
    }
};
template <int NX>
struct k_q6_K {
    static void run(int64_t c, const uint8_t *w, const uint8_t *x, size_t xs, float *o, int64_t os) {
        dot_q6_K<NX>(c, w, x, xs, o, os);
    }
    static void rows(int64_t c, const uint8_t *w, size_t rb, const uint8_t *x, float *o) {
        rows_q6_K<NX>(c, w, rb, x, o);
    }
};

// --- Q4_0 R8 (load-time row-interleaved panels, repack.cpp) -------------------------------------
//
// Per block of 32 columns the panel gives, in four 32-byte loads, the 8 rows' nibbles with row r in
// int32 lane r (chunk v: elements 4v..4v+3 in the low nibbles, 16+4v..19+4v in the high ones). Each
// chunk meets a 4-byte broadcast of the activation block, so the int8 dots leave each row's sum in its
// own lane: no horizontal reductions, one activation load for 8 rows, one fp16 scale load for 8 rows.
// The nibbles stay unsigned (0..15) against the signed activations (maddubs / dpbusd take unsigned by
// signed bytes as they are), and the offset of 8 comes off in int32 as -8 * sum(x) per block (the
// accumulator's starting value, computed for 8 blocks at once with one reduction tree). Without VNNI
// the 8 maddubs of a block add in int16: each pair sum is within 2 * 15 * 127 = 3810, eight within
// 30480 < 32767, so both sets form the same exact int32 and agree bit for bit. One cvt and one FMA per
// (block, activation) in a fixed order: a vector's result is the same whatever nx is.
template <int NX>
void r8_q4_0_tile(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, float *out, int64_t os) {
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + j * xs);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[NX];
    for (int j = 0; j < NX; j++) acc[j] = _mm256_setzero_ps();
    const int64_t nb = cols / QK;
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const int kb = nb - b0 < 8 ? (int)(nb - b0) : 8;
        alignas(32) int32_t corr[NX][8];
        for (int j = 0; j < NX; j++) {
            __m256i sv[8];
            for (int k = 0; k < 8; k++)
                sv[k] = k < kb ? mul_sum_us8(_mm256_set1_epi8(1), load32(xb[j][b0 + k].qs)) : _mm256_setzero_si256();
            _mm256_store_si256((__m256i *)corr[j],
                               _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(hsum8_epi32(sv), 3)));
        }
        for (int k = 0; k < kb; k++) {
            const int64_t b = b0 + k;
            const uint8_t *p = w + (size_t)b * (8 * sizeof(block_q4_0));
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#if defined(STW_CPU_VNNI)
            __m256i is[NX];
            for (int j = 0; j < NX; j++) is[j] = _mm256_set1_epi32(corr[j][k]);
#else
            __m256i ps[NX];
            for (int j = 0; j < NX; j++) ps[j] = _mm256_setzero_si256();
#endif
            for (int v = 0; v < 4; v++) {
                const __m256i raw = load32(p + 16 + 32 * v);
                const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                for (int j = 0; j < NX; j++) {
                    int32_t xl, xh;
                    memcpy(&xl, xb[j][b].qs + 4 * v, 4);
                    memcpy(&xh, xb[j][b].qs + 16 + 4 * v, 4);
#if defined(STW_CPU_VNNI)
                    is[j] = _mm256_dpbusd_avx_epi32(is[j], lo, _mm256_set1_epi32(xl));
                    is[j] = _mm256_dpbusd_avx_epi32(is[j], hi, _mm256_set1_epi32(xh));
#else
                    ps[j] = _mm256_add_epi16(ps[j], _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)),
                                                                     _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh))));
#endif
                }
            }
            for (int j = 0; j < NX; j++) {
#if !defined(STW_CPU_VNNI)
                const __m256i is = _mm256_add_epi32(_mm256_madd_epi16(ps[j], _mm256_set1_epi16(1)),
                                                    _mm256_set1_epi32(corr[j][k]));
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dw, _mm256_set1_ps(xb[j][b].d)), acc[j]);
#else
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(dw, _mm256_set1_ps(xb[j][b].d)), acc[j]);
#endif
            }
        }
    }
    for (int j = 0; j < NX; j++) _mm256_storeu_ps(out + j * os, acc[j]);
}

// Prefill of a Q4_0 R8 matrix (the driver's GEMM path: activations offset by 128, n >= 4): the
// panel is already interleaved as gemm_tile wants it, so per block the stack panel takes four loads,
// the nibble split and the offset of 8 (no transpose), and the tiles run as for Q4_0 with their
// float sums chained across slices. The integer per (block, row, vector) is exact either way,
// sum((x + 128)(q - 8)) - 128 sum(q - 8) = sum(x (q - 8)) = sum(q x) - 8 sum(x), and the float steps
// are r8_q4_0's (one cvt, one multiply of the two scales, one FMA per block), so a vector's outputs
// are bit-identical to decoding it alone.
void gemm_pack_q4_0_r8(const uint8_t *p, __m256i *q, float *dw, int32_t *ws) {
    _mm256_store_ps(dw, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)));
    const __m256i m4 = _mm256_set1_epi8(0x0F), k8 = _mm256_set1_epi8(8), ones = _mm256_set1_epi8(1);
    __m256i sum = _mm256_setzero_si256();
    for (int v = 0; v < 4; v++) {
        const __m256i raw = load32(p + 16 + 32 * v);
        const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        sum = _mm256_add_epi32(sum, mul_sum2_us8(lo, ones, hi, ones));  // lane r: row r's nibbles
        _mm256_store_si256(q + v, _mm256_sub_epi8(lo, k8));
        _mm256_store_si256(q + 4 + v, _mm256_sub_epi8(hi, k8));
    }
    // 128 * sum(q - 8) per row
    _mm256_store_si256((__m256i *)ws, _mm256_slli_epi32(_mm256_sub_epi32(sum, _mm256_set1_epi32(8 * 32)), 7));
}

void gemm_q4_0_r8(int64_t cols, const uint8_t *w, size_t, int, const uint8_t *x, size_t xs, int nx, float *out,
                  int64_t os) {
    gemm_slices<true, true>(cols, 8, x, xs, nx, out, os, [&](int64_t b, __m256i *q, float *dw, int32_t *ws) {
        gemm_pack_q4_0_r8(w + (size_t)b * (8 * sizeof(block_q4_0)), q, dw, ws);
    });
}

void r8_q4_0(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    int j = 0;
    for (; j + 4 <= nx; j += 4) r8_q4_0_tile<4>(cols, w, x + (size_t)j * xs, xs, out + j * os, os);
    switch (nx - j) {
        case 3: r8_q4_0_tile<3>(cols, w, x + (size_t)j * xs, xs, out + j * os, os); break;
        case 2: r8_q4_0_tile<2>(cols, w, x + (size_t)j * xs, xs, out + j * os, os); break;
        case 1: r8_q4_0_tile<1>(cols, w, x + (size_t)j * xs, xs, out + j * os, os); break;
        default: break;
    }
}

}  // namespace

#include "kernels_avx2_q4_K_r8.h"  // q4_K_r8_avx2

const kernel_set STW_CPU_SET_SYMBOL = {
    STW_CPU_SET_NAME,
    quantize_x_avx2,
    {by_nr<k_f32>, by_nx<k_f32>, tile_floats_any<load8_f32, load1_f32>, nullptr, nullptr, nullptr, nullptr},
    {by_nr<k_f16>, by_nx<k_f16>, tile_floats_any<load8_f16, load1_f16>, nullptr, nullptr, nullptr, nullptr},
    {by_nr<k_bf16>, by_nx<k_bf16>, tile_floats_any<load8_bf16, load1_bf16>, nullptr, nullptr, nullptr, nullptr},
#if defined(STW_CPU_VNNI)
    {by_nr<k_q8_0>, by_nx<k_q8_0>, nullptr, nullptr, gemm_q32<false>, nullptr, nullptr},
#else
    {by_nr<k_q8_0>, by_nx<k_q8_0>, nullptr, nullptr, nullptr, nullptr, nullptr},
#endif
    {by_nr<k_q4_0>, by_nx<k_q4_0>, nullptr, dot_q32_pre_any<true>, gemm_q32<true>, nullptr, nullptr},
    {by_nr<k_q4_K>, by_nx<k_q4_K>, nullptr, dot_q4_K_pre_any, gemm_q4_K, nullptr, nullptr},
    {by_nr<k_q6_K>, by_nx<k_q6_K>, nullptr, dot_q6_K_pre_any, gemm_q6_K, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, gemm_q4_0_r8, r8_q4_0, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr, q4_K_r8_avx2, q4_K_r8_pre_avx2},
};

}  // namespace stw_cpu
