// bench_engine.cpp: prompt and decode speed of the native engine on a GGUF (or a generated Llama-shaped
// model with random weights), with the weight bandwidth achieved next to the machine's copy bandwidth.
//
//   stw_bench_engine --model M.gguf [--threads 1,2] [--prompt 64] [--gen 32]
//   stw_bench_engine --generate q8_0|q4_0 --out /tmp/llama-1b.gguf [--layers 22] ...
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core.h"
#include "stowage.h"

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t g_rng = 0x9e3779b97f4a7c15ull;
uint64_t next_u64() {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

uint16_t half_of(float f) { // positive normal values only (scales)
    uint32_t x;
    std::memcpy(&x, &f, 4);
    return (uint16_t)((((x >> 23) & 0xff) - 112) << 10 | ((x >> 13) & 0x3ff));
}

struct gen_tensor {
    std::string name;
    int32_t type;
    int64_t cols, rows; // rows 0: a vector
    uint64_t bytes() const {
        const int64_t r = rows ? rows : 1;
        if (type == STW_TYPE_F32) return (uint64_t)(cols * r * 4);
        return (uint64_t)(cols / 32 * r) * (type == STW_TYPE_Q8_0 ? 34 : 18);
    }
};

void put(FILE *f, const void *p, size_t n) {
    if (std::fwrite(p, 1, n, f) != n) {
        std::fprintf(stderr, "write failed\n");
        std::exit(1);
    }
}
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

// Writes a llama GGUF with random weights of `type` (Q8_0 or Q4_0 blocks with sane scales).
void generate(const char *path, int32_t type, int n_layer, int n_embd, int n_ff, int n_head, int n_head_kv, int n_vocab) {
    std::vector<gen_tensor> ts;
    const int hd = n_embd / n_head;
    ts.push_back({"token_embd.weight", type, n_embd, n_vocab});
    ts.push_back({"output_norm.weight", STW_TYPE_F32, n_embd, 0});
    ts.push_back({"output.weight", type, n_embd, n_vocab});
    for (int l = 0; l < n_layer; l++) {
        const std::string p = "blk." + std::to_string(l) + ".";
        ts.push_back({p + "attn_norm.weight", STW_TYPE_F32, n_embd, 0});
        ts.push_back({p + "attn_q.weight", type, n_embd, n_embd});
        ts.push_back({p + "attn_k.weight", type, n_embd, (int64_t)n_head_kv * hd});
        ts.push_back({p + "attn_v.weight", type, n_embd, (int64_t)n_head_kv * hd});
        ts.push_back({p + "attn_output.weight", type, n_embd, n_embd});
        ts.push_back({p + "ffn_norm.weight", STW_TYPE_F32, n_embd, 0});
        ts.push_back({p + "ffn_gate.weight", type, n_embd, n_ff});
        ts.push_back({p + "ffn_up.weight", type, n_embd, n_ff});
        ts.push_back({p + "ffn_down.weight", type, n_ff, n_embd});
    }
    FILE *f = std::fopen(path, "wb");
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", path);
        std::exit(1);
    }
    const uint32_t magic = 0x46554747, version = 3, t_str = 8;
    const uint64_t nt = ts.size(), nkv = 8;
    put(f, &magic, 4);
    put(f, &version, 4);
    put(f, &nt, 8);
    put(f, &nkv, 8);
    put_str(f, "general.architecture");
    put(f, &t_str, 4);
    put_str(f, "llama");
    put_kv_u32(f, "llama.block_count", (uint32_t)n_layer);
    put_kv_u32(f, "llama.embedding_length", (uint32_t)n_embd);
    put_kv_u32(f, "llama.feed_forward_length", (uint32_t)n_ff);
    put_kv_u32(f, "llama.attention.head_count", (uint32_t)n_head);
    put_kv_u32(f, "llama.attention.head_count_kv", (uint32_t)n_head_kv);
    put_kv_u32(f, "llama.context_length", 2048);
    put_kv_u32(f, "llama.vocab_size", (uint32_t)n_vocab);
    uint64_t off = 0;
    for (const gen_tensor &t : ts) {
        put_str(f, t.name);
        const uint32_t nd = t.rows ? 2 : 1, ty = (uint32_t)t.type;
        put(f, &nd, 4);
        const int64_t ne[2] = {t.cols, t.rows};
        put(f, ne, 8 * nd);
        put(f, &ty, 4);
        put(f, &off, 8);
        off += (t.bytes() + 31) / 32 * 32;
    }
    const long pos = std::ftell(f);
    std::vector<uint8_t> pad(32, 0);
    put(f, pad.data(), (size_t)((32 - pos % 32) % 32));
    for (const gen_tensor &t : ts) {
        const int64_t rows = t.rows ? t.rows : 1;
        const size_t bb = t.type == STW_TYPE_Q8_0 ? 34 : 18;
        std::vector<uint8_t> row(t.type == STW_TYPE_F32 ? (size_t)t.cols * 4 : (size_t)t.cols / 32 * bb);
        // scales make every output a sum of ~cols terms of size 1/cols: activations stay near 1
        const uint16_t d = half_of(t.type == STW_TYPE_Q8_0 ? 1.7f / (64.0f * std::sqrt((float)t.cols))
                                                            : 1.7f / (4.0f * std::sqrt((float)t.cols)));
        for (int64_t r = 0; r < rows; r++) {
            if (t.type == STW_TYPE_F32) {
                for (int64_t j = 0; j < t.cols; j++) {
                    const float one = 1.0f;
                    std::memcpy(row.data() + 4 * j, &one, 4);
                }
            } else {
                for (size_t j = 0; j + 8 <= row.size(); j += 8) {
                    const uint64_t v = next_u64();
                    std::memcpy(row.data() + j, &v, 8);
                }
                for (size_t b = 0; b < row.size() / bb; b++) std::memcpy(row.data() + b * bb, &d, 2);
            }
            put(f, row.data(), row.size());
        }
        put(f, pad.data(), (size_t)((32 - t.bytes() % 32) % 32));
    }
    std::fclose(f);
}

// Bytes per second of memcpy over a buffer much larger than the caches, split over n threads.
double copy_bandwidth(int threads) {
    const size_t n = (size_t)256 << 20;
    std::vector<uint8_t> a(n, 1), b(n, 2);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = now_s();
        std::vector<std::thread> ts;
        for (int i = 0; i < threads; i++)
            ts.emplace_back([&, i] {
                const size_t chunk = n / (size_t)threads;
                std::memcpy(b.data() + chunk * (size_t)i, a.data() + chunk * (size_t)i, chunk);
            });
        for (auto &t : ts) t.join();
        best = std::max(best, (double)n / (now_s() - t0));
    }
    return best;
}

// Bytes per second of a streaming read (a sum over 64-bit words), split over n threads: the bound
// for decode, which reads every weight once per token.
double read_bandwidth(int threads) {
    const size_t n = (size_t)256 << 20;
    std::vector<uint64_t> a(n / 8, 3);
    double best = 0;
    std::vector<uint64_t> sums((size_t)threads);
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = now_s();
        std::vector<std::thread> ts;
        for (int i = 0; i < threads; i++)
            ts.emplace_back([&, i] {
                const size_t chunk = a.size() / (size_t)threads;
                uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                const uint64_t *p = a.data() + chunk * (size_t)i;
                for (size_t j = 0; j + 4 <= chunk; j += 4) {
                    s0 += p[j];
                    s1 += p[j + 1];
                    s2 += p[j + 2];
                    s3 += p[j + 3];
                }
                sums[(size_t)i] = s0 + s1 + s2 + s3;
            });
        for (auto &t : ts) t.join();
        best = std::max(best, (double)n / (now_s() - t0));
    }
    volatile uint64_t sink = sums[0];
    (void)sink;
    return best;
}

#define CHECKED(expr)                                                                 \
    do {                                                                              \
        stw_status st_ = (expr);                                                      \
        if (st_) {                                                                    \
            std::fprintf(stderr, "%s failed (%d): %s\n", #expr, (int)st_, stw_last_error()); \
            std::exit(1);                                                             \
        }                                                                             \
    } while (0)

} // namespace

int main(int argc, char **argv) {
    std::string model, out, gen_type;
    std::vector<int> threads = {1, 2};
    int prompt = 64, n_gen = 32, layers = 22, embd = 2048, ff = 5632, heads = 32, kv_heads = 4, vocab = 32000;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto val = [&]() -> const char * {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--model") model = val();
        else if (a == "--generate") gen_type = val();
        else if (a == "--out") out = val();
        else if (a == "--prompt") prompt = std::atoi(val());
        else if (a == "--gen") n_gen = std::atoi(val());
        else if (a == "--layers") layers = std::atoi(val());
        else if (a == "--threads") {
            threads.clear();
            std::string s = val();
            for (size_t p = 0; p < s.size();) {
                threads.push_back(std::atoi(s.c_str() + p));
                p = s.find(',', p);
                if (p == std::string::npos) break;
                p++;
            }
        } else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (!gen_type.empty()) {
        if (out.empty() || (gen_type != "q8_0" && gen_type != "q4_0")) {
            std::fprintf(stderr, "--generate q8_0|q4_0 needs --out PATH\n");
            return 2;
        }
        const double t0 = now_s();
        generate(out.c_str(), gen_type == "q8_0" ? STW_TYPE_Q8_0 : STW_TYPE_Q4_0, layers, embd, ff, heads, kv_heads, vocab);
        std::printf("generated %s (%s, %d layers, n_embd %d) in %.1f s\n", out.c_str(), gen_type.c_str(), layers, embd,
                    now_s() - t0);
        if (model.empty()) model = out;
    }
    if (model.empty()) {
        std::fprintf(stderr, "usage: stw_bench_engine --model M.gguf | --generate q8_0|q4_0 --out PATH\n");
        return 2;
    }
    stw_model *m;
    CHECKED(stw_model_init_file(model.c_str(), &m));
    stw_hparams hp;
    stw_model_hparams(m, &hp);
    const uint64_t wbytes = stw_model_weight_bytes(m);
    // per decoded token every matrix is read once; an untied embedding table only for one row
    uint64_t read_bytes = wbytes;
    if (m->output.data != m->tok_embd.data) read_bytes -= m->tok_embd.row_bytes * (uint64_t)(m->tok_embd.ne1 - 1);
    std::printf("model %s: %d layers, n_embd %d, n_ff %d, heads %d/%d, vocab %d, weights %.1f MiB\n", model.c_str(),
                hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.n_vocab, wbytes / 1048576.0);
    std::printf("cpu: %s\n", stw_cpu_features());
    std::vector<int32_t> toks((size_t)prompt);
    for (int i = 0; i < prompt; i++) toks[(size_t)i] = (int32_t)(next_u64() % (uint64_t)hp.n_vocab);
    for (int nt : threads) {
        stw_context *c;
        stw_kv_pool *p;
        stw_seq *s;
        const double t_ctx = now_s();
        CHECKED(stw_context_init(m, nt, prompt, 1, &c));
        {
            // the context's weight buffer: the mapping, with the CPU's load-time repack where it applies
            uint64_t r8_bytes = 0;
            int32_t r8_mats = 0;
            double r8_s = 0;
            CHECKED(stw_model_repack_info(m, &r8_bytes, &r8_mats, &r8_s));
            std::printf("threads %d: context ready in %.3f s; CPU repack (R8, STW_CPU_REPACK=0 turns it off): %d matrices, "
                        "%.1f MiB in %.3f s\n",
                        nt, now_s() - t_ctx, r8_mats, r8_bytes / 1048576.0, r8_s);
        }
        CHECKED(stw_kv_pool_init(m, STW_TYPE_F16, stw_kv_bytes_per_token(m, STW_TYPE_F16) * (uint64_t)(prompt + n_gen + 32), &p));
        CHECKED(stw_seq_init(p, prompt + n_gen + 32, &s));
        std::vector<float> logits((size_t)hp.n_vocab);
        // warm-up: faults the mapping in
        int32_t tok = 1;
        uint8_t want = 1;
        CHECKED(stw_decode(c, 1, &tok, &s, &want, logits.data()));
        CHECKED(stw_seq_truncate(s, 0));
        std::vector<stw_seq *> seqs((size_t)prompt, s);
        std::vector<uint8_t> wants((size_t)prompt, 0);
        wants.back() = 1;
        double t0 = now_s();
        CHECKED(stw_decode(c, prompt, toks.data(), seqs.data(), wants.data(), logits.data()));
        const double t_prompt = now_s() - t0;
        t0 = now_s();
        for (int i = 0; i < n_gen; i++) {
            tok = (int32_t)(next_u64() % (uint64_t)hp.n_vocab);
            CHECKED(stw_decode(c, 1, &tok, &s, &want, logits.data()));
        }
        const double t_gen = now_s() - t0;
        const double decode_tps = n_gen / t_gen;
        const double bw = (double)read_bytes * decode_tps;
        const double copy = copy_bandwidth(nt), rd = read_bandwidth(nt);
        std::printf("threads %d: prompt %d tokens %.2f tok/s | decode %d tokens %.2f tok/s | weights read %.2f GB/s | "
                    "memcpy %.2f GB/s, streaming read %.2f GB/s (decode at %.0f%% of it) | workspace %.1f MiB, KV pool %.1f MiB\n",
                    nt, prompt, prompt / t_prompt, n_gen, decode_tps, bw / 1e9, copy / 1e9, rd / 1e9,
                    100.0 * bw / rd, stw_context_workspace_bytes(c) / 1048576.0,
                    stw_kv_pool_bytes(p) / 1048576.0);
        stw_seq_free(s);
        stw_kv_pool_free(p);
        stw_context_free(c);
    }
    stw_model_free(m);
    return 0;
}
