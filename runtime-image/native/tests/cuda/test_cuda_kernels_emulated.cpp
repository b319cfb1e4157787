// test_cuda_kernels_emulated: the CUDA backend's kernels themselves (src/cuda/*_kernels.cuh, the code nvcc compiles),
// run on the CPU through cuda_emu.h's emulation of blocks, threads, shared memory, barriers and warp shuffles, and
// compared with the CPU backend's ops: mat-vec and tiled mat-mat for every weight type, RMSNorm, RoPE, SwiGLU, add,
// get_rows, the KV store (cache bytes identical) and attention (split decode with its combine, the unsplit path,
// tiled prefill), with the launch shapes the entry points compute. Runs everywhere; it is no substitute for
// test_backend_ops on a GPU (memory model, timing, the launches themselves), but every index, barrier and
// reduction of the kernels executes here.
#include "cuda_emu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "attention_kernels.cuh"
#include "core.h"
#include "kernels.h"
#include "matmul_kernels.cuh"
#include "norm_kernels.cuh"
#include "test_util.h"

using namespace stw_cuda;
using stw_emu::launch;
using stw_emu::uint3e;

namespace {

std::mt19937 g_rng(1415);

std::vector<float> randn(size_t n, float sd = 1.0f) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> v(n);
    for (float &x : v) x = nd(g_rng);
    return v;
}

double nmse(const std::vector<float> &ref, const std::vector<float> &got) {
    if (ref.size() != got.size()) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        num += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

void test_matmul() {
    const int types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_BF16, STW_TYPE_Q8_0, STW_TYPE_Q4_0, STW_TYPE_Q4_K,
                         STW_TYPE_Q6_K};
    for (int type : types) {
        const bool is_float = stw_cpu_block_size(type) == 1;
        const int64_t col_list[] = {is_float ? 172 : 256, is_float ? 33 : 3 * stw_cpu_block_size(type)};
        for (int64_t cols : col_list)
            for (int64_t n : {(int64_t)1, (int64_t)9, (int64_t)33}) {  // mat-vec for 1 and 9, tiled for 9 and 33
                const int64_t rows = 37;
                const size_t rb = stw_cpu_row_bytes(type, cols);
                const std::vector<float> wf = randn(rows * cols), x = randn(n * cols);
                std::vector<uint8_t> w(rows * rb);
                for (int64_t r = 0; r < rows; r++) stw_cpu_quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
                std::vector<float> ref(n * rows), vec(n * rows, NAN), tiled(n * rows, NAN);
                std::vector<uint8_t> scratch(stw_cpu_qscratch_bytes(type, cols, n) + 64);
                CHECK(stw_cpu_matmul(type, w.data(), rows, cols, x.data(), n, ref.data(), scratch.data(), nullptr) == 0);
                // (each emulated warp shuffle costs two barriers of 32 threads: the mat-vec runs on the small batches)
                if (n < 32)
                    launch(uint3e{cdiv(rows, mm::kVecWarps), cdiv(n, mm::kVecTokens), 1}, mm::kVecWarps * 32, 0,
                           [&] { mm::matvec_kernel(type, w.data(), rb, rows, cols, x.data(), n, vec.data()); });
                else
                    vec = ref;
                if (n > 1)
                    launch(uint3e{cdiv(rows, mm::kTileRows), cdiv(n, mm::kTileTokens), 1}, mm::kTileThreads, 0,
                           [&] { mm::matmul_tiled_kernel(type, w.data(), rb, rows, cols, x.data(), n, tiled.data()); });
                else
                    tiled = ref;
                const double e1 = nmse(ref, vec), e2 = nmse(ref, tiled);
                CHECK_MSG(e1 < 5e-4 && e2 < 5e-4, "type %d cols %lld n %lld: NMSE mat-vec %.3g tiled %.3g", type,
                          (long long)cols, (long long)n, e1, e2);
            }
    }
}

void test_norm_rope_swiglu_add_get_rows(stw_backend *cpu) {
    {
        const int64_t n = 3, dim = 173;
        const std::vector<float> x = randn(n * dim, 2.0f), w = randn(dim);
        std::vector<float> ref(n * dim), got(n * dim);
        cpu->rmsnorm(cpu, x.data(), w.data(), n, dim, 1e-5f, ref.data());
        launch(uint3e{(unsigned)n, 1, 1}, nrm::kThreads, 0, [&] { nrm::rmsnorm_kernel(x.data(), w.data(), dim, 1e-5f, got.data()); });
        CHECK_MSG(nmse(ref, got) < 1e-10, "rmsnorm NMSE %.3g", nmse(ref, got));
    }
    for (int32_t rt : {STW_ROPE_TYPE_NORM, STW_ROPE_TYPE_NEOX}) {
        const int64_t n = 3;
        const int32_t heads = 2, hd = 48, rd = 32;
        std::vector<float> x = randn(n * heads * hd), y = x;
        const std::vector<int32_t> pos = {0, 17, 3001};
        std::vector<float> factors(rd / 2);
        for (float &f : factors) f = 1.0f + (float)(g_rng() % 4);
        cpu->rope(cpu, x.data(), n, heads, hd, rd, rt, 10000.0f, factors.data(), pos.data());
        launch(uint3e{cdiv(n * heads * rd / 2, nrm::kThreads), 1, 1}, nrm::kThreads, 0, [&] {
            nrm::rope_kernel(y.data(), n, heads, hd, rd, rt == STW_ROPE_TYPE_NEOX, 10000.0f, factors.data(), pos.data());
        });
        CHECK_MSG(nmse(x, y) < 1e-10, "rope type %d NMSE %.3g", rt, nmse(x, y));
    }
    {
        const int64_t n = 300;
        std::vector<float> g = randn(n, 3.0f), g2 = g;
        const std::vector<float> u = randn(n);
        cpu->swiglu(cpu, g.data(), u.data(), n);
        launch(uint3e{cdiv(n, nrm::kThreads), 1, 1}, nrm::kThreads, 0, [&] { nrm::swiglu_kernel(g2.data(), u.data(), n); });
        CHECK(nmse(g, g2) < 1e-12);
        std::vector<float> x = randn(4 * 33), x2 = x;
        const std::vector<float> b = randn(33);
        cpu->add(cpu, x.data(), b.data(), 4, 33, 0);
        launch(uint3e{cdiv(4 * 33, nrm::kThreads), 1, 1}, nrm::kThreads, 0, [&] { nrm::add_kernel(x2.data(), b.data(), 4, 33, 0); });
        CHECK(x == x2);
    }
    const int types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_BF16, STW_TYPE_Q8_0, STW_TYPE_Q4_0, STW_TYPE_Q4_K,
                         STW_TYPE_Q6_K};
    for (int type : types) {
        const int64_t dim = stw_cpu_block_size(type) == 1 ? 172 : 512, n_table = 9;
        const size_t rb = stw_cpu_row_bytes(type, dim);
        const std::vector<float> tf = randn(n_table * dim);
        std::vector<uint8_t> table(n_table * rb);
        for (int64_t r = 0; r < n_table; r++) stw_cpu_quantize_row(type, tf.data() + r * dim, table.data() + r * rb, dim);
        const std::vector<int32_t> ids = {8, 0, 4, 4};
        std::vector<float> ref(ids.size() * dim), got(ids.size() * dim);
        CHECK(cpu->get_rows(cpu, type, table.data(), rb, n_table, ids.data(), 4, dim, ref.data()) == 0);
        const int64_t units = (dim + 31) / 32;
        launch(uint3e{cdiv(4 * units, nrm::kThreads), 1, 1}, nrm::kThreads, 0,
               [&] { nrm::get_rows_kernel(type, table.data(), rb, n_table, ids.data(), 4, dim, got.data()); });
        CHECK_MSG(ref == got, "get_rows type %d", type);
    }
}

struct attn_case {
    const char *name;
    int32_t kv_type, n_head, n_head_kv, dk, dv;
    std::vector<int32_t> lengths, step;
    int32_t slots = kCudaAttnPartialSlots;  // partial slots the scratch holds
};

void run_attention_case(stw_backend *cpu, const attn_case &c) {
    const int32_t n_layer = 2, layer = 1, n_seq = (int32_t)c.lengths.size();
    const int64_t kw = (int64_t)c.n_head_kv * c.dk, vw = (int64_t)c.n_head_kv * c.dv;
    stw_step_seq proto;
    std::memset(&proto, 0, sizeof proto);
    proto.kv_type = c.kv_type;
    proto.k_row_bytes = stw_kv_row_bytes(c.kv_type, kw);
    proto.v_row_bytes = stw_kv_row_bytes(c.kv_type, vw);
    proto.layer_block_bytes = STW_KV_BLOCK_TOKENS * (proto.k_row_bytes + proto.v_row_bytes);
    proto.block_bytes = n_layer * proto.layer_block_bytes;
    int32_t total = 0;
    std::vector<int32_t> nb(n_seq);
    for (int32_t s = 0; s < n_seq; s++) total += nb[s] = (c.lengths[s] + c.step[s] + 15) / 16;
    std::vector<uint8_t> cpu_pool(proto.block_bytes * total), gpu_pool(cpu_pool.size());
    std::vector<int32_t> table(total);
    for (int32_t i = 0; i < total; i++) table[i] = i;
    std::shuffle(table.begin(), table.end(), g_rng);
    std::vector<stw_step_seq> cseqs(n_seq, proto), gseqs(n_seq, proto);
    for (int32_t s = 0, off = 0; s < n_seq; off += nb[s], s++) {
        cseqs[s].kv = cpu_pool.data();
        gseqs[s].kv = gpu_pool.data();
        cseqs[s].bt_offset = gseqs[s].bt_offset = off;
        cseqs[s].n_blocks = gseqs[s].n_blocks = nb[s];
    }
    auto store = [&](const std::vector<int32_t> &ts, const std::vector<int32_t> &ps) {
        const int64_t n = (int64_t)ts.size();
        const std::vector<float> k = randn(n * kw), v = randn(n * vw);
        stw_step st;
        std::memset(&st, 0, sizeof st);
        st.n_tokens = (int32_t)n;
        st.n_seqs = n_seq;
        st.pos = st.h_pos = ps.data();
        st.seq = st.h_seq = ts.data();
        st.seqs = st.h_seqs = cseqs.data();
        st.block_table = st.h_block_table = table.data();
        CHECK(cpu->kv_store(cpu, layer, k.data(), kw, v.data(), vw, &st) == 0);
        const stw_cuda_step ds{gseqs.data(), ts.data(), ps.data(), table.data()};
        launch(uint3e{cdiv(n * ((kw + 31) / 32 + (vw + 31) / 32), 256), 1, 1}, 256, 0,
               [&] { att::kv_store_kernel(layer, k.data(), kw, v.data(), vw, n, ds); });
    };
    for (int32_t s = 0; s < n_seq; s++) {
        std::vector<int32_t> ts(c.lengths[s], s), ps(c.lengths[s]);
        for (int32_t p = 0; p < c.lengths[s]; p++) ps[p] = p;
        if (!ts.empty()) store(ts, ps);
    }
    std::vector<int32_t> tok_seq, pos;
    for (int32_t s = 0; s < n_seq; s++)
        for (int32_t j = 0; j < c.step[s]; j++) {
            tok_seq.push_back(s);
            pos.push_back(c.lengths[s] + j);
        }
    store(tok_seq, pos);
    CHECK_MSG(cpu_pool == gpu_pool, "%s: KV cache bytes differ from the CPU's", c.name);

    const int32_t n = (int32_t)tok_seq.size();
    const std::vector<float> q = randn((size_t)n * c.n_head * c.dk);
    std::vector<float> ref((size_t)n * c.n_head * c.dv), got(ref.size(), NAN);
    stw_step st;
    std::memset(&st, 0, sizeof st);
    st.n_tokens = n;
    st.n_seqs = n_seq;
    st.pos = st.h_pos = pos.data();
    st.seq = st.h_seq = tok_seq.data();
    st.seqs = st.h_seqs = cseqs.data();
    st.block_table = st.h_block_table = table.data();
    stw_attn_args a{n, layer, c.n_head, c.n_head_kv, c.dk, c.dv, 1.0f / std::sqrt((float)c.dk), q.data(), ref.data(), &st};
    CHECK(cpu->attention(cpu, &a) == 0);

    std::vector<attn_tile> tiles(n);
    tiles.resize(plan_attention(tok_seq.data(), n, tiles.data()));
    const int32_t nt = (int32_t)tiles.size();
    const att::launch_plan lp = att::plan_launch(tiles.data(), nt, pos.data(), c.slots);
    std::vector<float> partials(stw_cuda_attention_partial_bytes(c.n_head, c.dv) / sizeof(float), NAN);
    att::attn_params p;
    p.a = stw_cuda_attn{n, layer, c.n_head, c.n_head_kv, c.dk, c.dv, a.scale, q.data(), got.data()};
    p.st = stw_cuda_step{gseqs.data(), tok_seq.data(), pos.data(), table.data()};
    p.tiles = tiles.data();
    p.max_splits = lp.max_splits;
    p.scratch = partials.data();
    if (lp.any_decode) {
        launch(uint3e{(unsigned)nt, (unsigned)c.n_head, (unsigned)lp.max_splits}, att::kThreads, 0,
               [&] { att::attn_decode_kernel(p); });
        if (lp.max_splits > 1)
            launch(uint3e{(unsigned)nt, (unsigned)c.n_head, 1}, att::kThreads, 0, [&] { att::attn_combine_kernel(p); });
    }
    if (lp.any_prefill)
        launch(uint3e{(unsigned)nt, (unsigned)c.n_head, 1}, att::kThreads, att::prefill_smem_bytes(c.dk, c.dv),
               [&] { att::attn_prefill_kernel(p); });
    const double e = nmse(ref, got);
    std::printf("  attention %-44s splits %2d  NMSE %.3g\n", c.name, lp.max_splits, e);
    CHECK_MSG(e < 1e-8, "%s: attention NMSE %.3g", c.name, e);
}

}  // namespace

int main() {
    stw_backend *cpu = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &cpu));
    auto t0 = std::chrono::steady_clock::now();
    auto lap = [&](const char *what) {
        const auto t1 = std::chrono::steady_clock::now();
        std::printf("  %s: %.1f s\n", what, std::chrono::duration<double>(t1 - t0).count());
        t0 = t1;
    };
    test_matmul();
    lap("matmul kernels");
    test_norm_rope_swiglu_add_get_rows(cpu);
    lap("norm, rope, swiglu, add, get_rows kernels");
    for (int32_t kt : {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0}) {
        run_attention_case(cpu, {"decode, lengths 0/37/300", kt, 2, 1, 64, 64, {0, 37, 300}, {1, 1, 1}});
        run_attention_case(cpu, {"prefill 20 from 0, 5 from 20, 1 decode", kt, 4, 2, 32, 32, {0, 20, 3}, {20, 5, 1}});
    }
    run_attention_case(cpu, {"f16 MHA dk 96 / dv 64", STW_TYPE_F16, 2, 2, 96, 64, {5, 0}, {1, 17}});
    run_attention_case(cpu, {"decode, 700 positions, 4 slots for 2 tokens", STW_TYPE_F16, 2, 1, 64, 64, {700, 3}, {1, 1}, 4});
    attn_case many{"130 decodes (unsplit)", STW_TYPE_F32, 1, 1, 32, 32, {}, {}};
    for (int s = 0; s < 130; s++) {
        many.lengths.push_back(s % 5);
        many.step.push_back(1);
    }
    run_attention_case(cpu, many);
    lap("KV store and attention kernels");
    CHECK_OK(stw_backend_free(cpu));
    return test_finish("test_cuda_kernels_emulated");
}
