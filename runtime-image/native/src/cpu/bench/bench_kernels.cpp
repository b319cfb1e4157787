// Micro-benchmark of stw_cpu_matmul: weight GB/s per type and thread count for a matrix-vector
// product (or a batch of n activations), next to the machine's measured memcpy and read
// bandwidth. Every figure is the best of repeated calls over --seconds. With one thread it also
// prints GB/s per CPU-second of the calling thread, which a busy shared machine distorts less.
// Not a test; run by hand:
//   stw_bench_kernels [--threads 1,2] [--types all|q8_0,q4_0,...] [--seconds S] [--n N]
//                     [--shape ROWSxCOLS]  (default: 4096x4096, 11008x4096, 4096x11008)
//                     [--in-cache]  (one copy of the matrix, so a small one stays in cache)
//                     [--rows-kernel-max BYTES]  (largest quantized matrix decoded 4 rows at a time)
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
#include "quants.h"  // stw_cpu::set_rows_kernel_max_bytes for --rows-kernel-max

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

}  // namespace

int main(int argc, char **argv) {
    std::vector<int> threads = {1, 2};
    std::string types = "all";
    double seconds = 1.0;
    int64_t n = 1;
    bool in_cache = false;  // one copy of the matrix: measures the kernels, not DRAM
    std::vector<std::array<int64_t, 2>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--in-cache")) {
            in_cache = true;
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
        }
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
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
