// test_cpu_repack.cpp: the CPU's load-time repack (R8) in the engine, on generated Q4_0 and Q4_K llama models:
// the same logits with STW_CPU_REPACK on and off, batch independence with it on, which matrices are
// rewritten (never token_embd, not an output head whose rows are not a multiple of 8), the memory rule
// (the repacked matrices are private pages of the second mapping, never resident twice; the weights'
// resident bytes stay the span's), GPU-style uploads still see the file's bytes, and unload / reload.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "core.h"
#include "kernels.h"
#include "test_util.h"

namespace {

std::string g_tmp;
// The weight type of the generated models (Q4_0, then Q4_K) and the R8 type the CPU gives it.
int32_t g_wt = STW_TYPE_Q4_0;
int32_t g_r8 = STW_CPU_TYPE_Q4_0_R8;

uint64_t g_rng = 0x2545f4914f6cdd1dull;
uint64_t next_u64() {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

void put(FILE *f, const void *p, size_t n) { CHECK(std::fwrite(p, 1, n, f) == n); }
void put_str(FILE *f, const std::string &s) {
    const uint64_t n = s.size();
    put(f, &n, 8);
    put(f, s.data(), s.size());
}
void put_kv_u32(FILE *f, const std::string &k, uint32_t v) {
    const uint32_t t = 4;
    put_str(f, k);
    put(f, &t, 4);
    put(f, &v, 4);
}

struct tensor_spec {
    std::string name;
    int32_t type; // STW_TYPE_F32 or g_wt
    int64_t cols, rows; // rows 0: a vector
};

// A 2-layer llama GGUF (n_embd 256, n_ff 512, 4 heads, 2 KV heads) with random g_wt (Q4_0 or Q4_K) matrices whose
// scales keep activations near 1, F32 norms of ones, and a separate output head of that type of n_vocab rows.
// alias: blk.1.ffn_up.weight's descriptor points at blk.1.ffn_gate.weight's bytes (a hostile file).
std::string write_model(const char *file, int32_t n_vocab, bool alias = false) {
    const int n_layer = 2, e = 256, ff = 512, nh = 4, nkv = 2, hd = e / nh;
    std::vector<tensor_spec> ts = {{"token_embd.weight", g_wt, e, n_vocab},
                                   {"output_norm.weight", STW_TYPE_F32, e, 0},
                                   {"output.weight", g_wt, e, n_vocab}};
    for (int l = 0; l < n_layer; l++) {
        const std::string p = "blk." + std::to_string(l) + ".";
        ts.push_back({p + "attn_norm.weight", STW_TYPE_F32, e, 0});
        ts.push_back({p + "attn_q.weight", g_wt, e, e});
        ts.push_back({p + "attn_k.weight", g_wt, e, nkv * hd});
        ts.push_back({p + "attn_v.weight", g_wt, e, nkv * hd});
        ts.push_back({p + "attn_output.weight", g_wt, e, e});
        ts.push_back({p + "ffn_norm.weight", STW_TYPE_F32, e, 0});
        ts.push_back({p + "ffn_gate.weight", g_wt, e, ff});
        ts.push_back({p + "ffn_up.weight", g_wt, e, ff});
        ts.push_back({p + "ffn_down.weight", g_wt, ff, e});
    }
    auto bytes_of = [](const tensor_spec &t) -> uint64_t {
        const int64_t r = t.rows ? t.rows : 1;
        return t.type == STW_TYPE_F32 ? (uint64_t)(t.cols * r * 4) : (uint64_t)stw_cpu_row_bytes(t.type, t.cols) * (uint64_t)r;
    };
    const std::string path = g_tmp + "/" + file;
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(1);
    }
    const uint32_t magic = 0x46554747, version = 3, t_str = 8;
    const uint64_t nt = ts.size(), nkvs = 8;
    put(f, &magic, 4);
    put(f, &version, 4);
    put(f, &nt, 8);
    put(f, &nkvs, 8);
    put_str(f, "general.architecture");
    put(f, &t_str, 4);
    put_str(f, "llama");
    put_kv_u32(f, "llama.block_count", n_layer);
    put_kv_u32(f, "llama.embedding_length", e);
    put_kv_u32(f, "llama.feed_forward_length", ff);
    put_kv_u32(f, "llama.attention.head_count", nh);
    put_kv_u32(f, "llama.attention.head_count_kv", nkv);
    put_kv_u32(f, "llama.context_length", 256);
    put_kv_u32(f, "llama.vocab_size", (uint32_t)n_vocab);
    uint64_t off = 0, gate1 = 0;
    for (const tensor_spec &t : ts) {
        put_str(f, t.name);
        const uint32_t nd = t.rows ? 2 : 1, ty = (uint32_t)t.type;
        put(f, &nd, 4);
        const int64_t ne[2] = {t.cols, t.rows};
        put(f, ne, 8 * nd);
        put(f, &ty, 4);
        if (t.name == "blk.1.ffn_gate.weight") gate1 = off;
        put(f, alias && t.name == "blk.1.ffn_up.weight" ? &gate1 : &off, 8);
        off += (bytes_of(t) + 31) / 32 * 32;
    }
    const long pos = std::ftell(f);
    const std::vector<uint8_t> pad(32, 0);
    put(f, pad.data(), (size_t)((32 - pos % 32) % 32));
    for (const tensor_spec &t : ts) {
        std::vector<uint8_t> data((size_t)((bytes_of(t) + 31) / 32 * 32), 0);
        if (t.type == STW_TYPE_F32) {
            for (int64_t j = 0; j < t.cols; j++) {
                const float one = 1.0f;
                std::memcpy(data.data() + 4 * j, &one, 4);
            }
        } else {
            const float d = 1.7f / (4.0f * std::sqrt((float)t.cols));
            std::vector<float> row((size_t)t.cols);
            const size_t rb = stw_cpu_row_bytes(t.type, t.cols);
            for (int64_t r = 0; r < t.rows; r++) {
                for (auto &v : row) v = d * (float)((int)(next_u64() % 17) - 8);
                stw_cpu_quantize_row(t.type, row.data(), data.data() + (size_t)r * rb, t.cols);
            }
        }
        put(f, data.data(), data.size());
    }
    std::fclose(f);
    return path;
}

struct run_out {
    std::vector<float> logits; // every step's logits, in order
};

// A 9-token prompt in one step, then 5 single-token steps of fixed tokens, on a context of `threads`.
run_out run(stw_model *m, int threads) {
    stw_hparams hp;
    stw_model_hparams(m, &hp);
    stw_context *c;
    stw_kv_pool *p;
    stw_seq *s;
    REQUIRE_OK(stw_context_init(m, threads, 16, 16, &c));
    REQUIRE_OK(stw_kv_pool_init(m, STW_TYPE_F32, 64 * stw_kv_bytes_per_token(m, STW_TYPE_F32), &p));
    REQUIRE_OK(stw_seq_init(p, 64, &s));
    const std::vector<int32_t> prompt = {1, 7, 33, 100, 5, 250, 17, 2, 90};
    run_out r;
    std::vector<float> lg((size_t)hp.n_vocab * prompt.size());
    std::vector<stw_seq *> seqs(prompt.size(), s);
    std::vector<uint8_t> want(prompt.size(), 1);
    REQUIRE_OK(stw_decode(c, (int32_t)prompt.size(), prompt.data(), seqs.data(), want.data(), lg.data()));
    r.logits = lg;
    for (int32_t tok : {4, 44, 144, 14, 41}) {
        std::vector<float> one((size_t)hp.n_vocab);
        uint8_t w = 1;
        REQUIRE_OK(stw_decode(c, 1, &tok, &s, &w, one.data()));
        r.logits.insert(r.logits.end(), one.begin(), one.end());
    }
    stw_seq_free(s);
    stw_kv_pool_free(p);
    stw_context_free(c);
    return r;
}

// ---- /proc/self: what is resident -----------------------------------------------------------------

struct vma_info {
    bool found = false;
    std::string perms;
    uint64_t size = 0, rss = 0, anonymous = 0; // bytes
};

vma_info smaps_of(const void *start) {
    vma_info v;
    FILE *f = std::fopen("/proc/self/smaps", "r");
    if (!f) return v;
    char line[512];
    bool in = false;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && std::strchr(line, ':') != nullptr &&
            std::strlen(perms) == 4) {
            in = lo == (unsigned long)(uintptr_t)start;
            if (in) {
                v.found = true;
                v.perms = perms;
            }
            continue;
        }
        if (!in) continue;
        unsigned long kb;
        if (std::sscanf(line, "Size: %lu kB", &kb) == 1) v.size = kb * 1024;
        else if (std::sscanf(line, "Rss: %lu kB", &kb) == 1) v.rss = kb * 1024;
        else if (std::sscanf(line, "Anonymous: %lu kB", &kb) == 1) v.anonymous = kb * 1024;
    }
    std::fclose(f);
    return v;
}

// Pages of [p, p + n) that this process has mapped in (pagemap's present bit).
uint64_t present_pages(const uint8_t *p, uint64_t n) {
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    FILE *f = std::fopen("/proc/self/pagemap", "rb");
    if (!f) return UINT64_MAX;
    uint64_t count = 0;
    const uint64_t first = (uint64_t)(uintptr_t)p / page, last = ((uint64_t)(uintptr_t)p + n + page - 1) / page;
    std::vector<uint64_t> e((size_t)(last - first));
    if (std::fseek(f, (long)(first * 8), SEEK_SET) != 0 || std::fread(e.data(), 8, e.size(), f) != e.size()) {
        std::fclose(f);
        return UINT64_MAX;
    }
    for (uint64_t x : e) count += (x >> 63) & 1;
    std::fclose(f);
    return count;
}

// ---- tests ---------------------------------------------------------------------------------------

// Repack on and off give the same logits within float rounding (both multiply the same integers; the
// float sums run in another order), with 1 and 2 threads; which matrices were rewritten.
void test_on_off() {
    for (int32_t vocab : {260, 264}) {
        const std::string path = write_model("repack-onoff.gguf", vocab);
        setenv("STW_CPU_REPACK", "0", 1);
        stw_model *off;
        REQUIRE_OK(stw_model_init_file(path.c_str(), &off));
        const run_out r_off = run(off, 2);
        {
            stw_context *c;
            REQUIRE_OK(stw_context_init(off, 1, 4, 1, &c));
            CHECK_MSG(off->cpu.map == nullptr, "STW_CPU_REPACK=0 keeps the zero-copy mapping");
            CHECK(c->wbase == off->map + off->span_start && !c->w_r8);
            stw_context_free(c);
        }
        stw_model_free(off);
        unsetenv("STW_CPU_REPACK");
        stw_model *on;
        REQUIRE_OK(stw_model_init_file(path.c_str(), &on));
        for (int threads : {1, 2}) {
            const run_out r_on = run(on, threads);
            CHECK(r_on.logits.size() == r_off.logits.size());
            double num = 0, den = 0, worst = 0, scale = 0;
            for (size_t i = 0; i < r_on.logits.size(); i++) {
                const double d = (double)r_on.logits[i] - r_off.logits[i];
                num += d * d;
                den += (double)r_off.logits[i] * r_off.logits[i];
                worst = std::fmax(worst, std::fabs(d));
                scale = std::fmax(scale, std::fabs((double)r_off.logits[i]));
            }
            std::printf("vocab %d threads %d: repack on vs off NMSE %.2e, worst %.2e of %.2e\n", vocab, threads, num / den,
                        worst, scale);
            CHECK_MSG(den > 0 && num / den < 1e-9, "repack on vs off NMSE %g", num / den);
            CHECK_MSG(worst <= 1e-4 * scale, "repack on vs off differ by %g (logits up to %g)", worst, scale);
            // the argmax agrees wherever the top two are apart
            int disagree = 0;
            for (size_t step = 0; step < r_on.logits.size() / (size_t)vocab; step++) {
                const float *a = r_on.logits.data() + step * vocab, *b = r_off.logits.data() + step * vocab;
                if (top_gap(b, vocab) > 1e-3f && argmax(a, vocab) != argmax(b, vocab)) disagree++;
            }
            CHECK_MSG(disagree == 0, "%d steps pick another token with the repack", disagree);
        }
        // what a context sees: 7 matrices per layer, the output head only when its rows are a multiple of 8
        stw_context *c;
        REQUIRE_OK(stw_context_init(on, 2, 4, 1, &c));
        uint64_t bytes = 0;
        int32_t mats = 0;
        double secs = -1;
        CHECK_OK(stw_model_repack_info(on, &bytes, &mats, &secs));
        const int32_t want_mats = 2 * 7 + (vocab % 8 == 0 ? 1 : 0);
        CHECK_MSG(mats == want_mats, "vocab %d: %d matrices repacked, want %d", vocab, mats, want_mats);
        uint64_t want_bytes = 0;
        for (const stw_layer_weights &L : on->layers)
            for (const stw_weight *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
                want_bytes += w->row_bytes * (uint64_t)w->ne1;
        if (vocab % 8 == 0) want_bytes += on->output.row_bytes * (uint64_t)on->output.ne1;
        CHECK_MSG(bytes == want_bytes, "repacked bytes %llu, want %llu", (unsigned long long)bytes,
                  (unsigned long long)want_bytes);
        CHECK(secs >= 0);
        CHECK(c->w_r8);
        CHECK(stw_model_matmul_type(on, on->tok_embd, true) == g_wt); // read by row: never repacked
        CHECK(stw_model_matmul_type(on, on->layers[1].w_down, true) == g_r8);
        CHECK(stw_model_matmul_type(on, on->layers[1].w_down, false) == g_wt);
        CHECK(stw_model_matmul_type(on, on->output, true) == (vocab % 8 == 0 ? g_r8 : g_wt));
        stw_context_free(c);
        stw_model_free(on);
        std::remove(path.c_str());
    }
}

// With the repack on, a sequence's logits do not depend on what else its steps hold: A's prompt alone,
// and A's prompt next to B's two tokens (B's tokens through the row kernels, A's run through the GEMM).
void test_batch_independence() {
    const std::string path = write_model("repack-batch.gguf", 264);
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(path.c_str(), &m));
    const int32_t V = 264;
    stw_context *c;
    stw_kv_pool *p;
    REQUIRE_OK(stw_context_init(m, 2, 16, 16, &c));
    REQUIRE_OK(stw_kv_pool_init(m, STW_TYPE_F32, 64 * stw_kv_bytes_per_token(m, STW_TYPE_F32), &p));
    const std::vector<int32_t> a = {3, 9, 27, 81, 243, 5};
    std::vector<float> alone(a.size() * V), mixed((a.size() + 2) * V);
    stw_seq *sa;
    REQUIRE_OK(stw_seq_init(p, 32, &sa));
    std::vector<stw_seq *> seqs(a.size(), sa);
    std::vector<uint8_t> want(a.size() + 2, 1);
    REQUIRE_OK(stw_decode(c, (int32_t)a.size(), a.data(), seqs.data(), want.data(), alone.data()));
    stw_seq_free(sa);
    stw_seq *sa2, *sb;
    REQUIRE_OK(stw_seq_init(p, 32, &sa2));
    REQUIRE_OK(stw_seq_init(p, 32, &sb));
    std::vector<int32_t> toks = {11, 12};
    std::vector<stw_seq *> seqs2 = {sb, sb};
    for (int32_t t : a) {
        toks.push_back(t);
        seqs2.push_back(sa2);
    }
    REQUIRE_OK(stw_decode(c, (int32_t)toks.size(), toks.data(), seqs2.data(), want.data(), mixed.data()));
    CHECK(c->w_r8);
    CHECK_MSG(std::memcmp(alone.data(), mixed.data() + 2 * V, alone.size() * 4) == 0,
              "a sequence's logits change when another sequence shares its step (repack on)");
    stw_seq_free(sa2);
    stw_seq_free(sb);
    stw_kv_pool_free(p);
    stw_context_free(c);
    stw_model_free(m);
    std::remove(path.c_str());
}

// The memory rule: the repacked matrices are private pages of the second mapping (read-only, its
// anonymous bytes the repacked bytes within a page per matrix), the shared mapping holds none of their
// pages, and the weights' resident bytes stay within the span (plus a page per matrix). GPU-style uploads
// (the emulated device) still get the file's bytes. Unload unmaps; a reload repacks again, to the same
// logits.
void test_memory_upload_reload() {
    const std::string path = write_model("repack-memory.gguf", 264);
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(path.c_str(), &m));
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    stw_context *c;
    REQUIRE_OK(stw_context_init(m, 2, 16, 16, &c));
    const run_out first = run(m, 2); // touches every weight (another context: the same shared mapping)
    REQUIRE_OK(m->cpu.map ? STW_STATUS_OK : STW_STATUS_INTERNAL);
    const vma_info v = smaps_of(m->cpu.map);
    int32_t mats = 0;
    uint64_t r8_bytes = 0;
    CHECK_OK(stw_model_repack_info(m, &r8_bytes, &mats, nullptr));
    std::printf("private mapping %llu bytes (%s): rss %llu, anonymous %llu; repacked %d matrices, %llu bytes; span %llu\n",
                (unsigned long long)v.size, v.perms.c_str(), (unsigned long long)v.rss, (unsigned long long)v.anonymous,
                mats, (unsigned long long)r8_bytes, (unsigned long long)m->span_bytes);
    CHECK_MSG(v.found, "the private mapping is in /proc/self/smaps");
    CHECK_MSG(v.perms == "r--p", "the repacked mapping is read-only and private, got %s", v.perms.c_str());
    CHECK(v.size >= m->span_bytes && v.size < m->span_bytes + 2 * page);
    CHECK_MSG(v.anonymous >= r8_bytes && v.anonymous <= r8_bytes + 2 * page * (uint64_t)mats,
              "private pages %llu for %llu repacked bytes in %d matrices", (unsigned long long)v.anonymous,
              (unsigned long long)r8_bytes, mats);
    // none of the repacked matrices' pages is resident through the shared mapping too
    uint64_t twice = 0;
    for (uint64_t rel : m->cpu.r8_rels) {
        uint64_t n = 0;
        for (const stw_layer_weights &L : m->layers)
            for (const stw_weight *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
                if (w->rel == rel) n = w->row_bytes * (uint64_t)w->ne1;
        if (m->output.rel == rel) n = m->output.row_bytes * (uint64_t)m->output.ne1;
        const uint8_t *s = m->map + m->span_start + rel;
        const uint8_t *lo = (const uint8_t *)(((uintptr_t)s + page - 1) / page * page); // whole pages inside
        const uint8_t *hi = (const uint8_t *)(((uintptr_t)s + n) / page * page);
        if (hi > lo) twice += present_pages(lo, (uint64_t)(hi - lo));
    }
    CHECK_MSG(twice == 0, "%llu pages of repacked matrices are resident through the shared mapping too",
              (unsigned long long)twice);
    const uint64_t shared_resident = present_pages(m->map + m->span_start, m->span_bytes) * page;
    CHECK_MSG(v.rss + shared_resident <= m->span_bytes + page * (uint64_t)(mats + 2),
              "weights resident %llu + %llu bytes for a span of %llu", (unsigned long long)v.rss,
              (unsigned long long)shared_resident, (unsigned long long)m->span_bytes);
    CHECK_MSG(v.rss + shared_resident >= m->span_bytes - page, "every weight was read: resident %llu of %llu",
              (unsigned long long)(v.rss + shared_resident), (unsigned long long)m->span_bytes);

    // a device upload (the emulated device: host memory, the device path) gets the file's bytes
    const std::vector<uint8_t> file = read_bytes(path);
    stw_backend *dev = nullptr;
    REQUIRE_OK(stw_backend_init_emulated(1, &dev));
    const uint8_t *dbase = nullptr;
    REQUIRE_OK(stw_model_acquire(m, dev, nullptr, nullptr, &dbase));
    CHECK_MSG(std::memcmp(dbase, file.data() + m->span_start, m->span_bytes) == 0,
              "the device's copy differs from the file (it must get the GGUF layout)");
    CHECK_MSG(std::memcmp(c->wbase, file.data() + m->span_start, m->span_bytes) != 0, "the CPU's weights were repacked");
    stw_model_release(m, dev);
    CHECK_OK(stw_backend_free(dev));

    // the last CPU reference unmaps; a reload repacks again and computes the same
    void *old = m->cpu.map;
    stw_context_free(c);
    CHECK_MSG(m->cpu.map == nullptr, "the repacked mapping outlived its last CPU reference");
    CHECK_MSG(!smaps_of(old).found, "the repacked mapping is still mapped after the last CPU reference");
    CHECK_OK(stw_model_repack_info(m, &r8_bytes, &mats, nullptr));
    CHECK(r8_bytes == 0 && mats == 0);
    const run_out again = run(m, 1);
    CHECK_MSG(again.logits.size() == first.logits.size() &&
                  std::memcmp(again.logits.data(), first.logits.data(), first.logits.size() * 4) == 0,
              "a reload (repacked again) computes other logits");
    stw_model_free(m);
    std::remove(path.c_str());
}

// Descriptors that share bytes (a hostile file): neither matrix is rewritten (rewriting one would change
// the other), the rest are, and the logits match the unrepacked run.
void test_aliased_tensors() {
    const std::string path = write_model("repack-alias.gguf", 260, true);
    setenv("STW_CPU_REPACK", "0", 1);
    stw_model *off;
    REQUIRE_OK(stw_model_init_file(path.c_str(), &off));
    const run_out r_off = run(off, 1);
    stw_model_free(off);
    unsetenv("STW_CPU_REPACK");
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(path.c_str(), &m));
    stw_context *c;
    REQUIRE_OK(stw_context_init(m, 1, 4, 1, &c));
    int32_t mats = 0;
    CHECK_OK(stw_model_repack_info(m, nullptr, &mats, nullptr));
    CHECK_MSG(mats == 2 * 7 - 2, "aliased file: %d matrices repacked, want 12", mats);
    CHECK(stw_model_matmul_type(m, m->layers[1].w_up, true) == g_wt);
    CHECK(stw_model_matmul_type(m, m->layers[1].w_gate, true) == g_wt);
    CHECK(stw_model_matmul_type(m, m->layers[0].w_up, true) == g_r8);
    stw_context_free(c);
    const run_out r_on = run(m, 1);
    double num = 0, den = 0;
    for (size_t i = 0; i < r_on.logits.size() && i < r_off.logits.size(); i++) {
        const double d = (double)r_on.logits[i] - r_off.logits[i];
        num += d * d;
        den += (double)r_off.logits[i] * r_off.logits[i];
    }
    CHECK_MSG(r_on.logits.size() == r_off.logits.size() && den > 0 && num / den < 1e-9,
              "aliased file: repack on vs off NMSE %g", den > 0 ? num / den : -1.0);
    stw_model_free(m);
    std::remove(path.c_str());
}

} // namespace

int main() {
    const char *tmp = std::getenv("STW_TEST_TMP");
    g_tmp = tmp ? tmp : ".";
    unsetenv("STW_CPU_REPACK");
    const int32_t types[][2] = {{STW_TYPE_Q4_0, STW_CPU_TYPE_Q4_0_R8}, {STW_TYPE_Q4_K, STW_CPU_TYPE_Q4_K_R8}};
    for (const auto &t : types) {
        g_wt = t[0];
        g_r8 = t[1];
        std::printf("test_cpu_repack: %s models\n", g_wt == STW_TYPE_Q4_0 ? "Q4_0" : "Q4_K");
        test_on_off();
        test_batch_independence();
        test_memory_upload_reload();
        test_aliased_tensors();
    }
    return test_finish("test_cpu_repack");
}
