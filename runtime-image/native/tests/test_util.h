// test_util.h: a minimal check harness, golden-file readers and generation helpers for the ctest suite.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "stowage.h"

static int g_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failures++;                                                             \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                        \
            std::fprintf(stderr, "\n");                                               \
            g_failures++;                                                             \
        }                                                                             \
    } while (0)

// Checks a status; on failure prints the engine's message.
#define CHECK_OK(expr)                                                                              \
    do {                                                                                            \
        stw_status st_ = (expr);                                                                    \
        if (st_ != STW_STATUS_OK) {                                                                 \
            std::fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, (int)st_, \
                         stw_last_error());                                                         \
            g_failures++;                                                                           \
        }                                                                                           \
    } while (0)

#define REQUIRE_OK(expr)                                                                            \
    do {                                                                                            \
        stw_status st_ = (expr);                                                                    \
        if (st_ != STW_STATUS_OK) {                                                                 \
            std::fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, (int)st_, \
                         stw_last_error());                                                         \
            std::exit(1);                                                                           \
        }                                                                                           \
    } while (0)

static inline int test_finish(const char *name) {
    if (g_failures) {
        std::fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", name);
    return 0;
}

static inline std::string test_data_path(const char *file) { return std::string(STW_TEST_DATA_DIR) + "/" + file; }

static inline std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(1);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

static inline std::vector<uint8_t> read_bytes(const std::string &path) {
    const std::string s = read_text(path);
    return std::vector<uint8_t>(s.begin(), s.end());
}

static inline void write_bytes(const std::string &path, const uint8_t *data, size_t n) {
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(data, 1, n, f) != n) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(1);
    }
    std::fclose(f);
}

// The numbers of the flat JSON array under "key" (the golden files hold flat arrays only).
static inline std::vector<double> json_numbers(const std::string &json, const std::string &key) {
    std::vector<double> out;
    const size_t k = json.find("\"" + key + "\"");
    if (k == std::string::npos) return out;
    size_t p = json.find('[', k);
    const size_t end = json.find(']', p);
    p++;
    while (p < end) {
        char *stop;
        const double v = std::strtod(json.c_str() + p, &stop);
        const size_t used = (size_t)(stop - (json.c_str() + p));
        if (used == 0) {
            p++;
            continue;
        }
        out.push_back(v);
        p += used;
    }
    return out;
}

static inline std::vector<int32_t> json_ints(const std::string &json, const std::string &key) {
    std::vector<int32_t> out;
    for (double d : json_numbers(json, key)) out.push_back((int32_t)d);
    return out;
}

static inline int32_t argmax(const float *v, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

// Top-1 minus top-2 logit.
static inline float top_gap(const float *v, int32_t n) {
    const int32_t b = argmax(v, n);
    float second = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (i != b && v[i] > second) second = v[i];
    return v[b] - second;
}

// Greedy generation: prefills the prompt in one step, then decodes one token per step.
// first_logits (optional) receives the logits after the prompt; gaps (optional) the top-1/top-2 gap per step.
static inline std::vector<int32_t> generate_greedy(stw_context *c, stw_seq *s, int32_t n_vocab,
                                                   const std::vector<int32_t> &prompt, int n_gen,
                                                   std::vector<float> *first_logits = nullptr,
                                                   std::vector<float> *gaps = nullptr) {
    std::vector<int32_t> out;
    std::vector<stw_seq *> seqs(prompt.size(), s);
    std::vector<uint8_t> want(prompt.size(), 0);
    want.back() = 1;
    std::vector<float> logits((size_t)n_vocab);
    REQUIRE_OK(stw_decode(c, (int32_t)prompt.size(), prompt.data(), seqs.data(), want.data(), logits.data()));
    if (first_logits) *first_logits = logits;
    for (int i = 0; i < n_gen; i++) {
        int32_t t = argmax(logits.data(), n_vocab);
        if (gaps) gaps->push_back(top_gap(logits.data(), n_vocab));
        out.push_back(t);
        if (i + 1 == n_gen) break;
        uint8_t w = 1;
        REQUIRE_OK(stw_decode(c, 1, &t, &s, &w, logits.data()));
    }
    return out;
}
