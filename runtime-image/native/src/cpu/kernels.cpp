// The checked entry points of stw_cpu: argument validation, kernel-set selection and the tiled,
// threaded matmul driver.
#include "kernels.h"

#include <atomic>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quants.h"

using namespace stw_cpu;

namespace {

thread_local char g_last_error[512];

int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return status;
}

struct type_info {
    const char *name;
    int64_t block;       // elements per block
    size_t block_bytes;  // bytes per block
    bool quantized;      // activations are quantized to block_q8_x
};

const type_info *info_of(int type) {
    static const type_info f32 = {"F32", 1, 4, false};
    static const type_info f16 = {"F16", 1, 2, false};
    static const type_info bf16 = {"BF16", 1, 2, false};
    static const type_info q8_0 = {"Q8_0", QK, sizeof(block_q8_0), true};
    static const type_info q4_0 = {"Q4_0", QK, sizeof(block_q4_0), true};
    static const type_info q4_K = {"Q4_K", QK_K, sizeof(block_q4_K), true};
    static const type_info q6_K = {"Q6_K", QK_K, sizeof(block_q6_K), true};
    static const type_info q4_0_r8 = {"Q4_0_R8", QK, sizeof(block_q4_0), true};
#if defined(STW_CPU_HAVE_Q4_K_R8)
    static const type_info q4_K_r8 = {"Q4_K_R8", QK_K, sizeof(block_q4_K), true};
#endif
    switch (type) {
        case STW_CPU_TYPE_F32: return &f32;
        case STW_CPU_TYPE_F16: return &f16;
        case STW_CPU_TYPE_BF16: return &bf16;
        case STW_CPU_TYPE_Q8_0: return &q8_0;
        case STW_CPU_TYPE_Q4_0: return &q4_0;
        case STW_CPU_TYPE_Q4_K: return &q4_K;
        case STW_CPU_TYPE_Q6_K: return &q6_K;
        case STW_CPU_TYPE_Q4_0_R8: return &q4_0_r8;
#if defined(STW_CPU_HAVE_Q4_K_R8)
        case STW_CPU_TYPE_Q4_K_R8: return &q4_K_r8;
#endif
        default: return nullptr;
    }
}

const char *kSupported = "F32 (0), F16 (1), Q4_0 (2), Q8_0 (8), Q4_K (12), Q6_K (14), BF16 (30) and the R8 repacks";

const type_kernels *kernels_of(const kernel_set *ks, int type) {
    switch (type) {
        case STW_CPU_TYPE_F32: return &ks->f32;
        case STW_CPU_TYPE_F16: return &ks->f16;
        case STW_CPU_TYPE_BF16: return &ks->bf16;
        case STW_CPU_TYPE_Q8_0: return &ks->q8_0;
        case STW_CPU_TYPE_Q4_0: return &ks->q4_0;
        case STW_CPU_TYPE_Q4_K: return &ks->q4_K;
        case STW_CPU_TYPE_Q6_K: return &ks->q6_K;
        case STW_CPU_TYPE_Q4_0_R8: return &ks->q4_0_r8;
#if defined(STW_CPU_HAVE_Q4_K_R8)
        case STW_CPU_TYPE_Q4_K_R8: return &ks->q4_K_r8;
#endif
        default: return nullptr;
    }
}

// The load-time row-interleaved repacks: a source type, its R8 type and the layout (the same in every
// kernel set; each set brings its own r8 kernel). Q4_K's row comes with repack_q4_K.cpp.
struct r8_entry {
    int src, r8;
    r8_pack_fn pack, unpack;
};

const r8_entry kR8Types[] = {
    {STW_CPU_TYPE_Q4_0, STW_CPU_TYPE_Q4_0_R8, pack_q4_0_r8, unpack_q4_0_r8},
#if defined(STW_CPU_HAVE_Q4_K_R8)
    {STW_CPU_TYPE_Q4_K, STW_CPU_TYPE_Q4_K_R8, pack_q4_K_r8, unpack_q4_K_r8},
#endif
};

const r8_entry *r8_by_src(int type) {
    for (const r8_entry &e : kR8Types)
        if (e.src == type) return &e;
    return nullptr;
}

#if defined(STW_CPU_HAVE_Q4_K_R8)
#define STW_CPU_Q4_K_R8_NOTE ", Q4_K (12)"
#define STW_CPU_Q4_K_R8_NOTE2 ", Q4_K_R8 (1012)"
#else
#define STW_CPU_Q4_K_R8_NOTE ""
#define STW_CPU_Q4_K_R8_NOTE2 ""
#endif

const r8_entry *r8_by_r8(int type) {
    for (const r8_entry &e : kR8Types)
        if (e.r8 == type) return &e;
    return nullptr;
}

bool cpu_has_avx2_fma_f16c() {
#if defined(STW_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c)) return false;
    // The OS must save the YMM registers (XCR0 bits 1 and 2), or AVX code faults.
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & (1u << 5)) != 0;
#else
    return false;
#endif
}

// AVX-VNNI (VEX-encoded dpbusd on 256-bit registers): cpuid leaf 7 subleaf 1, EAX bit 4. It
// uses the YMM state that cpu_has_avx2_fma_f16c already checked the OS saves.
bool cpu_has_avx_vnni() {
#if defined(STW_CPU_HAVE_AVXVNNI) && (defined(__x86_64__) || defined(__i386__))
    unsigned a, b, c, d;
    if (!cpu_has_avx2_fma_f16c() || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 4)) != 0;
#else
    return false;
#endif
}

const kernel_set *auto_set() {
#if defined(STW_CPU_HAVE_AVX2)
    const char *env = getenv("STOWAGE_CPU");
    if (env != nullptr && strcmp(env, "portable") == 0) return &kernel_set_portable;
#if defined(STW_CPU_HAVE_AVXVNNI)
    if (cpu_has_avx_vnni() && (env == nullptr || strcmp(env, "avx2") != 0)) return &kernel_set_avx2_vnni;
#endif
    if (cpu_has_avx2_fma_f16c()) return &kernel_set_avx2;
#endif
    return &kernel_set_portable;
}

std::atomic<const kernel_set *> g_set{nullptr};

const kernel_set *current_set() {
    const kernel_set *ks = g_set.load(std::memory_order_acquire);
    if (ks == nullptr) {
        ks = auto_set();
        g_set.store(ks, std::memory_order_release);
    }
    return ks;
}

// 0: quantized decode goes one row at a time (see stw_cpu_matmul); tests raise it to reach the
// 4-row kernels.
size_t g_rows_kernel_max_bytes = 0;

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Sizes beyond this are certainly a corrupt descriptor; the cap keeps all index products
// (rows * row_bytes, n * cols * 4, n * rows * 4) far from overflow.
constexpr int64_t kMaxDim = (int64_t)1 << 36;
// Rows up to this many 32-blocks (cols <= 32768) use the precomputed-sums kernels; the buffer
// (4 activation vectors x 2 floats per block = 32 KiB) lives on the stack of the calling thread.
constexpr int64_t kPreMaxBlocks = 1024;
// Batches of at least this many activation vectors go through the GEMM kernels (where the type has
// them): below it, repacking 8 rows costs more than the tile saves.
constexpr int64_t kGemmMinBatch = 4;
// Activation vectors per matmul (tokens in a batch); keeps every task index within int.
constexpr int64_t kMaxBatch = (int64_t)1 << 24;

// Sum of one activation block's 32 int8 values. The pre tables are rebuilt for every row tile,
// so this runs once per (tile, activation block): SSE2's psadbw on the bytes offset to unsigned
// makes it a handful of instructions where the plain loop cost ~80 (callgrind).
inline int32_t block_sum(const int8_t *qs) {
#if defined(__SSE2__)
    const __m128i bias = _mm_set1_epi8((char)0x80), zero = _mm_setzero_si128();
    const __m128i s0 = _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)qs), bias), zero);
    const __m128i s1 = _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(qs + 16)), bias), zero);
    const __m128i s = _mm_add_epi64(s0, s1);
    return _mm_cvtsi128_si32(s) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(s, s)) - 32 * 128;
#else
    int32_t sum = 0;
    for (int k = 0; k < QK; k++) sum += qs[k];
    return sum;
#endif
}

// The sums of the two 16-value halves of one activation block, [0..15] in the low and [16..31] in
// the high int16 (each within +-2032).
inline void half_sums(const int8_t *qs, int16_t *lo, int16_t *hi) {
#if defined(__SSE2__)
    const __m128i bias = _mm_set1_epi8((char)0x80), zero = _mm_setzero_si128();
    const __m128i s0 = _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)qs), bias), zero);
    const __m128i s1 = _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(qs + 16)), bias), zero);
    *lo = (int16_t)(_mm_cvtsi128_si32(s0) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(s0, s0)) - 16 * 128);
    *hi = (int16_t)(_mm_cvtsi128_si32(s1) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(s1, s1)) - 16 * 128);
#else
    int32_t a = 0, b = 0;
    for (int k = 0; k < 16; k++) {
        a += qs[k];
        b += qs[16 + k];
    }
    *lo = (int16_t)a;
    *hi = (int16_t)b;
#endif
}

// The precomputed-sums table of one activation vector (see dot_pre_fn): per 8 blocks the 8 scales,
// then the 8 scaled sums, or for Q6_K (halves) the 16 int16 sums of the blocks' 16-value halves
// in the same 32 bytes.
void fill_pre(const block_q8_x *xq, int64_t nbk, float *pj, bool halves) {
    for (int64_t b = 0; b < nbk; b++) {
        pj[(b / 8) * 16 + (b % 8)] = xq[b].d;
        if (halves) {
            int16_t lohi[2];
            half_sums(xq[b].qs, &lohi[0], &lohi[1]);
            memcpy((char *)(pj + (b / 8) * 16 + 8) + 4 * (b % 8), lohi, 4);
        } else {
            pj[(b / 8) * 16 + 8 + (b % 8)] = xq[b].d * (float)block_sum(xq[b].qs);
        }
    }
}

struct quantize_ctx {
    quantize_x_fn fn;
    const float *x;
    uint8_t *q;
    int64_t cols;
    size_t q_stride;
    bool offset;  // store the int8 values + 128 (unsigned), as the GEMM kernels read them
};

void quantize_task(void *p, int task, int) {
    const quantize_ctx *c = (const quantize_ctx *)p;
    block_q8_x *q = (block_q8_x *)(c->q + (size_t)task * c->q_stride);
    c->fn(c->x + (int64_t)task * c->cols, q, c->cols);
    if (c->offset) {
        for (int64_t b = 0; b < c->cols / QK; b++) {
            uint8_t *qs = (uint8_t *)q[b].qs;
            for (int k = 0; k < QK; k++) qs[k] ^= 0x80;  // two's complement + 128 = flipping the top bit
        }
    }
}

// A task is a tile: row_chunk weight rows x n_chunk activation vectors. Inside a tile each weight
// row is read from memory once and reused from L1 for all the tile's activations (4 at a time);
// a single activation vector (decode) goes through the rows kernel, 4 weight rows at a time.
struct matmul_ctx {
    const type_kernels *k;
    const uint8_t *w;
    size_t row_bytes;
    int64_t rows, cols;
    const uint8_t *x;
    size_t x_stride;
    int64_t n;
    float *y;
    int64_t row_chunk, n_chunk, n_row_chunks;
    bool rows_kernel;  // decode through the 4-row kernel (else one row at a time)
    bool gemm;         // prefill through k->gemm (activations offset by 128)
    bool pre;          // one row at a time through k->cols_pre (rows short enough for its table)
    const float *pre1;  // n == 1 with pre: the activation's table, built once per matmul
    bool pre_halves;    // the table holds 16-value half-block sums (Q6_K) instead of scaled block sums
    bool r8;            // W is an R8 type: k->r8 per panel of 8 rows (row_chunk and units multiples of 8)
    bool r8pre;         // R8 through k->r8_pre: the activation tables once per matmul (n == 1) or task
};

void matmul_task(void *p, int task, int) {
    const matmul_ctx *c = (const matmul_ctx *)p;
    const int64_t rc = task % c->n_row_chunks, nc = task / c->n_row_chunks;
    const int64_t r0 = rc * c->row_chunk, r1 = min64(r0 + c->row_chunk, c->rows);
    const int64_t i0 = nc * c->n_chunk, i1 = min64(i0 + c->n_chunk, c->n);
    if (c->r8pre && c->pre1 != nullptr) {
        for (int64_t r = r0; r < r1; r += 8)
            c->k->r8_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1, c->pre1, 0, c->y + r, c->rows);
        return;
    }
    if (c->r8pre) {
        // Per group of activation vectors (as many as fit the 32 KiB table: 64 at 2048 columns, 20 at
        // 5632), their block scales and scaled sums once, then every panel of the tile against the
        // whole group (each panel stays in L1 across the group's vectors). The in-kernel form took
        // those sums again for every panel, ~15% of the 8 x 4 tile's instructions.
        const int64_t nbk = c->cols / QK, ps = 2 * nbk;
        float pre[4 * 2 * kPreMaxBlocks + 16];
        const int64_t group = max64(1, (4 * 2 * kPreMaxBlocks) / ps);
        for (int64_t i = i0; i < i1; i += group) {
            const int nx = (int)min64(group, i1 - i);
            for (int j = 0; j < nx; j++)
                fill_pre((const block_q8_x *)(c->x + (size_t)(i + j) * c->x_stride), nbk, pre + j * ps, false);
            for (int64_t r = r0; r < r1; r += 8)
                c->k->r8_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x + (size_t)i * c->x_stride, c->x_stride, nx,
                             pre, ps, c->y + i * c->rows + r, c->rows);
        }
        return;
    }
    if (c->r8 && !c->gemm) {
        for (int64_t r = r0; r < r1; r += 8)
            c->k->r8(c->cols, c->w + (size_t)r * c->row_bytes, c->x + (size_t)i0 * c->x_stride, c->x_stride,
                     (int)(i1 - i0), c->y + i0 * c->rows + r, c->rows);
        return;
    }
    if (c->gemm) {
        for (int64_t r = r0; r < r1; r += 8) {
            c->k->gemm(c->cols, c->w + (size_t)r * c->row_bytes, c->row_bytes, (int)min64(8, r1 - r),
                       c->x + (size_t)i0 * c->x_stride, c->x_stride, (int)(i1 - i0), c->y + i0 * c->rows + r,
                       c->rows);
        }
        return;
    }
    if (i1 - i0 == 1 && !c->rows_kernel && !c->pre) {
        const uint8_t *xi = c->x + (size_t)i0 * c->x_stride;
        for (int64_t r = r0; r < r1; r++) {
            c->k->cols(c->cols, c->w + (size_t)r * c->row_bytes, xi, c->x_stride, 1, c->y + i0 * c->rows + r, c->rows);
        }
        return;
    }
    if (i1 - i0 == 1 && c->rows_kernel) {
        const uint8_t *xi = c->x + (size_t)i0 * c->x_stride;
        for (int64_t r = r0; r < r1; r += 4) {
            c->k->rows(c->cols, c->w + (size_t)r * c->row_bytes, c->row_bytes, (int)min64(4, r1 - r), xi,
                       c->y + i0 * c->rows + r);
        }
        return;
    }
    if (c->pre && c->pre1 != nullptr) {
        for (int64_t r = r0; r < r1; r++)
            c->k->cols_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1, c->pre1, 0, c->y + r, c->rows);
        return;
    }
    if (c->pre) {
        // Per group of 4 activation vectors: their block scales and sums once, then every row of
        // the tile against them (the tile's ~32 KiB of weight rows stays in cache across groups).
        // A tile of one activation vector takes this path too, so a vector's result does not depend
        // on how many others share its matmul (cols_pre computes each one alone, in the same order).
        const int64_t nbk = c->cols / QK, ps = 2 * nbk;
        float pre[4 * 2 * kPreMaxBlocks + 16];
        for (int64_t i = i0; i < i1; i += 4) {
            const int nx = (int)min64(4, i1 - i);
            for (int j = 0; j < nx; j++)
                fill_pre((const block_q8_x *)(c->x + (size_t)(i + j) * c->x_stride), nbk, pre + j * ps, c->pre_halves);
            for (int64_t r = r0; r < r1; r++) {
                c->k->cols_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x + (size_t)i * c->x_stride, c->x_stride,
                               nx, pre, ps, c->y + i * c->rows + r, c->rows);
            }
        }
        return;
    }
    if (c->k->tile != nullptr) {
        for (int64_t r = r0; r < r1; r += 2) {
            for (int64_t i = i0; i < i1; i += 4) {
                c->k->tile(c->cols, c->w + (size_t)r * c->row_bytes, c->row_bytes, (int)min64(2, r1 - r),
                           c->x + (size_t)i * c->x_stride, c->x_stride, (int)min64(4, i1 - i), c->y + i * c->rows + r,
                           c->rows);
            }
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = c->w + (size_t)r * c->row_bytes;
        for (int64_t i = i0; i < i1; i += 4) {
            c->k->cols(c->cols, wr, c->x + (size_t)i * c->x_stride, c->x_stride, (int)min64(4, i1 - i),
                       c->y + i * c->rows + r, c->rows);
        }
    }
}

// Decode (one activation vector) splits the rows into one contiguous range per thread, each taken
// in units from its front by its owner and, once a thread has finished its own range, from the
// back by that thread. Why: with the tiles above handed out round-robin from one counter, two
// threads interleave 34 KiB pieces of the same matrix, and on the 2-core Zen 5 machine 2-thread
// Q8_0 decode of a 12 MiB matrix ran at the 1-thread rate (~30 GB/s) while the same kernel on two
// contiguous halves reached 45-57 GB/s (best of ~1000 calls, same minute): every core's hardware
// prefetcher restarts its stream at each jump, and each piece cost a cross-core counter bounce. A
// thread that the OS deschedules (a busy machine) still does not hold the run up: the other one
// drains its range from the back.
constexpr int kMaxDecodeRanges = 64;

struct decode_range {
    // Units [front, back) not taken yet: front in the low 32 bits, back in the high 32 bits.
    alignas(64) std::atomic<uint64_t> fb;
};

struct decode_ctx {
    const matmul_ctx *m;
    decode_range *ranges;
    int n_ranges;
    int64_t unit;  // rows per unit, a multiple of 4
};

inline uint64_t pack_fb(uint32_t f, uint32_t b) { return (uint64_t)f | ((uint64_t)b << 32); }

// Takes one unit from the front (owner) or the back (thief) of a range; -1 when it is empty.
int64_t take_unit(decode_range *r, bool from_back) {
    uint64_t v = r->fb.load(std::memory_order_relaxed);
    for (;;) {
        const uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
        if (f >= b) return -1;
        const uint64_t next = from_back ? pack_fb(f, b - 1) : pack_fb(f + 1, b);
        if (r->fb.compare_exchange_weak(v, next, std::memory_order_relaxed, std::memory_order_relaxed))
            return from_back ? (int64_t)b - 1 : (int64_t)f;
    }
}

void decode_unit(const matmul_ctx *c, int64_t unit, int64_t u) {
    const int64_t r0 = u * unit, r1 = min64(r0 + unit, c->rows);
    if (c->r8 && c->pre1 != nullptr) {
        for (int64_t r = r0; r < r1; r += 8)
            c->k->r8_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1, c->pre1, 0, c->y + r, c->rows);
        return;
    }
    if (c->r8) {
        for (int64_t r = r0; r < r1; r += 8)
            c->k->r8(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1, c->y + r, c->rows);
        return;
    }
    if (!c->rows_kernel && c->pre1 != nullptr) {
        for (int64_t r = r0; r < r1; r++)
            c->k->cols_pre(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1, c->pre1, 0, c->y + r, c->rows);
        return;
    }
    if (!c->rows_kernel) {
        for (int64_t r = r0; r < r1; r++) c->k->cols(c->cols, c->w + (size_t)r * c->row_bytes, c->x, c->x_stride, 1,
                                                     c->y + r, c->rows);
        return;
    }
    for (int64_t r = r0; r < r1; r += 4)
        c->k->rows(c->cols, c->w + (size_t)r * c->row_bytes, c->row_bytes, (int)min64(4, r1 - r), c->x, c->y + r);
}

void decode_task(void *p, int task, int) {
    const decode_ctx *d = (const decode_ctx *)p;
    for (int64_t u; (u = take_unit(&d->ranges[task], false)) >= 0;) decode_unit(d->m, d->unit, u);
    for (int k = 1; k < d->n_ranges; k++) {
        decode_range *r = &d->ranges[(task + k) % d->n_ranges];
        for (int64_t u; (u = take_unit(r, true)) >= 0;) decode_unit(d->m, d->unit, u);
    }
}

}  // namespace

namespace {

// A repack (or unpack) of whole panels in place: each task takes a run of panels and moves each one
// through its thread's 8-row temporary (copy the panel out, write the other layout back).
struct repack_ctx {
    r8_pack_fn fn;
    uint8_t *data;
    size_t panel_bytes;
    int64_t cols, panels, per_task;
    uint8_t *tmp;  // one panel per thread
};

void repack_task(void *p, int task, int thread) {
    const repack_ctx *c = (const repack_ctx *)p;
    uint8_t *tmp = c->tmp + (size_t)thread * c->panel_bytes;
    const int64_t p0 = task * c->per_task, p1 = min64(p0 + c->per_task, c->panels);
    for (int64_t i = p0; i < p1; i++) {
        uint8_t *panel = c->data + (size_t)i * c->panel_bytes;
        memcpy(tmp, panel, c->panel_bytes);
        c->fn(c->cols, tmp, panel);
    }
}

int repack_matrix(int type, void *data, int64_t rows, int64_t cols, stw_threadpool *pool, bool pack) {
    const char *fn = pack ? "stw_cpu_repack_r8" : "stw_cpu_unpack_r8";
    const r8_entry *e = pack ? r8_by_src(type) : r8_by_r8(type);
    if (e == nullptr) {
        const type_info *ti = info_of(type);
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE, "%s: type %s (%d) has no row-interleaved form (%s)", fn,
                    ti ? ti->name : "unknown", type,
                    pack ? "repackable: Q4_0 (2)" STW_CPU_Q4_K_R8_NOTE : "R8 types: Q4_0_R8 (1002)" STW_CPU_Q4_K_R8_NOTE2);
    }
    const size_t row_bytes = stw_cpu_row_bytes(e->src, cols);
    if (row_bytes == 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "%s: cols=%lld must be in [1, %lld] and a multiple of the block size %lld",
                    fn, (long long)cols, (long long)kMaxDim, (long long)stw_cpu_block_size(e->src));
    if (rows <= 0 || rows > kMaxDim || rows % 8 != 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "%s: rows=%lld must be a positive multiple of 8 (at most %lld)", fn,
                    (long long)rows, (long long)kMaxDim);
    if ((double)rows * (double)row_bytes > 9.0e18)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "%s: rows=%lld cols=%lld overflow the address space", fn, (long long)rows,
                    (long long)cols);
    if (data == nullptr) return fail(STW_CPU_STATUS_NULL_POINTER, "%s: data is NULL", fn);
    const int threads = stw_threadpool_size(pool);
    repack_ctx c;
    c.fn = pack ? e->pack : e->unpack;
    c.data = (uint8_t *)data;
    c.panel_bytes = 8 * row_bytes;
    c.cols = cols;
    c.panels = rows / 8;
    c.tmp = (uint8_t *)malloc(c.panel_bytes * (size_t)threads);
    if (c.tmp == nullptr)
        return fail(STW_CPU_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes of temporary panels", fn,
                    c.panel_bytes * (size_t)threads);
    // ~64 KiB of panels per task, enough tasks for every thread to get several.
    c.per_task = max64(1, (int64_t)((64 * 1024) / c.panel_bytes));
    if (threads > 1) c.per_task = min64(c.per_task, max64(1, c.panels / ((int64_t)threads * 8)));
    c.per_task = max64(c.per_task, (c.panels + (1 << 24) - 1) / (1 << 24));
    const int64_t tasks = (c.panels + c.per_task - 1) / c.per_task;
    stw_threadpool_run(tasks > 1 ? pool : nullptr, (int)tasks, repack_task, &c);
    free(c.tmp);
    return pack ? e->r8 : e->src;
}

}  // namespace

namespace stw_cpu {
size_t set_rows_kernel_max_bytes(size_t bytes) {
    const size_t old = g_rows_kernel_max_bytes;
    g_rows_kernel_max_bytes = bytes;
    return old;
}
}  // namespace stw_cpu

extern "C" {

const char *stw_cpu_last_error(void) { return g_last_error; }

int64_t stw_cpu_block_size(int type) {
    const type_info *ti = info_of(type);
    return ti == nullptr ? 0 : ti->block;
}

size_t stw_cpu_row_bytes(int type, int64_t cols) {
    const type_info *ti = info_of(type);
    if (ti == nullptr || cols <= 0 || cols > kMaxDim || cols % ti->block != 0) return 0;
    return (size_t)(cols / ti->block) * ti->block_bytes;
}

size_t stw_cpu_qscratch_bytes(int type, int64_t cols, int64_t n) {
    const type_info *ti = info_of(type);
    if (ti == nullptr || !ti->quantized || cols <= 0 || n <= 0 || cols > kMaxDim || n > kMaxDim) return 0;
    return (size_t)n * (size_t)((cols + QK - 1) / QK) * sizeof(block_q8_x);
}

const char *stw_cpu_kernel_set(void) { return current_set()->name; }

int stw_cpu_select_kernel_set(const char *name) {
    if (name == nullptr) return fail(STW_CPU_STATUS_NULL_POINTER, "stw_cpu_select_kernel_set: name is NULL");
    if (strcmp(name, "auto") == 0) {
        g_set.store(auto_set(), std::memory_order_release);
        return STW_CPU_STATUS_OK;
    }
    if (strcmp(name, "portable") == 0) {
        g_set.store(&kernel_set_portable, std::memory_order_release);
        return STW_CPU_STATUS_OK;
    }
    if (strcmp(name, "avx2") == 0) {
#if defined(STW_CPU_HAVE_AVX2)
        if (cpu_has_avx2_fma_f16c()) {
            g_set.store(&kernel_set_avx2, std::memory_order_release);
            return STW_CPU_STATUS_OK;
        }
        return fail(STW_CPU_STATUS_UNAVAILABLE, "kernel set 'avx2' needs AVX2, FMA and F16C; this CPU lacks one");
#else
        return fail(STW_CPU_STATUS_UNAVAILABLE, "kernel set 'avx2' is not compiled into this build (not x86-64)");
#endif
    }
    if (strcmp(name, "avx2-vnni") == 0) {
#if defined(STW_CPU_HAVE_AVXVNNI)
        if (cpu_has_avx_vnni()) {
            g_set.store(&kernel_set_avx2_vnni, std::memory_order_release);
            return STW_CPU_STATUS_OK;
        }
        return fail(STW_CPU_STATUS_UNAVAILABLE,
                    "kernel set 'avx2-vnni' needs AVX2, FMA, F16C and AVX-VNNI; this CPU lacks one");
#else
        return fail(STW_CPU_STATUS_UNAVAILABLE, "kernel set 'avx2-vnni' is not compiled into this build");
#endif
    }
    return fail(STW_CPU_STATUS_UNAVAILABLE,
                "unknown kernel set '%.64s' (expected avx2-vnni, avx2, portable or auto)", name);
}

int stw_cpu_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    const type_info *ti = info_of(type);
    if (ti == nullptr)
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE, "stw_cpu_dequantize_row: type %d is not supported (%s)", type,
                    kSupported);
    if (n < 0 || n > kMaxDim || n % ti->block != 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE,
                    "stw_cpu_dequantize_row: n=%lld must be in [0, %lld] and a multiple of the %s block size %lld",
                    (long long)n, (long long)kMaxDim, ti->name, (long long)ti->block);
    if (r8_by_r8(type) != nullptr)
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE,
                    "stw_cpu_dequantize_row: type %s (%d) is a row-interleaved repack whose rows are not contiguous; "
                    "unpack the matrix first (stw_cpu_unpack_r8)", ti->name, type);
    if (n == 0) return STW_CPU_STATUS_OK;
    if (src == nullptr || dst == nullptr)
        return fail(STW_CPU_STATUS_NULL_POINTER, "stw_cpu_dequantize_row: %s is NULL", src == nullptr ? "src" : "dst");
    const uint8_t *s = (const uint8_t *)src;
    switch (type) {
        case STW_CPU_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
        case STW_CPU_TYPE_F16:
            for (int64_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, s + 2 * i, 2);
                dst[i] = fp16_to_fp32(h);
            }
            break;
        case STW_CPU_TYPE_BF16:
            for (int64_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, s + 2 * i, 2);
                dst[i] = bf16_to_fp32(h);
            }
            break;
        case STW_CPU_TYPE_Q8_0: dequantize_row_q8_0((const block_q8_0 *)src, dst, n); break;
        case STW_CPU_TYPE_Q4_0: dequantize_row_q4_0((const block_q4_0 *)src, dst, n); break;
        case STW_CPU_TYPE_Q4_K: dequantize_row_q4_K((const block_q4_K *)src, dst, n); break;
        case STW_CPU_TYPE_Q6_K: dequantize_row_q6_K((const block_q6_K *)src, dst, n); break;
    }
    return STW_CPU_STATUS_OK;
}

int stw_cpu_quantize_row(int type, const float *src, void *dst, int64_t n) {
    const type_info *ti = info_of(type);
    if (ti == nullptr)
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE, "stw_cpu_quantize_row: type %d is not supported (%s)", type,
                    kSupported);
    if (n < 0 || n > kMaxDim || n % ti->block != 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE,
                    "stw_cpu_quantize_row: n=%lld must be in [0, %lld] and a multiple of the %s block size %lld",
                    (long long)n, (long long)kMaxDim, ti->name, (long long)ti->block);
    if (r8_by_r8(type) != nullptr)
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE,
                    "stw_cpu_quantize_row: type %s (%d) is a row-interleaved repack of whole matrices; quantize "
                    "rows of its source type and repack them (stw_cpu_repack_r8)", ti->name, type);
    if (n == 0) return STW_CPU_STATUS_OK;
    if (src == nullptr || dst == nullptr)
        return fail(STW_CPU_STATUS_NULL_POINTER, "stw_cpu_quantize_row: %s is NULL", src == nullptr ? "src" : "dst");
    uint8_t *d = (uint8_t *)dst;
    switch (type) {
        case STW_CPU_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
        case STW_CPU_TYPE_F16:
            for (int64_t i = 0; i < n; i++) {
                const uint16_t h = fp32_to_fp16(src[i]);
                memcpy(d + 2 * i, &h, 2);
            }
            break;
        case STW_CPU_TYPE_BF16:
            for (int64_t i = 0; i < n; i++) {
                const uint16_t h = fp32_to_bf16(src[i]);
                memcpy(d + 2 * i, &h, 2);
            }
            break;
        case STW_CPU_TYPE_Q8_0: quantize_row_q8_0_ref(src, (block_q8_0 *)dst, n); break;
        case STW_CPU_TYPE_Q4_0: quantize_row_q4_0_ref(src, (block_q4_0 *)dst, n); break;
        case STW_CPU_TYPE_Q4_K: quantize_row_q4_K_ref(src, (block_q4_K *)dst, n); break;
        case STW_CPU_TYPE_Q6_K: quantize_row_q6_K_ref(src, (block_q6_K *)dst, n); break;
    }
    return STW_CPU_STATUS_OK;
}

int stw_cpu_matmul(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                   void *qscratch, stw_threadpool *pool) {
    return stw_cpu_matmul_ex(type, w, rows, cols, x, n, y, qscratch, pool, 0);
}

int stw_cpu_matmul_ex(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                      void *qscratch, stw_threadpool *pool, unsigned flags) {
    const type_info *ti = info_of(type);
    if (ti == nullptr)
        return fail(STW_CPU_STATUS_UNSUPPORTED_TYPE, "stw_cpu_matmul: weight type %d is not supported (%s)", type,
                    kSupported);
    if (rows < 0 || rows > kMaxDim)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "stw_cpu_matmul: rows=%lld is outside [0, %lld]", (long long)rows,
                    (long long)kMaxDim);
    if (n < 0 || n > kMaxBatch)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "stw_cpu_matmul: n=%lld activation vectors is outside [0, %lld]",
                    (long long)n, (long long)kMaxBatch);
    if (cols <= 0 || cols > kMaxDim || cols % ti->block != 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE,
                    "stw_cpu_matmul: cols=%lld must be in [1, %lld] and a multiple of the %s block size %lld",
                    (long long)cols, (long long)kMaxDim, ti->name, (long long)ti->block);
    // rows * row_bytes, n * cols and n * rows are all used as byte offsets.
    const size_t row_bytes = stw_cpu_row_bytes(type, cols);
    if ((double)rows * (double)row_bytes > 9.0e18 || (double)n * (double)cols * 4.0 > 9.0e18 ||
        (double)n * (double)rows * 4.0 > 9.0e18)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "stw_cpu_matmul: rows=%lld cols=%lld n=%lld overflow the address space",
                    (long long)rows, (long long)cols, (long long)n);
    const bool r8 = r8_by_r8(type) != nullptr;
    if (r8 && rows % 8 != 0)
        return fail(STW_CPU_STATUS_BAD_SHAPE, "stw_cpu_matmul: rows=%lld of a %s matrix must be a multiple of 8",
                    (long long)rows, ti->name);
    if (rows == 0 || n == 0) return STW_CPU_STATUS_OK;
    if (w == nullptr || x == nullptr || y == nullptr)
        return fail(STW_CPU_STATUS_NULL_POINTER, "stw_cpu_matmul: %s is NULL",
                    w == nullptr ? "w" : (x == nullptr ? "x" : "y"));
    if (ti->quantized && qscratch == nullptr)
        return fail(STW_CPU_STATUS_NULL_POINTER, "stw_cpu_matmul: qscratch is NULL; %s weights need %zu bytes",
                    ti->name, stw_cpu_qscratch_bytes(type, cols, n));

    const kernel_set *ks = current_set();
    const int threads = stw_threadpool_size(pool);
    matmul_ctx c;
    c.k = kernels_of(ks, type);
    if (r8 && c.k->r8 == nullptr)
        return fail(STW_CPU_STATUS_UNAVAILABLE, "stw_cpu_matmul: kernel set '%s' has no kernel for %s", ks->name,
                    ti->name);
    c.r8 = r8;
    c.w = (const uint8_t *)w;
    c.row_bytes = row_bytes;
    c.rows = rows;
    c.cols = cols;
    c.n = n;
    c.y = y;
    // Quantized weights decode one row at a time. bench_kernels once favoured the 4-row kernels
    // up to 8 MiB, but it streams copies of one matrix; on the generated 1.1B models (weights
    // mapped from the file, 2-core Zen 5, CPU seconds per token, 3 paired runs of 96 tokens) one
    // row at a time decoded Q4_0 at 25.6 tok/s against 20.1, Q4_K_M at ~21 against 11.5 (its
    // 4-row kernel streamed 7 GB/s, the one-row 14), and Q8_0 the same (its 4-row form is the
    // one-row kernel per row). Float weights keep 4 rows at every size.
    c.rows_kernel = !r8 && (!ti->quantized || (double)rows * (double)row_bytes <= (double)g_rows_kernel_max_bytes);
    // A batch of activations goes through the GEMM where the type has one; a single one (decode)
    // or a few (small batches of decoding sequences) through the row kernels.
    // An R8 type's results never depend on the batch: its GEMM (where the set has one, n >= 4) forms the
    // same integers and float steps as its decode kernel, bit for bit, so STW_CPU_MATMUL_NO_GEMM
    // changes nothing for it.
    c.gemm = c.k->gemm != nullptr && n >= kGemmMinBatch && (r8 || (flags & STW_CPU_MATMUL_NO_GEMM) == 0);
    c.pre = !r8 && !c.gemm && c.k->cols_pre != nullptr && cols / QK <= kPreMaxBlocks;
    // An R8 type whose set has r8_pre takes its activation tables from the driver (the same table
    // as cols_pre's), so they are built once per matmul in decode, not once per panel.
    c.r8pre = r8 && !c.gemm && c.k->r8_pre != nullptr && cols / QK <= kPreMaxBlocks;
    c.pre1 = nullptr;
    c.pre_halves = type == STW_CPU_TYPE_Q6_K;
    // Decode through the precomputed-sums kernels (Q4_0, Q4_K, Q6_K): the activation's table is built
    // once here, not per row as the plain one-row kernels redo it (scale gathers, the sums for Q4_0's
    // offset and Q4_K's mins); with the kernels' own changes, instructions per weight byte fell from
    // 0.95 / 1.07 / 0.92 to 0.60 / 0.58 / 0.63 (callgrind, avx2 set; see README.md).
    float pre1[2 * kPreMaxBlocks + 16];
    if (ti->quantized) {
        quantize_ctx q = {ks->quantize_x, x,     (uint8_t *)qscratch, cols, (size_t)(cols / QK) * sizeof(block_q8_x),
                          c.gemm};
        // One activation row is cheap next to the weights; only a prefill batch is worth spreading.
        if (n >= 4) {
            stw_threadpool_run(pool, (int)n, quantize_task, &q);
        } else {
            for (int64_t i = 0; i < n; i++) quantize_task(&q, (int)i, 0);
        }
        c.x = (const uint8_t *)qscratch;
        c.x_stride = q.q_stride;
        if (n == 1 && ((c.pre && !c.rows_kernel) || c.r8pre)) {
            fill_pre((const block_q8_x *)c.x, cols / QK, pre1, c.pre_halves);
            c.pre1 = pre1;
        }
    } else {
        c.x = (const uint8_t *)x;
        c.x_stride = (size_t)cols * sizeof(float);
    }

    // Activation tile: up to ~256 KiB of activations (stays in L2 while the tile's weight rows
    // stream past), a multiple of 4, at least 4.
    c.n_chunk = max64(4, min64(64, (int64_t)(256 * 1024 / c.x_stride)) & ~(int64_t)3);
    if (c.gemm || (c.r8pre && n > 1)) {
        // The GEMM repacks each 8-row panel once per tile: tiles of up to 256 activation vectors,
        // whose 2048-column slices (64 blocks of 36 bytes each) stay within ~512 KiB of L2. The R8
        // tables path takes the same tiles: it walks them in groups of at most 4096 blocks (147 KiB
        // of activations, L2) with each panel in L1 across a group, and fewer tiles read W fewer
        // times (a 128-token prompt at 5632 columns was 4 tiles of 40 vectors, now 1).
        const int64_t slice_bytes = min64(cols / QK, 64) * (int64_t)sizeof(block_q8_x);
        c.n_chunk = max64(4, min64(256, (512 * 1024) / slice_bytes) & ~(int64_t)3);
    }
    const int64_t n_chunks = (n + c.n_chunk - 1) / c.n_chunk;
    // Weight tile: ~32 KiB of rows in whole groups of 4 (the rows kernel's unit), but enough
    // tiles that every thread gets several (the counter-based scheduler then evens out threads
    // that run slower, e.g. on a busy core).
    // A prefill tile through the precomputed-sums kernels rebuilds its activation tables once per
    // tile, which cost ~1 instruction per weight block and activation at 12-28 rows per tile
    // (callgrind, 128-token Q4_0 prefill): those tiles take ~128 KiB of rows (L2-resident).
    const bool pre_path = c.gemm || (n > 1 && (c.pre || c.r8pre));
    int64_t row_chunk = max64(4, (int64_t)((pre_path ? 128 : 32) * 1024 / row_bytes));
    const int64_t want_tiles = (int64_t)threads * 8;
    if (threads > 1 && n_chunks < want_tiles) row_chunk = min64(row_chunk, max64(4, rows * n_chunks / want_tiles));
    // Keep the task count within int range for absurdly tall matrices.
    row_chunk = max64(row_chunk, (rows * n_chunks + (1 << 24) - 1) / (1 << 24));
    // The GEMM repacks 8 rows at a time: whole groups of 8 per tile.
    row_chunk = c.gemm || r8 ? (row_chunk + 7) & ~(int64_t)7 : (row_chunk + 3) & ~(int64_t)3;
    c.row_chunk = row_chunk;
    c.n_row_chunks = (rows + row_chunk - 1) / row_chunk;
    if (n == 1 && threads > 1) {
        // Units of ~16 KiB of weights (at least 4 rows): small enough to even out the ranges at the
        // end, large enough that taking one costs nothing next to its stream. Rows <= 2^36 keeps
        // the unit count below 2^32.
        int64_t unit = max64(4, (int64_t)((16 * 1024) / row_bytes));
        unit = max64(unit, (rows + ((int64_t)1 << 31) - 1) >> 31);
        unit = r8 ? (unit + 7) & ~(int64_t)7 : (unit + 3) & ~(int64_t)3;  // R8: whole panels
        const int64_t units = (rows + unit - 1) / unit;
        const int n_ranges = (int)min64(min64(threads, kMaxDecodeRanges), units);
        decode_range ranges[kMaxDecodeRanges];
        for (int t = 0; t < n_ranges; t++)
            ranges[t].fb.store(pack_fb((uint32_t)(units * t / n_ranges), (uint32_t)(units * (t + 1) / n_ranges)),
                               std::memory_order_relaxed);
        decode_ctx d = {&c, ranges, n_ranges, unit};
        // The pool's run start and end order these relaxed range updates with the caller.
        stw_threadpool_run(pool, n_ranges, decode_task, &d);
        return STW_CPU_STATUS_OK;
    }
    const int64_t n_tasks = c.n_row_chunks * n_chunks;
    stw_threadpool_run(pool, (int)n_tasks, matmul_task, &c);
    return STW_CPU_STATUS_OK;
}

int stw_cpu_r8_type(int type, int64_t rows, int64_t cols) {
    const r8_entry *e = r8_by_src(type);
    if (e == nullptr || rows <= 0 || rows > kMaxDim || rows % 8 != 0 || stw_cpu_row_bytes(type, cols) == 0) return 0;
    return e->r8;
}

int stw_cpu_repack_r8(int type, void *data, int64_t rows, int64_t cols, stw_threadpool *pool) {
    return repack_matrix(type, data, rows, cols, pool, true);
}

int stw_cpu_unpack_r8(int r8_type, void *data, int64_t rows, int64_t cols, stw_threadpool *pool) {
    return repack_matrix(r8_type, data, rows, cols, pool, false);
}

}  // extern "C"
