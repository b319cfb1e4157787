// backend_cpu.cpp: the CPU backend's op table (matrix work in the kernels library, the rest here),
// with attention as an online-softmax loop over the block-paged KV cache.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core.h"
#include "fp16.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STW_ATTN_AVX2 1
#endif

namespace {

// fp16 -> fp32 for every half bit pattern (256 KiB, built once): the f16 KV read in attention's inner loop.
const float *fp16_table() {
    static const float *table = [] {
        static float t[65536];
        for (uint32_t h = 0; h < 65536; h++) t[h] = stw_fp16_to_fp32((uint16_t)h);
        return t;
    }();
    return table;
}

// Multiply-adds below which attention runs on the calling thread (about 10 microseconds of work).
constexpr int64_t kAttentionInlineWork = 1 << 15;
// Multiply-adds below which a matmul runs on the calling thread (tens of microseconds of work).
constexpr int64_t kMatmulInlineWork = 1 << 17;

stw_threadpool *pool_of(stw_backend *be) { return (stw_threadpool *)be->impl; }

int cpu_matmul_part(stw_backend *be, int32_t type, const void *w, int64_t rows, int64_t cols, const float *x,
                    int64_t i0, int64_t i1, float *y, void *qscratch, unsigned flags) {
    // a small product costs less than waking the workers (tiny models, decode of narrow matrices)
    const int64_t n = i1 - i0;
    const bool inline_run = rows * cols * n < kMatmulInlineWork;
    return stw_cpu_matmul_ex(type, w, rows, cols, x + i0 * cols, n, y + i0 * rows, qscratch,
                             inline_run ? nullptr : pool_of(be), flags);
}

// Tokens of one step may come from many sequences. The prefill GEMM sums in another order than the
// row kernels, so it takes only runs of at least kGemmMinRun consecutive tokens of one sequence (a
// prompt chunk, which takes the GEMM alone too); all other tokens go through the row kernels, whose
// result for a token does not depend on the batch. So a sequence decodes the same tokens alone as
// batched with others (OpenAiApiTest.eightConcurrentStreamsEqualTheSameRequestAlone).
constexpr int64_t kGemmMinRun = 4;

int cpu_matmul(stw_backend *be, int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n,
               float *y, void *qscratch, const stw_step *step) {
    if (step == nullptr) return cpu_matmul_part(be, type, w, rows, cols, x, 0, n, y, qscratch, STW_CPU_MATMUL_NO_GEMM);
    int64_t rest = 0;  // start of the tokens not yet multiplied (all bound for the row kernels)
    for (int64_t a = 0; a < n;) {
        int64_t b = a + 1;
        while (b < n && step->h_seq[b] == step->h_seq[a]) b++;
        if (b - a >= kGemmMinRun) {
            int rc;
            if (rest < a && (rc = cpu_matmul_part(be, type, w, rows, cols, x, rest, a, y, qscratch, STW_CPU_MATMUL_NO_GEMM)))
                return rc;
            if ((rc = cpu_matmul_part(be, type, w, rows, cols, x, a, b, y, qscratch, 0))) return rc;
            rest = b;
        }
        a = b;
    }
    return rest < n ? cpu_matmul_part(be, type, w, rows, cols, x, rest, n, y, qscratch, STW_CPU_MATMUL_NO_GEMM) : 0;
}

int cpu_rmsnorm(stw_backend *, const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        float *oi = out + i * dim;
        float ss = 0.0f;
        for (int64_t j = 0; j < dim; j++) ss += xi[j] * xi[j];
        ss /= (float)dim;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int64_t j = 0; j < dim; j++) oi[j] = w[j] * (ss * xi[j]);
    }
    return 0;
}

int cpu_rope(stw_backend *, float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim,
             int32_t rope_type, float freq_base, const float *freq_factors, const int32_t *pos) {
    if (rope_dim > kMaxHeadDim || rope_dim % 2 != 0 || rope_dim > head_dim) return -1;
    const int32_t half = rope_dim / 2;
    float freq[kMaxHeadDim / 2], cs[kMaxHeadDim / 2], sn[kMaxHeadDim / 2];
    for (int32_t k = 0; k < half; k++) {
        freq[k] = 1.0f / powf(freq_base, (float)(2 * k) / (float)rope_dim);
        if (freq_factors) freq[k] /= freq_factors[k];
    }
    for (int64_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < half; k++) {
            const float theta = (float)pos[i] * freq[k];
            cs[k] = cosf(theta);
            sn[k] = sinf(theta);
        }
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = x + (i * n_heads + h) * head_dim;
            for (int32_t k = 0; k < half; k++) {
                // llama pairs neighbours, NEOX pairs the two halves of the rotated part
                const int32_t a = rope_type == STW_ROPE_TYPE_NEOX ? k : 2 * k;
                const int32_t b = rope_type == STW_ROPE_TYPE_NEOX ? k + half : 2 * k + 1;
                const float v0 = v[a], v1 = v[b];
                v[a] = v0 * cs[k] - v1 * sn[k];
                v[b] = v0 * sn[k] + v1 * cs[k];
            }
        }
    }
    return 0;
}

void kv_write_row(int32_t type, const float *src, int64_t w, uint8_t *dst) {
    switch (type) {
        case STW_TYPE_F32:
            std::memcpy(dst, src, (size_t)w * 4);
            return;
        case STW_TYPE_F16:
            for (int64_t j = 0; j < w; j++) {
                const uint16_t h = stw_fp32_to_fp16(src[j]);
                std::memcpy(dst + 2 * j, &h, 2);
            }
            return;
        case STW_TYPE_Q8_0:
            // ggml's reference rounding (d = max|x| / 127, q = round-half-away(x / d)); w is a multiple of 32
            stw_cpu_quantize_row(STW_TYPE_Q8_0, src, dst, w);
            return;
        default:
            return;
    }
}

// Reads values [start, start + count) of a KV row into out.
inline void kv_read(int32_t type, const uint8_t *row, int64_t start, int64_t count, float *out) {
    switch (type) {
        case STW_TYPE_F32:
            std::memcpy(out, row + 4 * start, (size_t)count * 4);
            return;
        case STW_TYPE_F16: {
            const float *t = fp16_table();
            for (int64_t j = 0; j < count; j++) out[j] = t[stw_load_u16(row + 2 * (start + j))];
            return;
        }
        case STW_TYPE_Q8_0: {
            int64_t e = start;
            const int64_t end = start + count;
            while (e < end) {
                const uint8_t *blk = row + (e / 32) * 34;
                const float d = stw_fp16_to_fp32(stw_load_u16(blk));
                const int64_t stop = e - e % 32 + 32 < end ? e - e % 32 + 32 : end;
                for (; e < stop; e++) *out++ = d * (float)(int8_t)blk[2 + e % 32];
            }
            return;
        }
        default:
            return;
    }
}

int cpu_kv_store(stw_backend *, int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width,
                 const stw_step *step) {
    for (int64_t i = 0; i < step->n_tokens; i++) {
        const stw_step_seq *ss = &step->seqs[step->seq[i]];
        const int32_t type = ss->kv_type;
        kv_write_row(type, k + i * k_width, k_width, stw_seq_kv_row(ss, step->block_table, layer, step->pos[i], false));
        kv_write_row(type, v + i * v_width, v_width, stw_seq_kv_row(ss, step->block_table, layer, step->pos[i], true));
    }
    return 0;
}

// The attention op's arguments as the tasks see them: the op's, plus the CPU path chosen once per op.
struct attn_task_args {
    stw_attn_args a;
    bool avx2;
};

#if defined(STW_ATTN_AVX2)
// One (token, head) of attention over an f16 or f32 KV cache with AVX2/FMA/F16C: eight K or V values
// converted per instruction instead of one table lookup each (the scalar loop spent ~1000
// instructions per cached position and head, ~15% of a 128-token prefill; callgrind). Only called
// when the kernels chose the avx2 set, which checked the CPU and OS for all three.
template <bool F16>
__attribute__((target("avx2,fma,f16c"))) void attend_avx2(const stw_attn_args *a, const stw_step_seq *s, int32_t i,
                                                          int32_t kvh, const float *q, float *out) {
    // the sequence's layout in locals: expf is an opaque call, after which fields read through s would reload
    const int32_t *bt = a->step->block_table + s->bt_offset;
    const int32_t pos_i = a->step->pos[i];
    const int32_t dk = a->dk, dv = a->dv;
    const size_t es = F16 ? 2 : 4;
    const size_t block_bytes = s->block_bytes, k_row = s->k_row_bytes, v_row = s->v_row_bytes;
    const uint8_t *layer_base = s->kv + (size_t)a->layer * s->layer_block_bytes;
    const size_t koff = (size_t)kvh * (size_t)dk * es;
    const size_t voff = STW_KV_BLOCK_TOKENS * k_row + (size_t)kvh * (size_t)dv * es;
    alignas(32) float acc[kMaxHeadDim];
    for (int32_t j = 0; j < dv; j += 8) _mm256_store_ps(acc + j, _mm256_setzero_ps());
    float m = -INFINITY, sum = 0.0f;
    for (int32_t t = 0; t <= pos_i; t++) {
        const uint8_t *base = layer_base + (size_t)bt[t / STW_KV_BLOCK_TOKENS] * block_bytes;
        const int32_t slot = t % STW_KV_BLOCK_TOKENS;
        const uint8_t *kr = base + (size_t)slot * k_row + koff;
        __m256 sv = _mm256_setzero_ps();
        for (int32_t j = 0; j < dk; j += 8) {
            const __m256 kv = F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + 2 * (size_t)j)))
                                  : _mm256_loadu_ps((const float *)kr + j);
            sv = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), kv, sv);
        }
        __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(sv), _mm256_extractf128_ps(sv, 1));
        h4 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        h4 = _mm_add_ss(h4, _mm_movehdup_ps(h4));
        const float score = _mm_cvtss_f32(h4) * a->scale;
        if (score > m) {
            const float c = expf(m - score);
            sum *= c;
            const __m256 cv = _mm256_set1_ps(c);
            for (int32_t j = 0; j < dv; j += 8) _mm256_store_ps(acc + j, _mm256_mul_ps(_mm256_load_ps(acc + j), cv));
            m = score;
        }
        const float w = expf(score - m);
        sum += w;
        const __m256 wv = _mm256_set1_ps(w);
        const uint8_t *vr = base + (size_t)slot * v_row + voff;
        for (int32_t j = 0; j < dv; j += 8) {
            const __m256 vv = F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + 2 * (size_t)j)))
                                  : _mm256_loadu_ps((const float *)vr + j);
            _mm256_store_ps(acc + j, _mm256_fmadd_ps(wv, vv, _mm256_load_ps(acc + j)));
        }
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int32_t j = 0; j < dv; j += 8) _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_load_ps(acc + j), inv));
}

// Whether attention may take the AVX2 path: the kernels library chose its avx2 set (cpuid and
// XGETBV checked; STOWAGE_CPU=portable turns both off together).
bool attention_avx2() { return std::strncmp(stw_cpu_kernel_set(), "avx2", 4) == 0; }
#endif

void attention_task(void *ctx, int task, int /*thread*/) {
    const attn_task_args *ta = (const attn_task_args *)ctx;
    const stw_attn_args *a = &ta->a;
    const int32_t i = task / a->n_head, h = task % a->n_head;
    const stw_step *st = a->step;
    const stw_step_seq *s = &st->seqs[st->seq[i]];
    const int32_t type = s->kv_type;
    const int32_t kvh = h / (a->n_head / a->n_head_kv);
    const int32_t dk = a->dk, dv = a->dv;
    const float *q = a->q + ((int64_t)i * a->n_head + h) * dk;
#if defined(STW_ATTN_AVX2)
    if (ta->avx2 && dk % 8 == 0 && dv % 8 == 0 && (type == STW_TYPE_F16 || type == STW_TYPE_F32)) {
        float *out = a->out + ((int64_t)i * a->n_head + h) * dv;
        if (type == STW_TYPE_F16) attend_avx2<true>(a, s, i, kvh, q, out);
        else attend_avx2<false>(a, s, i, kvh, q, out);
        return;
    }
#endif
    float kbuf[kMaxHeadDim], vbuf[kMaxHeadDim], acc[kMaxHeadDim];
    for (int32_t j = 0; j < dv; j++) acc[j] = 0.0f;
    // locals, not reads through pointers that every expf call below would force again
    const stw_step_seq ss = *s;
    const int32_t *bt = st->block_table;
    const int32_t pos_i = st->pos[i];
    // online softmax: running max m and running sum of exp(score - m), rescaling acc when m grows
    float m = -INFINITY, sum = 0.0f;
    for (int32_t t = 0; t <= pos_i; t++) {
        kv_read(type, stw_seq_kv_row(&ss, bt, a->layer, t, false), (int64_t)kvh * dk, dk, kbuf);
        float score = 0.0f;
        for (int32_t j = 0; j < dk; j++) score += q[j] * kbuf[j];
        score *= a->scale;
        if (score > m) {
            const float c = expf(m - score);
            sum *= c;
            for (int32_t j = 0; j < dv; j++) acc[j] *= c;
            m = score;
        }
        const float w = expf(score - m);
        sum += w;
        kv_read(type, stw_seq_kv_row(&ss, bt, a->layer, t, true), (int64_t)kvh * dv, dv, vbuf);
        for (int32_t j = 0; j < dv; j++) acc[j] += w * vbuf[j];
    }
    float *out = a->out + ((int64_t)i * a->n_head + h) * dv;
    const float inv = 1.0f / sum;
    for (int32_t j = 0; j < dv; j++) out[j] = acc[j] * inv;
}

int cpu_attention(stw_backend *be, const stw_attn_args *a) {
    if (a->dk > kMaxHeadDim || a->dv > kMaxHeadDim || a->n_head % a->n_head_kv != 0) return -1;
    // a small step (short contexts, tiny models) costs less than waking the workers: run it here
    int64_t work = 0;
    for (int32_t i = 0; i < a->n_tokens; i++) work += (int64_t)(a->step->pos[i] + 1);
    work *= (int64_t)a->n_head * (a->dk + a->dv);
    attn_task_args ta;
    ta.a = *a;
#if defined(STW_ATTN_AVX2)
    ta.avx2 = attention_avx2();
#else
    ta.avx2 = false;
#endif
    stw_threadpool_run(work < kAttentionInlineWork ? nullptr : pool_of(be), a->n_tokens * a->n_head, attention_task,
                       &ta);
    return 0;
}

int cpu_swiglu(stw_backend *, float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
    return 0;
}

int cpu_add(stw_backend *, float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride) {
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * dim;
        const float *yi = y + i * y_row_stride;
        for (int64_t j = 0; j < dim; j++) xi[j] += yi[j];
    }
    return 0;
}

int cpu_get_rows(stw_backend *, int32_t type, const void *table, size_t row_bytes, int64_t n_table, const int32_t *ids,
                 int64_t n, int64_t dim, float *out) {
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_table) return -1;
        const int rc = stw_cpu_dequantize_row(type, (const uint8_t *)table + (size_t)ids[i] * row_bytes, out + i * dim, dim);
        if (rc != 0) return rc;
    }
    return 0;
}

void cpu_free(stw_backend *be) {
    stw_threadpool_free(pool_of(be));
    be->impl = nullptr;
}

int cpu_alloc(stw_backend *, size_t bytes, void **out) {
    // more than the machine's RAM cannot succeed: refused without asking the allocator (which may overcommit)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && bytes / (size_t)page > (size_t)pages) return -1;
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes) != 0) return -1;
    *out = p;
    return 0;
}

void cpu_free_buffer(stw_backend *, void *buf) { std::free(buf); }

int cpu_upload(stw_backend *, void *dst, size_t dst_offset, const void *src, size_t bytes) {
    std::memcpy((uint8_t *)dst + dst_offset, src, bytes);
    return 0;
}

int cpu_download(stw_backend *, void *dst, const void *src, size_t src_offset, size_t bytes) {
    std::memcpy(dst, (const uint8_t *)src + src_offset, bytes);
    return 0;
}

int cpu_synchronize(stw_backend *) { return 0; }

// A "Key:   123 kB" line of /proc/meminfo in bytes; false when absent.
bool meminfo_bytes(const char *key, uint64_t *out) {
    FILE *f = std::fopen("/proc/meminfo", "r");
    if (!f) return false;
    char line[256];
    const size_t n = std::strlen(key);
    bool found = false;
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
            unsigned long long kb = 0;
            found = std::sscanf(line + n + 1, "%llu", &kb) == 1;
            *out = (uint64_t)kb * 1024;
            break;
        }
    }
    std::fclose(f);
    return found;
}

int cpu_memory_info(stw_backend *, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (meminfo_bytes("MemTotal", total_bytes) && meminfo_bytes("MemAvailable", free_bytes)) return 0;
    const long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || avail < 0 || page <= 0) return -1;
    *total_bytes = (uint64_t)pages * (uint64_t)page;
    *free_bytes = (uint64_t)avail * (uint64_t)page;
    return 0;
}

bool cpu_supports_type(const stw_backend *, int32_t type, int32_t use) {
    if (use == STW_TYPE_USE_KV) return type == STW_TYPE_F32 || type == STW_TYPE_F16 || type == STW_TYPE_Q8_0;
    return use == STW_TYPE_USE_WEIGHT && stw_type_supported_weight(type);
}

uint64_t cpu_workspace_bytes(const stw_backend *, const stw_hparams *hp, int64_t B, int64_t L) {
    return stw_workspace_bytes_for(*hp, (uint64_t)B, (uint64_t)L);
}

int cpu_device_info(const stw_backend *be, stw_device_info *out) {
    std::memset(out, 0, sizeof *out);
    out->kind = STW_BACKEND_KIND_CPU;
    out->ordinal = be->ordinal;
    std::snprintf(out->name, sizeof out->name, "cpu");
    if (FILE *f = std::fopen("/proc/cpuinfo", "r")) {
        char line[512];
        while (std::fgets(line, sizeof line, f)) {
            if (std::strncmp(line, "model name", 10) != 0) continue;
            const char *colon = std::strchr(line, ':');
            if (!colon) break;
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            std::snprintf(out->name, sizeof out->name, "%s", colon);
            out->name[std::strcspn(out->name, "\n")] = '\0';
            break;
        }
        std::fclose(f);
    }
    uint64_t free_b = 0;
    if (cpu_memory_info(nullptr, &free_b, &out->total_bytes) != 0) out->total_bytes = 0;
    return 0;
}

} // namespace

stw_threadpool *stw_backend_cpu_pool(stw_backend *be) {
    return be && be->kind == STW_BACKEND_KIND_CPU && be->free == cpu_free ? pool_of(be) : nullptr;
}

stw_status stw_backend_cpu_create(stw_backend *be, int32_t n_threads, bool emulate_device) {
    be->name = emulate_device ? "cpu-emulated-device" : "cpu";
    be->kind = STW_BACKEND_KIND_CPU;
    be->ordinal = 0;
    be->host_memory = !emulate_device;
    fp16_table(); // built here, not inside the first step
    be->impl = stw_threadpool_init(n_threads);
    if (!be->impl) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot start a CPU thread pool of %d threads", n_threads);
    be->alloc = cpu_alloc;
    be->free_buffer = cpu_free_buffer;
    be->upload = cpu_upload;
    be->download = cpu_download;
    be->synchronize = cpu_synchronize;
    be->memory_info = cpu_memory_info;
    be->supports_type = cpu_supports_type;
    be->workspace_bytes = cpu_workspace_bytes;
    be->device_info = cpu_device_info;
    be->matmul = cpu_matmul;
    be->rmsnorm = cpu_rmsnorm;
    be->rope = cpu_rope;
    be->kv_store = cpu_kv_store;
    be->attention = cpu_attention;
    be->swiglu = cpu_swiglu;
    be->add = cpu_add;
    be->get_rows = cpu_get_rows;
    be->free = cpu_free;
    return STW_STATUS_OK;
}
