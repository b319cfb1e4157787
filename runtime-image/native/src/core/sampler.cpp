// sampler.cpp: token sampling (greedy, temperature, top-k, top-p, min-p, repetition penalty) with a
// seeded xorshift64* generator; its buffers are allocated once per sampler.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core.h"

struct stw_sampler {
    stw_sampler_params params;
    int32_t n_vocab;
    uint64_t rng; // xorshift64* state, never 0
    float *work; // [n_vocab] penalised logits, then probabilities
    int32_t *order; // [n_vocab] candidate ids, sorted by probability
    uint8_t *seen; // [n_vocab] marks tokens already penalised in this call
};

namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

// Uniform in [0, 1) with 24 bits.
float rng_uniform(uint64_t *s) { return (float)(rng_next(s) >> 40) * (1.0f / 16777216.0f); }

} // namespace

extern "C" stw_status stw_sampler_init(const stw_sampler_params *p, int32_t n_vocab, stw_sampler **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!p) return stw_error(STW_STATUS_INVALID_ARGUMENT, "sampler params are null");
    if (n_vocab < 1 || n_vocab > (1 << 24))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "n_vocab is %d, expected 1..%d", n_vocab, 1 << 24);
    if (!(std::isfinite(p->temperature) && p->temperature >= 0))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "temperature is %g, expected >= 0", (double)p->temperature);
    if (!(std::isfinite(p->top_p) && p->top_p > 0))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "top_p is %g, expected > 0 (1 = off)", (double)p->top_p);
    if (!(std::isfinite(p->min_p) && p->min_p < 1))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "min_p is %g, expected < 1 (0 = off)", (double)p->min_p);
    if (!(std::isfinite(p->repeat_penalty) && p->repeat_penalty > 0))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "repeat_penalty is %g, expected > 0 (1 = off)",
                         (double)p->repeat_penalty);
    stw_sampler *s = (stw_sampler *)std::calloc(1, sizeof(stw_sampler));
    if (!s) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate a sampler");
    s->params = *p;
    s->n_vocab = n_vocab;
    s->rng = splitmix64(p->seed);
    if (s->rng == 0) s->rng = 0x9e3779b97f4a7c15ull;
    s->work = (float *)std::malloc(sizeof(float) * (size_t)n_vocab);
    s->order = (int32_t *)std::malloc(sizeof(int32_t) * (size_t)n_vocab);
    s->seen = (uint8_t *)std::calloc((size_t)n_vocab, 1);
    if (!s->work || !s->order || !s->seen) {
        stw_sampler_free(s);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate sampler buffers for %d tokens", n_vocab);
    }
    *out = s;
    return STW_STATUS_OK;
}

extern "C" void stw_sampler_free(stw_sampler *s) {
    if (!s) return;
    std::free(s->work);
    std::free(s->order);
    std::free(s->seen);
    std::free(s);
}

extern "C" stw_status stw_sampler_sample(stw_sampler *s, const float *logits, const int32_t *recent, int32_t n_recent,
                                         int32_t *token_out) {
    if (!s || !logits || !token_out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "sampler, logits or token_out is null");
    if (n_recent < 0 || (n_recent > 0 && !recent))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "n_recent is %d with recent %s", n_recent, recent ? "set" : "null");
    const stw_sampler_params &p = s->params;
    const int32_t n = s->n_vocab;
    float *w = s->work;
    std::memcpy(w, logits, sizeof(float) * (size_t)n);
    for (int32_t i = 0; i < n; i++)
        if (std::isnan(w[i]) || w[i] == INFINITY) // -inf is a mask, +inf has no probability
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "logits[%d] is %g, expected a finite value or -inf", i,
                             (double)w[i]);

    // repetition penalty (llama.cpp / CTRL style): each distinct recent token once
    if (p.repeat_penalty != 1.0f && n_recent > 0) {
        const int32_t look = p.repeat_last_n < 0 ? n_recent : std::min(n_recent, p.repeat_last_n);
        const int32_t *r = recent + (n_recent - look);
        for (int32_t i = 0; i < look; i++)
            if (r[i] < 0 || r[i] >= n)
                return stw_error(STW_STATUS_INVALID_ARGUMENT, "recent token %d is outside 0..%d", r[i], n - 1);
        for (int32_t i = 0; i < look; i++) {
            const int32_t t = r[i];
            if (s->seen[t]) continue;
            s->seen[t] = 1;
            w[t] = w[t] > 0 ? w[t] / p.repeat_penalty : w[t] * p.repeat_penalty;
        }
        for (int32_t i = 0; i < look; i++) s->seen[r[i]] = 0;
    }

    if (p.temperature == 0.0f) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (w[i] > w[best]) best = i; // strict: ties keep the lowest id
        *token_out = best;
        return STW_STATUS_OK;
    }

    // candidates sorted by logit (descending, ties by id) so top-k/top-p/min-p are prefixes
    int32_t *ord = s->order;
    for (int32_t i = 0; i < n; i++) ord[i] = i;
    auto better = [w](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
    int32_t k = n;
    if (p.top_k > 0 && p.top_k < n) {
        k = p.top_k;
        std::partial_sort(ord, ord + k, ord + n, better);
    } else {
        std::sort(ord, ord + n, better);
    }
    const float inv_t = 1.0f / p.temperature;
    const float maxl = w[ord[0]];
    if (std::isinf(maxl) && maxl < 0)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "every logit is -infinity");
    // probabilities of the k candidates, in place over w (indexed by id)
    double total = 0;
    for (int32_t i = 0; i < k; i++) {
        const float pr = expf((w[ord[i]] - maxl) * inv_t);
        w[ord[i]] = pr;
        total += pr;
    }
    // top-p: the shortest prefix whose mass reaches top_p
    if (p.top_p < 1.0f) {
        double cum = 0;
        int32_t keep = k;
        for (int32_t i = 0; i < k; i++) {
            cum += w[ord[i]] / total;
            if (cum >= p.top_p) {
                keep = i + 1;
                break;
            }
        }
        k = keep;
    }
    // min-p: drop candidates below min_p times the most likely one (the first has probability 1 here)
    if (p.min_p > 0.0f) {
        int32_t keep = 1;
        while (keep < k && w[ord[keep]] >= p.min_p) keep++;
        k = keep;
    }
    total = 0;
    for (int32_t i = 0; i < k; i++) total += w[ord[i]];
    const double u = (double)rng_uniform(&s->rng) * total;
    double cum = 0;
    for (int32_t i = 0; i < k; i++) {
        cum += w[ord[i]];
        if (u < cum) {
            *token_out = ord[i];
            return STW_STATUS_OK;
        }
    }
    *token_out = ord[k - 1];
    return STW_STATUS_OK;
}
