// Micro-benchmark of stw_cpu_matmul: weight GB/s per type and thread count for a matrix-vector
// product (or a batch of n activations), next to the machine's measured memcpy and read
// bandwidth. Every figure is the best of repeated calls over --seconds. With one thread it also
// prints GB/s per CPU-second of the calling thread, which a busy shared machine distorts less.
// Not a test; run by hand:
//   stw_bench_kernels [--threads 1,2] [--types all|q8_0,q4_0,...] [--seconds S] [--n N]
//                     [--shape ROWSxCOLS]  (default: 4096x4096, 11008x4096, 4096x11008)
//                     [--in-cache]  (one copy of the matrix, so a small one stays in cache)
//                     [--rows-kernel-max BYTES]  (largest quantized matrix decoded 4 rows at a time)
//   stw_bench_kernels --q4k-r8 [--shape ROWSxCOLS] [--seconds S] [--in-cache] [--n N]
//                     Q4_K decode (N = 1 activation vector, the default; one thread) through
//                     stw_cpu_matmul next to the Q4_K R8 kernel of the same set on the same matrix
//                     repacked (default 2048x5632), alternating in rounds; GB/s of weights, best per
//                     round. N > 1: the matmul's batch path (the GEMM from 4) against r8 with nx = N.
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels.h"
#include "quants.h"  // set_rows_kernel_max_bytes (--rows-kernel-max); the kernel sets and pack_q4_K_r8 (--q4k-r8)

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: with one thread all work runs on the caller, and on a shared
// machine this discounts the time the scheduler gave to other processes.
double thread_cpu_s() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct type_row {
    int type;
    const char *name;
    int src;  // R8 types: the type the rows are quantized to before the repack (else 0)
};
const type_row kTypes[] = {
    {STW_CPU_TYPE_F32, "f32"},   {STW_CPU_TYPE_F16, "f16"},   {STW_CPU_TYPE_BF16, "bf16"}, {STW_CPU_TYPE_Q8_0, "q8_0"},
    {STW_CPU_TYPE_Q4_0, "q4_0"}, {STW_CPU_TYPE_Q4_K, "q4_k"}, {STW_CPU_TYPE_Q6_K, "q6_k"},
    {STW_CPU_TYPE_Q4_0_R8, "q4_0_r8", STW_CPU_TYPE_Q4_0}, {STW_CPU_TYPE_Q4_K_R8, "q4_k_r8", STW_CPU_TYPE_Q4_K},
};

std::vector<int> parse_ints(const char *s) {
    std::vector<int> v;
    for (const char *p = s; *p;) {
        v.push_back(atoi(p));
        const char *c = strchr(p, ',');
        if (c == nullptr) break;
        p = c + 1;
    }
    return v;
}

struct copy_ctx {
    char *dst;
    const char *src;
    size_t bytes, chunk;
};
void copy_task(void *p, int t, int) {
    copy_ctx *c = (copy_ctx *)p;
    const size_t off = (size_t)t * c->chunk;
    const size_t len = off + c->chunk <= c->bytes ? c->chunk : c->bytes - off;
    memcpy(c->dst + off, c->src + off, len);
}

struct read_ctx {
    const uint8_t *src;
    size_t bytes, chunk;
    uint64_t sink[64 * 8];
};

// Streams a chunk through four independent 16-byte XOR chains: light enough that the loads, not
// the arithmetic, set the pace (a scalar loop measures the core, not the memory).
void read_task(void *p, int t, int thread) {
    read_ctx *c = (read_ctx *)p;
    const size_t off = (size_t)t * c->chunk;
    const size_t end = off + c->chunk <= c->bytes ? off + c->chunk : c->bytes;
#if defined(__SSE2__)
    __m128i a = _mm_setzero_si128(), b = a, d = a, e = a;
    for (size_t i = off; i + 64 <= end; i += 64) {
        a = _mm_xor_si128(a, _mm_load_si128((const __m128i *)(c->src + i)));
        b = _mm_xor_si128(b, _mm_load_si128((const __m128i *)(c->src + i + 16)));
        d = _mm_xor_si128(d, _mm_load_si128((const __m128i *)(c->src + i + 32)));
        e = _mm_xor_si128(e, _mm_load_si128((const __m128i *)(c->src + i + 48)));
    }
    a = _mm_xor_si128(_mm_xor_si128(a, b), _mm_xor_si128(d, e));
    uint64_t r[2];
    _mm_storeu_si128((__m128i *)r, a);
    c->sink[(thread % 64) * 8] += r[0] ^ r[1];
#else
    uint64_t a = 0;
    for (size_t i = off; i + 8 <= end; i += 8) {
        uint64_t v;
        memcpy(&v, c->src + i, 8);
        a ^= v;
    }
    c->sink[(thread % 64) * 8] += a;
#endif
}

// Best-of-N GB/s of copying a 512 MiB buffer (bytes copied per second) and of reading it.
void bench_memory(stw_threadpool *pool, double seconds, double *copy_gbs, double *read_gbs) {
    const size_t bytes = (size_t)512 << 20;
    std::vector<char> a(bytes, 1), b(bytes, 2);
    copy_ctx c = {b.data(), a.data(), bytes, (size_t)4 << 20};
    const int tasks = (int)(bytes / c.chunk);
    double best = 1e30;
    for (double t0 = now_s(); now_s() - t0 < seconds;) {
        const double s = now_s();
        stw_threadpool_run(pool, tasks, copy_task, &c);
        best = std::min(best, now_s() - s);
    }
    *copy_gbs = bytes / best / 1e9;
    read_ctx r;
    memset(&r, 0, sizeof r);
    r.src = (const uint8_t *)a.data();
    r.bytes = bytes;
    r.chunk = (size_t)4 << 20;
    best = 1e30;
    for (double t0 = now_s(); now_s() - t0 < seconds;) {
        const double s = now_s();
        stw_threadpool_run(pool, tasks, read_task, &r);
        best = std::min(best, now_s() - s);
    }
    *read_gbs = bytes / best / 1e9;
    uint64_t sink = 0;
    for (int i = 0; i < 64; i++) sink += r.sink[i * 8];
    if (sink == 42) printf(" ");  // keeps the reads alive
}

const stw_cpu::kernel_set *kernel_set_named(const char *name) {
#if defined(STW_CPU_HAVE_AVXVNNI)
    if (!strcmp(name, "avx2-vnni")) return &stw_cpu::kernel_set_avx2_vnni;
#endif
#if defined(STW_CPU_HAVE_AVX2)
    if (!strcmp(name, "avx2")) return &stw_cpu::kernel_set_avx2;
#endif
    return &stw_cpu::kernel_set_portable;
}

// Q4_K decode, one thread: the current path (stw_cpu_matmul, n = 1: the precomputed-sums row
// kernel) against the R8 kernel over the same rows packed into panels (quantize_x once per
// vector, then one r8 call per panel, as a driver would). Copies of the matrix (> 256 MiB in all)
// unless in_cache. Alternates the two in rounds of `seconds` each so both see the same load.
int bench_q4k_r8(int64_t rows, int64_t cols, int64_t n, double seconds, bool in_cache) {
    const stw_cpu::kernel_set *ks = kernel_set_named(stw_cpu_kernel_set());
    const size_t rb = stw_cpu_row_bytes(STW_CPU_TYPE_Q4_K, cols);
    if (rb == 0 || rows % 8 != 0 || n < 1 || n > 4096 || ks->q4_K_r8.r8 == nullptr) {
        fprintf(stderr, "--q4k-r8 needs cols a multiple of 256, rows a multiple of 8 and n in 1..4096; "
                        "got %lldx%lld, n=%lld\n",
                (long long)rows, (long long)cols, (long long)n);
        return 2;
    }
    const size_t mat = rb * (size_t)rows;
    const int copies = in_cache ? 1 : (int)std::max<size_t>(2, ((size_t)256 << 20) / mat + 1);
    std::vector<uint8_t> w(mat * copies), wr(mat * copies);
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> row((size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (auto &v : row) v = u(rng) * 0.05f;
        stw_cpu_quantize_row(STW_CPU_TYPE_Q4_K, row.data(), w.data() + (size_t)r * rb, cols);
    }
    for (int64_t p = 0; p < rows / 8; p++)
        stw_cpu::pack_q4_K_r8(cols, w.data() + (size_t)p * 8 * rb, wr.data() + (size_t)p * 8 * rb);
    for (int k = 1; k < copies; k++) {
        memcpy(w.data() + k * mat, w.data(), mat);
        memcpy(wr.data() + k * mat, wr.data(), mat);
    }
    std::vector<float> x((size_t)(cols * n)), y((size_t)(rows * n)), yr((size_t)(rows * n));
    for (auto &v : x) v = u(rng);
    std::vector<uint8_t> q(stw_cpu_qscratch_bytes(STW_CPU_TYPE_Q4_K, cols, n) + 1);
    std::vector<stw_cpu::block_q8_x> xq((size_t)(cols / 32 * n));
    const size_t xs = (size_t)(cols / 32) * sizeof(stw_cpu::block_q8_x);
    printf("Q4_K, %lldx%lld (%.1f MiB), n = %lld, 1 thread, kernel set %s, %s; GB/s of weights, best per round\n",
           (long long)rows, (long long)cols, mat / 1048576.0, (long long)n, ks->name,
           in_cache ? "one copy (in cache)" : "from DRAM");
    printf("%-6s %14s %14s %8s\n", "round", "q4_K matmul", "q4_K_r8", "ratio");
    double all_a = 0, all_b = 0;
    for (int round = 0; round < 5; round++) {
        double best_a = 1e30, best_b = 1e30;
        int k = 0;
        for (double t0 = now_s(); now_s() - t0 < seconds; k++) {
            const double s = now_s();
            if (stw_cpu_matmul(STW_CPU_TYPE_Q4_K, w.data() + (k % copies) * mat, rows, cols, x.data(), n, y.data(),
                               q.data(), nullptr) != 0) {
                fprintf(stderr, "matmul failed: %s\n", stw_cpu_last_error());
                return 1;
            }
            best_a = std::min(best_a, now_s() - s);
        }
        for (double t0 = now_s(); now_s() - t0 < seconds; k++) {
            const double s = now_s();
            const uint8_t *wk = wr.data() + (k % copies) * mat;
            for (int64_t j = 0; j < n; j++) ks->quantize_x(x.data() + j * cols, xq.data() + j * (cols / 32), cols);
            for (int64_t p = 0; p < rows / 8; p++)
                ks->q4_K_r8.r8(cols, wk + (size_t)p * 8 * rb, (const uint8_t *)xq.data(), xs, (int)n, yr.data() + 8 * p,
                               rows);
            best_b = std::min(best_b, now_s() - s);
        }
        all_a = std::max(all_a, mat / best_a / 1e9);
        all_b = std::max(all_b, mat / best_b / 1e9);
        printf("%-6d %14.2f %14.2f %7.2fx\n", round, mat / best_a / 1e9, mat / best_b / 1e9, best_a / best_b);
        fflush(stdout);
    }
    double maxdiff = 0, maxy = 0;
    for (size_t i = 0; i < y.size(); i++) {
        maxdiff = std::max(maxdiff, (double)fabsf(y[i] - yr[i]));
        maxy = std::max(maxy, (double)fabsf(y[i]));
    }
    printf("best   %14.2f %14.2f %7.2fx   (max |y - y_r8| = %.3g of max |y| %.3g)\n", all_a, all_b, all_b / all_a,
           maxdiff, maxy);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    std::vector<int> threads = {1, 2};
    std::string types = "all";
    double seconds = 1.0;
    int64_t n = 1;
    bool in_cache = false;  // one copy of the matrix: measures the kernels, not DRAM
    bool q4k_r8 = false, shape_given = false;
    std::vector<std::array<int64_t, 2>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--in-cache")) {
            in_cache = true;
            i--;
            continue;
        }
        if (!strcmp(argv[i], "--q4k-r8")) {
            q4k_r8 = true;
            i--;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "option %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--threads")) threads = parse_ints(argv[i + 1]);
        else if (!strcmp(argv[i], "--types")) types = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows-kernel-max")) stw_cpu::set_rows_kernel_max_bytes((size_t)atoll(argv[i + 1]));
        else if (!strcmp(argv[i], "--shape")) {
            long long r = 0, c = 0;
            if (sscanf(argv[i + 1], "%lldx%lld", &r, &c) != 2 || r <= 0 || c <= 0) {
                fprintf(stderr, "--shape wants ROWSxCOLS, got %s\n", argv[i + 1]);
                return 2;
            }
            shapes = {{r, c}};
            shape_given = true;
        }
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (q4k_r8)
        return bench_q4k_r8(shape_given ? shapes[0][0] : 2048, shape_given ? shapes[0][1] : 5632, n, seconds, in_cache);
    printf("kernel set: %s, n (activation vectors) = %lld\n", stw_cpu_kernel_set(), (long long)n);
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int nt : threads) {
        stw_threadpool *pool = stw_threadpool_init(nt);
        if (pool == nullptr) {
            fprintf(stderr, "cannot start %d threads\n", nt);
            return 1;
        }
        double copy_gbs, read_gbs;
        bench_memory(pool, seconds, &copy_gbs, &read_gbs);
        printf("\nthreads=%d  memcpy %.2f GB/s (bytes copied/s)  read %.2f GB/s\n", nt, copy_gbs, read_gbs);
        printf("%-6s %-12s %10s %10s %8s %10s %12s\n", "type", "rows x cols", "ms/call", "GB/s", "%copy", "GMAC/s",
               nt == 1 ? "GB/s(cpu)" : "");
        for (const type_row &t : kTypes) {
            if (types != "all" && types.find(t.name) == std::string::npos) continue;
            for (const auto &shape : shapes) {
                const int64_t rows = shape[0], cols = shape[1];
                const int qtype = t.src != 0 ? t.src : t.type;
                if (t.src != 0 && stw_cpu_r8_type(t.src, rows, cols) != t.type) {
                    printf("%-6s %lldx%lld has no R8 form in this build; skipped\n", t.name, (long long)rows,
                           (long long)cols);
                    continue;
                }
                const size_t rb = stw_cpu_row_bytes(qtype, cols);
                // Several copies of the matrix (> 256 MiB in all) so successive calls stream from
                // DRAM, not from the last-level cache, as decode does.
                if (rb == 0) {
                    printf("%-6s cols=%lld is not a multiple of the block size; skipped\n", t.name, (long long)cols);
                    continue;
                }
                const size_t mat = rb * (size_t)rows;
                const int copies = in_cache ? 1 : (int)std::max<size_t>(2, ((size_t)256 << 20) / mat + 1);
                std::vector<uint8_t> w(mat * copies);
                std::vector<float> row((size_t)cols);
                for (int64_t r = 0; r < rows; r++) {
                    for (auto &v : row) v = u(rng) * 0.05f;
                    stw_cpu_quantize_row(qtype, row.data(), w.data() + (size_t)r * rb, cols);
                }
                if (t.src != 0 && stw_cpu_repack_r8(t.src, w.data(), rows, cols, pool) != t.type) {
                    fprintf(stderr, "repack failed: %s\n", stw_cpu_last_error());
                    return 1;
                }
                for (int k = 1; k < copies; k++) memcpy(w.data() + k * mat, w.data(), mat);
                std::vector<float> x((size_t)(cols * n)), y((size_t)(rows * n));
                for (auto &v : x) v = u(rng);
                std::vector<uint8_t> q(stw_cpu_qscratch_bytes(t.type, cols, n) + 1);
                double best = 1e30, best_cpu = 1e30;
                int k = 0;
                for (double t0 = now_s(); now_s() - t0 < seconds; k++) {
                    const double s = now_s(), sc = thread_cpu_s();
                    const int rc = stw_cpu_matmul(t.type, w.data() + (k % copies) * mat, rows, cols, x.data(), n,
                                                  y.data(), q.data(), pool);
                    best = std::min(best, now_s() - s);
                    best_cpu = std::min(best_cpu, thread_cpu_s() - sc);
                    if (rc != 0) {
                        fprintf(stderr, "matmul failed: %s\n", stw_cpu_last_error());
                        return 1;
                    }
                }
                const double gbs = mat / best / 1e9;
                char shape_s[32];
                snprintf(shape_s, sizeof shape_s, "%lldx%lld", (long long)rows, (long long)cols);
                printf("%-6s %-12s %10.3f %10.2f %7.0f%% %10.1f", t.name, shape_s, best * 1e3, gbs,
                       100.0 * gbs / copy_gbs, (double)rows * cols * n / best / 1e9);
                if (nt == 1) printf(" %12.2f", mat / best_cpu / 1e9);
                printf("\n");
                fflush(stdout);
            }
        }
        stw_threadpool_free(pool);
    }
    return 0;
}
