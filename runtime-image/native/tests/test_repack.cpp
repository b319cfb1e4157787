// Tests of the load-time row-interleaved repack (R8, ctest, no JVM): the panel layouts round-trip,
// every kernel set's r8 kernel against a double-precision reference, bit identity across the number
// of activation vectors and between avx2 and avx2-vnni, stw_cpu_matmul on a repacked matrix against
// the unrepacked one (1 and 2 threads), and the refusals. Table-driven over the R8 types this build
// has (stw_cpu_r8_type says which).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <random>
#include <vector>

#include "kernels.h"
#include "quants.h"
#include "kernel_check.h"

namespace {

struct r8_case {
    int src, r8;
    const char *name;
    stw_cpu::r8_pack_fn pack, unpack;
    const stw_cpu::type_kernels stw_cpu::kernel_set::*kernels;
    bool permutation;  // the layout only moves bytes (Q4_0_R8); another may re-encode them
};

std::vector<r8_case> r8_cases() {
    std::vector<r8_case> v;
    if (stw_cpu_r8_type(STW_CPU_TYPE_Q4_0, 8, 32) == STW_CPU_TYPE_Q4_0_R8)
        v.push_back({STW_CPU_TYPE_Q4_0, STW_CPU_TYPE_Q4_0_R8, "Q4_0_R8", stw_cpu::pack_q4_0_r8, stw_cpu::unpack_q4_0_r8,
                     &stw_cpu::kernel_set::q4_0_r8, true});
#if defined(STW_CPU_HAVE_Q4_K_R8)
    if (stw_cpu_r8_type(STW_CPU_TYPE_Q4_K, 8, 256) == STW_CPU_TYPE_Q4_K_R8)
        v.push_back({STW_CPU_TYPE_Q4_K, STW_CPU_TYPE_Q4_K_R8, "Q4_K_R8", stw_cpu::pack_q4_K_r8, stw_cpu::unpack_q4_K_r8,
                     &stw_cpu::kernel_set::q4_K_r8, false});
#endif
    return v;
}

struct set_case {
    const char *name;
    const stw_cpu::kernel_set *ks;
};

std::vector<set_case> sets() {
    std::vector<set_case> v = {{"portable", &stw_cpu::kernel_set_portable}};
#if defined(STW_CPU_HAVE_AVX2)
    if (stw_cpu_select_kernel_set("avx2") == 0) v.push_back({"avx2", &stw_cpu::kernel_set_avx2});
#endif
#if defined(STW_CPU_HAVE_AVXVNNI)
    if (stw_cpu_select_kernel_set("avx2-vnni") == 0) v.push_back({"avx2-vnni", &stw_cpu::kernel_set_avx2_vnni});
#endif
    stw_cpu_select_kernel_set("auto");
    return v;
}

std::vector<float> random_floats(std::mt19937 &rng, size_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(rng);
    return v;
}

// rows x cols of the source type from quantized random values; `extreme` writes raw blocks whose
// every quant is the largest (Q4_0: all nibbles 15), the int16 worst case of maddubs.
std::vector<uint8_t> random_matrix(std::mt19937 &rng, int type, int64_t rows, int64_t cols, bool extreme) {
    const size_t rb = stw_cpu_row_bytes(type, cols);
    std::vector<uint8_t> w(rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        std::vector<float> row = random_floats(rng, (size_t)cols, 0.05f);
        CHECK(stw_cpu_quantize_row(type, row.data(), w.data() + (size_t)r * rb, cols) == 0, "quantize");
    }
    if (extreme && type == STW_CPU_TYPE_Q4_0) {
        for (size_t b = 0; b < w.size() / 18; b++) memset(w.data() + b * 18 + 2, 0xFF, 16);
    }
    return w;
}

// The activations as the kernels take them: block_q8_x per 32 values (quantize_x of the set).
std::vector<uint8_t> quantize_x(const stw_cpu::kernel_set *ks, const float *x, int64_t cols, int64_t n) {
    const size_t stride = (size_t)(cols / 32) * sizeof(stw_cpu::block_q8_x);
    std::vector<uint8_t> q(stride * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        ks->quantize_x(x + i * cols, (stw_cpu::block_q8_x *)(q.data() + (size_t)i * stride), cols);
    return q;
}

// --- layouts ----------------------------------------------------------------------------------

void test_pack_round_trip() {
    std::mt19937 rng(5);
    for (const r8_case &c : r8_cases()) {
        const int64_t unit = stw_cpu_block_size(c.src);
        for (int64_t cols : {unit, 2 * unit, 4096 + unit}) {
            const size_t rb = stw_cpu_row_bytes(c.src, cols);
            // Any bytes: the layout moves bytes, it does not read them.
            std::vector<uint8_t> src(8 * rb), panel(8 * rb, 0xAB), back(8 * rb, 0xCD);
            for (auto &b : src) b = (uint8_t)rng();
            c.pack(cols, src.data(), panel.data());
            c.unpack(cols, panel.data(), back.data());
            CHECK(memcmp(src.data(), back.data(), src.size()) == 0, "%s cols=%lld: unpack(pack(x)) != x", c.name,
                  (long long)cols);
            CHECK(memcmp(src.data(), panel.data(), src.size()) != 0, "%s cols=%lld: the panel is not a plain copy",
                  c.name, (long long)cols);
            // A permutation of the same bytes: the byte histograms agree.
            if (!c.permutation) continue;
            std::vector<int> h1(256), h2(256);
            for (size_t i = 0; i < src.size(); i++) {
                h1[src[i]]++;
                h2[panel[i]]++;
            }
            CHECK(h1 == h2, "%s cols=%lld: the panel holds other bytes than its rows", c.name, (long long)cols);
        }
        // In place over a whole matrix, single-threaded and on a pool: the same panels as pack, and
        // the unpack restores the rows.
        stw_threadpool *pool2 = stw_threadpool_init(2);
        for (stw_threadpool *pool : {(stw_threadpool *)nullptr, pool2}) {
            const int64_t rows = 8 * 37, cols = 8 * unit;
            const size_t rb = stw_cpu_row_bytes(c.src, cols);
            std::vector<uint8_t> w = random_matrix(rng, c.src, rows, cols, false), orig = w, want(w.size());
            for (int64_t p = 0; p < rows / 8; p++) c.pack(cols, orig.data() + p * 8 * rb, want.data() + p * 8 * rb);
            CHECK(stw_cpu_repack_r8(c.src, w.data(), rows, cols, pool) == c.r8, "%s repack: %s", c.name,
                  stw_cpu_last_error());
            CHECK(w == want, "%s: the in-place repack (threads=%d) differs from pack per panel", c.name,
                  stw_threadpool_size(pool));
            CHECK(stw_cpu_unpack_r8(c.r8, w.data(), rows, cols, pool) == c.src, "%s unpack: %s", c.name,
                  stw_cpu_last_error());
            CHECK(w == orig, "%s: unpack did not restore the rows (threads=%d)", c.name, stw_threadpool_size(pool));
        }
        stw_threadpool_free(pool2);
        CHECK(stw_cpu_row_bytes(c.r8, 256) == stw_cpu_row_bytes(c.src, 256), "%s row bytes as the source", c.name);
        CHECK(stw_cpu_block_size(c.r8) == stw_cpu_block_size(c.src), "%s block size as the source", c.name);
        CHECK(stw_cpu_qscratch_bytes(c.r8, 256, 3) == stw_cpu_qscratch_bytes(c.src, 256, 3), "%s scratch as the source",
              c.name);
    }
}

// --- kernels ----------------------------------------------------------------------------------

// Every set's r8 kernel on one panel against the double-precision product of the dequantized rows
// with the set's own quantized activations (|y - ref| <= 2e-6 * sum|w * xq|, the per-kernel tests'
// tolerance), for nx = 1..9; each vector's outputs bit-identical to those of nx = 1 alone.
void test_r8_kernels() {
    std::mt19937 rng(7);
    for (const r8_case &c : r8_cases()) {
        const int64_t unit = stw_cpu_block_size(c.src);
        for (const set_case &s : sets()) {
            const stw_cpu::r8_fn fn = (s.ks->*c.kernels).r8;
            CHECK(fn != nullptr, "%s has an r8 kernel for %s", s.name, c.name);
            if (fn == nullptr) continue;
            for (int64_t cols : {unit, 2 * unit, 4096 + unit}) {
                for (bool extreme : {false, true}) {
                    const size_t rb = stw_cpu_row_bytes(c.src, cols);
                    std::vector<uint8_t> rowsv = random_matrix(rng, c.src, 8, cols, extreme), panel(8 * rb);
                    c.pack(cols, rowsv.data(), panel.data());
                    std::vector<float> wf((size_t)(8 * cols));
                    for (int r = 0; r < 8; r++)
                        CHECK(stw_cpu_dequantize_row(c.src, rowsv.data() + r * rb, wf.data() + r * cols, cols) == 0,
                              "dequantize");
                    const int64_t nmax = 9;
                    std::vector<float> x = random_floats(rng, (size_t)(nmax * cols), 1.0f);
                    if (extreme)
                        for (size_t k = 0; k < x.size(); k++) x[k] = 1.0f;  // every activation 127
                    std::vector<uint8_t> xq = quantize_x(s.ks, x.data(), cols, nmax);
                    const size_t xs = (size_t)(cols / 32) * sizeof(stw_cpu::block_q8_x);
                    // Reference from the quantized activations.
                    std::vector<double> ref((size_t)(8 * nmax)), mag((size_t)(8 * nmax));
                    for (int64_t j = 0; j < nmax; j++) {
                        const stw_cpu::block_q8_x *xb = (const stw_cpu::block_q8_x *)(xq.data() + j * xs);
                        for (int r = 0; r < 8; r++) {
                            double acc = 0, m = 0;
                            for (int64_t k = 0; k < cols; k++) {
                                const double xv = (double)xb[k / 32].d * (double)xb[k / 32].qs[k % 32];
                                acc += (double)wf[(size_t)(r * cols + k)] * xv;
                                m += fabs((double)wf[(size_t)(r * cols + k)] * xv);
                            }
                            ref[(size_t)(r + 8 * j)] = acc;
                            mag[(size_t)(r + 8 * j)] = m;
                        }
                    }
                    std::vector<float> alone((size_t)(8 * nmax));
                    for (int64_t j = 0; j < nmax; j++) fn(cols, panel.data(), xq.data() + j * xs, xs, 1, alone.data() + 8 * j, 8);
                    for (int nx = 1; nx <= nmax; nx++) {
                        const int64_t os = 8 + 3;  // a stride other than 8: out_stride is honoured
                        std::vector<float> out((size_t)(os * nx), NAN);
                        fn(cols, panel.data(), xq.data(), xs, nx, out.data(), os);
                        int bad = 0, differ = 0;
                        for (int j = 0; j < nx; j++) {
                            for (int r = 0; r < 8; r++) {
                                const double got = out[(size_t)(r + os * j)], want = ref[(size_t)(r + 8 * j)];
                                if (!(fabs(got - want) <= 2e-6 * mag[(size_t)(r + 8 * j)] + 1e-30)) {
                                    if (bad < 3)
                                        fprintf(stderr, "  %s %s cols=%lld nx=%d: out[%d][%d] = %.9g, reference %.9g\n",
                                                s.name, c.name, (long long)cols, nx, j, r, got, want);
                                    bad++;
                                }
                                differ += memcmp(&out[(size_t)(r + os * j)], &alone[(size_t)(r + 8 * j)], 4) != 0;
                            }
                        }
                        CHECK(bad == 0, "%s %s cols=%lld nx=%d%s: %d outputs off the reference", s.name, c.name,
                              (long long)cols, nx, extreme ? " (extreme)" : "", bad);
                        CHECK(differ == 0, "%s %s cols=%lld nx=%d: %d outputs differ from the vector alone", s.name,
                              c.name, (long long)cols, nx, differ);
                    }
                }
            }
        }
    }
}

// avx2 and avx2-vnni form the same integers in the same float order: equal bit for bit, including
// the extreme quants (the int16 bound of maddubs).
void test_vnni_matches_avx2() {
#if defined(STW_CPU_HAVE_AVX2) && defined(STW_CPU_HAVE_AVXVNNI)
    if (stw_cpu_select_kernel_set("avx2-vnni") != 0) {
        printf("SKIP r8 vnni vs avx2: %s\n", stw_cpu_last_error());
        return;
    }
    stw_cpu_select_kernel_set("auto");
    std::mt19937 rng(9);
    for (const r8_case &c : r8_cases()) {
        const int64_t cols = 4096 + stw_cpu_block_size(c.src);
        const size_t rb = stw_cpu_row_bytes(c.src, cols);
        for (bool extreme : {false, true}) {
            std::vector<uint8_t> rowsv = random_matrix(rng, c.src, 8, cols, extreme), panel(8 * rb);
            c.pack(cols, rowsv.data(), panel.data());
            std::vector<float> x = random_floats(rng, (size_t)(5 * cols), 1.0f);
            if (extreme)
                for (size_t k = 0; k < x.size(); k++) x[k] = (k % 7 == 0) ? -1.0f : 1.0f;
            std::vector<uint8_t> xq = quantize_x(&stw_cpu::kernel_set_avx2, x.data(), cols, 5);
            const size_t xs = (size_t)(cols / 32) * sizeof(stw_cpu::block_q8_x);
            std::vector<float> a(40), v(40);
            (stw_cpu::kernel_set_avx2.*c.kernels).r8(cols, panel.data(), xq.data(), xs, 5, a.data(), 8);
            (stw_cpu::kernel_set_avx2_vnni.*c.kernels).r8(cols, panel.data(), xq.data(), xs, 5, v.data(), 8);
            CHECK(memcmp(a.data(), v.data(), a.size() * 4) == 0, "%s%s: avx2-vnni differs from avx2", c.name,
                  extreme ? " (extreme)" : "");
        }
    }
#else
    printf("SKIP r8 vnni vs avx2: not built\n");
#endif
}

// --- the driver -------------------------------------------------------------------------------

// stw_cpu_matmul on the repacked matrix against the same matrix unrepacked, every set, 1 and 2
// threads, decode and batches: within 2e-6 of the magnitude (both are exact integer dots scaled
// in float; they differ in the float order only). NO_GEMM changes nothing for an R8 type, and a
// vector's outputs are the same alone as in any batch.
void test_matmul_r8() {
    std::mt19937 rng(13);
    stw_threadpool *pool2 = stw_threadpool_init(2);
    for (const r8_case &c : r8_cases()) {
        const int64_t unit = stw_cpu_block_size(c.src);
        for (const set_case &s : sets()) {
            CHECK(stw_cpu_select_kernel_set(s.name) == 0, "select %s", s.name);
            // 32768 + 256 columns is past the driver's activation tables (1024 blocks): there the R8
            // kernels derive the block sums themselves.
            struct {
                int64_t rows, cols;
            } shapes[] = {{8, unit}, {64, 2 * unit}, {1000, 8 * unit}, {40, 4096 + unit}, {8, 32768 + 256}};
            for (const auto &sh : shapes) {
                const size_t rb = stw_cpu_row_bytes(c.src, sh.cols);
                std::vector<uint8_t> w = random_matrix(rng, c.src, sh.rows, sh.cols, false), w8 = w;
                CHECK(stw_cpu_r8_type(c.src, sh.rows, sh.cols) == c.r8, "r8_type");
                CHECK(stw_cpu_repack_r8(c.src, w8.data(), sh.rows, sh.cols, pool2) == c.r8, "repack: %s",
                      stw_cpu_last_error());
                std::vector<float> wf((size_t)(sh.rows * sh.cols));
                for (int64_t r = 0; r < sh.rows; r++)
                    stw_cpu_dequantize_row(c.src, w.data() + r * rb, wf.data() + r * sh.cols, sh.cols);
                for (int64_t n : {1, 3, 17, 70}) {
                    std::vector<float> x = random_floats(rng, (size_t)(n * sh.cols), 1.0f);
                    std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(c.r8, sh.cols, n));
                    for (stw_threadpool *pool : {(stw_threadpool *)nullptr, pool2}) {
                        std::vector<float> y0((size_t)(n * sh.rows)), y8((size_t)(n * sh.rows) + 16, 777.0f),
                            yng((size_t)(n * sh.rows));
                        CHECK(stw_cpu_matmul(c.src, w.data(), sh.rows, sh.cols, x.data(), n, y0.data(), qs.data(), pool) == 0,
                              "source matmul: %s", stw_cpu_last_error());
                        CHECK(stw_cpu_matmul(c.r8, w8.data(), sh.rows, sh.cols, x.data(), n, y8.data(), qs.data(), pool) == 0,
                              "%s matmul: %s", c.name, stw_cpu_last_error());
                        CHECK(stw_cpu_matmul_ex(c.r8, w8.data(), sh.rows, sh.cols, x.data(), n, yng.data(), qs.data(), pool,
                                                STW_CPU_MATMUL_NO_GEMM) == 0,
                              "%s matmul NO_GEMM: %s", c.name, stw_cpu_last_error());
                        int bad = 0, smashed = 0;
                        for (size_t g = 0; g < 16; g++) smashed += y8[(size_t)(n * sh.rows) + g] != 777.0f;
                        for (int64_t i = 0; i < n; i++) {
                            for (int64_t r = 0; r < sh.rows; r++) {
                                double mag = 0;
                                for (int64_t k = 0; k < sh.cols; k++)
                                    mag += fabs((double)wf[(size_t)(r * sh.cols + k)] * x[(size_t)(i * sh.cols + k)]);
                                const double d = fabs((double)y8[(size_t)(i * sh.rows + r)] - y0[(size_t)(i * sh.rows + r)]);
                                if (!(d <= 4e-6 * mag + 1e-30)) bad++;
                            }
                        }
                        CHECK(bad == 0, "%s %s %lldx%lld n=%lld threads=%d: %d outputs differ from the unrepacked matrix",
                              s.name, c.name, (long long)sh.rows, (long long)sh.cols, (long long)n,
                              stw_threadpool_size(pool), bad);
                        CHECK(smashed == 0, "%s %s: %d values written past y", s.name, c.name, smashed);
                        CHECK(memcmp(y8.data(), yng.data(), yng.size() * 4) == 0, "%s %s n=%lld: NO_GEMM changed the result",
                              s.name, c.name, (long long)n);
                        // Each vector decoded alone gives its batch outputs bit for bit.
                        int differ = 0;
                        std::vector<float> y1((size_t)sh.rows);
                        for (int64_t i = 0; i < n; i++) {
                            CHECK(stw_cpu_matmul(c.r8, w8.data(), sh.rows, sh.cols, x.data() + i * sh.cols, 1, y1.data(),
                                                 qs.data(), pool) == 0,
                                  "decode");
                            differ += memcmp(y1.data(), y8.data() + i * sh.rows, (size_t)sh.rows * 4) != 0;
                        }
                        CHECK(differ == 0, "%s %s n=%lld threads=%d: %d vectors differ from each decoded alone", s.name,
                              c.name, (long long)n, stw_threadpool_size(pool), differ);
                    }
                }
            }
        }
    }
    stw_cpu_select_kernel_set("auto");
    stw_threadpool_free(pool2);
}

void test_errors() {
    uint8_t w[18 * 64];
    for (size_t i = 0; i < sizeof w; i++) w[i] = (uint8_t)i;
    uint8_t orig[sizeof w];
    memcpy(orig, w, sizeof w);
    float x[64] = {0}, y[64];
    uint8_t qs[256];
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q8_0, w, 8, 32, nullptr) == STW_CPU_STATUS_UNSUPPORTED_TYPE, "Q8_0 refused");
    CHECK(strstr(stw_cpu_last_error(), "Q8_0") != nullptr, "message names the type: %s", stw_cpu_last_error());
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q4_0, w, 7, 32, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "rows=7 refused");
    CHECK(strstr(stw_cpu_last_error(), "rows=7") && strstr(stw_cpu_last_error(), "multiple of 8"),
          "message says why: %s", stw_cpu_last_error());
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q4_0, w, 0, 32, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "rows=0 refused");
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q4_0, w, 8, 48, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "cols=48 refused");
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q4_0, nullptr, 8, 32, nullptr) == STW_CPU_STATUS_NULL_POINTER, "NULL data");
    CHECK(stw_cpu_repack_r8(STW_CPU_TYPE_Q4_0_R8, w, 8, 32, nullptr) == STW_CPU_STATUS_UNSUPPORTED_TYPE,
          "an R8 type is not repacked twice");
    CHECK(stw_cpu_unpack_r8(STW_CPU_TYPE_Q4_0, w, 8, 32, nullptr) == STW_CPU_STATUS_UNSUPPORTED_TYPE,
          "unpack of a source type refused");
    CHECK(memcmp(w, orig, sizeof w) == 0, "refused calls leave the data untouched");
    CHECK(stw_cpu_r8_type(STW_CPU_TYPE_Q4_0, 12, 32) == 0, "rows=12 gets no R8 type");
    CHECK(stw_cpu_r8_type(STW_CPU_TYPE_Q4_0, 8, 33) == 0, "cols=33 gets no R8 type");
    CHECK(stw_cpu_r8_type(STW_CPU_TYPE_Q8_0, 8, 32) == 0, "Q8_0 gets no R8 type");
    CHECK(stw_cpu_r8_type(STW_CPU_TYPE_Q4_0, 8, 32) == STW_CPU_TYPE_Q4_0_R8, "Q4_0 8x32 gets Q4_0_R8");
    CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q4_0_R8, w, y, 32) == STW_CPU_STATUS_UNSUPPORTED_TYPE,
          "dequantize of an R8 type refused");
    CHECK(strstr(stw_cpu_last_error(), "not contiguous") != nullptr, "message says why: %s", stw_cpu_last_error());
    CHECK(stw_cpu_quantize_row(STW_CPU_TYPE_Q4_0_R8, x, w, 32) == STW_CPU_STATUS_UNSUPPORTED_TYPE,
          "quantize into an R8 type refused");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q4_0_R8, w, 12, 32, x, 1, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE,
          "R8 matmul with rows=12 refused");
    CHECK(strstr(stw_cpu_last_error(), "multiple of 8") != nullptr, "message says why: %s", stw_cpu_last_error());
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q4_0_R8, w, 8, 32, x, 1, y, nullptr, nullptr) == STW_CPU_STATUS_NULL_POINTER,
          "R8 matmul needs qscratch");
}

}  // namespace

int main() {
    printf("test_pack_round_trip\n");
    test_pack_round_trip();
    printf("test_r8_kernels\n");
    test_r8_kernels();
    printf("test_vnni_matches_avx2\n");
    test_vnni_matches_avx2();
    printf("test_matmul_r8\n");
    test_matmul_r8();
    printf("test_errors\n");
    test_errors();
    CHECK(!r8_cases().empty(), "this build has at least one R8 type");
    return check_finish();
}
