// bench_cuda: the CUDA backend's benchmark (not a test). On generated Llama-shaped models (tools/gguf_gen.h) or a
// given GGUF: weight upload time, prompt and batch-1 decode tokens/s, achieved weight bandwidth next to a measured
// device-to-device copy, batch-1 decode with CUDA graphs on and off (the same positions, one after the other),
// aggregate decode tokens/s of 1, 2, 4, 8 replicas sharing one weight copy (one step per round, as the host runs
// them; graphs on), and the time from a replica assignment on a loaded model to its first token.
// Prints one line per model and a summary table; exits nonzero on any engine error.
//
//   stw_bench_cuda [--device N] [--dir DIR] [--models 1b:f16,1b:q8_0,8b:q4_0,...] [--model FILE.gguf]
//                  [--prompt 512] [--gen 64] [--replicas 1,2,4,8] [--keep]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core.h"
#include "gguf_gen.h"
#include "ops.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

#define CHECKED(expr)                                                                         \
    do {                                                                                      \
        const stw_status st_ = (expr);                                                        \
        if (st_ != STW_STATUS_OK) {                                                           \
            std::fprintf(stderr, "%s failed (%d): %s\n", #expr, (int)st_, stw_last_error());  \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

struct row {
    std::string name;
    double upload_s, prompt_tps, decode_tps, bw_gbs, first_token_ms;
    double decode_direct_tps;  // batch-1 decode with CUDA graphs off
    std::string graph_note;    // what the graphs did in the graphs-on run
    std::vector<double> replica_tps;
};

int32_t type_of(const std::string &s) {
    if (s == "f32") return STW_TYPE_F32;
    if (s == "f16") return STW_TYPE_F16;
    if (s == "bf16") return STW_TYPE_BF16;
    if (s == "q8_0") return STW_TYPE_Q8_0;
    if (s == "q4_0") return STW_TYPE_Q4_0;
    if (s == "q4_k") return STW_TYPE_Q4_K;
    if (s == "q6_k") return STW_TYPE_Q6_K;
    return -1;
}

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    size_t p = 0;
    while (p <= s.size()) {
        const size_t q = s.find(',', p);
        out.push_back(s.substr(p, q == std::string::npos ? std::string::npos : q - p));
        if (q == std::string::npos) break;
        p = q + 1;
    }
    return out;
}

uint64_t g_rng = 0x2545f4914f6cdd1dull;
int32_t rand_token(int32_t n_vocab) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (int32_t)(g_rng % (uint64_t)n_vocab);
}

row bench_model(stw_backend *be, const std::string &path, const std::string &name, int prompt, int n_gen,
                const std::vector<int> &replicas) {
    row r{name, 0, 0, 0, 0, 0, 0, "", {}};
    stw_model *m;
    CHECKED(stw_model_init_file(path.c_str(), &m));
    stw_hparams hp;
    CHECKED(stw_model_hparams(m, &hp));
    double t0 = now_s();
    CHECKED(stw_model_load(m, be, nullptr, nullptr));
    r.upload_s = now_s() - t0;
    // per decoded token every matrix is read once; of an untied embedding table only one row
    uint64_t read_bytes = stw_model_weight_bytes(m);
    if (m->output.data != m->tok_embd.data) read_bytes -= m->tok_embd.row_bytes * (uint64_t)(m->tok_embd.ne1 - 1);

    int max_rep = 1;
    for (int n : replicas) max_rep = n > max_rep ? n : max_rep;
    const int batch = prompt > max_rep ? prompt : max_rep;
    stw_context *c;
    CHECKED(stw_context_init_on(be, m, batch, max_rep, &c));
    const int32_t max_tokens = prompt + n_gen + 16;
    const uint64_t kv_bytes = stw_kv_bytes_per_token(m, STW_TYPE_F16) * (uint64_t)max_tokens;
    std::vector<float> logits((size_t)hp.n_vocab * (size_t)max_rep);

    // prompt and batch-1 decode on one replica
    stw_kv_pool *pool;
    stw_seq *s;
    CHECKED(stw_kv_pool_init_on(be, m, STW_TYPE_F16, kv_bytes, &pool));
    CHECKED(stw_seq_init(pool, max_tokens, &s));
    std::vector<int32_t> toks((size_t)prompt);
    for (int32_t &t : toks) t = rand_token(hp.n_vocab);
    std::vector<stw_seq *> seqs((size_t)batch, s);
    std::vector<uint8_t> want((size_t)prompt, 0);
    want.back() = 1;
    CHECKED(stw_decode(c, prompt, toks.data(), seqs.data(), want.data(), logits.data()));  // warm-up
    CHECKED(stw_seq_truncate(s, 0));
    t0 = now_s();
    CHECKED(stw_decode(c, prompt, toks.data(), seqs.data(), want.data(), logits.data()));
    r.prompt_tps = prompt / (now_s() - t0);
    // batch-1 decode after the prompt, graphs on and then off over the same positions
    const uint8_t one = 1;
    auto decode_b1 = [&](bool graphs, int steps) -> double {
        if (stw_cuda_graph_set_enabled(be, graphs ? 1 : 0) != 0) {
            std::fprintf(stderr, "graph switch: %s\n", stw_cuda_last_error());
            std::exit(1);
        }
        CHECKED(stw_seq_truncate(s, prompt));
        const double t = now_s();
        for (int i = 0; i < steps; i++) {
            const int32_t tok = rand_token(hp.n_vocab);
            CHECKED(stw_decode(c, 1, &tok, &s, &one, logits.data()));
        }
        return steps / (now_s() - t);
    };
    decode_b1(true, 4);  // warm-up: the first graph is instantiated
    stw_cuda_graph_stats g0, g1;
    stw_cuda_graph_stats_get(be, &g0);
    r.decode_tps = decode_b1(true, n_gen);
    stw_cuda_graph_stats_get(be, &g1);
    r.decode_direct_tps = decode_b1(false, n_gen);
    stw_cuda_graph_set_enabled(be, 1);
    char note[400];
    if (g1.enabled)
        std::snprintf(note, sizeof note, "%llu of %d steps as graph launches (%llu updates, %llu instantiations)",
                      (unsigned long long)(g1.launched - g0.launched), n_gen, (unsigned long long)(g1.updated - g0.updated),
                      (unsigned long long)(g1.instantiated - g0.instantiated));
    else
        std::snprintf(note, sizeof note, "GRAPHS WENT OFF: %s", g1.off_reason);
    r.graph_note = note;
    r.bw_gbs = (double)read_bytes * r.decode_tps / 1e9;
    stw_seq_free(s);
    stw_kv_pool_free(pool);

    // N replicas of the model: each its own KV pool and sequence, all decoding in one step per round
    for (int n : replicas) {
        std::vector<stw_kv_pool *> pools((size_t)n);
        std::vector<stw_seq *> rs((size_t)n);
        for (int i = 0; i < n; i++) {
            CHECKED(stw_kv_pool_init_on(be, m, STW_TYPE_F16, kv_bytes, &pools[(size_t)i]));
            CHECKED(stw_seq_init(pools[(size_t)i], max_tokens, &rs[(size_t)i]));
        }
        std::vector<int32_t> t((size_t)n);
        std::vector<uint8_t> w((size_t)n, 1);
        for (int32_t &x : t) x = rand_token(hp.n_vocab);
        CHECKED(stw_decode(c, n, t.data(), rs.data(), w.data(), logits.data()));  // warm-up
        const int rounds = n_gen;
        t0 = now_s();
        for (int k = 0; k < rounds; k++) {
            for (int32_t &x : t) x = rand_token(hp.n_vocab);
            CHECKED(stw_decode(c, n, t.data(), rs.data(), w.data(), logits.data()));
        }
        r.replica_tps.push_back((double)n * rounds / (now_s() - t0));
        for (int i = 0; i < n; i++) {
            stw_seq_free(rs[(size_t)i]);
            stw_kv_pool_free(pools[(size_t)i]);
        }
    }

    // a new replica on the loaded model: its KV pool, its sequence, a 16-token prompt, the first token's logits
    t0 = now_s();
    CHECKED(stw_kv_pool_init_on(be, m, STW_TYPE_F16, kv_bytes, &pool));
    CHECKED(stw_seq_init(pool, max_tokens, &s));
    const int np = prompt < 16 ? prompt : 16;
    std::vector<uint8_t> w16((size_t)np, 0);
    w16.back() = 1;
    const std::vector<stw_seq *> s16((size_t)np, s);
    CHECKED(stw_decode(c, np, toks.data(), s16.data(), w16.data(), logits.data()));
    r.first_token_ms = (now_s() - t0) * 1e3;
    stw_seq_free(s);
    stw_kv_pool_free(pool);

    stw_context_free(c);
    stw_model_unload(m, be);
    stw_model_free(m);
    return r;
}

}  // namespace

int main(int argc, char **argv) {
    int device = 0, prompt = 512, n_gen = 64;
    std::string dir = ".", models = "1b:f16,1b:q8_0,1b:q4_0,1b:q4_k,8b:q4_0,8b:q8_0", file;
    std::vector<int> replicas = {1, 2, 4, 8};
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--device") device = std::atoi(val().c_str());
        else if (a == "--dir") dir = val();
        else if (a == "--models") models = val();
        else if (a == "--model") file = val();
        else if (a == "--prompt") prompt = std::atoi(val().c_str());
        else if (a == "--gen") n_gen = std::atoi(val().c_str());
        else if (a == "--keep") keep = true;
        else if (a == "--replicas") {
            replicas.clear();
            for (const std::string &s : split(val())) replicas.push_back(std::atoi(s.c_str()));
        } else {
            std::fprintf(stderr, "unknown argument %s (see the comment at the top of tools/bench_cuda.cpp)\n", a.c_str());
            return 2;
        }
    }
    if (prompt < 1 || n_gen < 1) {
        std::fprintf(stderr, "--prompt and --gen must be at least 1\n");
        return 2;
    }
    stw_backend *be;
    const stw_status st = stw_backend_init(STW_BACKEND_KIND_CUDA, device, 1, &be);
    if (st != STW_STATUS_OK) {
        std::fprintf(stderr, "no CUDA backend on device %d: %s\n", device, stw_last_error());
        return 1;
    }
    stw_device_info info;
    CHECKED(stw_backend_device_info(be, &info));
    double copy_s = 0;
    if (stw_cuda_measure_copy((size_t)1 << 30, 10, &copy_s) != 0) {
        std::fprintf(stderr, "copy benchmark failed: %s\n", stw_cuda_last_error());
        return 1;
    }
    const double copy_gbs = 2.0 * (double)(1u << 30) / copy_s / 1e9;
    std::printf("device %d: %s (%s), %.1f GiB; device-to-device copy %.0f GB/s (read + write)\n", device, info.name,
                info.uuid, info.total_bytes / 1073741824.0, copy_gbs);

    std::vector<row> rows;
    auto report = [&](const row &r) {
        std::printf("%s: upload %.2f s, prompt %.0f tok/s, decode %.1f tok/s (%.0f GB/s, %.0f%% of copy), first token of "
                    "a new replica %.1f ms\n",
                    r.name.c_str(), r.upload_s, r.prompt_tps, r.decode_tps, r.bw_gbs, 100.0 * r.bw_gbs / copy_gbs,
                    r.first_token_ms);
        std::printf("graphs: %s decode batch 1: on %.1f tok/s, off %.1f tok/s (%.2fx); %s\n", r.name.c_str(),
                    r.decode_tps, r.decode_direct_tps, r.decode_tps / r.decode_direct_tps, r.graph_note.c_str());
        std::fflush(stdout);
    };
    if (!file.empty()) {
        rows.push_back(bench_model(be, file, file, prompt, n_gen, replicas));
        report(rows.back());
    } else {
        for (const std::string &spec : split(models)) {
            const size_t colon = spec.find(':');
            const std::string sh = spec.substr(0, colon), ty = colon == std::string::npos ? "" : spec.substr(colon + 1);
            const int32_t type = type_of(ty);
            if ((sh != "1b" && sh != "8b") || type < 0) {
                std::fprintf(stderr, "bad model spec '%s' (SHAPE:TYPE, SHAPE 1b or 8b, TYPE f32 f16 bf16 q8_0 q4_0 q4_k q6_k)\n",
                             spec.c_str());
                return 2;
            }
            const std::string path = dir + "/stowage-bench-" + spec.substr(0, colon) + "-" + ty + ".gguf";
            std::string err;
            if (access(path.c_str(), R_OK) != 0) {
                const double t0 = now_s();
                if (!stw_gen::generate(path, type, sh == "1b" ? stw_gen::kShape1B : stw_gen::kShape8B, 14, &err)) {
                    std::fprintf(stderr, "%s\n", err.c_str());
                    return 1;
                }
                std::printf("generated %s in %.1f s\n", path.c_str(), now_s() - t0);
            }
            rows.push_back(bench_model(be, path, spec, prompt, n_gen, replicas));
            report(rows.back());
            if (!keep) unlink(path.c_str());
        }
    }
    std::printf("\n| model | prompt tok/s | decode tok/s | decode, graphs off | weights GB/s | of copy | first token ms |");
    for (int n : replicas) std::printf(" %dx tok/s (%dx/1x) |", n, n);
    std::printf("\n|---|---|---|---|---|---|---|");
    for (size_t i = 0; i < replicas.size(); i++) std::printf("---|");
    std::printf("\n");
    for (const row &r : rows) {
        std::printf("| %s | %.0f | %.1f | %.1f | %.0f | %.0f%% | %.1f |", r.name.c_str(), r.prompt_tps, r.decode_tps,
                    r.decode_direct_tps, r.bw_gbs, 100.0 * r.bw_gbs / copy_gbs, r.first_token_ms);
        for (size_t i = 0; i < r.replica_tps.size(); i++)
            std::printf(" %.1f (%.2f) |", r.replica_tps[i], r.replica_tps[i] / r.replica_tps[0]);
        std::printf("\n");
    }
    CHECKED(stw_backend_free(be));
    return 0;
}
