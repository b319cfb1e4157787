// test_cuda_engine: the whole engine on a CUDA backend against the CPU: stories260K's golden tokens (F32 and Q8_0
// weights), generated random-weight models of every weight type and every KV type, two contexts (replicas) sharing
// one device copy of the weights (device bytes measured), KV pool exhaustion, cancel from another thread, and a
// hostile (truncated) file refused before anything is uploaded. Skipped (exit 77) where no GPU is visible.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gguf_gen.h"
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
    CHECK_OK(stw_backend_free(be));
    return test_finish("test_cuda_engine");
}
