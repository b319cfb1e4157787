// test_backend.cpp: the backend object (stowage.h stw_backend_*): creation by kind, alloc accounting,
// upload/download, the model's weight buffer per backend (one copy, refcounted by contexts and KV pools),
// KV pools within their budget, the one workspace per device sized to the largest A_m, and the device
// path of the forward (descriptor uploaded, weights copied, logits downloaded) on the CPU's emulated
// device, which must give the same logits bit for bit as the zero-copy CPU path.
#include <cstring>
#include <thread>

#include "core.h"
#include "test_util.h"

namespace {

const char *kF32 = "stories260K-f32.gguf";
const char *kQ8 = "stories260K-q8_0.gguf";

stw_model *open_model(const char *file) {
    stw_model *m = nullptr;
    REQUIRE_OK(stw_model_init_file(test_data_path(file).c_str(), &m));
    return m;
}

void test_init_by_kind() {
    stw_backend *be = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 2, &be));
    stw_device_info info;
    REQUIRE_OK(stw_backend_device_info(be, &info));
    CHECK(info.kind == STW_BACKEND_KIND_CPU);
    CHECK(info.name[0] != '\0');
    CHECK(info.uuid[0] == '\0');
    CHECK(info.total_bytes > 0);
    uint64_t free_b = 0, total_b = 0;
    REQUIRE_OK(stw_backend_memory_info(be, &free_b, &total_b));
    CHECK(total_b == info.total_bytes);
    CHECK(free_b > 0 && free_b <= total_b);
    CHECK(stw_backend_allocated_bytes(be) == 0);
    CHECK(stw_backend_workspace_bytes(be) == 0);
    CHECK(stw_backend_supports_type(be, STW_TYPE_Q4_K, STW_TYPE_USE_WEIGHT) == 1);
    CHECK(stw_backend_supports_type(be, STW_TYPE_BF16, STW_TYPE_USE_WEIGHT) == 1);
    CHECK(stw_backend_supports_type(be, 99, STW_TYPE_USE_WEIGHT) == 0);
    CHECK(stw_backend_supports_type(be, STW_TYPE_Q8_0, STW_TYPE_USE_KV) == 1);
    CHECK(stw_backend_supports_type(be, STW_TYPE_Q4_0, STW_TYPE_USE_KV) == 0);
    CHECK_OK(stw_backend_free(be));

    stw_backend *bad = nullptr;
    CHECK(stw_backend_init(STW_BACKEND_KIND_CPU, 1, 2, &bad) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(std::strstr(stw_last_error(), "ordinal is 1") != nullptr);
    CHECK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 0, &bad) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(stw_backend_init((stw_backend_kind)7, 0, 1, &bad) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(bad == nullptr);

    CHECK(stw_backend_kind_built(STW_BACKEND_KIND_CPU) == 1);
    CHECK(stw_backend_kind_built((stw_backend_kind)7) == 0);
#if defined(STW_HAVE_CUDA)
    CHECK(stw_backend_kind_built(STW_BACKEND_KIND_CUDA) == 1);
#else
    CHECK(stw_backend_kind_built(STW_BACKEND_KIND_CUDA) == 0);
#endif
#if !defined(STW_HAVE_CUDA)
    // this library has no CUDA backend: a clear one-line refusal, nothing created
    CHECK(stw_backend_init(STW_BACKEND_KIND_CUDA, 0, 1, &bad) == STW_STATUS_UNSUPPORTED);
    CHECK(std::strstr(stw_last_error(), "CUDA backend not built into this library") != nullptr);
    CHECK(std::strchr(stw_last_error(), '\n') == nullptr);
    CHECK(bad == nullptr);
    CHECK(stw_backend_init_uuid("GPU-00000000-0000-0000-0000-000000000000", 1, &bad) == STW_STATUS_UNSUPPORTED);
    CHECK(bad == nullptr);
#endif
    CHECK(stw_backend_init_uuid("", 1, &bad) == STW_STATUS_INVALID_ARGUMENT);
}

void test_alloc_accounting_and_copies() {
    for (bool emulated : {false, true}) {
        stw_backend *be = nullptr;
        if (emulated) REQUIRE_OK(stw_backend_init_emulated(1, &be));
        else REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &be));
        void *a = nullptr, *b = nullptr;
        REQUIRE_OK(stw_backend_buffer_alloc(be, 1000, "test buffer a", &a));
        REQUIRE_OK(stw_backend_buffer_alloc(be, 4096, "test buffer b", &b));
        CHECK(((uintptr_t)a % 256) == 0 && ((uintptr_t)b % 256) == 0);
        CHECK(stw_backend_allocated_bytes(be) == 5096);
        // upload at an offset, download from an offset: the bytes come back where they were put
        uint8_t src[300], back[300];
        for (int i = 0; i < 300; i++) src[i] = (uint8_t)(i * 7 + 3);
        CHECK(be->upload(be, b, 1000, src, 300) == 0);
        CHECK(be->synchronize(be) == 0);
        std::memset(back, 0, sizeof back);
        CHECK(be->download(be, back, b, 1100, 200) == 0);
        CHECK(std::memcmp(back, src + 100, 200) == 0);
        stw_backend_buffer_free(be, a, 1000);
        CHECK(stw_backend_allocated_bytes(be) == 4096);
        stw_backend_buffer_free(be, b, 4096);
        CHECK(stw_backend_allocated_bytes(be) == 0);
        // a request no device can meet fails with the numbers, and the count does not move
        void *huge = nullptr;
        CHECK(stw_backend_buffer_alloc(be, (uint64_t)1 << 62, "a huge test buffer", &huge) == STW_STATUS_OUT_OF_MEMORY);
        CHECK(huge == nullptr);
        CHECK(std::strstr(stw_last_error(), "4611686018427387904 bytes") != nullptr);
        CHECK(stw_backend_allocated_bytes(be) == 0);
        CHECK_OK(stw_backend_free(be));
    }
}

struct progress_log {
    std::vector<uint64_t> done;
    uint64_t total = 0;
    int cancel_after = -1; // cancel on this call (0-based); -1 never
};

int32_t on_progress(uint64_t done, uint64_t total, void *user) {
    progress_log *p = (progress_log *)user;
    p->done.push_back(done);
    p->total = total;
    return p->cancel_after >= 0 && (int)p->done.size() > p->cancel_after ? 1 : 0;
}

// Two contexts and a KV pool of one model on one device share one weight copy, counted once.
void test_shared_weight_buffer() {
    stw_model *m = open_model(kF32);
    // the span holds every tensor (the file's alignment padding between them too)
    CHECK(m->span_bytes >= stw_model_weight_bytes(m));
    CHECK(m->span_bytes < stw_model_weight_bytes(m) + 32 * 64);

    stw_backend *dev = nullptr;
    REQUIRE_OK(stw_backend_init_emulated(1, &dev));
    progress_log log;
    REQUIRE_OK(stw_model_load(m, dev, on_progress, &log));
    CHECK(!log.done.empty() && log.done.back() == m->span_bytes && log.total == m->span_bytes);
    CHECK(stw_model_device_bytes(m, dev) == m->span_bytes);
    CHECK(stw_backend_allocated_bytes(dev) == m->span_bytes);
    CHECK(stw_model_device_refs(m, dev) == 1);

    stw_context *c1 = nullptr, *c2 = nullptr;
    REQUIRE_OK(stw_context_init_on(dev, m, 8, 2, &c1));
    REQUIRE_OK(stw_context_init_on(dev, m, 8, 2, &c2));
    stw_kv_pool *pool = nullptr;
    const uint64_t bpt = stw_kv_bytes_per_token(m, STW_TYPE_F16);
    REQUIRE_OK(stw_kv_pool_init_on(dev, m, STW_TYPE_F16, 64 * bpt, &pool));
    CHECK(stw_model_device_refs(m, dev) == 4);
    CHECK(c1->wbase == c2->wbase);
    CHECK(c1->wbase != m->map + m->span_start); // a copy, not the mapping
    // one weight copy + one workspace (both contexts need the same A_m) + the pool
    const uint64_t A = stw_context_workspace_bytes(c1);
    CHECK(stw_backend_workspace_bytes(dev) == A);
    CHECK_MSG(stw_backend_allocated_bytes(dev) == m->span_bytes + A + stw_kv_pool_bytes(pool), "allocated %llu",
              (unsigned long long)stw_backend_allocated_bytes(dev));
    // the copy holds the file's bytes
    CHECK(std::memcmp(c1->wbase, m->map + m->span_start, (size_t)m->span_bytes) == 0);

    // the backend refuses to go while anything lives on it
    CHECK(stw_backend_free(dev) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(std::strstr(stw_last_error(), "free them first") != nullptr);

    stw_context_free(c1);
    stw_model_unload(m, dev);
    CHECK(stw_model_device_refs(m, dev) == 2);
    CHECK(stw_model_device_bytes(m, dev) == m->span_bytes);
    stw_kv_pool_free(pool);
    stw_context_free(c2);
    // the last reference frees the copy, the last context the workspace
    CHECK(stw_model_device_refs(m, dev) == 0);
    CHECK(stw_model_device_bytes(m, dev) == 0);
    CHECK(stw_backend_workspace_bytes(dev) == 0);
    CHECK(stw_backend_allocated_bytes(dev) == 0);

    // a cancelled upload keeps nothing
    progress_log stop;
    stop.cancel_after = 0;
    CHECK(stw_model_load(m, dev, on_progress, &stop) == STW_STATUS_CANCELLED);
    CHECK(stw_model_device_bytes(m, dev) == 0);
    CHECK(stw_backend_allocated_bytes(dev) == 0);
    CHECK_OK(stw_backend_free(dev));

    // the CPU backend keeps the zero-copy mapping: nothing allocated for the weights
    stw_backend *cpu = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &cpu));
    REQUIRE_OK(stw_model_load(m, cpu, nullptr, nullptr));
    stw_context *c = nullptr;
    REQUIRE_OK(stw_context_init_on(cpu, m, 4, 1, &c));
    CHECK(c->wbase == m->map + m->span_start);
    CHECK(stw_model_device_bytes(m, cpu) == m->span_bytes);
    CHECK(stw_backend_allocated_bytes(cpu) == stw_context_workspace_bytes(c));
    stw_context_free(c);
    stw_model_unload(m, cpu);
    CHECK(stw_backend_allocated_bytes(cpu) == 0);
    CHECK_OK(stw_backend_free(cpu));
    stw_model_free(m);
}

// A KV pool allocated through the backend holds floor(budget / block) blocks and never more.
void test_kv_pool_within_budget() {
    stw_model *m = open_model(kF32);
    stw_backend *dev = nullptr;
    REQUIRE_OK(stw_backend_init_emulated(1, &dev));
    for (int32_t t : {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0}) {
        const uint64_t block = stw_kv_bytes_per_token(m, t) * STW_KV_BLOCK_TOKENS;
        const uint64_t budget = 5 * block + block / 2;
        stw_kv_pool *p = nullptr;
        REQUIRE_OK(stw_kv_pool_init_on(dev, m, t, budget, &p));
        CHECK(stw_kv_pool_blocks(p) == 5);
        CHECK(stw_kv_pool_bytes(p) == 5 * block);
        // measured: the backend holds the weight copy and exactly the pool's blocks
        CHECK(stw_backend_allocated_bytes(dev) == m->span_bytes + 5 * block);
        CHECK(stw_backend_allocated_bytes(dev) - m->span_bytes <= budget);
        stw_kv_pool_free(p);
        CHECK(stw_backend_allocated_bytes(dev) == 0);
    }
    stw_kv_pool *p = nullptr;
    CHECK(stw_kv_pool_init_on(dev, m, STW_TYPE_Q4_0, 1 << 20, &p) == STW_STATUS_UNSUPPORTED);
    const uint64_t one_block = stw_kv_bytes_per_token(m, STW_TYPE_F16) * STW_KV_BLOCK_TOKENS;
    CHECK(stw_kv_pool_init_on(dev, m, STW_TYPE_F16, one_block - 1, &p) == STW_STATUS_BUDGET_EXCEEDED);
    CHECK(p == nullptr);
    CHECK(stw_backend_allocated_bytes(dev) == 0); // refused before any upload or allocation
    CHECK_OK(stw_backend_free(dev));
    stw_model_free(m);
}

// Contexts of different models and sizes on one device share one workspace of the largest A_m.
void test_shared_workspace_is_the_max() {
    stw_model *a = open_model(kF32);
    stw_model *b = open_model(kQ8);
    stw_backend *be = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &be));
    stw_context *small = nullptr, *large = nullptr, *other = nullptr;
    REQUIRE_OK(stw_context_init_on(be, a, 4, 1, &small));
    REQUIRE_OK(stw_context_init_on(be, b, 64, 8, &large));
    REQUIRE_OK(stw_context_init_on(be, a, 16, 4, &other));
    const uint64_t As = stw_context_workspace_bytes(small), Al = stw_context_workspace_bytes(large),
                   Ao = stw_context_workspace_bytes(other);
    CHECK(As < Ao && Ao < Al);
    CHECK(stw_backend_workspace_bytes(be) == Al);
    CHECK(stw_backend_allocated_bytes(be) == Al); // not As + Al + Ao
    stw_context_free(large);
    CHECK(stw_backend_workspace_bytes(be) == Ao);
    CHECK(stw_backend_allocated_bytes(be) == Ao);

    // both models still decode on the smaller workspace
    const uint64_t bpt = stw_kv_bytes_per_token(a, STW_TYPE_F32);
    stw_kv_pool *p = nullptr;
    REQUIRE_OK(stw_kv_pool_init_on(be, a, STW_TYPE_F32, 64 * bpt, &p));
    stw_seq *s = nullptr;
    REQUIRE_OK(stw_seq_init(p, 32, &s));
    std::vector<float> logits((size_t)a->hp.n_vocab);
    const int32_t toks[3] = {1, 403, 407};
    stw_seq *seqs[3] = {s, s, s};
    const uint8_t want[3] = {0, 0, 1};
    CHECK_OK(stw_decode(small, 3, toks, seqs, want, logits.data()));
    CHECK(stw_seq_length(s) == 3);
    stw_seq_free(s);
    stw_kv_pool_free(p);

    stw_context_free(small);
    stw_context_free(other);
    CHECK(stw_backend_workspace_bytes(be) == 0);
    CHECK(stw_backend_allocated_bytes(be) == 0);
    CHECK_OK(stw_backend_free(be));
    stw_model_free(a);
    stw_model_free(b);
}

// Greedy tokens and logits of two sequences in two pools, batched in one step, then decoded together.
std::vector<float> run_two_sequences(stw_backend *be, stw_model *m, int32_t kv_type) {
    stw_context *c = nullptr;
    REQUIRE_OK(stw_context_init_on(be, m, 32, 2, &c));
    const uint64_t bpt = stw_kv_bytes_per_token(m, kv_type);
    stw_kv_pool *p1 = nullptr, *p2 = nullptr;
    REQUIRE_OK(stw_kv_pool_init_on(be, m, kv_type, 64 * bpt, &p1));
    REQUIRE_OK(stw_kv_pool_init_on(be, m, kv_type, 64 * bpt, &p2));
    stw_seq *s1 = nullptr, *s2 = nullptr;
    REQUIRE_OK(stw_seq_init(p1, 48, &s1));
    REQUIRE_OK(stw_seq_init(p2, 48, &s2));
    const int32_t n_vocab = m->hp.n_vocab;
    // prompts of 5 and 18 tokens (the second crosses into a second KV block)
    std::vector<int32_t> toks;
    std::vector<stw_seq *> seqs;
    std::vector<uint8_t> want;
    for (int i = 0; i < 5; i++) toks.push_back(1 + 17 * i), seqs.push_back(s1), want.push_back(i == 4);
    for (int i = 0; i < 18; i++) toks.push_back(2 + 11 * i), seqs.push_back(s2), want.push_back(i == 17);
    std::vector<float> all, logits(2 * (size_t)n_vocab);
    REQUIRE_OK(stw_decode(c, (int32_t)toks.size(), toks.data(), seqs.data(), want.data(), logits.data()));
    all.insert(all.end(), logits.begin(), logits.end());
    for (int step = 0; step < 12; step++) {
        int32_t t[2] = {argmax(logits.data(), n_vocab), argmax(logits.data() + n_vocab, n_vocab)};
        stw_seq *ss[2] = {s1, s2};
        const uint8_t w[2] = {1, 1};
        REQUIRE_OK(stw_decode(c, 2, t, ss, w, logits.data()));
        all.insert(all.end(), logits.begin(), logits.end());
    }
    stw_seq_free(s1);
    stw_seq_free(s2);
    stw_kv_pool_free(p1);
    stw_kv_pool_free(p2);
    stw_context_free(c);
    return all;
}

// The device path of the forward (weights in a backend buffer, descriptor uploaded, only the wanted logit
// rows downloaded) computes exactly what the zero-copy CPU path computes.
void test_device_path_equals_cpu() {
    for (const char *file : {kF32, kQ8}) {
        stw_model *m = open_model(file);
        for (int32_t kv : {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_Q8_0}) {
            stw_backend *cpu = nullptr, *dev = nullptr;
            REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 2, &cpu));
            REQUIRE_OK(stw_backend_init_emulated(2, &dev));
            const std::vector<float> want = run_two_sequences(cpu, m, kv);
            const std::vector<float> got = run_two_sequences(dev, m, kv);
            CHECK_MSG(want.size() == got.size() && std::memcmp(want.data(), got.data(), 4 * want.size()) == 0,
                      "%s kv %d: the emulated device's logits differ from the CPU's", file, kv);
            CHECK(stw_backend_step_buffer_bytes(cpu) == 0);
            CHECK(stw_backend_allocated_bytes(dev) == 0); // everything given back, the step buffer too
            CHECK_OK(stw_backend_free(cpu));
            CHECK_OK(stw_backend_free(dev));
        }
        stw_model_free(m);
    }
}

// Two contexts of one device decoding from two threads at once: the steps serialize on the shared
// workspace and each gives what it gives alone.
void test_two_threads_one_device() {
    stw_model *m = open_model(kF32);
    stw_backend *be = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 2, &be));
    const std::vector<float> alone = run_two_sequences(be, m, STW_TYPE_F16);
    std::vector<float> r1, r2;
    for (int round = 0; round < 3; round++) {
        std::thread t1([&] { r1 = run_two_sequences(be, m, STW_TYPE_F16); });
        std::thread t2([&] { r2 = run_two_sequences(be, m, STW_TYPE_F16); });
        t1.join();
        t2.join();
        CHECK(r1 == alone);
        CHECK(r2 == alone);
    }
    CHECK(stw_backend_allocated_bytes(be) == 0);
    CHECK_OK(stw_backend_free(be));
    stw_model_free(m);
}

// A context refuses sequences whose KV pool lives on another device.
void test_pool_on_another_device_is_refused() {
    stw_model *m = open_model(kF32);
    stw_backend *cpu = nullptr, *dev = nullptr;
    REQUIRE_OK(stw_backend_init(STW_BACKEND_KIND_CPU, 0, 1, &cpu));
    REQUIRE_OK(stw_backend_init_emulated(1, &dev));
    stw_context *c = nullptr;
    REQUIRE_OK(stw_context_init_on(cpu, m, 4, 1, &c));
    stw_kv_pool *p = nullptr;
    REQUIRE_OK(stw_kv_pool_init_on(dev, m, STW_TYPE_F32, 1 << 16, &p));
    stw_seq *s = nullptr;
    REQUIRE_OK(stw_seq_init(p, 16, &s));
    const int32_t tok = 1;
    CHECK(stw_decode(c, 1, &tok, &s, nullptr, nullptr) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(std::strstr(stw_last_error(), "cpu-emulated-device") != nullptr);
    CHECK(stw_seq_length(s) == 0);
    stw_seq_free(s);
    stw_kv_pool_free(p);
    stw_context_free(c);
    CHECK_OK(stw_backend_free(cpu));
    CHECK_OK(stw_backend_free(dev));
    stw_model_free(m);
}

// A truncated file is refused by stw_model_init, before any backend sees it.
void test_truncated_file_never_reaches_a_device() {
    const std::vector<uint8_t> bytes = read_bytes(test_data_path(kF32));
    const char *tmp = std::getenv("STW_TEST_TMP");
    const std::string path = std::string(tmp ? tmp : ".") + "/test_backend_truncated.gguf";
    write_bytes(path, bytes.data(), bytes.size() - 4096);
    stw_backend *dev = nullptr;
    REQUIRE_OK(stw_backend_init_emulated(1, &dev));
    stw_model *m = nullptr;
    CHECK(stw_model_init_file(path.c_str(), &m) == STW_STATUS_BAD_MODEL);
    CHECK(m == nullptr);
    CHECK(stw_backend_allocated_bytes(dev) == 0);
    CHECK_OK(stw_backend_free(dev));
    std::remove(path.c_str());
}

} // namespace

int main() {
    test_init_by_kind();
    test_alloc_accounting_and_copies();
    test_shared_weight_buffer();
    test_kv_pool_within_budget();
    test_shared_workspace_is_the_max();
    test_device_path_equals_cpu();
    test_two_threads_one_device();
    test_pool_on_another_device_is_refused();
    test_truncated_file_never_reaches_a_device();
    return test_finish("test_backend");
}
