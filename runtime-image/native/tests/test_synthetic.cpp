// test_synthetic.cpp: generated GGUF models (qwen2 with QKV bias and NEOX RoPE, llama with partial
// RoPE, every supported weight type) against an independent, naive float reference forward pass.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"
#include "test_util.h"

namespace {

std::string g_tmp;

// ---- a minimal GGUF v3 writer ---------------------------------------------------------------

struct tensor_out {
    std::string name;
    int32_t type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
};

struct gguf_out {
    std::vector<uint8_t> meta; // key/value section
    uint64_t n_kv = 0;
    std::vector<tensor_out> tensors;

    void raw(const void *p, size_t n) { meta.insert(meta.end(), (const uint8_t *)p, (const uint8_t *)p + n); }
    void str(const std::string &s) {
        const uint64_t n = s.size();
        raw(&n, 8);
        raw(s.data(), s.size());
    }
    void kv_u32(const std::string &k, uint32_t v) {
        str(k);
        const uint32_t t = 4;
        raw(&t, 4);
        raw(&v, 4);
        n_kv++;
    }
    void kv_f32(const std::string &k, float v) {
        str(k);
        const uint32_t t = 6;
        raw(&t, 4);
        raw(&v, 4);
        n_kv++;
    }
    void kv_str(const std::string &k, const std::string &v) {
        str(k);
        const uint32_t t = 8;
        raw(&t, 4);
        str(v);
        n_kv++;
    }

    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> b;
        auto put = [&](const void *p, size_t n) { b.insert(b.end(), (const uint8_t *)p, (const uint8_t *)p + n); };
        const uint32_t magic = 0x46554747, version = 3;
        const uint64_t nt = tensors.size();
        put(&magic, 4);
        put(&version, 4);
        put(&nt, 8);
        put(&n_kv, 8);
        put(meta.data(), meta.size());
        uint64_t off = 0;
        for (const tensor_out &t : tensors) {
            const uint64_t n = t.name.size();
            put(&n, 8);
            put(t.name.data(), t.name.size());
            const uint32_t nd = (uint32_t)t.ne.size(), type = (uint32_t)t.type;
            put(&nd, 4);
            for (int64_t e : t.ne) put(&e, 8);
            put(&type, 4);
            put(&off, 8);
            off += (t.data.size() + 31) / 32 * 32;
        }
        b.resize((b.size() + 31) / 32 * 32, 0);
        for (const tensor_out &t : tensors) {
            put(t.data.data(), t.data.size());
            b.resize((b.size() + 31) / 32 * 32, 0);
        }
        return b;
    }
};

// ---- the model: random weights, kept as the floats the engine will see ------------------------

struct cfg {
    const char *arch;
    int n_layer, n_embd, n_ff, n_head, n_head_kv, dk, dv, rope_dim, n_vocab;
    float freq_base, eps;
    bool neox, bias, tied;
    bool freq_factors; // a rope_freqs.weight tensor (llama 3.x) divides the RoPE frequencies
};

struct ref_layer {
    std::vector<float> attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, gate, up, down;
};

struct ref_model {
    cfg c;
    std::vector<float> embd, out_norm, output, rope_freqs;
    std::vector<ref_layer> layers;
};

uint64_t g_rng = 0x1234567;
float frand() { // uniform in [-1, 1)
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

// A rows x cols weight: random values quantized to `type`; `deq` gets what the engine will read.
tensor_out make_weight(const std::string &name, int32_t type, int64_t cols, int64_t rows, std::vector<float> *deq,
                       float scale) {
    tensor_out t{name, type, rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows}, {}};
    const int64_t r = rows == 0 ? 1 : rows;
    std::vector<float> v((size_t)(cols * r));
    for (float &x : v) x = frand() * scale;
    const size_t rb = stw_cpu_row_bytes(type, cols);
    if (rb == 0) {
        std::fprintf(stderr, "type %d cannot hold rows of %lld\n", type, (long long)cols);
        std::exit(1);
    }
    t.data.resize(rb * (size_t)r);
    deq->resize(v.size());
    for (int64_t i = 0; i < r; i++) {
        if (stw_cpu_quantize_row(type, v.data() + i * cols, t.data.data() + i * rb, cols) != 0 ||
            stw_cpu_dequantize_row(type, t.data.data() + i * rb, deq->data() + i * cols, cols) != 0) {
            std::fprintf(stderr, "quantize/dequantize of type %d failed: %s\n", type, stw_cpu_last_error());
            std::exit(1);
        }
    }
    return t;
}

std::string write_model(const cfg &c, int32_t wtype, ref_model *m, const char *file) {
    gguf_out g;
    m->c = c;
    const std::string a = c.arch;
    g.kv_str("general.architecture", a);
    g.kv_u32(a + ".block_count", (uint32_t)c.n_layer);
    g.kv_u32(a + ".embedding_length", (uint32_t)c.n_embd);
    g.kv_u32(a + ".feed_forward_length", (uint32_t)c.n_ff);
    g.kv_u32(a + ".attention.head_count", (uint32_t)c.n_head);
    g.kv_u32(a + ".attention.head_count_kv", (uint32_t)c.n_head_kv);
    g.kv_u32(a + ".attention.key_length", (uint32_t)c.dk);
    g.kv_u32(a + ".attention.value_length", (uint32_t)c.dv);
    g.kv_u32(a + ".rope.dimension_count", (uint32_t)c.rope_dim);
    g.kv_u32(a + ".context_length", 256);
    g.kv_f32(a + ".rope.freq_base", c.freq_base);
    g.kv_f32(a + ".attention.layer_norm_rms_epsilon", c.eps);
    const float ws = 1.0f / std::sqrt((float)c.n_embd) * 1.7f;
    g.tensors.push_back(make_weight("token_embd.weight", wtype, c.n_embd, c.n_vocab, &m->embd, 1.0f));
    g.tensors.push_back(make_weight("output_norm.weight", STW_TYPE_F32, c.n_embd, 0, &m->out_norm, 1.0f));
    for (float &x : m->out_norm) x = 1.0f + 0.5f * x;
    g.tensors.back().data.assign((uint8_t *)m->out_norm.data(), (uint8_t *)(m->out_norm.data() + m->out_norm.size()));
    if (c.tied) {
        m->output = m->embd;
    } else {
        g.tensors.push_back(make_weight("output.weight", wtype, c.n_embd, c.n_vocab, &m->output, ws));
    }
    if (c.freq_factors) {
        g.tensors.push_back(make_weight("rope_freqs.weight", STW_TYPE_F32, c.rope_dim / 2, 0, &m->rope_freqs, 1.0f));
        for (float &x : m->rope_freqs) x = 1.0f + 7.0f * std::fabs(x);
        g.tensors.back().data.assign((uint8_t *)m->rope_freqs.data(),
                                     (uint8_t *)(m->rope_freqs.data() + m->rope_freqs.size()));
    }
    m->layers.resize((size_t)c.n_layer);
    for (int l = 0; l < c.n_layer; l++) {
        ref_layer &L = m->layers[(size_t)l];
        const std::string p = "blk." + std::to_string(l) + ".";
        auto norm = [&](const std::string &n, std::vector<float> *w) {
            g.tensors.push_back(make_weight(p + n, STW_TYPE_F32, c.n_embd, 0, w, 1.0f));
            for (float &x : *w) x = 1.0f + 0.3f * x;
            g.tensors.back().data.assign((uint8_t *)w->data(), (uint8_t *)(w->data() + w->size()));
        };
        norm("attn_norm.weight", &L.attn_norm);
        g.tensors.push_back(make_weight(p + "attn_q.weight", wtype, c.n_embd, c.n_head * c.dk, &L.wq, ws));
        g.tensors.push_back(make_weight(p + "attn_k.weight", wtype, c.n_embd, c.n_head_kv * c.dk, &L.wk, ws));
        g.tensors.push_back(make_weight(p + "attn_v.weight", wtype, c.n_embd, c.n_head_kv * c.dv, &L.wv, ws));
        if (c.bias) {
            g.tensors.push_back(make_weight(p + "attn_q.bias", STW_TYPE_F32, c.n_head * c.dk, 0, &L.bq, 0.5f));
            g.tensors.push_back(make_weight(p + "attn_k.bias", STW_TYPE_F32, c.n_head_kv * c.dk, 0, &L.bk, 0.5f));
            g.tensors.push_back(make_weight(p + "attn_v.bias", STW_TYPE_F32, c.n_head_kv * c.dv, 0, &L.bv, 0.5f));
        }
        g.tensors.push_back(make_weight(p + "attn_output.weight", wtype, c.n_head * c.dv, c.n_embd, &L.wo, ws));
        norm("ffn_norm.weight", &L.ffn_norm);
        g.tensors.push_back(make_weight(p + "ffn_gate.weight", wtype, c.n_embd, c.n_ff, &L.gate, ws));
        g.tensors.push_back(make_weight(p + "ffn_up.weight", wtype, c.n_embd, c.n_ff, &L.up, ws));
        g.tensors.push_back(make_weight(p + "ffn_down.weight", wtype, c.n_ff, c.n_embd, &L.down,
                                        1.7f / std::sqrt((float)c.n_ff)));
    }
    const std::string path = g_tmp + "/" + file;
    const std::vector<uint8_t> b = g.bytes();
    write_bytes(path, b.data(), b.size());
    return path;
}

// ---- the reference: one token at a time, full softmax, double accumulation ------------------

struct ref_state {
    std::vector<std::vector<float>> k, v; // per layer: [pos][n_head_kv * d]
};

void matvec(const std::vector<float> &w, const std::vector<float> &x, int rows, int cols, std::vector<float> *y) {
    y->assign((size_t)rows, 0.0f);
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int j = 0; j < cols; j++) s += (double)w[(size_t)r * cols + j] * x[(size_t)j];
        (*y)[(size_t)r] = (float)s;
    }
}

std::vector<float> rmsnorm(const std::vector<float> &x, const std::vector<float> &w, float eps) {
    double ss = 0;
    for (float v : x) ss += (double)v * v;
    const double inv = 1.0 / std::sqrt(ss / (double)x.size() + eps);
    std::vector<float> o(x.size());
    for (size_t i = 0; i < x.size(); i++) o[i] = (float)(x[i] * inv * w[i]);
    return o;
}

void rope(std::vector<float> *x, int n_heads, int hd, int pos, const cfg &c, const std::vector<float> &factors) {
    for (int h = 0; h < n_heads; h++) {
        float *v = x->data() + (size_t)h * hd;
        for (int i = 0; i < c.rope_dim / 2; i++) {
            const double theta = pos * std::pow((double)c.freq_base, -2.0 * i / c.rope_dim) /
                                 (factors.empty() ? 1.0 : (double)factors[(size_t)i]);
            const int a = c.neox ? i : 2 * i, b = c.neox ? i + c.rope_dim / 2 : 2 * i + 1;
            const double x0 = v[a], x1 = v[b];
            v[a] = (float)(x0 * std::cos(theta) - x1 * std::sin(theta));
            v[b] = (float)(x0 * std::sin(theta) + x1 * std::cos(theta));
        }
    }
}

std::vector<float> ref_step(const ref_model &m, ref_state *st, int token, int pos) {
    const cfg &c = m.c;
    std::vector<float> x(m.embd.begin() + (long)token * c.n_embd, m.embd.begin() + (long)(token + 1) * c.n_embd);
    if (st->k.empty()) {
        st->k.resize((size_t)c.n_layer);
        st->v.resize((size_t)c.n_layer);
    }
    for (int l = 0; l < c.n_layer; l++) {
        const ref_layer &L = m.layers[(size_t)l];
        std::vector<float> xn = rmsnorm(x, L.attn_norm, c.eps), q, k, v, att((size_t)(c.n_head * c.dv)), o;
        matvec(L.wq, xn, c.n_head * c.dk, c.n_embd, &q);
        matvec(L.wk, xn, c.n_head_kv * c.dk, c.n_embd, &k);
        matvec(L.wv, xn, c.n_head_kv * c.dv, c.n_embd, &v);
        if (c.bias) {
            for (size_t i = 0; i < q.size(); i++) q[i] += L.bq[i];
            for (size_t i = 0; i < k.size(); i++) k[i] += L.bk[i];
            for (size_t i = 0; i < v.size(); i++) v[i] += L.bv[i];
        }
        rope(&q, c.n_head, c.dk, pos, c, m.rope_freqs);
        rope(&k, c.n_head_kv, c.dk, pos, c, m.rope_freqs);
        st->k[(size_t)l].insert(st->k[(size_t)l].end(), k.begin(), k.end());
        st->v[(size_t)l].insert(st->v[(size_t)l].end(), v.begin(), v.end());
        const int group = c.n_head / c.n_head_kv;
        for (int h = 0; h < c.n_head; h++) {
            const int kh = h / group;
            std::vector<double> s((size_t)pos + 1);
            double mx = -1e300;
            for (int t = 0; t <= pos; t++) {
                double d = 0;
                for (int j = 0; j < c.dk; j++)
                    d += (double)q[(size_t)(h * c.dk + j)] *
                         st->k[(size_t)l][(size_t)t * c.n_head_kv * c.dk + (size_t)kh * c.dk + (size_t)j];
                s[(size_t)t] = d / std::sqrt((double)c.dk);
                mx = std::max(mx, s[(size_t)t]);
            }
            double sum = 0;
            for (double &e : s) sum += (e = std::exp(e - mx));
            for (int j = 0; j < c.dv; j++) {
                double acc = 0;
                for (int t = 0; t <= pos; t++)
                    acc += s[(size_t)t] *
                           st->v[(size_t)l][(size_t)t * c.n_head_kv * c.dv + (size_t)kh * c.dv + (size_t)j];
                att[(size_t)(h * c.dv + j)] = (float)(acc / sum);
            }
        }
        matvec(L.wo, att, c.n_embd, c.n_head * c.dv, &o);
        for (int i = 0; i < c.n_embd; i++) x[(size_t)i] += o[(size_t)i];
        xn = rmsnorm(x, L.ffn_norm, c.eps);
        std::vector<float> g, u, d;
        matvec(L.gate, xn, c.n_ff, c.n_embd, &g);
        matvec(L.up, xn, c.n_ff, c.n_embd, &u);
        for (int i = 0; i < c.n_ff; i++) {
            const double gi = g[(size_t)i];
            g[(size_t)i] = (float)(gi / (1.0 + std::exp(-gi)) * u[(size_t)i]);
        }
        matvec(L.down, g, c.n_embd, c.n_ff, &d);
        for (int i = 0; i < c.n_embd; i++) x[(size_t)i] += d[(size_t)i];
    }
    std::vector<float> logits;
    matvec(m.output, rmsnorm(x, m.out_norm, c.eps), c.n_vocab, c.n_embd, &logits);
    return logits;
}

// NMSE of engine logits against the reference over a prefill of 6 tokens and 4 decode steps.
double run_and_compare(const cfg &c, int32_t wtype, const char *file, int32_t kv_type = STW_TYPE_F32) {
    ref_model rm;
    const std::string path = write_model(c, wtype, &rm, file);
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(path.c_str(), &m));
    stw_hparams hp;
    stw_model_hparams(m, &hp);
    CHECK(hp.arch == (std::strcmp(c.arch, "qwen2") == 0 ? STW_ARCH_QWEN2 : STW_ARCH_LLAMA));
    CHECK(hp.rope_type == (c.neox ? STW_ROPE_TYPE_NEOX : STW_ROPE_TYPE_NORM));
    CHECK(hp.head_dim_k == c.dk && hp.rope_dim == c.rope_dim && hp.n_vocab == c.n_vocab);
    stw_kv_pool *pool;
    stw_context *ctx;
    stw_seq *s;
    REQUIRE_OK(stw_kv_pool_init(m, kv_type, 64 * stw_kv_bytes_per_token(m, kv_type), &pool));
    REQUIRE_OK(stw_context_init(m, 2, 8, 8, &ctx));
    REQUIRE_OK(stw_seq_init(pool, 64, &s));
    const std::vector<int32_t> toks = {3, 17, 9, 30, 1, 22, 5, 11, 40, 2};
    const int n_prefill = 6, V = c.n_vocab;
    std::vector<float> eng((size_t)toks.size() * V);
    std::vector<stw_seq *> seqs(n_prefill, s);
    std::vector<uint8_t> want(n_prefill, 1);
    REQUIRE_OK(stw_decode(ctx, n_prefill, toks.data(), seqs.data(), want.data(), eng.data()));
    for (size_t i = n_prefill; i < toks.size(); i++) {
        uint8_t w = 1;
        REQUIRE_OK(stw_decode(ctx, 1, &toks[i], &s, &w, eng.data() + i * V));
    }
    ref_state rs;
    double num = 0, den = 0;
    for (size_t i = 0; i < toks.size(); i++) {
        const std::vector<float> r = ref_step(rm, &rs, toks[i], (int)i);
        for (int j = 0; j < V; j++) {
            const double d = (double)eng[i * V + (size_t)j] - r[(size_t)j];
            num += d * d;
            den += (double)r[(size_t)j] * r[(size_t)j];
        }
    }
    stw_seq_free(s);
    stw_context_free(ctx);
    stw_kv_pool_free(pool);
    stw_model_free(m);
    std::remove(path.c_str());
    return num / den;
}

} // namespace

int main() {
    const char *tmp = std::getenv("STW_TEST_TMP");
    g_tmp = tmp ? tmp : ".";
    // qwen2: QKV biases, NEOX RoPE, head dim (32) unlike n_embd / n_head (16), GQA 4:2, tied output
    const cfg qwen = {"qwen2", 2, 64, 96, 4, 2, 32, 32, 32, 128, 1000000.0f, 1e-6f, true, true, true, false};
    // llama: adjacent-pair RoPE on 16 of 32 dims, separate output head, dv != dk
    const cfg llama = {"llama", 2, 64, 96, 4, 1, 32, 64, 16, 128, 10000.0f, 1e-5f, false, false, false, false};
    // llama 3.x style: per-frequency divisors from rope_freqs.weight
    const cfg llama3 = {"llama", 1, 64, 96, 4, 2, 16, 16, 16, 128, 500000.0f, 1e-5f, false, false, true, true};
    double e = run_and_compare(qwen, STW_TYPE_F32, "qwen2-f32.gguf");
    std::printf("qwen2 F32 vs reference: NMSE %.2e\n", e);
    CHECK_MSG(e < 1e-9, "qwen2 F32 NMSE %g", e);
    e = run_and_compare(llama, STW_TYPE_F32, "llama-f32.gguf");
    std::printf("llama F32 (partial RoPE, dv != dk) vs reference: NMSE %.2e\n", e);
    CHECK_MSG(e < 1e-9, "llama F32 NMSE %g", e);
    e = run_and_compare(llama3, STW_TYPE_F32, "llama3-f32.gguf");
    std::printf("llama F32 with rope_freqs.weight vs reference: NMSE %.2e\n", e);
    CHECK_MSG(e < 1e-9, "rope_freqs NMSE %g", e);
    e = run_and_compare(qwen, STW_TYPE_F32, "qwen2-f32-kvf16.gguf", STW_TYPE_F16);
    std::printf("qwen2 F32, f16 KV: NMSE %.2e\n", e);
    CHECK_MSG(e < 1e-5, "f16 KV NMSE %g", e);
    e = run_and_compare(qwen, STW_TYPE_F32, "qwen2-f32-kvq8.gguf", STW_TYPE_Q8_0);
    std::printf("qwen2 F32, q8_0 KV: NMSE %.2e\n", e);
    CHECK_MSG(e < 1e-3, "q8_0 KV NMSE %g", e);

    // every weight type (rows of 256 for the K-quants): the engine against the reference on the same
    // dequantized weights; the error left is the kernels' activation rounding
    const cfg wide = {"llama", 1, 256, 512, 4, 2, 64, 64, 64, 256, 10000.0f, 1e-5f, false, false, false, false};
    const struct {
        int32_t type;
        const char *name;
        double limit;
    } types[] = {{STW_TYPE_F32, "F32", 1e-9},   {STW_TYPE_F16, "F16", 1e-5},   {STW_TYPE_BF16, "BF16", 1e-4},
                 {STW_TYPE_Q8_0, "Q8_0", 1e-3}, {STW_TYPE_Q4_0, "Q4_0", 1e-3}, {STW_TYPE_Q4_K, "Q4_K", 1e-3},
                 {STW_TYPE_Q6_K, "Q6_K", 1e-3}};
    for (const auto &t : types) {
        e = run_and_compare(wide, t.type, "types.gguf");
        std::printf("weights %-4s (all matrices and the embedding) vs reference on the same values: NMSE %.2e (limit %.0e)\n",
                    t.name, e, t.limit);
        CHECK_MSG(e < t.limit, "%s NMSE %g", t.name, e);
    }
    return test_finish("test_synthetic");
}
