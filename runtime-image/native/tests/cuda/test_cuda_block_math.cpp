// test_cuda_block_math: the CUDA kernels' per-block arithmetic (src/cuda/block_math.cuh), compiled by g++ and run on
// the CPU against the CPU core's reference code: every weight type's dequantization, the half conversions, the
// q8_0 KV quantizer, the paged-KV addressing, the attention plan and splits, and the mat-vec kernel's unit walk.
// Runs everywhere (no GPU needed); it is what makes the kernels checkable on a machine without one.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "block_math.cuh"
#include "core.h"
#include "kernels.h"
#include "quants.h"
#include "test_util.h"

using namespace stw_cuda;

namespace {

const int kTypes[] = {kTypeF32, kTypeF16, kTypeBF16, kTypeQ8_0, kTypeQ4_0, kTypeQ4_K, kTypeQ6_K};

uint32_t f2u(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// A row of `cols` values of `type` made of random bytes, every fp16 scale replaced by a finite half of moderate size
// (so that each nibble, 6-bit scale and sign pattern occurs, not only what the quantizers produce).
std::vector<uint8_t> random_row(int type, int64_t cols, std::mt19937 &rng) {
    std::vector<uint8_t> row(row_bytes(type, cols));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto &b : row) b = (uint8_t)byte(rng);
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    auto put_half = [&](uint8_t *p) {
        const uint16_t h = stw_cpu::fp32_to_fp16(scale(rng));
        std::memcpy(p, &h, 2);
    };
    std::uniform_real_distribution<float> val(-3.0f, 3.0f);
    switch (type) {
        case kTypeF32:
            for (int64_t j = 0; j < cols; j++) {
                const float v = val(rng);
                std::memcpy(row.data() + 4 * j, &v, 4);
            }
            break;
        case kTypeF16:
            for (int64_t j = 0; j < cols; j++) {
                const uint16_t h = stw_cpu::fp32_to_fp16(val(rng));
                std::memcpy(row.data() + 2 * j, &h, 2);
            }
            break;
        case kTypeBF16:
            for (int64_t j = 0; j < cols; j++) {
                const uint16_t h = stw_cpu::fp32_to_bf16(val(rng));
                std::memcpy(row.data() + 2 * j, &h, 2);
            }
            break;
        case kTypeQ8_0:
            for (int64_t b = 0; b < cols / 32; b++) put_half(row.data() + b * kQ8_0Bytes);
            break;
        case kTypeQ4_0:
            for (int64_t b = 0; b < cols / 32; b++) put_half(row.data() + b * kQ4_0Bytes);
            break;
        case kTypeQ4_K:
            for (int64_t b = 0; b < cols / 256; b++) {
                put_half(row.data() + b * kQ4_KBytes);
                put_half(row.data() + b * kQ4_KBytes + 2);
            }
            break;
        case kTypeQ6_K:
            for (int64_t b = 0; b < cols / 256; b++) put_half(row.data() + b * kQ6_KBytes + 208);
            break;
    }
    return row;
}

void test_dequant_matches_cpu() {
    std::mt19937 rng(14);
    for (int type : kTypes) {
        const int64_t cols = 512;
        for (int trial = 0; trial < 20; trial++) {
            const std::vector<uint8_t> row = random_row(type, cols, rng);
            std::vector<float> ref(cols), got(cols);
            CHECK(stw_cpu_dequantize_row(type, row.data(), ref.data(), cols) == 0);
            for (int64_t u = 0; u < cols / kUnit; u++) dequant_unit(type, row.data(), u, got.data() + u * kUnit);
            int bad = 0;
            for (int64_t j = 0; j < cols; j++)
                if (f2u(ref[j]) != f2u(got[j]) && !(std::isnan(ref[j]) && std::isnan(got[j]))) bad++;
            CHECK_MSG(bad == 0, "type %d trial %d: %d of %lld values differ from stw_cpu_dequantize_row", type, trial,
                      bad, (long long)cols);
        }
    }
}

void test_halves() {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float a = half_to_f32(h), b = stw_cpu::fp16_to_fp32((uint16_t)h);
        // NaNs agree as NaNs (the CPU's branch-free form quiets a signalling NaN; payloads do not matter)
        if (f2u(a) != f2u(b) && !(std::isnan(a) && std::isnan(b))) bad++;
    }
    CHECK_MSG(bad == 0, "%d half bit patterns convert differently from the CPU's", bad);
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> bits;
    bad = 0;
    for (int i = 0; i < 1000000; i++) {
        const uint32_t u = bits(rng);
        float f;
        std::memcpy(&f, &u, 4);
        if (f32_to_half(f) != stw_cpu::fp32_to_fp16(f)) bad++;
    }
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 65519.99f, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f,
                           2.9802326e-8f, INFINITY, -INFINITY, NAN};
    for (float f : edges)
        if (f32_to_half(f) != stw_cpu::fp32_to_fp16(f)) bad++;
    CHECK_MSG(bad == 0, "%d floats round to a different half than the CPU's", bad);
}

void test_q8_0_kv_quantizer_is_byte_identical() {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    for (int trial = 0; trial < 2000; trial++) {
        float x[32];
        for (float &v : x) v = nd(rng);
        if (trial % 10 == 0)
            for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.5f;  // exact halves: round-half-away cases
        if (trial == 1)
            for (float &v : x) v = 0.0f;
        uint8_t ref[34], got[34];
        CHECK(stw_cpu_quantize_row(STW_TYPE_Q8_0, x, ref, 32) == 0);
        quantize_q8_0_block(x, got);
        CHECK_MSG(std::memcmp(ref, got, 34) == 0, "trial %d: q8_0 block differs from the CPU's KV quantizer", trial);
    }
}

void test_kv_row_offset_matches_core() {
    const int32_t kv_types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0};
    for (int32_t type : kv_types) {
        const int32_t n_layer = 3;
        stw_step_seq ss;
        std::memset(&ss, 0, sizeof ss);
        ss.kv_type = type;
        ss.k_row_bytes = stw_kv_row_bytes(type, 2 * 64);
        ss.v_row_bytes = stw_kv_row_bytes(type, 2 * 96);
        ss.layer_block_bytes = STW_KV_BLOCK_TOKENS * (ss.k_row_bytes + ss.v_row_bytes);
        ss.block_bytes = n_layer * ss.layer_block_bytes;
        std::vector<uint8_t> data(ss.block_bytes * 7);
        ss.kv = data.data();
        // the flat table of a step: another sequence's 3 entries, then this one's 4 at bt_offset 3
        const int32_t table[7] = {1, 3, 4, 5, 0, 6, 2};
        ss.bt_offset = 3;
        ss.n_blocks = 4;
        kv_layout L{type, (size_t)ss.k_row_bytes, (size_t)ss.v_row_bytes, (size_t)ss.layer_block_bytes,
                    (size_t)ss.block_bytes};
        CHECK(kv_row_bytes(type, 128) == ss.k_row_bytes && kv_row_bytes(type, 192) == ss.v_row_bytes);
        for (int32_t layer = 0; layer < n_layer; layer++)
            for (int32_t p = 0; p < 4 * STW_KV_BLOCK_TOKENS; p++)
                for (int v = 0; v < 2; v++) {
                    const size_t want = (size_t)(stw_seq_kv_row(&ss, table, layer, p, v) - data.data());
                    CHECK_MSG(kv_row_offset(L, table + ss.bt_offset, layer, p, v) == want, "type %d layer %d pos %d %s",
                              type, layer, p, v ? "V" : "K");
                }
    }
}

void test_kv_load_reads_what_the_cpu_wrote() {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t w = 96;
    std::vector<float> x(w);
    for (float &v : x) v = nd(rng);
    const int32_t kv_types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0};
    for (int32_t type : kv_types) {
        std::vector<uint8_t> row(kv_row_bytes(type, w));
        CHECK(stw_cpu_quantize_row(type, x.data(), row.data(), w) == 0);
        std::vector<float> ref(w);
        CHECK(stw_cpu_dequantize_row(type, row.data(), ref.data(), w) == 0);
        for (int64_t e = 0; e < w; e++)
            CHECK_MSG(f2u(kv_load(type, row.data(), e)) == f2u(ref[e]), "type %d element %lld", type, (long long)e);
    }
}

void test_attention_plan() {
    const int32_t seq[] = {0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    const int32_t n = (int32_t)(sizeof seq / sizeof seq[0]);
    attn_tile tiles[32];
    const int32_t nt = plan_attention(seq, n, tiles);
    // runs: [0,3) seq 0, [3] seq 1, [4,6) seq 2, [6,25) seq 0 cut after 16, [25] seq 3
    const attn_tile want[] = {{0, 3}, {3, 1}, {4, 2}, {6, 16}, {22, 3}, {25, 1}};
    CHECK_MSG(nt == 6, "%d tiles", nt);
    for (int32_t t = 0; t < nt && t < 6; t++)
        CHECK_MSG(tiles[t].first == want[t].first && tiles[t].count == want[t].count, "tile %d is (%d, %d)", t,
                  tiles[t].first, tiles[t].count);
    // every token in exactly one tile, each tile one sequence
    std::mt19937 rng(9);
    for (int trial = 0; trial < 200; trial++) {
        std::vector<int32_t> s(1 + rng() % 200);
        for (auto &v : s) v = (int32_t)(rng() % 3);
        std::vector<attn_tile> tl(s.size());
        const int32_t m = plan_attention(s.data(), (int32_t)s.size(), tl.data());
        int32_t next = 0;
        for (int32_t t = 0; t < m; t++) {
            CHECK(tl[t].first == next && tl[t].count >= 1 && tl[t].count <= kAttnTileTokens);
            for (int32_t i = tl[t].first; i < tl[t].first + tl[t].count; i++) CHECK(s[i] == s[tl[t].first]);
            next += tl[t].count;
        }
        CHECK(next == (int32_t)s.size());
    }
}

void test_attention_splits_cover_the_context() {
    for (int32_t len = 1; len <= 20000; len += (len < 600 ? 1 : 37)) {
        for (int32_t cap = 1; cap <= kAttnMaxSplits; cap *= 2) {
            const int32_t n = attn_splits(len) < cap ? attn_splits(len) : cap;
            int32_t next = 0;
            for (int32_t c = 0; c < n; c++) {
                int32_t b, e;
                attn_split_range(len, n, c, &b, &e);
                CHECK_MSG(b == next && e > b, "len %d splits %d chunk %d: [%d, %d)", len, n, c, b, e);
                next = e;
            }
            CHECK_MSG(next == len, "len %d splits %d end at %d", len, n, next);
        }
    }
}

// The mat-vec kernel's sum, replayed on the CPU: 32 lanes, lane l taking units l, l + 32, ... (a float row may end in
// a partial unit), then the butterfly reduction. Compared with the CPU's matmul by NMSE, per weight type, at widths
// with a partial unit and below one warp's worth of units.
double nmse(const std::vector<float> &ref, const std::vector<float> &got) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        num += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

void test_matvec_unit_walk_matches_cpu() {
    std::mt19937 rng(21);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int type : kTypes) {
        const int64_t bs = type == kTypeQ4_K || type == kTypeQ6_K ? 256 : 32;
        const bool is_float = type == kTypeF32 || type == kTypeF16 || type == kTypeBF16;
        const int64_t widths[] = {bs, 3 * bs, 11 * bs, is_float ? 172 : 4 * bs, is_float ? 33 : 2 * bs};
        for (int64_t cols : widths) {
            const int64_t rows = 13;
            const size_t rb = row_bytes(type, cols);
            std::vector<float> wf(rows * cols), x(cols);
            for (float &v : wf) v = nd(rng);
            for (float &v : x) v = nd(rng);
            std::vector<uint8_t> w(rows * rb);
            for (int64_t r = 0; r < rows; r++)
                CHECK(stw_cpu_quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols) == 0);
            std::vector<float> ref(rows), got(rows);
            std::vector<uint8_t> scratch(stw_cpu_qscratch_bytes(type, cols, 1) + 64);
            CHECK(stw_cpu_matmul(type, w.data(), rows, cols, x.data(), 1, ref.data(), scratch.data(), nullptr) == 0);
            const int64_t units = (cols + kUnit - 1) / kUnit;
            for (int64_t r = 0; r < rows; r++) {
                float lane_acc[32] = {0};
                for (int lane = 0; lane < 32; lane++)
                    for (int64_t u = lane; u < units; u += 32) {
                        float wu[kUnit];
                        if ((u + 1) * kUnit <= cols) {
                            dequant_unit(type, w.data() + r * rb, u, wu);
                        } else {
                            std::vector<float> full(cols);
                            stw_cpu_dequantize_row(type, w.data() + r * rb, full.data(), cols);
                            for (int j = 0; j < kUnit; j++) wu[j] = u * kUnit + j < cols ? full[u * kUnit + j] : 0.0f;
                        }
                        float s = 0.0f;
                        for (int j = 0; j < kUnit && u * kUnit + j < cols; j++) s += wu[j] * x[u * kUnit + j];
                        lane_acc[lane] += s;
                    }
                for (int off = 16; off > 0; off /= 2) {
                    float next[32];
                    for (int l = 0; l < 32; l++) next[l] = lane_acc[l] + lane_acc[l ^ off];
                    std::memcpy(lane_acc, next, sizeof next);
                }
                got[r] = lane_acc[0];
            }
            // the CPU quantizes the activations to int8 for quantized weights: ggml's mul_mat threshold
            const double e = nmse(ref, got);
            CHECK_MSG(e < 5e-4, "type %d cols %lld: NMSE %.3g", type, (long long)cols, e);
        }
    }
}

}  // namespace

int main() {
    test_dequant_matches_cpu();
    test_halves();
    test_q8_0_kv_quantizer_is_byte_identical();
    test_kv_row_offset_matches_core();
    test_kv_load_reads_what_the_cpu_wrote();
    test_attention_plan();
    test_attention_splits_cover_the_context();
    test_matvec_unit_walk_matches_cpu();
    return test_finish("test_cuda_block_math");
}
