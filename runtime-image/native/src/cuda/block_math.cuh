// block_math.cuh: the per-block arithmetic of the CUDA kernels (ggml block layouts read in place, the q8_0
// KV quantizer, the paged-KV address of a row), as inline functions that nvcc compiles for the device and g++
// compiles for the host. The CPU test (tests/cuda/test_cuda_block_math.cpp) checks every function here
// against the CPU core's reference code, which is what makes the kernels checkable on a machine without a GPU.
//
// A "unit" is 32 consecutive elements of a row: one Q8_0 / Q4_0 block, one eighth of a Q4_K / Q6_K
// super-block, or 32 floats / halves. Every weight kernel walks rows unit by unit.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define STW_HD __host__ __device__ __forceinline__
#else
#define STW_HD static inline
#endif

namespace stw_cuda {

constexpr int kUnit = 32;  // elements per unit
constexpr int kTypeF32 = 0, kTypeF16 = 1, kTypeQ4_0 = 2, kTypeQ8_0 = 8, kTypeQ4_K = 12, kTypeQ6_K = 14, kTypeBF16 = 30;
constexpr int kKvBlockTokens = 16;  // STW_KV_BLOCK_TOKENS

// Block layouts (ggml's, byte for byte): offsets of the fields used below.
constexpr int kQ8_0Bytes = 34;   // fp16 d, int8 qs[32]
constexpr int kQ4_0Bytes = 18;   // fp16 d, uint8 qs[16]: low nibbles elements 0..15, high 16..31
constexpr int kQ4_KBytes = 144;  // fp16 d, fp16 dmin, scales[12], qs[128]
constexpr int kQ6_KBytes = 210;  // ql[128], qh[64], int8 scales[16], fp16 d

// Little-endian 16-bit load from any byte address (rows of 34- or 18-byte blocks leave halves 2-aligned only).
STW_HD uint32_t load_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

STW_HD float bits_to_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
#endif
}

STW_HD uint32_t f32_to_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    return u;
#endif
}

// IEEE half to float, exact for every bit pattern.
STW_HD float half_to_f32(uint32_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    // zero or subnormal: mant * 2^-24, exact in float
    const float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

// Float to IEEE half, round to nearest even, overflow to inf, NaN kept quiet.
STW_HD uint32_t f32_to_half(float f) {
    const uint32_t x = f32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u);
    if (ax >= 0x477ff000u) return sign | 0x7c00u;
    if (ax < 0x38800000u) {
        if (ax < 0x33000000u) return sign;
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e;
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return sign | h;
    }
    uint32_t h = (ax >> 13) - (112u << 10);
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return sign | h;
}

STW_HD float bf16_to_f32(uint32_t h) { return bits_to_f32(h << 16); }

// Bytes of one row of cols elements of a weight type; 0 for an unknown type or a width that is not a whole
// number of blocks.
STW_HD size_t row_bytes(int type, int64_t cols) {
    if (cols <= 0) return 0;
    switch (type) {
        case kTypeF32: return (size_t)cols * 4;
        case kTypeF16:
        case kTypeBF16: return (size_t)cols * 2;
        case kTypeQ8_0: return cols % 32 ? 0 : (size_t)(cols / 32) * kQ8_0Bytes;
        case kTypeQ4_0: return cols % 32 ? 0 : (size_t)(cols / 32) * kQ4_0Bytes;
        case kTypeQ4_K: return cols % 256 ? 0 : (size_t)(cols / 256) * kQ4_KBytes;
        case kTypeQ6_K: return cols % 256 ? 0 : (size_t)(cols / 256) * kQ6_KBytes;
        default: return 0;
    }
}

// Whether the kernels read this weight type.
STW_HD bool weight_type_supported(int type) {
    return type == kTypeF32 || type == kTypeF16 || type == kTypeBF16 || type == kTypeQ8_0 || type == kTypeQ4_0 ||
           type == kTypeQ4_K || type == kTypeQ6_K;
}

// ggml's get_scale_min_k4: 6-bit scale and min of sub-block j (0..7) of a Q4_K super-block.
STW_HD void q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// out[0..32) = elements [32u, 32u + 32) of a row of `type` (u < cols / 32). For float types the unit is plain.
STW_HD void dequant_unit(int type, const uint8_t *row, int64_t u, float *out) {
    switch (type) {
        case kTypeF32: {
            const float *r = (const float *)row + u * kUnit;
            for (int j = 0; j < kUnit; j++) out[j] = r[j];
            return;
        }
        case kTypeF16: {
            const uint8_t *r = row + u * kUnit * 2;
            for (int j = 0; j < kUnit; j++) out[j] = half_to_f32(load_u16(r + 2 * j));
            return;
        }
        case kTypeBF16: {
            const uint8_t *r = row + u * kUnit * 2;
            for (int j = 0; j < kUnit; j++) out[j] = bf16_to_f32(load_u16(r + 2 * j));
            return;
        }
        case kTypeQ8_0: {
            const uint8_t *b = row + u * kQ8_0Bytes;
            const float d = half_to_f32(load_u16(b));
            for (int j = 0; j < kUnit; j++) out[j] = d * (float)(int8_t)b[2 + j];
            return;
        }
        case kTypeQ4_0: {
            const uint8_t *b = row + u * kQ4_0Bytes;
            const float d = half_to_f32(load_u16(b));
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)((int)(b[2 + j] & 0xF) - 8);
                out[j + 16] = d * (float)((int)(b[2 + j] >> 4) - 8);
            }
            return;
        }
        case kTypeQ4_K: {
            // sub-block s of 8: the 32 bytes of qs for the pair s/2, low nibbles for even s, high for odd s
            const uint8_t *b = row + (u / 8) * kQ4_KBytes;
            const int s = (int)(u % 8);
            int sc, m;
            q4k_scale_min(s, b + 4, &sc, &m);
            const float d = half_to_f32(load_u16(b)) * (float)sc;
            const float mn = half_to_f32(load_u16(b + 2)) * (float)m;
            const uint8_t *q = b + 16 + (s / 2) * 32;
            const int shift = (s % 2) * 4;
            for (int j = 0; j < kUnit; j++) out[j] = d * (float)((q[j] >> shift) & 0xF) - mn;
            return;
        }
        case kTypeQ6_K: {
            // elements 128h + 32k + l (h: half, k: quarter, l < 32): low 4 bits from ql[64h + l + 32(k&1)] (high nibble
            // for k >= 2), high 2 bits from qh[32h + l] at bit 2k, scale scales[8h + 2k + l/16]
            const uint8_t *b = row + (u / 8) * kQ6_KBytes;
            const int s = (int)(u % 8);
            const int h = s / 4, k = s % 4;
            const uint8_t *ql = b + 64 * h + 32 * (k & 1);
            const uint8_t *qh = b + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(b + 192) + 8 * h + 2 * k;
            const float d = half_to_f32(load_u16(b + 208));
            const int lshift = (k >> 1) * 4;
            for (int l = 0; l < kUnit; l++) {
                const int q = (int)(((ql[l] >> lshift) & 0xF) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                out[l] = d * (float)sc[l / 16] * (float)q;
            }
            return;
        }
        default:
            for (int j = 0; j < kUnit; j++) out[j] = 0.0f;
            return;
    }
}

// dot(elements [32u, 32u + 32) of a row, x[0..32)).
STW_HD float dot_unit(int type, const uint8_t *row, int64_t u, const float *x) {
    float w[kUnit];
    dequant_unit(type, row, u, w);
    float s = 0.0f;
    for (int j = 0; j < kUnit; j++) s += w[j] * x[j];
    return s;
}

// --- KV cache -------------------------------------------------------------------------------

// Bytes of a KV row of w values: f32, f16, or q8_0 (w a multiple of 32); 0 otherwise.
STW_HD size_t kv_row_bytes(int type, int64_t w) {
    if (w <= 0) return 0;
    if (type == kTypeF32) return (size_t)w * 4;
    if (type == kTypeF16) return (size_t)w * 2;
    if (type == kTypeQ8_0) return w % 32 ? 0 : (size_t)(w / 32) * kQ8_0Bytes;
    return 0;
}

// The paged KV pool's shape (core.h stw_kv_pool): block b, layer l holds 16 K rows then 16 V rows.
struct kv_layout {
    int32_t type;             // f32, f16 or q8_0
    size_t k_row_bytes;       // n_head_kv * dk values
    size_t v_row_bytes;       // n_head_kv * dv values
    size_t layer_block_bytes; // 16 * (k_row_bytes + v_row_bytes)
    size_t block_bytes;       // n_layer * layer_block_bytes
};

// Byte offset in the pool of the K (is_v false) or V row of position pos of one layer, given the sequence's
// block table: the same address as core.h's stw_seq_kv_row.
STW_HD size_t kv_row_offset(const kv_layout &L, const int32_t *block_table, int32_t layer, int32_t pos, bool is_v) {
    const size_t block = (size_t)block_table[pos / kKvBlockTokens];
    const size_t slot = (size_t)(pos % kKvBlockTokens);
    const size_t base = block * L.block_bytes + (size_t)layer * L.layer_block_bytes;
    return is_v ? base + kKvBlockTokens * L.k_row_bytes + slot * L.v_row_bytes : base + slot * L.k_row_bytes;
}

// Value e of a KV row.
STW_HD float kv_load(int type, const uint8_t *row, int64_t e) {
    if (type == kTypeF32) return ((const float *)row)[e];
    if (type == kTypeF16) return half_to_f32(load_u16(row + 2 * e));
    const uint8_t *b = row + (e / 32) * kQ8_0Bytes;
    return half_to_f32(load_u16(b)) * (float)(int8_t)b[2 + e % 32];
}

// ggml's quantize_row_q8_0_ref for one block of 32 (d = max|x| / 127 stored as half, q = round-half-away(x / d)):
// byte-identical to the CPU's q8_0 KV rows.
STW_HD void quantize_q8_0_block(const float *x, uint8_t *dst) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float a = x[j] < 0.0f ? -x[j] : x[j];
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint32_t h = f32_to_half(d);
    dst[0] = (uint8_t)(h & 0xff);
    dst[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 32; j++) {
        dst[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);  // half away from zero, as ggml
    }
}

// --- attention planning (host) ----------------------------------------------------------------

// A run of query tokens of one sequence handled by one tile of the prefill attention kernel.
struct attn_tile {
    int32_t first;  // index of the first token of the step
    int32_t count;  // 1..kAttnTileTokens consecutive tokens of the step, all of one sequence
};
constexpr int kAttnTileTokens = 16;

// Splits a step's tokens (seq[i]: the sequence of token i) into runs of consecutive tokens of one sequence, cut
// every kAttnTileTokens: tiles[] gets them in order (at most n entries) and the count is returned. A tile of
// one token goes to the decode kernel (split over the sequence), longer ones to the tiled prefill kernel.
STW_HD int32_t plan_attention(const int32_t *seq, int32_t n, attn_tile *tiles) {
    int32_t nt = 0;
    for (int32_t i = 0; i < n;) {
        int32_t j = i + 1;
        while (j < n && j - i < kAttnTileTokens && seq[j] == seq[i]) j++;
        tiles[nt].first = i;
        tiles[nt].count = j - i;
        nt++;
        i = j;
    }
    return nt;
}

// Number of chunks the decode kernel splits a context of `len` positions into: one chunk per
// kAttnSplitPositions positions, at most kAttnMaxSplits (long contexts get longer chunks).
constexpr int32_t kAttnSplitPositions = 256;
constexpr int32_t kAttnMaxSplits = 32;
STW_HD int32_t attn_splits(int32_t len) {
    const int32_t s = (len + kAttnSplitPositions - 1) / kAttnSplitPositions;
    return s < 1 ? 1 : (s > kAttnMaxSplits ? kAttnMaxSplits : s);
}
// Positions [begin, end) of chunk c of n_splits over a context of len positions.
STW_HD void attn_split_range(int32_t len, int32_t n_splits, int32_t c, int32_t *begin, int32_t *end) {
    const int32_t per = (len + n_splits - 1) / n_splits;
    *begin = c * per < len ? c * per : len;
    *end = (c + 1) * per < len ? (c + 1) * per : len;
}

}  // namespace stw_cuda
