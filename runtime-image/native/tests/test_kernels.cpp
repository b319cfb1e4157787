// Tests of the stw_cpu kernels (ctest, no JVM): every weight type in every kernel set the CPU
// offers against a double-precision reference on random data, the reference quantizers, the block
// layouts, the thread pool and the error paths.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "quants.h"  // stw_cpu::set_rows_kernel_max_bytes, to test both decode paths
#include "kernel_check.h"

namespace {

struct type_case {
    int type;
    const char *name;
};
const type_case kTypes[] = {
    {STW_CPU_TYPE_F32, "F32"},   {STW_CPU_TYPE_F16, "F16"},   {STW_CPU_TYPE_BF16, "BF16"}, {STW_CPU_TYPE_Q8_0, "Q8_0"},
    {STW_CPU_TYPE_Q4_0, "Q4_0"}, {STW_CPU_TYPE_Q4_K, "Q4_K"}, {STW_CPU_TYPE_Q6_K, "Q6_K"},
};

bool is_quantized(int type) {
    return type == STW_CPU_TYPE_Q8_0 || type == STW_CPU_TYPE_Q4_0 || type == STW_CPU_TYPE_Q4_K ||
           type == STW_CPU_TYPE_Q6_K;
}

float half_to_float(uint16_t h) {
    float f;
    CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_F16, &h, &f, 1) == 0, "F16 dequantize");
    return f;
}

std::vector<float> random_floats(std::mt19937 &rng, size_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(rng);
    return v;
}

// The activation quantization the kernels document: per 32 values d = max|x| / 127 and
// q = round-to-nearest-even(x * (1/d)); returns d * q.
std::vector<double> quantize_activations_ref(const float *x, int64_t cols) {
    std::vector<double> out((size_t)cols);
    for (int64_t b = 0; b < cols / 32; b++) {
        float amax = 0.0f;
        for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[b * 32 + k]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int k = 0; k < 32; k++) out[(size_t)(b * 32 + k)] = (double)d * (double)lrintf(x[b * 32 + k] * id);
    }
    return out;
}

// --- fp16 / bf16 --------------------------------------------------------------------------------

void test_half_conversions() {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = half_to_float((uint16_t)h);
        if (isnan(f)) continue;
        uint16_t back = 0;
        stw_cpu_quantize_row(STW_CPU_TYPE_F16, &f, &back, 1);
        if (back != h) bad++;
    }
    CHECK(bad == 0, "%d of 65536 halves do not survive float and back", bad);
    CHECK(half_to_float(0x3c00) == 1.0f, "0x3c00 is 1.0");
    CHECK(half_to_float(0x7bff) == 65504.0f, "0x7bff is the largest half");
    CHECK(half_to_float(0x0001) == ldexpf(1.0f, -24), "0x0001 is the smallest subnormal");
    CHECK(half_to_float(0xc000) == -2.0f, "0xc000 is -2");
    const float cases[] = {1.0f + ldexpf(1.0f, -11), 1.0f + 3 * ldexpf(1.0f, -11), 70000.0f, 1e-9f};
    const uint16_t want[] = {0x3c00, 0x3c02, 0x7c00, 0x0000};  // ties to even, overflow, underflow
    for (int i = 0; i < 4; i++) {
        uint16_t h = 0;
        stw_cpu_quantize_row(STW_CPU_TYPE_F16, &cases[i], &h, 1);
        CHECK(h == want[i], "fp16(%g) = 0x%04x, expected 0x%04x", cases[i], h, want[i]);
    }
    const float bf_in[] = {1.0f, -3.140625f, 1.00390625f};  // the last is a tie: rounds to even 1.0
    const uint16_t bf_want[] = {0x3f80, 0xc049, 0x3f80};
    const float bf_back[] = {1.0f, -3.140625f, 1.0f};
    for (int i = 0; i < 3; i++) {
        uint16_t h = 0;
        float back = 0;
        stw_cpu_quantize_row(STW_CPU_TYPE_BF16, &bf_in[i], &h, 1);
        stw_cpu_dequantize_row(STW_CPU_TYPE_BF16, &h, &back, 1);
        CHECK(h == bf_want[i], "bf16(%g) = 0x%04x, expected 0x%04x", bf_in[i], h, bf_want[i]);
        CHECK(back == bf_back[i], "bf16 0x%04x dequantizes to %g, expected %g", h, back, bf_back[i]);
    }
}

// --- block layouts, checked by hand against ggml's definitions ---------------------------------

void test_q4_0_layout() {
    // x[j] = j - 16: the largest magnitude is x[0] = -16, so d = -16 / -8 = 2 and
    // q[j] = min(15, (int)(x[j] / 2 + 8.5)) = min(15, (j + 1) / 2).
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t blk[18];
    CHECK(stw_cpu_quantize_row(STW_CPU_TYPE_Q4_0, x, blk, 32) == 0, "quantize");
    CHECK(blk[0] == 0x00 && blk[1] == 0x40, "d is fp16 2.0 (0x4000), got %02x%02x", blk[1], blk[0]);
    // byte 2+j: low nibble element j, high nibble element j + 16
    CHECK(blk[2] == (0 | (8 << 4)), "byte 0 = q0 | q16 << 4, got 0x%02x", blk[2]);
    CHECK(blk[3] == (1 | (9 << 4)), "byte 1 = q1 | q17 << 4, got 0x%02x", blk[3]);
    CHECK(blk[17] == (8 | (15 << 4)), "byte 15 = q15 | q31 << 4 (clamped), got 0x%02x", blk[17]);
    float y[32];
    stw_cpu_dequantize_row(STW_CPU_TYPE_Q4_0, blk, y, 32);
    for (int j = 0; j < 32; j++) {
        const int q = (j + 1) / 2 < 15 ? (j + 1) / 2 : 15;
        CHECK(y[j] == 2.0f * (q - 8), "Q4_0 element %d = %g, expected %g", j, y[j], 2.0f * (q - 8));
    }
}

void test_q8_0_layout() {
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.5f;  // max |x| = 8: d = 8/127
    uint8_t blk[34];
    stw_cpu_quantize_row(STW_CPU_TYPE_Q8_0, x, blk, 32);
    uint16_t dh;
    memcpy(&dh, blk, 2);
    CHECK(fabsf(half_to_float(dh) - 8.0f / 127.0f) < 1e-4f, "d = %g", half_to_float(dh));
    CHECK((int8_t)blk[2] == -127, "x[0] = -8 quantizes to -127, got %d", (int8_t)blk[2]);
    CHECK((int8_t)blk[2 + 16] == 0, "x[16] = 0 quantizes to 0");
    CHECK((int8_t)blk[2 + 17] == 8, "x[17] = 0.5 quantizes to round(7.9375) = 8, got %d", (int8_t)blk[2 + 17]);
}

// A Q4_K block written byte by byte: d = 1, dmin = 0.5, sub-block j has scale j + 1 and min 2j,
// element e of sub-block j has nibble (e % 16).
void test_q4_K_layout() {
    uint8_t blk[144];
    memset(blk, 0, sizeof blk);
    const uint16_t d = 0x3c00, dmin = 0x3800;  // 1.0, 0.5
    memcpy(blk, &d, 2);
    memcpy(blk + 2, &dmin, 2);
    uint8_t *scales = blk + 4;
    for (int j = 0; j < 8; j++) {
        const int sc = j + 1 + (j >= 4 ? 40 : 0), m = 2 * j + (j >= 4 ? 33 : 0);  // > 15 uses the high bits
        if (j < 4) {
            scales[j] |= (uint8_t)sc;
            scales[j + 4] |= (uint8_t)m;
        } else {
            scales[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((sc >> 4) << 6);
            scales[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
    uint8_t *qs = blk + 16;
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) qs[c * 32 + l] = (uint8_t)((l % 16) | (((l + 3) % 16) << 4));
    }
    float y[256];
    CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q4_K, blk, y, 256) == 0, "dequantize");
    for (int j = 0; j < 8; j++) {
        const int sc = j + 1 + (j >= 4 ? 40 : 0), m = 2 * j + (j >= 4 ? 33 : 0);
        for (int l = 0; l < 32; l++) {
            const int q = (j % 2 == 0) ? l % 16 : (l + 3) % 16;
            const float want = 1.0f * sc * q - 0.5f * m;
            CHECK(y[j * 32 + l] == want, "Q4_K element %d = %g, expected %g", j * 32 + l, y[j * 32 + l], want);
        }
    }
}

// A Q6_K block written byte by byte: element e gets the 6-bit value (e * 7) % 64 and sub-block
// (16 elements) s gets scale s - 8; d = 0.25.
void test_q6_K_layout() {
    uint8_t blk[210];
    memset(blk, 0, sizeof blk);
    uint8_t *ql = blk, *qh = blk + 128;
    int8_t *sc = (int8_t *)(blk + 192);
    for (int e = 0; e < 256; e++) {
        const int v = (e * 7) % 64;
        const int half = e / 128, r = e % 128, chunk = r / 32, l = r % 32;
        uint8_t &lo = ql[half * 64 + (chunk & 1) * 32 + l];
        lo |= (uint8_t)((v & 0xF) << ((chunk >> 1) * 4));
        qh[half * 32 + l] |= (uint8_t)((v >> 4) << (2 * chunk));
    }
    for (int s = 0; s < 16; s++) sc[s] = (int8_t)(s - 8);
    const uint16_t d = 0x3400;  // 0.25
    memcpy(blk + 208, &d, 2);
    float y[256];
    CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q6_K, blk, y, 256) == 0, "dequantize");
    for (int e = 0; e < 256; e++) {
        const float want = 0.25f * (float)(e / 16 - 8) * (float)((e * 7) % 64 - 32);
        CHECK(y[e] == want, "Q6_K element %d = %g, expected %g", e, y[e], want);
    }
}

// --- quantize -> dequantize bounds ---------------------------------------------------------------

// Worst-case error per element, from the block's own (decoded) scales, and an RMS quality cap.
void test_quantize_roundtrip() {
    std::mt19937 rng(7);
    for (const type_case &t : kTypes) {
        const int64_t n = 256 * 16;
        std::vector<float> x = random_floats(rng, (size_t)n, 1.0f);
        // Blocks with special content: all zero, one spike, all equal, all negative.
        for (int k = 0; k < 256; k++) {
            x[(size_t)k] = 0.0f;
            x[(size_t)(256 + k)] = k == 77 ? 50.0f : 0.01f * (float)(k % 5);
            x[(size_t)(512 + k)] = 3.0f;
            x[(size_t)(768 + k)] = -1.0f - 0.01f * (float)k;
        }
        std::vector<uint8_t> q(stw_cpu_row_bytes(t.type, n));
        std::vector<float> y((size_t)n);
        CHECK(stw_cpu_quantize_row(t.type, x.data(), q.data(), n) == 0, "%s quantize", t.name);
        CHECK(stw_cpu_dequantize_row(t.type, q.data(), y.data(), n) == 0, "%s dequantize", t.name);
        double err2 = 0, x2 = 0;
        int over = 0;
        for (int64_t i = 0; i < n; i++) {
            const double e = fabs((double)x[(size_t)i] - y[(size_t)i]);
            err2 += e * e;
            x2 += (double)x[(size_t)i] * x[(size_t)i];
            double bound;
            if (t.type == STW_CPU_TYPE_F32) {
                bound = 0;
            } else if (t.type == STW_CPU_TYPE_F16) {
                bound = fabs(x[(size_t)i]) * ldexp(1.0, -11) + ldexp(1.0, -25);
            } else if (t.type == STW_CPU_TYPE_BF16) {
                bound = fabs(x[(size_t)i]) * ldexp(1.0, -8);
            } else if (t.type == STW_CPU_TYPE_Q8_0 || t.type == STW_CPU_TYPE_Q4_0) {
                const uint8_t *blk = q.data() + (size_t)(i / 32) * (t.type == STW_CPU_TYPE_Q8_0 ? 34 : 18);
                uint16_t dh;
                memcpy(&dh, blk, 2);
                // Q8_0: half a step plus the fp16 rounding of d times |q| <= 127. Q4_0: ggml clamps
                // q = 16 to 15, so a full step, plus the fp16 rounding of d times |q - 8| <= 8.
                const double d = fabs(half_to_float(dh));
                bound = t.type == STW_CPU_TYPE_Q8_0 ? d * (0.5 + 127.0 / 2048) : d * (1.0 + 8.0 / 2048);
            } else if (t.type == STW_CPU_TYPE_Q4_K) {
                // Half a step of the sub-block: d * sc / 2, read back from the block.
                const uint8_t *blk = q.data() + (size_t)(i / 256) * 144;
                uint16_t dh;
                memcpy(&dh, blk, 2);
                const int j = (int)(i % 256) / 32;
                const uint8_t *s = blk + 4;
                const int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
                bound = 0.5 * half_to_float(dh) * sc;
            } else {
                const uint8_t *blk = q.data() + (size_t)(i / 256) * 210;
                uint16_t dh;
                memcpy(&dh, blk + 208, 2);
                const int sc = (int8_t)blk[192 + (i % 256) / 16];
                bound = 0.5 * half_to_float(dh) * fabs((double)sc);
            }
            if (e > bound * (1 + 1e-5) + 1e-6 * fabs(x[(size_t)i])) {
                if (over < 5)
                    fprintf(stderr, "  %s element %lld: x=%g y=%g err=%g bound=%g\n", t.name, (long long)i,
                            x[(size_t)i], y[(size_t)i], e, bound);
                over++;
            }
        }
        CHECK(over == 0, "%s: %d elements beyond the per-block bound", t.name, over);
        // Relative RMS error caps (measured: Q8_0 ~0.004, Q4_0 ~0.08, Q4_K ~0.07, Q6_K ~0.02):
        // a quantizer that lost a bit of precision somewhere exceeds them.
        const double rel = sqrt(err2 / x2);
        const double cap = t.type == STW_CPU_TYPE_Q8_0   ? 0.008
                           : t.type == STW_CPU_TYPE_Q4_0 ? 0.12
                           : t.type == STW_CPU_TYPE_Q4_K ? 0.12
                           : t.type == STW_CPU_TYPE_Q6_K ? 0.035
                           : t.type == STW_CPU_TYPE_BF16 ? 0.004
                           : t.type == STW_CPU_TYPE_F16  ? 0.0005
                                                         : 0.0;
        CHECK(rel <= cap, "%s: relative RMS error %g above %g", t.name, rel, cap);
        printf("  roundtrip %-5s relative RMS error %.5f\n", t.name, rel);
    }
}

// --- matmul ------------------------------------------------------------------------------------

struct shape {
    int64_t rows, cols, n;
};

// Every kernel against a double-precision reference built from the dequantized weights
// (ref = sum of (double)w * (double)x). Tolerances per type:
//   F32, F16, BF16: |y - ref| <= 2e-6 * sum|w * x| (float accumulation only; the weights are
//     exactly the dequantized values).
//   Q8_0, Q4_0, Q4_K, Q6_K: the reference quantizes the activations the documented way (int8 per
//     32, scale max|x|/127, round to nearest even), so again |y - ref| <= 2e-6 * sum|w * xq|;
//     and against the unquantized activations |y - ref_exact| <= sum over blocks b of
//     (max|x_b| / 254) * sum_b |w| (half an activation step) plus the same rounding term.
void verify_matmul(const char *set, const type_case &t, const uint8_t *wp, const float *wf, const shape &s,
                   stw_threadpool *pool, std::mt19937 &rng);

void check_matmul(const char *set, const type_case &t, const shape &s, stw_threadpool *pool, std::mt19937 &rng) {
    const size_t rb = stw_cpu_row_bytes(t.type, s.cols);
    CHECK(rb > 0, "%s row_bytes(%lld)", t.name, (long long)s.cols);
    std::vector<uint8_t> w(rb * (size_t)s.rows + 1);
    std::vector<float> wf((size_t)(s.rows * s.cols));
    // Offset the weights by one byte: tensors in a GGUF mapping need not be aligned.
    uint8_t *wp = w.data() + 1;
    for (int64_t r = 0; r < s.rows; r++) {
        std::vector<float> row = random_floats(rng, (size_t)s.cols, 0.02f);
        stw_cpu_quantize_row(t.type, row.data(), wp + (size_t)r * rb, s.cols);
        stw_cpu_dequantize_row(t.type, wp + (size_t)r * rb, wf.data() + (size_t)(r * s.cols), s.cols);
    }
    verify_matmul(set, t, wp, wf.data(), s, pool, rng);
}

// Runs the matmul on weights wp (rows x cols, dequantizing to wf) and random activations and
// checks every output against the references above.
void verify_matmul(const char *set, const type_case &t, const uint8_t *wp, const float *wf, const shape &s,
                   stw_threadpool *pool, std::mt19937 &rng) {
    std::vector<float> x = random_floats(rng, (size_t)(s.n * s.cols), 1.0f);
    x[0] = 7.5f;  // an outlier, as real activations have
    // NaN marks outputs never written; a guard band after y catches writes past the end.
    const size_t guard = 64;
    std::vector<float> y((size_t)(s.n * s.rows) + guard, NAN);
    for (size_t g = 0; g < guard; g++) y[(size_t)(s.n * s.rows) + g] = 12345.0f;
    std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(t.type, s.cols, s.n) + 1);
    CHECK(qs.size() - 1 <= (size_t)(s.n * ((s.cols + 31) / 32) * 36), "scratch within the documented size");
    const int rc = stw_cpu_matmul(t.type, wp, s.rows, s.cols, x.data(), s.n, y.data(),
                                  is_quantized(t.type) ? qs.data() : nullptr, pool);
    CHECK(rc == 0, "%s %s matmul returned %d: %s", set, t.name, rc, stw_cpu_last_error());
    int smashed = 0;
    for (size_t g = 0; g < guard; g++) smashed += y[(size_t)(s.n * s.rows) + g] != 12345.0f;
    CHECK(smashed == 0, "%s %s: %d values written past the end of y", set, t.name, smashed);
    int bad = 0, bad_exact = 0;
    double worst = 0;
    for (int64_t i = 0; i < s.n; i++) {
        const float *xi = x.data() + i * s.cols;
        std::vector<double> xq = is_quantized(t.type) ? quantize_activations_ref(xi, s.cols) : std::vector<double>();
        for (int64_t r = 0; r < s.rows; r++) {
            const float *wr = wf + r * s.cols;
            double ref = 0, ref_exact = 0, mag = 0, act_bound = 0;
            for (int64_t k = 0; k < s.cols; k++) {
                const double xv = is_quantized(t.type) ? xq[(size_t)k] : (double)xi[k];
                ref += (double)wr[k] * xv;
                ref_exact += (double)wr[k] * (double)xi[k];
                mag += fabs((double)wr[k] * xv);
            }
            if (is_quantized(t.type)) {
                for (int64_t b = 0; b < s.cols / 32; b++) {
                    double amax = 0, wsum = 0;
                    for (int k = 0; k < 32; k++) {
                        amax = fmax(amax, fabs((double)xi[b * 32 + k]));
                        wsum += fabs((double)wr[b * 32 + k]);
                    }
                    act_bound += amax / 254.0 * wsum;
                }
            }
            const double got = y[(size_t)(i * s.rows + r)];
            const double tol = 2e-6 * mag + 1e-30;
            const double err = fabs(got - ref);
            if (!(err <= tol)) {
                if (bad < 3)
                    fprintf(stderr, "  %s %s %lldx%lld n=%lld: y[%lld][%lld] = %.9g, reference %.9g (tol %.3g)\n", set,
                            t.name, (long long)s.rows, (long long)s.cols, (long long)s.n, (long long)i,
                            (long long)r, got, ref, tol);
                bad++;
            }
            if (!(fabs(got - ref_exact) <= act_bound * 1.0001 + tol)) bad_exact++;
            if (mag > 0) worst = fmax(worst, err / mag);
        }
    }
    CHECK(bad == 0, "%s %s %lldx%lld n=%lld threads=%d: %d outputs off the reference (worst rel %.3g)", set, t.name,
          (long long)s.rows, (long long)s.cols, (long long)s.n, stw_threadpool_size(pool), bad, worst);
    CHECK(bad_exact == 0, "%s %s: %d outputs beyond the activation-quantization bound", set, t.name, bad_exact);
}

void test_matmul_all(const char *set) {
    CHECK(stw_cpu_select_kernel_set(set) == 0, "select %s: %s", set, stw_cpu_last_error());
    CHECK(strcmp(stw_cpu_kernel_set(), set) == 0, "kernel set is %s, wanted %s", stw_cpu_kernel_set(), set);
    std::mt19937 rng(42);
    stw_threadpool *pool2 = stw_threadpool_init(2);
    stw_threadpool *pool3 = stw_threadpool_init(3);
    CHECK(pool2 != nullptr && pool3 != nullptr, "thread pools start");
    for (const type_case &t : kTypes) {
        const int64_t bs = stw_cpu_block_size(t.type);
        const int64_t unit = bs == 1 ? 1 : bs;
        // Odd sizes: rows not a multiple of the thread count, n = 1, 3, 17 (tiles of 4 plus a tail),
        // cols of one block, several blocks and (for float types) a length with a vector tail.
        std::vector<shape> shapes = {
            {1, unit == 1 ? 1 : unit, 1},
            {7, unit == 1 ? 13 : 2 * unit, 3},
            {37, unit == 1 ? 100 : 3 * unit, 1},
            {29, unit == 1 ? 257 : (unit == 32 ? 544 : 768), 17},
            {67, unit == 1 ? 1031 : 1024, 3},
            {6, unit == 1 ? 24 : 2 * unit, 1},  // the decode kernel takes rows 4 at a time: 4 + 2
            {7, unit == 1 ? 9 : unit, 1},       // 4 + 3
        };
        for (const shape &s : shapes) {
            check_matmul(set, t, s, nullptr, rng);
            check_matmul(set, t, s, pool3, rng);
        }
        check_matmul(set, t, {130, 512, 17}, pool2, rng);
        check_matmul(set, t, {5, 256, 70}, pool2, rng);  // n beyond one activation tile
        check_matmul(set, t, {9, 256, 65}, pool2, rng);  // a last tile of one activation vector
        check_matmul(set, t, {19, 2 * unit, 301}, pool2, rng);  // GEMM tiles of 256 activations plus a tail
        check_matmul(set, t, {3, 33024, 5}, pool2, rng);  // rows too long for the stack sums buffer
        // Decode splits the rows into one contiguous range per thread, taken in units of ~16 KiB from
        // the front by its owner and from the back by a thread that has finished its own: many
        // units, a row count that is not a multiple of the unit, and more ranges than threads can
        // keep busy (pool3 on 2 cores) so some are drained from the back.
        check_matmul(set, t, {1001, unit == 1 ? 1031 : 1024, 1}, pool2, rng);
        check_matmul(set, t, {997, unit == 1 ? 520 : 512, 1}, pool3, rng);
    }
    stw_threadpool_free(pool2);
    stw_threadpool_free(pool3);
}

// The two sets agree with each other, output for output (both are checked against the reference
// too; this catches a shared mistake in the test's own reference being masked).
void test_sets_agree() {
    if (stw_cpu_select_kernel_set("avx2") != 0) return;
    std::mt19937 rng(3);
    for (const type_case &t : kTypes) {
        const int64_t rows = 33, cols = 512, n = 5;
        const size_t rb = stw_cpu_row_bytes(t.type, cols);
        std::vector<uint8_t> w(rb * rows);
        for (int64_t r = 0; r < rows; r++) {
            std::vector<float> row = random_floats(rng, (size_t)cols, 0.1f);
            stw_cpu_quantize_row(t.type, row.data(), w.data() + r * rb, cols);
        }
        std::vector<float> x = random_floats(rng, (size_t)(cols * n), 1.0f);
        std::vector<float> ya((size_t)(rows * n)), yp((size_t)(rows * n));
        std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(t.type, cols, n) + 1);
        stw_cpu_select_kernel_set("avx2");
        stw_cpu_matmul(t.type, w.data(), rows, cols, x.data(), n, ya.data(), qs.data(), nullptr);
        std::vector<uint8_t> qa(qs);
        stw_cpu_select_kernel_set("portable");
        stw_cpu_matmul(t.type, w.data(), rows, cols, x.data(), n, yp.data(), qs.data(), nullptr);
        // The avx2 Q4_0, Q4_K and Q6_K GEMMs (n >= 4) keep the int8 activations offset by 128; the values are the same.
        if (t.type == STW_CPU_TYPE_Q4_0 || t.type == STW_CPU_TYPE_Q4_K || t.type == STW_CPU_TYPE_Q6_K)
            for (size_t b = 0; b + 36 <= qa.size(); b += 36)
                for (size_t k = 4; k < 36; k++) qa[b + k] ^= 0x80;
        if (is_quantized(t.type)) CHECK(qa == qs, "%s: avx2 and portable quantize activations identically", t.name);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < ya.size(); i++) {
            worst = fmax(worst, fabs((double)ya[i] - yp[i]));
            scale = fmax(scale, fabs((double)yp[i]));
        }
        CHECK(worst <= 1e-5 * scale, "%s: avx2 and portable differ by %g (scale %g)", t.name, worst, scale);
    }
}

// A Q6_K block from its 256 6-bit values (0..63), 16 scales and fp16 d, laid out as ggml does.
void make_q6_K_block(const int *v, const int8_t *scales, uint16_t d, uint8_t *blk) {
    memset(blk, 0, 210);
    uint8_t *ql = blk, *qh = blk + 128;
    for (int e = 0; e < 256; e++) {
        const int half = e / 128, r = e % 128, chunk = r / 32, l = r % 32;
        ql[half * 64 + (chunk & 1) * 32 + l] |= (uint8_t)((v[e] & 0xF) << ((chunk >> 1) * 4));
        qh[half * 32 + l] |= (uint8_t)((v[e] >> 4) << (2 * chunk));
    }
    memcpy(blk + 192, scales, 16);
    memcpy(blk + 208, &d, 2);
}

// Q6_K at the limits of the integer paths: 6-bit values 63 and 0 (31 and -32 after the offset),
// scales 127 and -128, activations at full scale (every one quantizes to +-127, so each 16-value
// half-block sum is +-2032). The decode kernel keeps the values unsigned and takes the offset off
// through those half sums, the GEMM through 128 * sum(w), so a sum kept in 16 bits, or a product
// of a scale and a half-block dot that wrapped, would show here. Every kernel set, decode (n = 1),
// a small batch (n = 3) and the GEMM (n = 8), against the exact double product of the dequantized
// weights and the activations (which quantize without error here).
void test_q6_K_extremes() {
    const int64_t cols = 512, rows = 4;
    std::vector<uint8_t> w((size_t)rows * 420);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < cols / 256; b++) {
            int v[256];
            int8_t sc[16];
            for (int e = 0; e < 256; e++) {
                switch (r) {
                    case 0: v[e] = 63; break;
                    case 1: v[e] = 0; break;
                    case 2: v[e] = (e % 3 == 0) ? 63 : 0; break;
                    default: v[e] = ((e / 16) % 2 == 0) ? 63 : 0; break;
                }
            }
            for (int k = 0; k < 16; k++) sc[k] = (int8_t)(r == 1 ? -128 : (r == 2 && k % 2 ? -128 : 127));
            make_q6_K_block(v, sc, 0x3c00 /* 1.0 */, w.data() + (size_t)r * 420 + (size_t)b * 210);
        }
    }
    std::vector<float> wf((size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++)
        CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q6_K, w.data() + r * 420, wf.data() + r * cols, cols) == 0,
              "dequantize");
    CHECK(wf[0] == 127.0f * 31.0f && wf[cols] == 128.0f * 32.0f, "extreme weights %g %g", wf[0], wf[cols]);
    const int64_t nmax = 8;
    std::vector<float> x((size_t)(nmax * cols));
    for (int64_t i = 0; i < nmax; i++)
        for (int64_t k = 0; k < cols; k++) {
            // vector 0: all +1; 1: all -1; then signs flipping every 16, 32, 3 ... values
            const int64_t period = i < 2 ? 0 : (i == 2 ? 16 : (i == 3 ? 32 : i));
            const bool neg = i == 1 || (period > 0 && (k / period) % 2 == 1);
            x[(size_t)(i * cols + k)] = neg ? -2.0f : 2.0f;
        }
    const char *sets[] = {"portable", "avx2", "avx2-vnni"};
    for (const char *set : sets) {
        if (stw_cpu_select_kernel_set(set) != 0) continue;
        for (int64_t n : {1, 3, 8}) {
            std::vector<float> y((size_t)(n * rows), NAN);
            std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(STW_CPU_TYPE_Q6_K, cols, n));
            CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q6_K, w.data(), rows, cols, x.data(), n, y.data(), qs.data(), nullptr) ==
                      0,
                  "%s Q6_K extremes n=%lld: %s", set, (long long)n, stw_cpu_last_error());
            for (int64_t i = 0; i < n; i++) {
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0, mag = 0;
                    for (int64_t k = 0; k < cols; k++) {
                        ref += (double)wf[(size_t)(r * cols + k)] * (double)x[(size_t)(i * cols + k)];
                        mag += fabs((double)wf[(size_t)(r * cols + k)] * (double)x[(size_t)(i * cols + k)]);
                    }
                    const double got = y[(size_t)(i * rows + r)];
                    CHECK(fabs(got - ref) <= 1e-6 * mag, "%s Q6_K extremes n=%lld row %lld vector %lld: %.9g, expected %.9g",
                          set, (long long)n, (long long)r, (long long)i, got, ref);
                }
            }
        }
    }
    stw_cpu_select_kernel_set("auto");
}

// --- ggml's own outputs ------------------------------------------------------------------------

std::vector<uint8_t> read_golden(const char *name) {
    std::string path = std::string(STW_KERNELS_GOLDEN_DIR) + "/" + name;
    std::vector<uint8_t> data;
    FILE *f = fopen(path.c_str(), "rb");
    CHECK(f != nullptr, "cannot open %s", path.c_str());
    if (f == nullptr) return data;
    uint8_t buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + got);
    fclose(f);
    return data;
}

struct golden_case {
    int type;
    const char *name;
    bool bit_exact_quantizer;  // our quantizer is ggml's algorithm, not only its format
};

// The dequantizers reproduce ggml's output exactly from ggml's bytes (so the kernels read the same
// layouts), the Q8_0/Q4_0/F16/BF16 quantizers reproduce ggml's bytes exactly, and the Q4_K/Q6_K
// quantizers (same format, simpler scale search) stay within 1.5x of ggml's RMS error.
void test_ggml_golden() {
    const std::vector<uint8_t> in_bytes = read_golden("input-f32.bin");
    CHECK(in_bytes.size() == 4096 * 4, "input-f32.bin holds 4096 floats");
    if (in_bytes.size() != 4096 * 4) return;
    std::vector<float> in(4096);
    memcpy(in.data(), in_bytes.data(), in_bytes.size());
    const golden_case cases[] = {
        {STW_CPU_TYPE_Q8_0, "q8_0", true}, {STW_CPU_TYPE_Q4_0, "q4_0", true}, {STW_CPU_TYPE_Q4_K, "q4_K", false},
        {STW_CPU_TYPE_Q6_K, "q6_K", false}, {STW_CPU_TYPE_F16, "f16", true},  {STW_CPU_TYPE_BF16, "bf16", true},
    };
    for (const golden_case &g : cases) {
        const std::vector<uint8_t> q = read_golden((std::string(g.name) + ".bin").c_str());
        const std::vector<uint8_t> dq = read_golden((std::string(g.name) + "-dequant-f32.bin").c_str());
        CHECK(q.size() == stw_cpu_row_bytes(g.type, 4096), "%s.bin has %zu bytes", g.name, q.size());
        CHECK(dq.size() == 4096 * 4, "%s-dequant-f32.bin has %zu bytes", g.name, dq.size());
        if (q.size() != stw_cpu_row_bytes(g.type, 4096) || dq.size() != 4096 * 4) continue;
        std::vector<float> ours(4096), theirs(4096);
        memcpy(theirs.data(), dq.data(), dq.size());
        CHECK(stw_cpu_dequantize_row(g.type, q.data(), ours.data(), 4096) == 0, "%s dequantize", g.name);
        int differ = 0;
        for (int i = 0; i < 4096; i++) differ += memcmp(&ours[(size_t)i], &theirs[(size_t)i], 4) != 0;
        CHECK(differ == 0, "%s: %d of 4096 dequantized values differ from ggml's", g.name, differ);

        std::vector<uint8_t> mine(q.size());
        CHECK(stw_cpu_quantize_row(g.type, in.data(), mine.data(), 4096) == 0, "%s quantize", g.name);
        if (g.bit_exact_quantizer) {
            CHECK(mine == q, "%s: our quantizer's bytes differ from ggml's", g.name);
        } else {
            std::vector<float> back(4096);
            stw_cpu_dequantize_row(g.type, mine.data(), back.data(), 4096);
            double e_ours = 0, e_ggml = 0;
            for (int i = 0; i < 4096; i++) {
                e_ours += ((double)back[(size_t)i] - in[(size_t)i]) * ((double)back[(size_t)i] - in[(size_t)i]);
                e_ggml += ((double)theirs[(size_t)i] - in[(size_t)i]) * ((double)theirs[(size_t)i] - in[(size_t)i]);
            }
            printf("  %s RMS error: ours %.5g, ggml %.5g\n", g.name, sqrt(e_ours / 4096), sqrt(e_ggml / 4096));
            CHECK(e_ours <= 1.5 * 1.5 * e_ggml, "%s: our RMS error %g is over 1.5x ggml's %g", g.name,
                  sqrt(e_ours / 4096), sqrt(e_ggml / 4096));
        }
        // ggml's bytes as weights: 16 rows of 256, in every kernel set.
        for (const char *set : {"portable", "avx2"}) {
            if (stw_cpu_select_kernel_set(set) != 0) continue;
            std::mt19937 rng(11);
            const type_case t = {g.type, g.name};
            verify_matmul(set, t, q.data(), theirs.data(), {16, 256, 1}, nullptr, rng);
            verify_matmul(set, t, q.data(), theirs.data(), {16, 256, 5}, nullptr, rng);
        }
        stw_cpu_select_kernel_set("auto");
    }
}

// --- errors ------------------------------------------------------------------------------------

void test_errors() {
    stw_cpu_select_kernel_set("auto");
    float x[256] = {0}, y[16] = {0};
    uint8_t w[4096] = {0}, qs[4096];
    for (int bad_type : {3, 6, 10, 13, 99, -1}) {
        CHECK(stw_cpu_matmul(bad_type, w, 1, 32, x, 1, y, qs, nullptr) == STW_CPU_STATUS_UNSUPPORTED_TYPE,
              "type %d is refused", bad_type);
        char want[32];
        snprintf(want, sizeof want, "type %d", bad_type);
        CHECK(strstr(stw_cpu_last_error(), want) != nullptr, "message names the type: %s", stw_cpu_last_error());
        CHECK(stw_cpu_row_bytes(bad_type, 32) == 0, "row_bytes of type %d is 0", bad_type);
        CHECK(stw_cpu_dequantize_row(bad_type, w, y, 32) == STW_CPU_STATUS_UNSUPPORTED_TYPE, "dequantize %d", bad_type);
        CHECK(stw_cpu_quantize_row(bad_type, x, w, 32) == STW_CPU_STATUS_UNSUPPORTED_TYPE, "quantize %d", bad_type);
    }
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q4_K, w, 1, 128, x, 1, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE,
          "Q4_K with cols=128 is refused");
    CHECK(strstr(stw_cpu_last_error(), "cols=128") && strstr(stw_cpu_last_error(), "256"),
          "message names cols and the block size: %s", stw_cpu_last_error());
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q8_0, w, 1, 48, x, 1, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "cols=48");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F32, w, -1, 4, x, 1, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "rows<0");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F32, w, 1, 0, x, 1, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "cols=0");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F32, w, 1, 4, x, -3, y, qs, nullptr) == STW_CPU_STATUS_BAD_SHAPE, "n<0");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F32, w, (int64_t)1 << 40, 1 << 20, x, 1, y, qs, nullptr) ==
              STW_CPU_STATUS_BAD_SHAPE,
          "absurd rows are refused before any access");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F32, w, 1, 4, x, ((int64_t)1 << 24) + 1, y, qs, nullptr) ==
              STW_CPU_STATUS_BAD_SHAPE,
          "more than 2^24 activation vectors are refused");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_Q8_0, w, 1, 32, x, 1, y, nullptr, nullptr) == STW_CPU_STATUS_NULL_POINTER,
          "quantized weights need qscratch");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F16, nullptr, 1, 32, x, 1, y, nullptr, nullptr) == STW_CPU_STATUS_NULL_POINTER,
          "w NULL");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F16, w, 0, 32, x, 1, y, nullptr, nullptr) == 0, "rows=0 is an empty product");
    CHECK(stw_cpu_matmul(STW_CPU_TYPE_F16, w, 2, 8, x, 1, y, nullptr, nullptr) == 0, "float types need no scratch");
    CHECK(stw_cpu_dequantize_row(STW_CPU_TYPE_Q6_K, w, y, 100) == STW_CPU_STATUS_BAD_SHAPE, "dequantize n=100");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_Q4_0, 33) == 0, "row_bytes(Q4_0, 33) = 0");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_Q4_0, 64) == 36, "row_bytes(Q4_0, 64) = 36");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_Q8_0, 64) == 68, "row_bytes(Q8_0, 64) = 68");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_Q4_K, 512) == 288, "row_bytes(Q4_K, 512) = 288");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_Q6_K, 256) == 210, "row_bytes(Q6_K, 256) = 210");
    CHECK(stw_cpu_row_bytes(STW_CPU_TYPE_BF16, 3) == 6, "row_bytes(BF16, 3) = 6");
    CHECK(stw_cpu_select_kernel_set("sse9") == STW_CPU_STATUS_UNAVAILABLE, "unknown set refused");
    CHECK(stw_threadpool_init(0) == nullptr, "a pool of 0 threads is refused");
}

void test_kernel_set_selection() {
    setenv("STOWAGE_CPU", "portable", 1);
    CHECK(stw_cpu_select_kernel_set("auto") == 0, "auto");
    CHECK(strcmp(stw_cpu_kernel_set(), "portable") == 0, "STOWAGE_CPU=portable forces the portable set, got %s",
          stw_cpu_kernel_set());
    if (stw_cpu_select_kernel_set("avx2-vnni") == 0) {
        setenv("STOWAGE_CPU", "avx2", 1);
        CHECK(stw_cpu_select_kernel_set("auto") == 0, "auto");
        CHECK(strcmp(stw_cpu_kernel_set(), "avx2") == 0, "STOWAGE_CPU=avx2 caps the set at avx2, got %s",
              stw_cpu_kernel_set());
        unsetenv("STOWAGE_CPU");
        CHECK(stw_cpu_select_kernel_set("auto") == 0, "auto");
        CHECK(strcmp(stw_cpu_kernel_set(), "avx2-vnni") == 0, "auto picks avx2-vnni where the CPU has it, got %s",
              stw_cpu_kernel_set());
    }
    CHECK(stw_cpu_select_kernel_set("avx512") == STW_CPU_STATUS_UNAVAILABLE, "an unknown set is refused");
    CHECK(strstr(stw_cpu_last_error(), "expected avx2-vnni, avx2, portable or auto") != nullptr,
          "the error lists the sets: %s", stw_cpu_last_error());
    unsetenv("STOWAGE_CPU");
    stw_cpu_select_kernel_set("auto");
    printf("  auto-selected kernel set: %s\n", stw_cpu_kernel_set());
}

// avx2-vnni computes the same integers as avx2 (dpbusd for maddubs + madd) and reduces them in
// the same order, so every output must be bit-identical: decode (n = 1, the rows kernels and the
// one-row kernels), small batches and prefill tiles (n = 5, 70), with 1 and 2 threads, including
// extreme int8 values (|w| = 127 against |x| = 127 everywhere: the largest int16 pair sums).
void test_vnni_matches_avx2() {
    if (stw_cpu_select_kernel_set("avx2-vnni") != 0) {
        printf("SKIP test_vnni_matches_avx2: %s\n", stw_cpu_last_error());
        return;
    }
    std::mt19937 rng(11);
    stw_threadpool *pool2 = stw_threadpool_init(2);
    for (const type_case &t : kTypes) {
        if (!is_quantized(t.type)) continue;
        for (int64_t n : {1, 3, 5, 70}) {
            for (bool extreme : {false, true}) {
                const int64_t rows = 45, cols = 1024;
                const size_t rb = stw_cpu_row_bytes(t.type, cols);
                std::vector<uint8_t> w(rb * rows);
                for (int64_t r = 0; r < rows; r++) {
                    std::vector<float> row = random_floats(rng, (size_t)cols, 0.1f);
                    if (extreme)
                        for (size_t k = 0; k < row.size(); k++) row[k] = (k % 3 == 0 ? -0.1f : 0.1f);
                    stw_cpu_quantize_row(t.type, row.data(), w.data() + r * rb, cols);
                }
                std::vector<float> x = random_floats(rng, (size_t)(cols * n), 1.0f);
                if (extreme)
                    for (size_t k = 0; k < x.size(); k++) x[k] = (k % 5 == 0 ? -1.0f : 1.0f);
                std::vector<float> ya((size_t)(rows * n)), yv((size_t)(rows * n));
                std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(t.type, cols, n) + 1);
                for (stw_threadpool *pool : {(stw_threadpool *)nullptr, pool2}) {
                    stw_cpu_select_kernel_set("avx2");
                    CHECK(stw_cpu_matmul(t.type, w.data(), rows, cols, x.data(), n, ya.data(), qs.data(), pool) == 0,
                          "avx2 matmul");
                    stw_cpu_select_kernel_set("avx2-vnni");
                    CHECK(stw_cpu_matmul(t.type, w.data(), rows, cols, x.data(), n, yv.data(), qs.data(), pool) == 0,
                          "avx2-vnni matmul");
                    // Q8_0 batches run through the GEMM in avx2-vnni only (8-bit weights would overflow
                    // maddubs's int16 sums there): the same integers, summed in another order.
                    const bool same_path = !(t.type == STW_CPU_TYPE_Q8_0 && n >= 4);
                    int differ = 0;
                    double worst = 0, scale = 0;
                    for (size_t i = 0; i < ya.size(); i++) {
                        differ += memcmp(&ya[i], &yv[i], 4) != 0;
                        worst = fmax(worst, fabs((double)ya[i] - yv[i]));
                        scale = fmax(scale, fabs((double)ya[i]));
                    }
                    if (same_path)
                        CHECK(differ == 0, "%s n=%lld%s: %d of %zu outputs of avx2-vnni differ from avx2", t.name,
                              (long long)n, extreme ? " (extreme values)" : "", differ, ya.size());
                    else
                        CHECK(worst <= 1e-5 * scale, "%s n=%lld%s: avx2-vnni and avx2 differ by %g (scale %g)", t.name,
                              (long long)n, extreme ? " (extreme values)" : "", worst, scale);
                }
            }
        }
    }
    stw_threadpool_free(pool2);
}

// Without the GEMM (STW_CPU_MATMUL_NO_GEMM, what the engine passes for tokens of different
// sequences) an activation vector's outputs must not depend on the batch it is in: decode (n = 1,
// the precomputed-sums kernels for Q4_0, Q4_K and Q6_K) and every vector of batches of 2, 3, 6 and
// 70 (tiles of 4 plus tails of 1-3) agree bit for bit, single-threaded and with 2 threads (decode's
// contiguous ranges), in every kernel set this CPU has. Row counts and lengths with block tails
// (Q4_0: 45 blocks, not a multiple of 8).
void test_decode_matches_batch() {
    std::mt19937 rng(17);
    stw_threadpool *pool2 = stw_threadpool_init(2);
    for (const char *set : {"portable", "avx2", "avx2-vnni"}) {
        if (stw_cpu_select_kernel_set(set) != 0) continue;
        for (const type_case &t : kTypes) {
            const int64_t unit = stw_cpu_block_size(t.type);
            const int64_t rows = 133, cols = unit == 256 ? 1280 : 1440;
            const size_t rb = stw_cpu_row_bytes(t.type, cols);
            std::vector<uint8_t> w(rb * rows);
            for (int64_t r = 0; r < rows; r++) {
                std::vector<float> row = random_floats(rng, (size_t)cols, 0.1f);
                stw_cpu_quantize_row(t.type, row.data(), w.data() + r * rb, cols);
            }
            for (int64_t n : {2, 3, 6, 70}) {
                std::vector<float> x = random_floats(rng, (size_t)(cols * n), 1.0f);
                std::vector<float> yb((size_t)(rows * n)), y1((size_t)rows);
                std::vector<uint8_t> qs(stw_cpu_qscratch_bytes(t.type, cols, n) + 1);
                for (stw_threadpool *pool : {(stw_threadpool *)nullptr, pool2}) {
                    CHECK(stw_cpu_matmul_ex(t.type, w.data(), rows, cols, x.data(), n, yb.data(), qs.data(), pool,
                                            STW_CPU_MATMUL_NO_GEMM) == 0,
                          "%s %s batch matmul: %s", set, t.name, stw_cpu_last_error());
                    int differ = 0;
                    for (int64_t i = 0; i < n; i++) {
                        CHECK(stw_cpu_matmul_ex(t.type, w.data(), rows, cols, x.data() + i * cols, 1, y1.data(),
                                                qs.data(), pool, STW_CPU_MATMUL_NO_GEMM) == 0,
                              "%s %s decode matmul: %s", set, t.name, stw_cpu_last_error());
                        differ += memcmp(y1.data(), yb.data() + i * rows, (size_t)rows * 4) != 0;
                    }
                    CHECK(differ == 0, "%s %s n=%lld threads=%d: %d of %lld vectors differ from each decoded alone", set,
                          t.name, (long long)n, stw_threadpool_size(pool), differ, (long long)n);
                }
            }
        }
    }
    stw_cpu_select_kernel_set("auto");
    stw_threadpool_free(pool2);
}

// --- thread pool -------------------------------------------------------------------------------

struct pool_ctx {
    std::vector<std::atomic<int>> *hits;
    int size;
    std::atomic<int> bad_thread{0};
};

void pool_task(void *p, int task, int thread) {
    pool_ctx *c = (pool_ctx *)p;
    (*c->hits)[(size_t)task].fetch_add(1);
    if (thread < 0 || thread >= c->size) c->bad_thread.fetch_add(1);
}

struct nested_ctx {
    stw_threadpool *pool;
    std::vector<std::atomic<int>> *inner_hits;
    std::atomic<int> bad_thread{0};
};

struct inner_ctx {
    std::vector<std::atomic<int>> *hits;
    int task, thread;
    std::atomic<int> *bad_thread;
};

void inner_task(void *p, int task, int thread) {
    inner_ctx *c = (inner_ctx *)p;
    (*c->hits)[(size_t)(c->task * 8 + task)].fetch_add(1);
    if (thread != c->thread) c->bad_thread->fetch_add(1);
}

void outer_task(void *p, int task, int thread) {
    nested_ctx *c = (nested_ctx *)p;
    inner_ctx ic{c->inner_hits, task, thread, &c->bad_thread};
    stw_threadpool_run(c->pool, 8, inner_task, &ic);
}

// A task that starts a run on its own pool must not deadlock: the inner run executes inline
// under the outer task's thread index.
void test_nested_run() {
    stw_threadpool *pool = stw_threadpool_init(3);
    std::vector<std::atomic<int>> hits(16 * 8);
    nested_ctx c;
    c.pool = pool;
    c.inner_hits = &hits;
    stw_threadpool_run(pool, 16, outer_task, &c);
    int wrong = 0;
    for (auto &h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0, "%d nested tasks not run exactly once", wrong);
    CHECK(c.bad_thread.load() == 0, "nested tasks keep the outer thread index");
    stw_threadpool_free(pool);
}

void test_threadpool() {
    for (int size : {1, 2, 3, 5}) {
        stw_threadpool *pool = stw_threadpool_init(size);
        CHECK(pool != nullptr && stw_threadpool_size(pool) == size, "pool of %d", size);
        for (int run = 0; run < 300; run++) {
            // Mixed task counts, including fewer tasks than threads and a single task.
            const int n = (run * 37) % 101 + (run % 7 == 0 ? 0 : 1);
            std::vector<std::atomic<int>> hits((size_t)n + 1);
            pool_ctx c;
            c.hits = &hits;
            c.size = size;
            stw_threadpool_run(pool, n, pool_task, &c);
            int wrong = 0;
            for (int i = 0; i < n; i++) wrong += hits[(size_t)i].load() != 1;
            CHECK(wrong == 0 && hits[(size_t)n].load() == 0, "pool %d run %d: %d tasks not run exactly once", size,
                  run, wrong);
            CHECK(c.bad_thread.load() == 0, "thread index within [0, %d)", size);
            if (run == 150) {
                // Let the workers fall asleep, then wake them.
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
        stw_threadpool_free(pool);
    }
    {
        // Many back-to-back runs of a few tasks, each with its own short-lived context: the caller
        // often takes every task before a worker joins, closes the run and returns; a worker that
        // comes late must neither run a task of the finished run (its context is gone) nor take
        // an index of the next one (that task would never run).
        stw_threadpool *pool = stw_threadpool_init(3);
        int wrong = 0, bad = 0;
        for (int run = 0; run < 3000; run++) {
            const int n = 1 + run % 3;
            std::vector<std::atomic<int>> hits((size_t)n);
            pool_ctx c;
            c.hits = &hits;
            c.size = 3;
            stw_threadpool_run(pool, n, pool_task, &c);
            for (int i = 0; i < n; i++) wrong += hits[(size_t)i].load() != 1;
            bad += c.bad_thread.load();
        }
        CHECK(wrong == 0, "short runs: %d tasks not run exactly once", wrong);
        CHECK(bad == 0, "short runs: thread index within [0, 3)");
        stw_threadpool_free(pool);
    }
    CHECK(stw_threadpool_size(nullptr) == 1, "a NULL pool is the caller alone");
    test_nested_run();
}

}  // namespace

int main() {
    printf("test_half_conversions\n");
    test_half_conversions();
    printf("test_layouts\n");
    test_q4_0_layout();
    test_q8_0_layout();
    test_q4_K_layout();
    test_q6_K_layout();
    printf("test_quantize_roundtrip\n");
    test_quantize_roundtrip();
    printf("test_ggml_golden\n");
    test_ggml_golden();
    printf("test_threadpool\n");
    test_threadpool();
    printf("test_errors\n");
    test_errors();
    test_kernel_set_selection();
    printf("test_matmul portable\n");
    test_matmul_all("portable");
    {
        printf("test_matmul portable, 4-row decode\n");
        const size_t old = stw_cpu::set_rows_kernel_max_bytes(SIZE_MAX);
        test_matmul_all("portable");
        stw_cpu::set_rows_kernel_max_bytes(old);
    }
    if (stw_cpu_select_kernel_set("avx2") == 0) {
        printf("test_matmul avx2\n");
        test_matmul_all("avx2");
        // Quantized decode goes one row at a time by default; the 4-row kernels stay reachable
        // (set_rows_kernel_max_bytes) and must stay exact.
        printf("test_matmul avx2, 4-row decode\n");
        const size_t old = stw_cpu::set_rows_kernel_max_bytes(SIZE_MAX);
        test_matmul_all("avx2");
        stw_cpu::set_rows_kernel_max_bytes(old);
        test_sets_agree();
        if (stw_cpu_select_kernel_set("avx2-vnni") == 0) {
            printf("test_matmul avx2-vnni\n");
            test_matmul_all("avx2-vnni");
            printf("test_matmul avx2-vnni, 4-row decode\n");
            const size_t old2 = stw_cpu::set_rows_kernel_max_bytes(SIZE_MAX);
            test_matmul_all("avx2-vnni");
            stw_cpu::set_rows_kernel_max_bytes(old2);
        }
        test_vnni_matches_avx2();
    } else {
        printf("SKIP test_matmul avx2: %s\n", stw_cpu_last_error());
    }
    printf("test_decode_matches_batch\n");
    test_decode_matches_batch();
    printf("test_q6_K_extremes\n");
    test_q6_K_extremes();
    return check_finish();
}
