// test_golden.cpp: greedy tokens and first-step logits of stories260K (F32 and Q8_0 weights) against
// the golden vectors of an independent float32 reference.
#include "test_util.h"

namespace {

struct engine {
    stw_model *model = nullptr;
    stw_kv_pool *pool = nullptr;
    stw_context *ctx = nullptr;
    stw_hparams hp{};

    engine(const char *file, int32_t kv_type, int threads) {
        REQUIRE_OK(stw_model_init_file(test_data_path(file).c_str(), &model));
        REQUIRE_OK(stw_model_hparams(model, &hp));
        REQUIRE_OK(stw_kv_pool_init(model, kv_type, stw_kv_bytes_per_token(model, kv_type) * 512, &pool));
        REQUIRE_OK(stw_context_init(model, threads, 64, 4, &ctx));
    }
    ~engine() {
        stw_context_free(ctx);
        stw_kv_pool_free(pool);
        stw_model_free(model);
    }
    std::vector<int32_t> greedy(const std::vector<int32_t> &prompt, int n, std::vector<float> *first = nullptr,
                                std::vector<float> *gaps = nullptr) {
        stw_seq *s;
        REQUIRE_OK(stw_seq_init(pool, 512, &s));
        std::vector<int32_t> out = generate_greedy(ctx, s, hp.n_vocab, prompt, n, first, gaps);
        stw_seq_free(s);
        return out;
    }
};

float max_abs_diff(const std::vector<float> &a, const std::vector<double> &b) {
    float m = INFINITY;
    if (a.size() != b.size()) return m;
    m = 0;
    for (size_t i = 0; i < a.size(); i++) m = std::fmax(m, std::fabs(a[i] - (float)b[i]));
    return m;
}

} // namespace

int main(int argc, char **argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const std::string golden = read_text(test_data_path("stories260K.golden.json"));
    const std::vector<int32_t> prompt = json_ints(golden, "prompt_token_ids");
    const std::vector<int32_t> expected = json_ints(golden, "generated_token_ids");
    const std::vector<double> ref_logits = json_numbers(golden, "first_step_logits");
    CHECK(prompt == std::vector<int32_t>({1, 403, 407, 261, 378}));
    CHECK(expected.size() == 40);
    CHECK(ref_logits.size() == 512);

    std::printf("cpu: %s\n", stw_cpu_features());
    std::vector<float> f32_first, f32_gaps;
    std::vector<int32_t> f32_tokens;
    {
        engine e("stories260K-f32.gguf", STW_TYPE_F32, threads);
        CHECK(e.hp.n_vocab == 512 && e.hp.n_layer == 5 && e.hp.n_head_kv == 4 && e.hp.head_dim_k == 8);
        f32_tokens = e.greedy(prompt, 40, &f32_first, &f32_gaps);
        CHECK_MSG(f32_tokens == expected, "F32 greedy tokens differ from the golden vector");
        const float d = max_abs_diff(f32_first, ref_logits);
        std::printf("F32: 40/40 golden tokens %s; first-step logits max |diff| = %.2e\n",
                    f32_tokens == expected ? "equal" : "DIFFER", (double)d);
        CHECK_MSG(d < 1e-3f, "F32 first-step logits differ by %g", (double)d);

        const std::string bos = read_text(test_data_path("stories260K.golden-bos-200.json"));
        const std::vector<int32_t> bos_expected = json_ints(bos, "generated_token_ids");
        CHECK(bos_expected.size() == 200);
        const std::vector<int32_t> bos_tokens = e.greedy({1}, 200);
        int first_diff = -1;
        for (size_t i = 0; i < bos_tokens.size() && i < bos_expected.size(); i++)
            if (bos_tokens[i] != bos_expected[i]) {
                first_diff = (int)i;
                break;
            }
        std::printf("F32 BOS-only: 200 tokens, first difference at %d (-1 = none)\n", first_diff);
        CHECK_MSG(bos_tokens == bos_expected, "F32 BOS-200 tokens differ from index %d", first_diff);
    }
    {
        // the file llama.cpp's converter wrote: missing keys take their defaults
        engine e("stories260K-ggml-org.gguf", STW_TYPE_F32, threads);
        CHECK(e.hp.n_ctx_train == 2048 && e.hp.rope_freq_base == 10000.0f && e.hp.n_vocab == 512);
        std::vector<float> first;
        const std::vector<int32_t> t = e.greedy(prompt, 40, &first);
        CHECK_MSG(t == expected, "ggml-org GGUF greedy tokens differ from the golden vector");
        CHECK(max_abs_diff(first, ref_logits) < 1e-3f);
        std::printf("ggml-org GGUF (llama.cpp converter): 40/40 golden tokens %s\n", t == expected ? "equal" : "DIFFER");
    }
    {
        engine e("stories260K-q8_0.gguf", STW_TYPE_F32, threads);
        std::vector<float> first;
        const std::vector<int32_t> q8 = e.greedy(prompt, 40, &first);
        const float d = max_abs_diff(first, ref_logits);
        std::printf("Q8_0: first-step logits max |diff| vs F32 golden = %.4f\n", (double)d);
        CHECK_MSG(d < 0.3f, "Q8_0 first-step logits differ from the F32 golden by %g", (double)d);
        // Q8_0 must equal the golden tokens, or first differ at a step where the F32 top-2 gap is
        // within quantization noise (after that the two continuations are different texts)
        int diverge = -1;
        for (int i = 0; i < 40; i++)
            if (q8[(size_t)i] != expected[(size_t)i]) {
                diverge = i;
                break;
            }
        if (diverge < 0) {
            std::printf("Q8_0: 40/40 golden tokens equal\n");
        } else {
            std::printf("Q8_0: first difference at step %d, F32 top-2 gap there %.4f\n", diverge,
                        (double)f32_gaps[(size_t)diverge]);
            CHECK_MSG(f32_gaps[(size_t)diverge] < 0.3f, "Q8_0 diverges at step %d where the F32 gap is %g", diverge,
                      (double)f32_gaps[(size_t)diverge]);
        }
    }
    return test_finish("test_golden");
}
