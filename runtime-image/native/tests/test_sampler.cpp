// test_sampler.cpp: greedy ties, repetition penalty, temperature/top-k/top-p/min-p distributions and
// seeded determinism of the sampler.
#include "test_util.h"

namespace {

stw_sampler_params params(float temp, uint64_t seed = 42) {
    stw_sampler_params p;
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = -1;
    p.seed = seed;
    return p;
}

int32_t sample_once(const stw_sampler_params &p, const std::vector<float> &logits, const std::vector<int32_t> &recent = {}) {
    stw_sampler *s;
    REQUIRE_OK(stw_sampler_init(&p, (int32_t)logits.size(), &s));
    int32_t t = -1;
    CHECK_OK(stw_sampler_sample(s, logits.data(), recent.data(), (int32_t)recent.size(), &t));
    stw_sampler_free(s);
    return t;
}

// Frequencies of each token over n draws from one sampler.
std::vector<double> frequencies(const stw_sampler_params &p, const std::vector<float> &logits, int n) {
    stw_sampler *s;
    REQUIRE_OK(stw_sampler_init(&p, (int32_t)logits.size(), &s));
    std::vector<double> f(logits.size(), 0.0);
    for (int i = 0; i < n; i++) {
        int32_t t;
        CHECK_OK(stw_sampler_sample(s, logits.data(), nullptr, 0, &t));
        f[(size_t)t] += 1.0 / n;
    }
    stw_sampler_free(s);
    return f;
}

void test_greedy() {
    CHECK(sample_once(params(0), {1, 5, 5, 2}) == 1); // ties go to the lowest id
    CHECK(sample_once(params(0), {-3, -1, -2}) == 1);
    stw_sampler_params p = params(0);
    p.repeat_penalty = 1.1f;
    CHECK(sample_once(p, {3.0f, 2.9f}, {0}) == 1); // 3 / 1.1 < 2.9
    CHECK(sample_once(p, {-1.0f, -1.05f}, {0}) == 1); // -1 * 1.1 < -1.05
    CHECK(sample_once(p, {3.0f, 2.9f}, {0, 0, 0}) == 1); // a repeated token is penalised once
    CHECK(sample_once(p, {3.0f, 2.9f}, {1}) == 0);
    p.repeat_last_n = 2;
    CHECK(sample_once(p, {3.0f, 2.9f, 0.0f, 0.0f}, {0, 2, 3}) == 0); // token 0 is outside the last 2
    // bad recent token ids and NaN logits are refused
    stw_sampler *s;
    REQUIRE_OK(stw_sampler_init(&p, 2, &s));
    const float lg[2] = {1, 2};
    const int32_t bad[1] = {7};
    int32_t t;
    CHECK(stw_sampler_sample(s, lg, bad, 1, &t) == STW_STATUS_INVALID_ARGUMENT);
    const float nan_lg[2] = {1, NAN};
    CHECK(stw_sampler_sample(s, nan_lg, nullptr, 0, &t) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(std::strstr(stw_last_error(), "logits[1]") != nullptr);
    const float inf_lg[2] = {1, INFINITY};
    CHECK(stw_sampler_sample(s, inf_lg, nullptr, 0, &t) == STW_STATUS_INVALID_ARGUMENT);
    const float masked[2] = {-INFINITY, 0.5f}; // -inf masks a token
    CHECK_OK(stw_sampler_sample(s, masked, nullptr, 0, &t));
    CHECK(t == 1);
    stw_sampler_free(s);
}

void test_distributions() {
    const std::vector<float> lg = {logf(0.5f), logf(0.3f), logf(0.2f)};
    const int n = 20000;
    std::vector<double> f = frequencies(params(1.0f), lg, n);
    CHECK_MSG(std::fabs(f[0] - 0.5) < 0.02 && std::fabs(f[1] - 0.3) < 0.02 && std::fabs(f[2] - 0.2) < 0.02,
              "temperature 1: %.3f %.3f %.3f", f[0], f[1], f[2]);
    // temperature 2 flattens to sqrt(p) normalised
    f = frequencies(params(2.0f), lg, n);
    const double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
    CHECK_MSG(std::fabs(f[0] - std::sqrt(0.5) / z) < 0.02 && std::fabs(f[2] - std::sqrt(0.2) / z) < 0.02,
              "temperature 2: %.3f %.3f %.3f", f[0], f[1], f[2]);
    stw_sampler_params p = params(1.0f);
    p.top_k = 1;
    f = frequencies(p, lg, 500);
    CHECK(f[0] > 0.9999 && f[1] == 0.0 && f[2] == 0.0);
    p = params(1.0f);
    p.top_p = 0.7f; // 0.5 + 0.3 reaches 0.7: token 2 never drawn
    f = frequencies(p, lg, n);
    CHECK_MSG(f[2] == 0.0 && std::fabs(f[0] - 0.625) < 0.02, "top_p: %.3f %.3f %.3f", f[0], f[1], f[2]);
    p = params(1.0f);
    p.min_p = 0.5f; // keeps p >= 0.25: tokens 0 and 1
    f = frequencies(p, lg, n);
    CHECK_MSG(f[2] == 0.0 && f[1] > 0.3, "min_p: %.3f %.3f %.3f", f[0], f[1], f[2]);
    p = params(1.0f);
    p.top_k = 2;
    f = frequencies(p, lg, n);
    CHECK_MSG(f[2] == 0.0 && std::fabs(f[0] - 0.625) < 0.02, "top_k: %.3f %.3f %.3f", f[0], f[1], f[2]);
}

void test_seeded() {
    const std::vector<float> flat(512, 0.0f);
    auto draws = [&](uint64_t seed) {
        stw_sampler_params p = params(1.0f, seed);
        stw_sampler *s;
        REQUIRE_OK(stw_sampler_init(&p, 512, &s));
        std::vector<int32_t> out;
        for (int i = 0; i < 64; i++) {
            int32_t t;
            CHECK_OK(stw_sampler_sample(s, flat.data(), nullptr, 0, &t));
            out.push_back(t);
        }
        stw_sampler_free(s);
        return out;
    };
    CHECK(draws(7) == draws(7));
    CHECK(draws(7) != draws(8));
    CHECK(draws(0) == draws(0));
}

void test_bad_params() {
    stw_sampler *s;
    stw_sampler_params p = params(-1.0f);
    CHECK(stw_sampler_init(&p, 10, &s) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(std::strstr(stw_last_error(), "temperature") != nullptr);
    p = params(1.0f);
    p.top_p = 0.0f;
    CHECK(stw_sampler_init(&p, 10, &s) == STW_STATUS_INVALID_ARGUMENT);
    p = params(1.0f);
    CHECK(stw_sampler_init(&p, 0, &s) == STW_STATUS_INVALID_ARGUMENT);
    p.repeat_penalty = 0.0f;
    CHECK(stw_sampler_init(&p, 10, &s) == STW_STATUS_INVALID_ARGUMENT);
}

} // namespace

int main() {
    test_greedy();
    test_distributions();
    test_seeded();
    test_bad_params();
    return test_finish("test_sampler");
}
