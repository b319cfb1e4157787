// Internal to stw_cpu: ggml block layouts, half-float conversions and the kernel-set table.
//
// Everything defined in this header has internal linkage (static inline, or types only): it is
// included by the AVX2 translation unit, which is compiled with -mavx2, and a shared inline
// definition could otherwise be emitted with AVX2 instructions and picked by the linker for the
// portable path.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace stw_cpu {

constexpr int64_t QK = 32;     // elements per Q8_0 / Q4_0 / activation block
constexpr int64_t QK_K = 256;  // elements per K-quant super-block

// The layouts are ggml's, byte for byte; packed because rows of 34- or 18-byte blocks leave
// the fp16 scales at odd offsets when the tensor base is only 1-aligned.
#pragma pack(push, 1)
struct block_q8_0 {
    uint16_t d;     // fp16 scale
    int8_t qs[32];  // value = d * qs[i]
};
struct block_q4_0 {
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // value = d * (nibble - 8); low nibbles are elements 0..15, high 16..31
};
struct block_q4_K {
    uint16_t d;          // fp16 super-block scale of the 6-bit scales
    uint16_t dmin;       // fp16 super-block scale of the 6-bit mins
    uint8_t scales[12];  // 8 x (6-bit scale, 6-bit min), packed as ggml's get_scale_min_k4
    uint8_t qs[128];     // per 64 elements: 32 bytes, low nibbles first 32, high nibbles next 32
};
struct block_q6_K {
    uint8_t ql[128];    // low 4 bits
    uint8_t qh[64];     // high 2 bits
    int8_t scales[16];  // one per 16 elements
    uint16_t d;         // fp16 super-block scale
};
// An activation block in the matmul scratch: 32 values quantized to int8 with a float scale.
struct block_q8_x {
    float d;
    int8_t qs[32];
};
#pragma pack(pop)

static_assert(sizeof(block_q8_0) == 34, "block_q8_0 is 34 bytes in ggml");
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 is 18 bytes in ggml");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K is 144 bytes in ggml");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K is 210 bytes in ggml");
static_assert(sizeof(block_q8_x) == 36, "the activation block is 36 bytes");

static inline float fp32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t fp32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

// IEEE half to float, exact for every input (normals, subnormals, inf, NaN). Branch-free so that
// loops over F16 rows vectorize: normals and inf/NaN move the exponent and mantissa into float
// position and rescale by 2^-112; subnormals (exponent 0) are built as 0.5 + m * 2^-24 in float
// and then have 0.5 subtracted, which is exact.
static inline float fp16_to_fp32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;  // exponent and mantissa, sign shifted out
    const float normalized = fp32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = fp32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    // A mask rather than ?: so the compiler does not turn the select into a branch.
    const uint32_t is_sub = 0u - (uint32_t)(two_w < (1u << 27));
    const uint32_t bits = (fp32_to_bits(denormalized) & is_sub) | (fp32_to_bits(normalized) & ~is_sub);
    return fp32_from_bits(sign | bits);
}

// Float to IEEE half, round to nearest even, overflow to inf, NaN kept.
static inline uint16_t fp32_to_fp16(float f) {
    const uint32_t x = fp32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (ax < 0x38800000u) {                                    // below the smallest normal half
        if (ax < 0x33000000u) return (uint16_t)sign;           // rounds to zero
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e;  // 14..24
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((ax >> 13) - (112u << 10));
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

static inline float bf16_to_fp32(uint16_t h) { return fp32_from_bits((uint32_t)h << 16); }

static inline uint16_t fp32_to_bf16(float f) {
    uint32_t x = fp32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) of a Q4_K block.
static inline void q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// One row of a matmul against nx (1..4) activation vectors:
// out[j * out_stride] = dot(w, x + j * x_stride) for j < nx. For quantized weight types x points
// at block_q8_x activation blocks (x_stride in bytes); for float types at floats.
typedef void (*dot_fn)(int64_t cols, const uint8_t *w, const uint8_t *x, size_t x_stride, int nx, float *out,
                       int64_t out_stride);
// nr (1..4) consecutive rows of a matmul against one activation vector (the decode shape):
// out[r] = dot(w + r * row_bytes, x) for r < nr. Sharing each activation load (and, for Q4_0
// and Q4_K, the activation sums) across rows saves work the per-row form repeats.
typedef void (*dot_rows_fn)(int64_t cols, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *x,
                            float *out);
typedef void (*quantize_x_fn)(const float *x, block_q8_x *y, int64_t cols);

// nr (1..2) rows x nx (1..4) activation vectors in one register tile (prefill for float weights,
// where loading W and x once per 8 elements for 8 products matters):
// out[r + j * out_stride] = dot(w + r * row_bytes, x + j * x_stride).
typedef void (*dot_tile_fn)(int64_t cols, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *x,
                            size_t x_stride, int nx, float *out, int64_t out_stride);

// One row x nx (1..4) activation vectors for a weight type whose dot also needs the sum of each
// activation block (Q4_K's mins). pre holds, per activation vector (stride pre_stride floats) and
// per 256 elements, the 8 block scales dx and then the 8 products dx * sum(block) (for Q6_K, whose
// scales are per 16 elements, the 16 int16 sums of the blocks' 16-value halves in those 32 bytes):
// computed once per activation vector and tile instead of once per weight row.
typedef void (*dot_pre_fn)(int64_t cols, const uint8_t *w, const uint8_t *x, size_t x_stride, int nx,
                           const float *pre, int64_t pre_stride, float *out, int64_t out_stride);

// Prefill as a GEMM: nr (1..8) rows x nx (any count) activation vectors,
// out[r + j * out_stride] = dot(w + r * row_bytes, x + j * x_stride). The activation blocks'
// int8 values must be stored offset by 128 (as unsigned bytes; the driver flips them after
// quantizing), so the kernel multiplies unsigned activations by signed weights and subtracts
// 128 * sum(w) per block. The rows are repacked per call, on the stack, into a row-interleaved
// panel that one load feeds to 8 rows at once; no memory beyond the call's stack.
typedef void (*gemm_fn)(int64_t cols, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *x,
                        size_t x_stride, int nx, float *out, int64_t out_stride);

// Row-interleaved ("R8") weights: a load-time repack stores each group of 8 consecutive rows of a
// quantized matrix as one panel of the same byte size (8 * row_bytes), laid out so that one load
// feeds all 8 rows. w points at one panel; x at nx >= 1 activation vectors of block_q8_x (signed
// int8 as quantize_x writes them, not offset by 128), x_stride bytes apart:
// out[r + j * out_stride] = dot(row r of the panel, x_j) for r < 8, j < nx. For one activation
// vector the result is bit-identical whatever nx is (the engine's batch independence).
typedef void (*r8_fn)(int64_t cols, const uint8_t *w, const uint8_t *x, size_t x_stride, int nx, float *out,
                      int64_t out_stride);
// An R8 kernel that takes each activation block's scale dx and dx * sum(block) from a table in
// dot_pre_fn's layout (pre + j * pre_stride for vector j) instead of deriving them per panel; its
// results are bit-identical to the set's r8 kernel. Where a set has none, the driver runs r8.
typedef void (*r8_pre_fn)(int64_t cols, const uint8_t *w, const uint8_t *x, size_t x_stride, int nx,
                          const float *pre, int64_t pre_stride, float *out, int64_t out_stride);
// The layout of an R8 type, the same in every kernel set: pack turns 8 rows back to back in the
// GGUF layout (src) into one panel (dst, same size, no overlap); unpack is its exact inverse.
typedef void (*r8_pack_fn)(int64_t cols, const uint8_t *src, uint8_t *dst);

// The kernels of one weight type: several rows x one activation, one row x several, and (where
// they pay off; else NULL) a rows x activations tile, the precomputed-sums form and the GEMM.
struct type_kernels {
    dot_rows_fn rows;
    dot_fn cols;
    dot_tile_fn tile;
    dot_pre_fn cols_pre;
    gemm_fn gemm;
    r8_fn r8;
    r8_pre_fn r8_pre;
};

struct kernel_set {
    const char *name;
    quantize_x_fn quantize_x;
    type_kernels f32, f16, bf16, q8_0, q4_0, q4_K, q6_K;
    type_kernels q4_0_r8, q4_K_r8;
};

// Reference quantizers and dequantizers (quants.cpp); n is a multiple of the block size.
void quantize_row_q8_0_ref(const float *x, block_q8_0 *y, int64_t n);
void quantize_row_q4_0_ref(const float *x, block_q4_0 *y, int64_t n);
void quantize_row_q4_K_ref(const float *x, block_q4_K *y, int64_t n);
void quantize_row_q6_K_ref(const float *x, block_q6_K *y, int64_t n);
void dequantize_row_q8_0(const block_q8_0 *x, float *y, int64_t n);
void dequantize_row_q4_0(const block_q4_0 *x, float *y, int64_t n);
void dequantize_row_q4_K(const block_q4_K *x, float *y, int64_t n);
void dequantize_row_q6_K(const block_q6_K *x, float *y, int64_t n);

// R8 layouts (repack.cpp, repack_q4_K.cpp).
void pack_q4_0_r8(int64_t cols, const uint8_t *src, uint8_t *dst);
void unpack_q4_0_r8(int64_t cols, const uint8_t *src, uint8_t *dst);
void pack_q4_K_r8(int64_t cols, const uint8_t *src, uint8_t *dst);
void unpack_q4_K_r8(int64_t cols, const uint8_t *src, uint8_t *dst);

// Largest quantized matrix (bytes) decoded through the 4-row kernel; returns the previous value.
// For tests, which need both paths without multi-megabyte matrices.
size_t set_rows_kernel_max_bytes(size_t bytes);

extern const kernel_set kernel_set_portable;
#if defined(STW_CPU_HAVE_AVX2)
extern const kernel_set kernel_set_avx2;
#endif
#if defined(STW_CPU_HAVE_AVXVNNI)
extern const kernel_set kernel_set_avx2_vnni;
#endif

}  // namespace stw_cpu
