// Tests of the Q4_K R8 layout and kernels (ctest, no JVM), through stw_cpu's internal symbols:
// pack/unpack round trips byte for byte, each kernel set's r8 kernel against a double-precision
// reference built from the dequantized source rows and activations, bit identity of a vector's
// result whatever nx is, and bit identity of avx2 and avx2-vnni.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <random>
#include <vector>

#include "kernels.h"
#include "quants.h"
#include "kernel_check.h"

namespace {

using stw_cpu::block_q4_K;
using stw_cpu::block_q8_x;
using stw_cpu::kernel_set;

const int64_t kCols[] = {256, 512, 4096 + 256};

size_t row_bytes(int64_t cols) { return (size_t)(cols / 256) * sizeof(block_q4_K); }

// Eight Q4_K rows back to back: quantized random values, then some blocks made extreme: every
// 6-bit scale and min 63 (scale bytes 0xFF), all 0, and all nibbles 0 or 15.
std::vector<uint8_t> make_rows(std::mt19937 &rng, int64_t cols) {
    const size_t rb = row_bytes(cols);
    std::vector<uint8_t> src(8 * rb);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> row((size_t)cols);
    for (int r = 0; r < 8; r++) {
        for (auto &v : row) v = nd(rng);
        CHECK(stw_cpu_quantize_row(STW_CPU_TYPE_Q4_K, row.data(), src.data() + r * rb, cols) == 0, "quantize");
    }
    const int64_t nb = cols / 256;
    for (int r = 0; r < 8; r++) {
        block_q4_K *blk = (block_q4_K *)(src.data() + r * rb);
        const int64_t b = (r + nb) % nb;  // spread the extremes over blocks and rows
        switch (r % 4) {
            case 0: memset(blk[b].scales, 0xFF, 12); break;
            case 1: memset(blk[b].scales, 0x00, 12); break;
            case 2: memset(blk[b].qs, 0x00, 128); break;
            default: memset(blk[b].qs, 0xFF, 128); break;
        }
    }
    return src;
}

void test_round_trip() {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t cols : kCols) {
        const size_t bytes = 8 * row_bytes(cols);
        // Any bytes at all (the 12 scale bytes are 16 six-bit fields, every bit kept), the
        // quantized rows with their extremes, and uniform blocks.
        std::vector<std::vector<uint8_t>> cases;
        std::vector<uint8_t> rnd(bytes);
        for (auto &v : rnd) v = (uint8_t)byte(rng);
        cases.push_back(rnd);
        cases.push_back(make_rows(rng, cols));
        cases.push_back(std::vector<uint8_t>(bytes, 0xFF));
        cases.push_back(std::vector<uint8_t>(bytes, 0x00));
        for (const auto &src : cases) {
            std::vector<uint8_t> panel(bytes, 0xA5), back(bytes, 0x5A);
            stw_cpu::pack_q4_K_r8(cols, src.data(), panel.data());
            stw_cpu::unpack_q4_K_r8(cols, panel.data(), back.data());
            size_t diff = 0;
            while (diff < bytes && back[diff] == src[diff]) diff++;
            CHECK(diff == bytes, "cols=%lld: unpack(pack(src)) differs from src at byte %zu of %zu", (long long)cols,
                  diff, bytes);
        }
        // The documented places: d of row r at 2r, dmin at 16 + 2r, and the nibbles of column 0 /
        // 16 of row r in byte 128 + 4r.
        const std::vector<uint8_t> &src = cases[0];
        std::vector<uint8_t> panel(bytes);
        stw_cpu::pack_q4_K_r8(cols, src.data(), panel.data());
        int bad = 0;
        for (int r = 0; r < 8; r++) {
            const block_q4_K *blk = (const block_q4_K *)(src.data() + r * row_bytes(cols));
            uint16_t d, dmin;
            memcpy(&d, panel.data() + 2 * r, 2);
            memcpy(&dmin, panel.data() + 16 + 2 * r, 2);
            const uint8_t want = (uint8_t)((blk->qs[0] & 0xF) | (blk->qs[16] & 0xF) << 4);
            bad += d != blk->d || dmin != blk->dmin || panel[128 + 4 * r] != want;
        }
        CHECK(bad == 0, "cols=%lld: %d rows off the documented panel layout", (long long)cols, bad);
    }
}

struct set_ref {
    const char *name;
    const kernel_set *ks;
};

// The sets this CPU and build run; prints a line for each one skipped.
std::vector<set_ref> available_sets() {
    std::vector<set_ref> sets = {{"portable", &stw_cpu::kernel_set_portable}};
#if defined(STW_CPU_HAVE_AVX2)
    if (stw_cpu_select_kernel_set("avx2") == 0) sets.push_back({"avx2", &stw_cpu::kernel_set_avx2});
    else printf("  skipped avx2: this CPU lacks AVX2/FMA/F16C\n");
#else
    printf("  skipped avx2: not built for this architecture\n");
#endif
#if defined(STW_CPU_HAVE_AVXVNNI)
    if (stw_cpu_select_kernel_set("avx2-vnni") == 0) sets.push_back({"avx2-vnni", &stw_cpu::kernel_set_avx2_vnni});
    else printf("  skipped avx2-vnni: this CPU lacks AVX-VNNI\n");
#else
    printf("  skipped avx2-vnni: the compiler does not know -mavxvnni\n");
#endif
    stw_cpu_select_kernel_set("auto");
    printf("  sets:");
    for (const set_ref &s : sets) printf(" %s", s.name);
    printf("\n");
    return sets;
}

// One weight case: 8 source rows, their panel (at an odd address: mapped tensors need not be
// aligned) and the dequantized rows.
struct weights {
    int64_t cols;
    std::vector<uint8_t> src, panel_buf;
    std::vector<float> wf;
    const uint8_t *panel() const { return panel_buf.data() + 1; }
};

weights make_weights(std::mt19937 &rng, int64_t cols) {
    weights w;
    w.cols = cols;
    w.src = make_rows(rng, cols);
    w.panel_buf.assign(w.src.size() + 1, 0);
    stw_cpu::pack_q4_K_r8(cols, w.src.data(), w.panel_buf.data() + 1);
    w.wf.resize((size_t)(8 * cols));
    for (int r = 0; r < 8; r++)
        CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q4_K, w.src.data() + r * row_bytes(cols), w.wf.data() + r * cols,
                                     cols) == 0,
              "dequantize");
    return w;
}

// nx activation vectors quantized by the set's quantize_x, x_stride bytes apart (one spare block
// between vectors, so a kernel that assumes a packed stride reads the wrong values).
struct acts {
    size_t stride;
    std::vector<uint8_t> buf;
    const block_q8_x *vec(int j) const { return (const block_q8_x *)(buf.data() + (size_t)j * stride); }
};

acts make_acts(std::mt19937 &rng, const kernel_set *ks, int64_t cols, int nx) {
    acts a;
    a.stride = (size_t)(cols / 32 + 1) * sizeof(block_q8_x);
    a.buf.assign(a.stride * (size_t)nx, 0x7F);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x((size_t)cols);
    for (int j = 0; j < nx; j++) {
        for (auto &v : x) v = nd(rng);
        x[(size_t)j % (size_t)cols] = -6.5f;  // an outlier, as real activations have
        ks->quantize_x(x.data(), (block_q8_x *)(a.buf.data() + (size_t)j * a.stride), cols);
    }
    return a;
}

// out[r + j * os] for nx vectors; os > 8 leaves gaps that must stay untouched.
constexpr int64_t kOutStride = 11;

std::vector<float> run_r8(const kernel_set *ks, const weights &w, const acts &a, int nx) {
    std::vector<float> out((size_t)(nx * kOutStride + 8), NAN);
    ks->q4_K_r8.r8(w.cols, w.panel(), a.buf.data(), a.stride, nx, out.data(), kOutStride);
    return out;
}

void test_kernel_vs_reference() {
    std::mt19937 rng(22);
    const std::vector<set_ref> sets = available_sets();
    for (const set_ref &s : sets) {
        CHECK(s.ks->q4_K_r8.r8 != nullptr, "%s: no q4_K_r8 kernel", s.name);
        if (s.ks->q4_K_r8.r8 == nullptr) continue;
        for (int64_t cols : kCols) {
            const weights w = make_weights(rng, cols);
            for (int nx = 1; nx <= 9; nx++) {
                const acts a = make_acts(rng, s.ks, cols, nx);
                const std::vector<float> out = run_r8(s.ks, w, a, nx);
                int bad = 0, untouched = 0;
                double worst = 0;
                for (int j = 0; j < nx; j++) {
                    const block_q8_x *xb = a.vec(j);
                    for (int r = 0; r < 8; r++) {
                        double ref = 0, mag = 0;
                        for (int64_t k = 0; k < cols; k++) {
                            const double xv = (double)xb[k / 32].d * xb[k / 32].qs[k % 32];
                            const double p = (double)w.wf[(size_t)(r * cols + k)] * xv;
                            ref += p;
                            mag += fabs(p);
                        }
                        const double got = out[(size_t)(r + j * kOutStride)];
                        const double err = fabs(got - ref), tol = 2e-6 * mag + 1e-30;
                        if (!(err <= tol)) {
                            if (bad < 3)
                                fprintf(stderr, "  %s cols=%lld nx=%d: out[%d][%d] = %.9g, reference %.9g (tol %.3g)\n",
                                        s.name, (long long)cols, nx, j, r, got, ref, tol);
                            bad++;
                        }
                        if (mag > 0) worst = fmax(worst, err / mag);
                    }
                }
                for (size_t i = 0; i < out.size(); i++) {
                    const bool inside = i < (size_t)(nx * kOutStride) && i % kOutStride < 8;
                    untouched += !inside && !isnan(out[i]);
                }
                CHECK(bad == 0, "%s cols=%lld nx=%d: %d outputs off the reference (worst rel %.3g)", s.name,
                      (long long)cols, nx, bad, worst);
                CHECK(untouched == 0, "%s cols=%lld nx=%d: %d writes outside out[r + j * os]", s.name, (long long)cols,
                      nx, untouched);
            }
        }
    }
}

// A vector's 8 outputs must not depend on the other vectors in the call: each vector of an
// nx-call against the same vector alone (nx = 1), bit for bit; and avx2 against avx2-vnni.
void test_bit_identity() {
    std::mt19937 rng(33);
    const std::vector<set_ref> sets = available_sets();
    const set_ref *avx2 = nullptr, *vnni = nullptr;
    for (const set_ref &s : sets) {
        if (!strcmp(s.name, "avx2")) avx2 = &s;
        if (!strcmp(s.name, "avx2-vnni")) vnni = &s;
    }
    for (int64_t cols : kCols) {
        const weights w = make_weights(rng, cols);
        const acts a = make_acts(rng, sets[0].ks, cols, 9);
        for (const set_ref &s : sets) {
            if (s.ks->q4_K_r8.r8 == nullptr) continue;
            std::vector<float> alone((size_t)(9 * 8));
            for (int j = 0; j < 9; j++) {
                float o[8];
                s.ks->q4_K_r8.r8(cols, w.panel(), (const uint8_t *)a.vec(j), a.stride, 1, o, 8);
                memcpy(&alone[(size_t)(8 * j)], o, sizeof o);
            }
            for (int nx = 2; nx <= 9; nx++) {
                const std::vector<float> out = run_r8(s.ks, w, a, nx);
                int diff = 0;
                for (int j = 0; j < nx; j++)
                    diff += memcmp(&out[(size_t)(j * kOutStride)], &alone[(size_t)(8 * j)], 8 * sizeof(float)) != 0;
                CHECK(diff == 0, "%s cols=%lld nx=%d: %d vectors differ from the same vector alone", s.name,
                      (long long)cols, nx, diff);
            }
        }
        if (avx2 != nullptr && vnni != nullptr) {
            for (int nx = 1; nx <= 9; nx++) {
                const std::vector<float> o1 = run_r8(avx2->ks, w, a, nx), o2 = run_r8(vnni->ks, w, a, nx);
                CHECK(memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0,
                      "cols=%lld nx=%d: avx2 and avx2-vnni differ", (long long)cols, nx);
            }
        } else {
            printf("  skipped avx2 vs avx2-vnni (cols=%lld): not both available\n", (long long)cols);
        }
    }
}

// The driver's table form (r8_pre: each block's dx and dx * sum(x) from a per-vector table in
// dot_pre_fn's layout) must give the r8 kernel's bits for every vector, nx and cols. The table is
// built here with plain loops, with a stride wider than needed and its padding poisoned, so a
// kernel that ignores the stride or reads past a vector's entries changes the results.
void test_pre_matches_r8() {
    std::mt19937 rng(44);
    const std::vector<set_ref> sets = available_sets();
    int tested = 0;
    for (const set_ref &s : sets) {
        if (s.ks->q4_K_r8.r8_pre == nullptr) {
            printf("  %s: no r8_pre kernel (the driver runs r8)\n", s.name);
            continue;
        }
        tested++;
        for (int64_t cols : kCols) {
            const weights w = make_weights(rng, cols);
            const int64_t nbk = cols / 32, ps = 2 * nbk + 16;
            for (int nx = 1; nx <= 9; nx++) {
                const acts a = make_acts(rng, s.ks, cols, nx);
                std::vector<float> pre((size_t)(ps * nx), NAN);
                for (int j = 0; j < nx; j++) {
                    for (int64_t b = 0; b < nbk; b++) {
                        const block_q8_x &xb = a.vec(j)[b];
                        int32_t sum = 0;
                        for (int k = 0; k < 32; k++) sum += xb.qs[k];
                        pre[(size_t)(j * ps + (b / 8) * 16 + b % 8)] = xb.d;
                        pre[(size_t)(j * ps + (b / 8) * 16 + 8 + b % 8)] = xb.d * (float)sum;
                    }
                }
                const std::vector<float> ref = run_r8(s.ks, w, a, nx);
                std::vector<float> out((size_t)(nx * kOutStride + 8), NAN);
                s.ks->q4_K_r8.r8_pre(cols, w.panel(), a.buf.data(), a.stride, nx, pre.data(), ps, out.data(),
                                     kOutStride);
                int diff = 0;
                for (size_t i = 0; i < out.size(); i++) diff += memcmp(&out[i], &ref[i], sizeof(float)) != 0;
                CHECK(diff == 0, "%s cols=%lld nx=%d: r8_pre differs from r8 in %d of %zu output slots", s.name,
                      (long long)cols, nx, diff, out.size());
            }
        }
    }
#if defined(STW_CPU_HAVE_AVX2)
    if (stw_cpu_select_kernel_set("avx2") == 0) CHECK(tested > 0, "no set has an r8_pre kernel");
    stw_cpu_select_kernel_set("auto");
#endif
}

}  // namespace

int main() {
    printf("test_round_trip\n");
    test_round_trip();
    printf("test_kernel_vs_reference\n");
    test_kernel_vs_reference();
    printf("test_bit_identity\n");
    test_bit_identity();
    printf("test_pre_matches_r8\n");
    test_pre_matches_r8();
    return check_finish();
}
