// test_cuda_engine: the whole engine on a CUDA backend against the CPU: stories260K's golden tokens (F32 and Q8_0
// weights), generated random-weight models of every weight type and every KV type, two contexts (replicas) sharing
// one device copy of the weights (device bytes measured), KV pool exhaustion, cancel from another thread, and a
// hostile (truncated) file refused before anything is uploaded; decode steps as CUDA graphs bit-identical to direct
// launches across the attention's first split, and a failing graph call (injected) falling back to direct launches
// with unchanged results. Skipped (exit 77) where no GPU is visible.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gguf_gen.h"
#include "graph_policy.h"
#include "ops.h"
#include "test_util.h"

namespace {

stw_backend *g_cuda = nullptr;
std::string g_tmp;

// A model with one KV pool and one context on a backend (the CPU's when be is NULL).
struct engine {
    stw_model *model = nullptr;
    stw_kv_pool *pool = nullptr;
    stw_context *ctx = nullptr;
    stw_hparams hp{};
    engine(const std::string &path, stw_backend *be, int32_t kv_type, int32_t batch = 64) {
        REQUIRE_OK(stw_model_init_file(path.c_str(), &model));
        REQUIRE_OK(stw_model_hparams(model, &hp));
        const uint64_t kv = stw_kv_bytes_per_token(model, kv_type) * 512;
        if (be) {
            REQUIRE_OK(stw_kv_pool_init_on(be, model, kv_type, kv, &pool));
            REQUIRE_OK(stw_context_init_on(be, model, batch, 4, &ctx));
        } else {
            REQUIRE_OK(stw_kv_pool_init(model, kv_type, kv, &pool));
            REQUIRE_OK(stw_context_init(model, 2, batch, 4, &ctx));
        }
    }
    ~engine() {
        stw_context_free(ctx);
        stw_kv_pool_free(pool);
        stw_model_free(model);
    }
    std::vector<int32_t> greedy(const std::vector<int32_t> &prompt, int n, std::vector<float> *first,
                                std::vector<float> *gaps = nullptr) {
        stw_seq *s;
        REQUIRE_OK(stw_seq_init(pool, 512, &s));
        std::vector<int32_t> out = generate_greedy(ctx, s, hp.n_vocab, prompt, n, first, gaps);
        stw_seq_free(s);
        return out;
    }
};

float max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
    if (a.size() != b.size()) return INFINITY;
    float m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::fmax(m, std::fabs(a[i] - b[i]));
    return m;
}

// Index of the first difference of two token lists, -1 when equal.
int first_diff(const std::vector<int32_t> &a, const std::vector<int32_t> &b) {
    for (size_t i = 0; i < a.size() && i < b.size(); i++)
        if (a[i] != b[i]) return (int)i;
    return a.size() == b.size() ? -1 : (int)std::min(a.size(), b.size());
}

void test_golden() {
    const std::string golden = read_text(test_data_path("stories260K.golden.json"));
    const std::vector<int32_t> prompt = json_ints(golden, "prompt_token_ids");
    const std::vector<int32_t> expected = json_ints(golden, "generated_token_ids");
    const char *files[] = {"stories260K-f32.gguf", "stories260K-q8_0.gguf"};
    const int32_t kv_types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0};
    for (const char *file : files)
        for (int32_t kv : kv_types) {
            std::vector<float> cpu_first, gpu_first, cpu_gaps;
            std::vector<int32_t> cpu_tokens, gpu_tokens;
            {
                engine e(test_data_path(file), nullptr, kv);
                cpu_tokens = e.greedy(prompt, 40, &cpu_first, &cpu_gaps);
            }
            {
                engine e(test_data_path(file), g_cuda, kv);
                gpu_tokens = e.greedy(prompt, 40, &gpu_first);
            }
            const float d = max_abs_diff(cpu_first, gpu_first);
            const int diff = first_diff(cpu_tokens, gpu_tokens);
            std::printf("  %s, KV %d: first-step logits max |CUDA - CPU| %.2e; tokens %s (first difference %d)\n", file,
                        kv, (double)d, diff < 0 ? "equal" : "DIFFER", diff);
            // F32 weights: both engines multiply in float (summation order differs); Q8_0 weights: the CPU quantizes
            // the activations to int8 as well, the GPU keeps them in float
            const bool f32 = std::string(file) == "stories260K-f32.gguf";
            const float tol = f32 ? 1e-3f : 0.15f;
            CHECK_MSG(d < tol, "%s KV %d: first-step logits differ by %g", file, kv, (double)d);
            // equal tokens, or a first difference only where the CPU's top-2 gap is within that noise
            CHECK_MSG(diff < 0 || cpu_gaps[(size_t)diff] < 2 * tol, "%s KV %d: tokens differ at %d (CPU gap %g)", file,
                      kv, diff, diff < 0 ? 0.0 : (double)cpu_gaps[(size_t)diff]);
            if (std::string(file) == "stories260K-f32.gguf" && kv == STW_TYPE_F32)
                CHECK_MSG(gpu_tokens == expected, "F32 CUDA tokens differ from the golden vector at %d",
                          first_diff(gpu_tokens, expected));
        }
}

void test_generated_models() {
    const int32_t types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_BF16, STW_TYPE_Q8_0, STW_TYPE_Q4_0, STW_TYPE_Q4_K,
                             STW_TYPE_Q6_K};
    const stw_gen::shape s{2, 256, 768, 4, 2, 300};
    const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 42, 7, 180, 11, 2, 5, 64, 200, 33, 8, 9, 10, 12, 13, 14};
    for (int32_t t : types) {
        const std::string path = g_tmp + "/cuda_gen_" + std::to_string(t) + ".gguf";
        std::string err;
        if (!stw_gen::generate(path, t, s, (uint64_t)t + 1, &err)) {
            CHECK_MSG(false, "%s", err.c_str());
            continue;
        }
        std::vector<float> cpu_first, gpu_first;
        std::vector<int32_t> cpu_tokens, gpu_tokens;
        {
            engine e(path, nullptr, STW_TYPE_F16);
            cpu_tokens = e.greedy(prompt, 8, &cpu_first);
        }
        {
            engine e(path, g_cuda, STW_TYPE_F16);
            gpu_tokens = e.greedy(prompt, 8, &gpu_first);
        }
        double num = 0, den = 0;
        for (size_t i = 0; i < cpu_first.size(); i++) {
            num += (double)(cpu_first[i] - gpu_first[i]) * (cpu_first[i] - gpu_first[i]);
            den += (double)cpu_first[i] * cpu_first[i];
        }
        const double nmse = den > 0 ? num / den : num;
        std::printf("  generated type %2d: prompt logits NMSE CUDA vs CPU %.2e, 8 greedy tokens %s\n", t, nmse,
                    cpu_tokens == gpu_tokens ? "equal" : "differ");
        // the CPU quantizes activations to int8 for quantized weights; the GPU keeps them in float
        CHECK_MSG(nmse < 5e-3, "type %d: logits NMSE %g", t, nmse);
        unlink(path.c_str());
    }
}

void test_replicas_share_one_weight_copy() {
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(test_data_path("stories260K-f32.gguf").c_str(), &m));
    const uint64_t before = stw_backend_allocated_bytes(g_cuda);
    stw_kv_pool *p1, *p2;
    stw_context *c1, *c2;
    const uint64_t kv = stw_kv_bytes_per_token(m, STW_TYPE_F16) * 256;
    REQUIRE_OK(stw_kv_pool_init_on(g_cuda, m, STW_TYPE_F16, kv, &p1));
    REQUIRE_OK(stw_context_init_on(g_cuda, m, 32, 2, &c1));
    const uint64_t one = stw_backend_allocated_bytes(g_cuda) - before;
    const uint64_t weights = stw_model_device_bytes(m, g_cuda);
    REQUIRE_OK(stw_kv_pool_init_on(g_cuda, m, STW_TYPE_F16, kv, &p2));
    REQUIRE_OK(stw_context_init_on(g_cuda, m, 32, 2, &c2));
    const uint64_t two = stw_backend_allocated_bytes(g_cuda) - before;
    std::printf("  replicas: weights on device %llu bytes (file tensors %llu); one replica %llu, two %llu bytes\n",
                (unsigned long long)weights, (unsigned long long)stw_model_weight_bytes(m), (unsigned long long)one,
                (unsigned long long)two);
    CHECK(weights >= stw_model_weight_bytes(m));
    CHECK_MSG(stw_model_device_refs(m, g_cuda) == 4, "%d references", stw_model_device_refs(m, g_cuda));
    // the second replica adds its KV pool only: no second weight copy, and the workspace is shared
    CHECK_MSG(two - one == stw_kv_pool_bytes(p2), "second replica added %llu bytes, its pool is %llu",
              (unsigned long long)(two - one), (unsigned long long)stw_kv_pool_bytes(p2));
    // both replicas decode, in one step, the same as apart
    stw_seq *s1, *s2;
    REQUIRE_OK(stw_seq_init(p1, 64, &s1));
    REQUIRE_OK(stw_seq_init(p2, 64, &s2));
    const int32_t toks[4] = {1, 403, 1, 403};
    stw_seq *seqs[4] = {s1, s1, s2, s2};
    const uint8_t want[4] = {0, 1, 0, 1};
    std::vector<float> logits(2 * 512);
    CHECK_OK(stw_decode(c1, 4, toks, seqs, want, logits.data()));
    CHECK_MSG(max_abs_diff(std::vector<float>(logits.begin(), logits.begin() + 512),
                           std::vector<float>(logits.begin() + 512, logits.end())) == 0.0f,
              "two replicas' identical sequences got different logits in one step");
    stw_seq_free(s1);
    stw_seq_free(s2);
    stw_context_free(c2);
    stw_kv_pool_free(p2);
    stw_context_free(c1);
    stw_kv_pool_free(p1);
    CHECK(stw_model_device_bytes(m, g_cuda) == 0);
    stw_model_free(m);
    CHECK_MSG(stw_backend_allocated_bytes(g_cuda) == before, "%llu bytes left on the device",
              (unsigned long long)(stw_backend_allocated_bytes(g_cuda) - before));
}

void test_kv_exhaustion_and_cancel() {
    engine e(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
    stw_kv_pool_free(e.pool);
    // a pool of 2 blocks (32 tokens): the 33rd token is refused and the sequence is unchanged
    REQUIRE_OK(stw_kv_pool_init_on(g_cuda, e.model, STW_TYPE_F16, stw_kv_bytes_per_token(e.model, STW_TYPE_F16) * 32, &e.pool));
    CHECK(stw_kv_pool_blocks(e.pool) == 2);
    stw_seq *s;
    REQUIRE_OK(stw_seq_init(e.pool, 64, &s));
    std::vector<int32_t> toks(32, 5);
    std::vector<stw_seq *> seqs(33, s);
    CHECK_OK(stw_decode(e.ctx, 32, toks.data(), seqs.data(), nullptr, nullptr));
    const int32_t one = 7;
    const stw_status st = stw_decode(e.ctx, 1, &one, seqs.data(), nullptr, nullptr);
    CHECK_MSG(st == STW_STATUS_BUDGET_EXCEEDED, "status %d: %s", (int)st, stw_last_error());
    CHECK(stw_seq_length(s) == 32);
    // cancel from another thread: the step returns CANCELLED and changes nothing, or finished first
    CHECK_OK(stw_seq_truncate(s, 0));
    std::atomic<bool> done{false};
    std::thread canceller([&] {
        while (!done.load()) stw_context_cancel(e.ctx);
    });
    int cancelled = 0;
    for (int i = 0; i < 200; i++) {
        const stw_status r = stw_decode(e.ctx, 16, toks.data(), seqs.data(), nullptr, nullptr);
        CHECK_MSG(r == STW_STATUS_OK || r == STW_STATUS_CANCELLED, "status %d: %s", (int)r, stw_last_error());
        if (r == STW_STATUS_CANCELLED) {
            cancelled++;
            CHECK(stw_seq_length(s) == 0);
        } else {
            CHECK(stw_seq_length(s) == 16);
            CHECK_OK(stw_seq_truncate(s, 0));
        }
    }
    done = true;
    canceller.join();
    std::printf("  cancel: %d of 200 steps cancelled\n", cancelled);
    CHECK_MSG(cancelled > 0, "no step was cancelled");
    // the context still computes the same after cancelled steps
    std::vector<float> a(512), b(512);
    const uint8_t w = 1;
    CHECK_OK(stw_decode(e.ctx, 1, &one, seqs.data(), &w, a.data()));
    CHECK_OK(stw_seq_truncate(s, 0));
    CHECK_OK(stw_decode(e.ctx, 1, &one, seqs.data(), &w, b.data()));
    CHECK(a == b);
    stw_seq_free(s);
}

stw_cuda_graph_stats graph_stats() {
    stw_cuda_graph_stats g;
    if (stw_cuda_graph_stats_get(g_cuda, &g) != 0) {
        CHECK_MSG(false, "graph stats: %s", stw_cuda_last_error());
        std::memset(&g, 0, sizeof g);
    }
    return g;
}

void graphs_on(bool on) { CHECK(stw_cuda_graph_set_enabled(g_cuda, on ? 1 : 0) == 0); }

// A prompt, then n greedy single-token steps of one new sequence; every step's logits appended to *all, before(i)
// called ahead of decode step i.
std::vector<int32_t> decode_run(engine &e, const std::vector<int32_t> &prompt, int n, std::vector<float> *all,
                                const std::function<void(int)> &before = nullptr) {
    stw_seq *s;
    REQUIRE_OK(stw_seq_init(e.pool, 512, &s));
    const int32_t nv = e.hp.n_vocab;
    std::vector<float> l((size_t)nv);
    std::vector<stw_seq *> seqs(prompt.size(), s);
    std::vector<uint8_t> want(prompt.size() - 1, 0);
    want.push_back(1);
    REQUIRE_OK(stw_decode(e.ctx, (int32_t)prompt.size(), prompt.data(), seqs.data(), want.data(), l.data()));
    all->insert(all->end(), l.begin(), l.end());
    std::vector<int32_t> out = {argmax(l.data(), nv)};
    for (int i = 0; i < n; i++) {
        if (before) before(i);
        const uint8_t w = 1;
        REQUIRE_OK(stw_decode(e.ctx, 1, &out.back(), &s, &w, l.data()));
        all->insert(all->end(), l.begin(), l.end());
        out.push_back(argmax(l.data(), nv));
    }
    stw_seq_free(s);
    return out;
}

bool bit_identical(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Batch-1 decode as CUDA graphs against direct launches, the same kernels: the tokens and every step's logits equal
// bit for bit, over 300 steps, so past position 256 where the attention's first split adds its combine kernel (a
// topology change: a second executable graph); in between the graph is replayed as it is (the positions come from
// the step buffer). Then two models of one shape alternating (the same graph updated with the other's pointers)
// and two replicas decoding in one step.
void test_graphs_bit_identical() {
    const std::string gen = g_tmp + "/cuda_graphs_q4_0.gguf";
    std::string err;
    CHECK_MSG(stw_gen::generate(gen, STW_TYPE_Q4_0, stw_gen::shape{2, 256, 768, 4, 2, 300}, 3, &err), "%s", err.c_str());
    struct run_case {
        std::string path;
        int32_t kv;
    } cases[] = {{test_data_path("stories260K-f32.gguf"), STW_TYPE_F16}, {gen, STW_TYPE_Q8_0}};
    const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 42, 7, 180};  // within both vocabularies (300, 512)
    const int n = 300;
    for (const run_case &rc : cases) {
        engine e(rc.path, g_cuda, rc.kv);
        std::vector<float> off_logits, on_logits;
        graphs_on(false);
        const stw_cuda_graph_stats g0 = graph_stats();
        const std::vector<int32_t> off = decode_run(e, prompt, n, &off_logits);
        const stw_cuda_graph_stats g1 = graph_stats();
        graphs_on(true);
        const std::vector<int32_t> on = decode_run(e, prompt, n, &on_logits);
        const stw_cuda_graph_stats g2 = graph_stats();
        std::printf("  graphs, %s KV %d: %d steps; off: %llu direct; on: %llu launched (%llu replayed), %llu instantiated, "
                    "%llu updated, %llu direct; tokens %s, logits %s\n",
                    rc.path.substr(rc.path.rfind('/') + 1).c_str(), rc.kv, n + 1,
                    (unsigned long long)(g1.direct - g0.direct), (unsigned long long)(g2.launched - g1.launched),
                    (unsigned long long)(g2.replayed - g1.replayed), (unsigned long long)(g2.instantiated - g1.instantiated),
                    (unsigned long long)(g2.updated - g1.updated), (unsigned long long)(g2.direct - g1.direct),
                    on == off ? "equal" : "DIFFER", bit_identical(on_logits, off_logits) ? "bit-identical" : "DIFFER");
        CHECK(g1.launched == g0.launched && g1.direct - g0.direct == (uint64_t)n + 1);
        CHECK_MSG(g2.enabled == 1 && g2.rerun == g1.rerun, "graphs went off: %s", g2.off_reason);
        CHECK_MSG(g2.launched - g1.launched == (uint64_t)n, "%llu of %d decode steps ran as graphs",
                  (unsigned long long)(g2.launched - g1.launched), n);
        CHECK_MSG(g2.direct - g1.direct == 1, "%llu steps ran directly (the prompt only expected)",
                  (unsigned long long)(g2.direct - g1.direct));
        // one graph before the first split and one after; in between replays, but for an update when the step buffer
        // moves (it grows with the block table, by half again each time)
        CHECK_MSG(g2.instantiated - g1.instantiated == 2 && g2.replayed - g1.replayed >= (uint64_t)n - 10,
                  "%llu instantiations, %llu updates, %llu replays", (unsigned long long)(g2.instantiated - g1.instantiated),
                  (unsigned long long)(g2.updated - g1.updated), (unsigned long long)(g2.replayed - g1.replayed));
        CHECK_MSG(on == off, "greedy tokens differ at %d", first_diff(on, off));
        CHECK_MSG(bit_identical(on_logits, off_logits), "logits with graphs differ from direct launches (max |d| %g)",
                  (double)max_abs_diff(on_logits, off_logits));
    }
    unlink(gen.c_str());

    // two model objects of one file (two weight copies: the same shapes, other pointers) decoding in turn: the one
    // graph is updated with the other's pointers at every switch; results as with direct launches
    {
        engine e1(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
        engine e2(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
        std::vector<float> res[2];
        uint64_t updates = 0;
        for (int on = 0; on < 2; on++) {
            graphs_on(on == 1);
            stw_seq *a, *b;
            REQUIRE_OK(stw_seq_init(e1.pool, 64, &a));
            REQUIRE_OK(stw_seq_init(e2.pool, 64, &b));
            int32_t ta = 1, tb = 2;
            const uint8_t w = 1;
            std::vector<float> l((size_t)e1.hp.n_vocab);
            const stw_cuda_graph_stats g0 = graph_stats();
            for (int i = 0; i < 30; i++) {
                REQUIRE_OK(stw_decode(e1.ctx, 1, &ta, &a, &w, l.data()));
                res[on].insert(res[on].end(), l.begin(), l.end());
                ta = argmax(l.data(), e1.hp.n_vocab);
                REQUIRE_OK(stw_decode(e2.ctx, 1, &tb, &b, &w, l.data()));
                res[on].insert(res[on].end(), l.begin(), l.end());
                tb = argmax(l.data(), e1.hp.n_vocab);
            }
            const stw_cuda_graph_stats g1 = graph_stats();
            if (on) {
                updates = g1.updated - g0.updated;
                CHECK_MSG(g1.launched - g0.launched == 60 && updates >= 50, "%llu launched, %llu updates",
                          (unsigned long long)(g1.launched - g0.launched), (unsigned long long)updates);
            }
            stw_seq_free(a);
            stw_seq_free(b);
        }
        std::printf("  graphs, two models of one shape in turn: %llu updates in 60 steps; logits %s\n",
                    (unsigned long long)updates, bit_identical(res[0], res[1]) ? "bit-identical" : "DIFFER");
        CHECK_MSG(bit_identical(res[0], res[1]), "two models in turn: logits with graphs differ from direct launches");
    }

    // two replicas decoding in one step (2 tokens, 2 sequences) are captured too, with the same results
    engine e(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
    stw_kv_pool *p2;
    REQUIRE_OK(stw_kv_pool_init_on(g_cuda, e.model, STW_TYPE_F16, stw_kv_bytes_per_token(e.model, STW_TYPE_F16) * 512, &p2));
    std::vector<float> res[2];
    for (int on = 0; on < 2; on++) {
        graphs_on(on == 1);
        stw_seq *a, *b;
        REQUIRE_OK(stw_seq_init(e.pool, 64, &a));
        REQUIRE_OK(stw_seq_init(p2, 64, &b));
        int32_t toks[2] = {1, 1};
        stw_seq *seqs[2] = {a, b};
        const uint8_t want[2] = {1, 1};
        std::vector<float> l(2 * (size_t)e.hp.n_vocab);
        const stw_cuda_graph_stats g0 = graph_stats();
        for (int i = 0; i < 40; i++) {
            REQUIRE_OK(stw_decode(e.ctx, 2, toks, seqs, want, l.data()));
            res[on].insert(res[on].end(), l.begin(), l.end());
            toks[0] = argmax(l.data(), e.hp.n_vocab);
            toks[1] = (toks[0] + 17) % e.hp.n_vocab;  // the replicas diverge
        }
        const stw_cuda_graph_stats g1 = graph_stats();
        CHECK_MSG(g1.launched - g0.launched == (on ? 40u : 0u), "graphs %d: %llu launched", on,
                  (unsigned long long)(g1.launched - g0.launched));
        stw_seq_free(a);
        stw_seq_free(b);
    }
    CHECK_MSG(bit_identical(res[0], res[1]), "two replicas' logits with graphs differ from direct launches");
    stw_kv_pool_free(p2);
}

// A failing graph call at each stage (the test hook) turns graphs off for the backend, the step runs again with direct
// launches and every step's results stay those of direct launches; an update the driver rejects re-instantiates and
// keeps graphs on.
void test_graph_failure_falls_back() {
    engine e(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
    // another model object of the same file: a graph of its steps has e's shape, so e's first capture updates it
    engine twin(test_data_path("stories260K-f32.gguf"), g_cuda, STW_TYPE_F16);
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
    const int n = 12;
    std::vector<float> ref_logits;
    graphs_on(false);
    const std::vector<int32_t> ref = decode_run(e, prompt, n, &ref_logits);
    using stw_cuda::graph::stage;
    const stage stages[] = {stage::begin, stage::capture, stage::instantiate, stage::update, stage::launch,
                            stage::reject_update};
    for (stage sg : stages) {
        graphs_on(false);  // drops the cached graphs
        graphs_on(true);
        const bool update = sg == stage::update || sg == stage::reject_update;
        if (update) {  // a cached graph for e's first capture to update
            std::vector<float> scratch;
            decode_run(twin, prompt, 2, &scratch);
        }
        const stw_cuda_graph_stats g0 = graph_stats();
        // e's first decode step is captured (and instantiated, or updated); later ones replay the graph
        const int at = sg == stage::launch ? 3 : 0;
        std::vector<float> logits;
        const std::vector<int32_t> got = decode_run(e, prompt, n, &logits, [&](int i) {
            if (i == at) CHECK(stw_cuda_graph_inject_failure(g_cuda, (int32_t)sg) == 0);
        });
        const stw_cuda_graph_stats g1 = graph_stats();
        const bool stays_on = sg == stage::reject_update;
        std::printf("  graph failure at %s: graphs %s (%s); %llu launched, %llu rerun, %llu direct; results %s\n",
                    stw_cuda::graph::stage_name(sg), g1.enabled ? "on" : "off", g1.off_reason,
                    (unsigned long long)(g1.launched - g0.launched), (unsigned long long)(g1.rerun - g0.rerun),
                    (unsigned long long)(g1.direct - g0.direct), bit_identical(logits, ref_logits) ? "unchanged" : "CHANGED");
        CHECK_MSG(got == ref && bit_identical(logits, ref_logits), "%s: results differ from direct launches",
                  stw_cuda::graph::stage_name(sg));
        CHECK_MSG(g1.enabled == (stays_on ? 1 : 0), "%s: graphs %d", stw_cuda::graph::stage_name(sg), g1.enabled);
        if (stays_on) {
            CHECK(g1.launched - g0.launched == (uint64_t)n && g1.instantiated - g0.instantiated == 1 &&
                  g1.updated == g0.updated);
        } else {
            CHECK_MSG(std::strstr(g1.off_reason, stw_cuda::graph::stage_name(sg)) != nullptr &&
                          std::strstr(g1.off_reason, "test hook") != nullptr,
                      "off reason: %s", g1.off_reason);
            CHECK(g1.launched - g0.launched == (uint64_t)at);
            // every failure but begin's reruns the captured step directly; begin's step was never captured
            CHECK(g1.rerun - g0.rerun == (sg == stage::begin ? 0u : 1u));
        }
    }
    graphs_on(true);
}

void test_hostile_file_refused_before_upload() {
    const std::vector<uint8_t> good = read_bytes(test_data_path("stories260K-f32.gguf"));
    const std::string path = g_tmp + "/cuda_truncated.gguf";
    write_bytes(path, good.data(), good.size() - 1000);
    const uint64_t before = stw_backend_allocated_bytes(g_cuda);
    stw_model *m = nullptr;
    const stw_status st = stw_model_init_file(path.c_str(), &m);
    CHECK_MSG(st == STW_STATUS_BAD_MODEL && m == nullptr, "truncated file: status %d", (int)st);
    std::printf("  truncated file: %s\n", stw_last_error());
    CHECK(stw_backend_allocated_bytes(g_cuda) == before);
    unlink(path.c_str());
}

}  // namespace

int main() {
    stw_backend *be = nullptr;
    const stw_status st = stw_backend_init(STW_BACKEND_KIND_CUDA, 0, 1, &be);
    if (st != STW_STATUS_OK) {
        std::printf("SKIPPED: no CUDA device visible (%s)\n", stw_last_error());
        return st == STW_STATUS_UNSUPPORTED ? 77 : 1;
    }
    g_cuda = be;
    const char *tmp = std::getenv("STW_TEST_TMP");
    g_tmp = tmp ? tmp : "/tmp";
    stw_device_info info;
    CHECK_OK(stw_backend_device_info(be, &info));
    std::printf("device: %s (%s), %llu bytes\n", info.name, info.uuid, (unsigned long long)info.total_bytes);
    test_golden();
    test_generated_models();
    test_replicas_share_one_weight_copy();
    test_kv_exhaustion_and_cancel();
    test_hostile_file_refused_before_upload();
    test_graphs_bit_identical();
    test_graph_failure_falls_back();
    CHECK_OK(stw_backend_free(be));
    return test_finish("test_cuda_engine");
}
