// test_backend_ops: every CUDA op against the CPU op on the same inputs, as ggml's test-backend-ops does: each weight
// type through the mat-vec and the tiled mat-mat kernel, RMSNorm, RoPE (normal, NEOX, with frequency factors),
// SwiGLU, add, get_rows, the KV store (f32, f16, q8_0: the cache bytes must be identical) and attention (decode
// split over the sequence, tiled prefill, grouped-query heads) over the paged cache, with odd shapes throughout.
// Errors are normalized mean squared errors with ggml's thresholds. Skipped (exit 77) where no GPU is visible.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core.h"
#include "kernels.h"
#include "ops.h"
#include "test_util.h"

using namespace stw_cuda;

namespace {

void *g_stream = nullptr;
std::mt19937 g_rng(1414);

double nmse(const float *ref, const float *got, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        num += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

std::vector<float> randn(size_t n, float sd = 1.0f) {
    std::normal_distribution<float> nd(0.0f, sd);
    std::vector<float> v(n);
    for (float &x : v) x = nd(g_rng);
    return v;
}

// A device copy of a host vector, freed with the object.
struct dbuf {
    void *p = nullptr;
    size_t bytes = 0;
    dbuf() = default;
    explicit dbuf(size_t n) : bytes(n) {
        if (stw_cuda_malloc(&p, n ? n : 1, UINT64_MAX) != 0) {
            std::fprintf(stderr, "device allocation failed: %s\n", stw_cuda_last_error());
            std::exit(1);
        }
    }
    template <class T>
    explicit dbuf(const std::vector<T> &v) : dbuf(v.size() * sizeof(T)) {
        put(v);
    }
    dbuf(const dbuf &) = delete;
    dbuf &operator=(const dbuf &) = delete;
    ~dbuf() { stw_cuda_free(p); }
    template <class T>
    void put(const std::vector<T> &v) {
        if (!v.empty()) REQUIRE_CUDA(stw_cuda_memcpy_h2d(p, v.data(), v.size() * sizeof(T), g_stream));
    }
    template <class T>
    std::vector<T> get(size_t n) const {
        std::vector<T> v(n);
        REQUIRE_CUDA(stw_cuda_memcpy_d2h(v.data(), p, n * sizeof(T), g_stream));
        REQUIRE_CUDA(stw_cuda_synchronize(g_stream));
        return v;
    }
    static void REQUIRE_CUDA(int rc) {
        if (rc != 0) {
            std::fprintf(stderr, "CUDA call failed (%d): %s\n", rc, stw_cuda_last_error());
            std::exit(1);
        }
    }
    template <class T>
    T *as() const {
        return (T *)p;
    }
};

#define CHECK_CUDA(expr)                                                                                    \
    do {                                                                                                    \
        const int rc_ = (expr);                                                                             \
        if (rc_ != 0) {                                                                                     \
            std::fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, rc_, stw_cuda_last_error()); \
            g_failures++;                                                                                   \
        }                                                                                                   \
    } while (0)

const int kTypes[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_BF16, STW_TYPE_Q8_0, STW_TYPE_Q4_0, STW_TYPE_Q4_K,
                      STW_TYPE_Q6_K};

void test_matmul() {
    for (int type : kTypes) {
        const int64_t bs = stw_cpu_block_size(type);
        const bool is_float = bs == 1;
        const int64_t col_list[] = {is_float ? 172 : 256, is_float ? 33 : 11 * bs, 1024};
        const int64_t row_list[] = {1, 67, 129};
        const int64_t n_list[] = {1, 3, 8, 9, 33, 70};
        for (int64_t cols : col_list)
            for (int64_t rows : row_list)
                for (int64_t n : n_list) {
                    const size_t rb = stw_cpu_row_bytes(type, cols);
                    const std::vector<float> wf = randn((size_t)(rows * cols)), x = randn((size_t)(n * cols));
                    std::vector<uint8_t> w(rows * rb);
                    for (int64_t r = 0; r < rows; r++)
                        stw_cpu_quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
                    std::vector<float> ref(n * rows);
                    std::vector<uint8_t> scratch(stw_cpu_qscratch_bytes(type, cols, n) + 64);
                    CHECK(stw_cpu_matmul(type, w.data(), rows, cols, x.data(), n, ref.data(), scratch.data(), nullptr) == 0);
                    dbuf dw(w), dx(x), dy((size_t)(n * rows) * 4);
                    CHECK_CUDA(stw_cuda_matvec(type, dw.p, rows, cols, dx.as<float>(), n, dy.as<float>(), g_stream));
                    const std::vector<float> got_vec = dy.get<float>(n * rows);
                    CHECK_CUDA(stw_cuda_matmul_tiled(type, dw.p, rows, cols, dx.as<float>(), n, dy.as<float>(), g_stream));
                    const std::vector<float> got_mm = dy.get<float>(n * rows);
                    const double e1 = nmse(ref.data(), got_vec.data(), ref.size());
                    const double e2 = nmse(ref.data(), got_mm.data(), ref.size());
                    CHECK_MSG(e1 < 5e-4 && e2 < 5e-4, "matmul type %d rows %lld cols %lld n %lld: NMSE mat-vec %.3g tiled %.3g",
                              type, (long long)rows, (long long)cols, (long long)n, e1, e2);
                }
    }
    // a token's mat-vec result does not depend on what else is in the batch
    const int64_t rows = 67, cols = 512;
    const std::vector<float> wf = randn(rows * cols), x = randn(9 * cols);
    std::vector<uint8_t> w(rows * stw_cpu_row_bytes(STW_TYPE_Q4_K, cols));
    for (int64_t r = 0; r < rows; r++)
        stw_cpu_quantize_row(STW_TYPE_Q4_K, wf.data() + r * cols, w.data() + r * stw_cpu_row_bytes(STW_TYPE_Q4_K, cols), cols);
    dbuf dw(w), dx(x), dy(9 * rows * 4), d1(rows * 4);
    CHECK_CUDA(stw_cuda_matvec(STW_TYPE_Q4_K, dw.p, rows, cols, dx.as<float>(), 9, dy.as<float>(), g_stream));
    CHECK_CUDA(stw_cuda_matvec(STW_TYPE_Q4_K, dw.p, rows, cols, dx.as<float>() + 3 * cols, 1, d1.as<float>(), g_stream));
    const std::vector<float> all = dy.get<float>(9 * rows), one = d1.get<float>(rows);
    CHECK_MSG(std::memcmp(all.data() + 3 * rows, one.data(), rows * 4) == 0, "mat-vec result depends on the batch");
    // bad arguments are statuses with a message, not launches
    CHECK(stw_cuda_matvec(3, dw.p, rows, cols, dx.as<float>(), 1, d1.as<float>(), g_stream) == STW_CUDA_STATUS_BAD_ARGUMENT);
    CHECK(std::strstr(stw_cuda_last_error(), "type 3") != nullptr);
    CHECK(stw_cuda_matvec(STW_TYPE_Q4_K, dw.p, rows, 100, dx.as<float>(), 1, d1.as<float>(), g_stream) ==
          STW_CUDA_STATUS_BAD_ARGUMENT);
}

void test_norm_rope_swiglu_add() {
    stw_backend *be = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &be));
    stw_backend &cpu = *be;
    {  // RMSNorm, odd widths
        const int64_t dims[] = {1, 64, 173, 4096};
        for (int64_t dim : dims) {
            const int64_t n = 5;
            const std::vector<float> x = randn(n * dim, 3.0f), w = randn(dim);
            std::vector<float> ref(n * dim);
            cpu.rmsnorm(&cpu, x.data(), w.data(), n, dim, 1e-5f, ref.data());
            dbuf dx(x), dw(w), dout(n * dim * 4);
            CHECK_CUDA(stw_cuda_rmsnorm(dx.as<float>(), dw.as<float>(), n, dim, 1e-5f, dout.as<float>(), g_stream));
            const std::vector<float> got = dout.get<float>(n * dim);
            const double e = nmse(ref.data(), got.data(), got.size());
            CHECK_MSG(e < 1e-7, "rmsnorm dim %lld: NMSE %.3g", (long long)dim, e);
        }
    }
    {  // RoPE: normal and NEOX, partial rotation, frequency factors, positions up to 5000
        const int32_t types[] = {STW_ROPE_TYPE_NORM, STW_ROPE_TYPE_NEOX};
        for (int32_t rt : types)
            for (int ff = 0; ff < 2; ff++) {
                const int64_t n = 7;
                const int32_t heads = 3, hd = 96, rd = 64;
                std::vector<float> x = randn(n * heads * hd);
                std::vector<int32_t> pos(n);
                for (int64_t i = 0; i < n; i++) pos[i] = (int32_t)(g_rng() % 5000);
                std::vector<float> factors(rd / 2);
                for (float &f : factors) f = 1.0f + (float)(g_rng() % 8);
                dbuf dx(x), dpos(pos), dff(factors);
                cpu.rope(&cpu, x.data(), n, heads, hd, rd, rt, 10000.0f, ff ? factors.data() : nullptr, pos.data());
                CHECK_CUDA(stw_cuda_rope(dx.as<float>(), n, heads, hd, rd, rt, 10000.0f, ff ? dff.as<float>() : nullptr,
                                         dpos.as<int32_t>(), g_stream));
                const std::vector<float> got = dx.get<float>(x.size());
                const double e = nmse(x.data(), got.data(), got.size());
                CHECK_MSG(e < 1e-6, "rope type %d factors %d: NMSE %.3g", rt, ff, e);
            }
        CHECK(stw_cuda_rope(nullptr, 1, 1, 8, 7, 0, 1e4f, nullptr, nullptr, g_stream) == STW_CUDA_STATUS_BAD_ARGUMENT);
    }
    {  // SwiGLU
        const int64_t n = 3 * 1001;
        std::vector<float> g = randn(n, 4.0f);
        const std::vector<float> u = randn(n);
        dbuf dg(g), du(u);
        cpu.swiglu(&cpu, g.data(), u.data(), n);
        CHECK_CUDA(stw_cuda_swiglu(dg.as<float>(), du.as<float>(), n, g_stream));
        const std::vector<float> got = dg.get<float>(n);
        const double e = nmse(g.data(), got.data(), n);
        CHECK_MSG(e < 1e-7, "swiglu: NMSE %.3g", e);
    }
    {  // add: per-row and broadcast (stride 0)
        for (int64_t stride : {(int64_t)0, (int64_t)77}) {
            const int64_t n = 6, dim = 77;
            std::vector<float> x = randn(n * dim);
            const std::vector<float> y = randn(stride ? n * dim : dim);
            dbuf dx(x), dy(y);
            cpu.add(&cpu, x.data(), y.data(), n, dim, stride);
            CHECK_CUDA(stw_cuda_add(dx.as<float>(), dy.as<float>(), n, dim, stride, g_stream));
            const std::vector<float> got = dx.get<float>(n * dim);
            CHECK_MSG(nmse(x.data(), got.data(), got.size()) < 1e-12, "add stride %lld", (long long)stride);
        }
    }
    {  // get_rows of every table type
        for (int type : kTypes) {
            const int64_t dim = stw_cpu_block_size(type) == 1 ? 172 : 512, n_table = 19;
            const size_t rb = stw_cpu_row_bytes(type, dim);
            const std::vector<float> tf = randn(n_table * dim);
            std::vector<uint8_t> table(n_table * rb);
            for (int64_t r = 0; r < n_table; r++) stw_cpu_quantize_row(type, tf.data() + r * dim, table.data() + r * rb, dim);
            const std::vector<int32_t> ids = {18, 0, 7, 7, 3};
            std::vector<float> ref(ids.size() * dim);
            CHECK(cpu.get_rows(&cpu, type, table.data(), rb, n_table, ids.data(), (int64_t)ids.size(), dim, ref.data()) == 0);
            dbuf dt(table), di(ids), dout(ref.size() * 4);
            CHECK_CUDA(stw_cuda_get_rows(type, dt.p, n_table, di.as<int32_t>(), (int64_t)ids.size(), dim, dout.as<float>(), g_stream));
            const std::vector<float> got = dout.get<float>(ref.size());
            CHECK_MSG(std::memcmp(ref.data(), got.data(), ref.size() * 4) == 0, "get_rows type %d differs from the CPU's", type);
        }
    }
    CHECK_OK(stw_backend_free(be));
}

// One attention scenario: sequences with a history already cached and a step of query tokens. The CPU backend's
// kv_store and attention run on a host pool, the CUDA ops on a device pool of the same layout and block tables.
struct attn_case {
    const char *name;
    int32_t kv_type, n_head, n_head_kv, dk, dv;
    std::vector<int32_t> lengths;  // per sequence: positions cached before the step
    std::vector<int32_t> step;     // per sequence: query tokens in the step (consecutive positions after the history)
};

void run_attention_case(const attn_case &c) {
    const int32_t n_layer = 2, layer = 1;
    const int32_t n_seq = (int32_t)c.lengths.size();
    const int64_t kw = (int64_t)c.n_head_kv * c.dk, vw = (int64_t)c.n_head_kv * c.dv;
    stw_step_seq proto;
    std::memset(&proto, 0, sizeof proto);
    proto.kv_type = c.kv_type;
    proto.k_row_bytes = stw_kv_row_bytes(c.kv_type, kw);
    proto.v_row_bytes = stw_kv_row_bytes(c.kv_type, vw);
    proto.layer_block_bytes = STW_KV_BLOCK_TOKENS * (proto.k_row_bytes + proto.v_row_bytes);
    proto.block_bytes = n_layer * proto.layer_block_bytes;
    int32_t total_blocks = 0;
    std::vector<int32_t> n_blocks(n_seq);
    for (int32_t s = 0; s < n_seq; s++) {
        n_blocks[s] = (c.lengths[s] + c.step[s] + STW_KV_BLOCK_TOKENS - 1) / STW_KV_BLOCK_TOKENS;
        total_blocks += n_blocks[s];
    }
    std::vector<uint8_t> host_pool(proto.block_bytes * total_blocks, 0);
    dbuf dpool(host_pool);
    // block ids handed out in a shuffled order, so that no sequence's blocks are contiguous; one flat table
    std::vector<int32_t> table(total_blocks);
    for (int32_t i = 0; i < total_blocks; i++) table[i] = i;
    std::shuffle(table.begin(), table.end(), g_rng);
    std::vector<stw_step_seq> hseqs(n_seq, proto), dseqs(n_seq, proto);
    int32_t off = 0;
    for (int32_t s = 0; s < n_seq; s++) {
        hseqs[s].kv = host_pool.data();
        dseqs[s].kv = dpool.as<uint8_t>();
        hseqs[s].bt_offset = dseqs[s].bt_offset = off;
        hseqs[s].n_blocks = dseqs[s].n_blocks = n_blocks[s];
        off += n_blocks[s];
    }
    dbuf dtable(table), ddseqs(dseqs);
    CHECK_CUDA(stw_cuda_check_step_seqs(dseqs.data(), n_seq, kw, vw));
    stw_backend *cpu = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 2, &cpu));
    // the CPU backend's view of a step (host memory) over tokens (tok_seq, pos)
    auto cpu_step = [&](const std::vector<int32_t> &tok_seq, const std::vector<int32_t> &pos) {
        stw_step st;
        std::memset(&st, 0, sizeof st);
        st.n_tokens = (int32_t)tok_seq.size();
        st.n_seqs = n_seq;
        st.n_table = total_blocks;
        st.pos = st.h_pos = pos.data();
        st.seq = st.h_seq = tok_seq.data();
        st.seqs = st.h_seqs = hseqs.data();
        st.block_table = st.h_block_table = table.data();
        return st;
    };
    // Stores K/V for a list of (sequence, position) tokens in both pools.
    auto store = [&](const std::vector<int32_t> &tok_seq, const std::vector<int32_t> &pos) {
        const int64_t n = (int64_t)tok_seq.size();
        const std::vector<float> k = randn(n * kw), v = randn(n * vw);
        const stw_step st = cpu_step(tok_seq, pos);
        CHECK(cpu->kv_store(cpu, layer, k.data(), kw, v.data(), vw, &st) == 0);
        dbuf dk(k), dv(v), dseq(tok_seq), dpos(pos);
        stw_cuda_step ds{ddseqs.as<stw_step_seq>(), dseq.as<int32_t>(), dpos.as<int32_t>(), dtable.as<int32_t>()};
        CHECK_CUDA(stw_cuda_kv_store(layer, dk.as<float>(), kw, dv.as<float>(), vw, n, &ds, g_stream));
        CHECK_CUDA(stw_cuda_synchronize(g_stream));
    };
    // history, one "prefill" per sequence
    for (int32_t s = 0; s < n_seq; s++) {
        std::vector<int32_t> ts, ps;
        for (int32_t p = 0; p < c.lengths[s]; p++) {
            ts.push_back(s);
            ps.push_back(p);
        }
        if (!ts.empty()) store(ts, ps);
    }
    // the step: each sequence's query tokens, sequences in turn
    std::vector<int32_t> tok_seq, pos;
    for (int32_t s = 0; s < n_seq; s++)
        for (int32_t j = 0; j < c.step[s]; j++) {
            tok_seq.push_back(s);
            pos.push_back(c.lengths[s] + j);
        }
    store(tok_seq, pos);
    const std::vector<uint8_t> dev_pool = dpool.get<uint8_t>(host_pool.size());
    CHECK_MSG(dev_pool == host_pool, "%s: the device KV cache bytes differ from the CPU's", c.name);

    const int32_t n = (int32_t)tok_seq.size();
    const std::vector<float> q = randn((size_t)n * c.n_head * c.dk);
    std::vector<float> ref((size_t)n * c.n_head * c.dv);
    const stw_step st = cpu_step(tok_seq, pos);
    stw_attn_args a;
    a.n_tokens = n;
    a.layer = layer;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.dk = c.dk;
    a.dv = c.dv;
    a.scale = 1.0f / std::sqrt((float)c.dk);
    a.q = q.data();
    a.out = ref.data();
    a.step = &st;
    CHECK(cpu->attention(cpu, &a) == 0);

    std::vector<attn_tile> tiles(n);
    const int32_t nt = plan_attention(tok_seq.data(), n, tiles.data());
    tiles.resize(nt);
    dbuf dq(q), dout(ref.size() * 4), dseq(tok_seq), dpos(pos), dtiles(n * sizeof(attn_tile));
    dbuf partials(stw_cuda_attention_partial_bytes(c.n_head, c.dv));
    CHECK_CUDA(stw_cuda_attention_plan(dseq.as<int32_t>(), n, dtiles.as<attn_tile>(), g_stream));
    const std::vector<attn_tile> dev_plan = dtiles.get<attn_tile>(nt);
    for (int32_t t = 0; t < nt; t++)
        CHECK_MSG(dev_plan[t].first == tiles[t].first && dev_plan[t].count == tiles[t].count, "%s: device plan tile %d",
                  c.name, t);
    stw_cuda_step ds{ddseqs.as<stw_step_seq>(), dseq.as<int32_t>(), dpos.as<int32_t>(), dtable.as<int32_t>()};
    stw_cuda_attn ca{n, layer, c.n_head, c.n_head_kv, c.dk, c.dv, a.scale, dq.as<float>(), dout.as<float>()};
    CHECK_CUDA(stw_cuda_attention(&ca, &ds, dtiles.as<attn_tile>(), tiles.data(), nt, pos.data(), partials.as<float>(),
                                  partials.bytes, g_stream));
    const std::vector<float> got = dout.get<float>(ref.size());
    const double e = nmse(ref.data(), got.data(), ref.size());
    CHECK_MSG(e < 5e-4, "%s: attention NMSE %.3g", c.name, e);
    std::printf("  attention %-44s NMSE %.3g\n", c.name, e);
    CHECK_OK(stw_backend_free(cpu));
}

void test_kv_and_attention() {
    const int32_t kv_types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0};
    for (int32_t kt : kv_types) {
        const char *tn = kt == STW_TYPE_F32 ? "f32" : kt == STW_TYPE_F16 ? "f16" : "q8_0";
        char name[3][96];
        std::snprintf(name[0], sizeof name[0], "decode %s (lengths 0, 37, 700, 3000)", tn);
        std::snprintf(name[1], sizeof name[1], "prefill %s (40 from 0, 5 from 20, 1 decode)", tn);
        std::snprintf(name[2], sizeof name[2], "mixed %s, head dim 128, MHA", tn);
        run_attention_case({name[0], kt, 8, 2, 64, 64, {0, 37, 700, 3000}, {1, 1, 1, 1}});
        run_attention_case({name[1], kt, 8, 2, 64, 64, {0, 20, 301}, {40, 5, 1}});
        run_attention_case({name[2], kt, 4, 4, 128, 128, {17, 0}, {1, 19}});
    }
    run_attention_case({"f16, 1 KV head, 32-wide heads, 33 tokens", STW_TYPE_F16, 6, 1, 32, 32, {3}, {33}});
    // 130 decode tokens: more than the partial slots allow splitting, so the unsplit kernel writes the output
    attn_case many{"130 decodes (unsplit path)", STW_TYPE_F16, 4, 2, 64, 64, {}, {}};
    for (int s = 0; s < 130; s++) {
        many.lengths.push_back(260 + 7 * s);
        many.step.push_back(1);
    }
    run_attention_case(many);
}

void test_allocation_failure_is_a_status() {
    void *p = nullptr;
    const int rc = stw_cuda_malloc(&p, (size_t)1 << 50, 12345);
    CHECK(rc == STW_CUDA_STATUS_OUT_OF_MEMORY && p == nullptr);
    const char *msg = stw_cuda_last_error();
    CHECK_MSG(std::strstr(msg, "1125899906842624 bytes") && std::strstr(msg, "free") && std::strstr(msg, "12345"),
              "message: %s", msg);
    // the device still works after it
    dbuf ok(1024);
    CHECK_CUDA(stw_cuda_memset(ok.p, 0, 1024, g_stream));
    CHECK_CUDA(stw_cuda_synchronize(g_stream));
}

}  // namespace

int main() {
    if (stw_cuda_device_count() == 0) {
        std::printf("SKIPPED: no CUDA device visible (%s)\n", stw_cuda_last_error());
        return 77;
    }
    stw_cuda_device_info info;
    if (stw_cuda_device_open(0, &info) != 0) {
        std::fprintf(stderr, "cannot open CUDA device 0: %s\n", stw_cuda_last_error());
        return 1;
    }
    std::printf("device: %s (sm_%d%d, %s)\n", info.name, info.sm_major, info.sm_minor, info.uuid);
    if (stw_cuda_stream_create(&g_stream) != 0) {
        std::fprintf(stderr, "cannot create a stream: %s\n", stw_cuda_last_error());
        return 1;
    }
    test_matmul();
    test_norm_rope_swiglu_add();
    test_kv_and_attention();
    test_allocation_failure_is_a_status();
    stw_cuda_stream_destroy(g_stream);
    return test_finish("test_backend_ops");
}
