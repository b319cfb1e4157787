// kv.cpp: the KV block pool (allocated once under a byte budget) and the sequences' block tables.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core.h"

namespace {

constexpr int32_t kMaxSeqTokens = 1 << 24;

void pool_release(stw_kv_pool *p) {
    if (p->data) {
        stw_backend_buffer_free(p->be, p->data, (uint64_t)p->n_blocks * p->block_bytes);
        stw_model_release(p->model, p->be);
        p->be->users--;
    }
    std::free(p->free_list);
    delete p;
}

stw_status kv_widths(const stw_model *m, int32_t kv_type, size_t *k_row, size_t *v_row) {
    if (kv_type != STW_TYPE_F32 && kv_type != STW_TYPE_F16 && kv_type != STW_TYPE_Q8_0)
        return stw_error(STW_STATUS_UNSUPPORTED, "kv_type %d (%s) is not supported; use 0 (f32), 1 (f16) or 8 (q8_0)",
                         kv_type, stw_type_name(kv_type));
    const int64_t kw = (int64_t)m->hp.n_head_kv * m->hp.head_dim_k;
    const int64_t vw = (int64_t)m->hp.n_head_kv * m->hp.head_dim_v;
    *k_row = stw_kv_row_bytes(kv_type, kw);
    *v_row = stw_kv_row_bytes(kv_type, vw);
    if (*k_row == 0 || *v_row == 0)
        return stw_error(STW_STATUS_UNSUPPORTED,
                         "kv_type q8_0 needs K and V row widths that are multiples of 32; this model has K width %" PRId64
                         " (n_head_kv %d x key_length %d) and V width %" PRId64 "; use f16",
                         kw, m->hp.n_head_kv, m->hp.head_dim_k, vw);
    return STW_STATUS_OK;
}

} // namespace

bool stw_kv_pool_take(stw_kv_pool *p, int32_t *block) {
    std::lock_guard<std::mutex> lk(p->mu);
    if (p->n_free == 0) return false;
    *block = p->free_list[--p->n_free];
    return true;
}

void stw_kv_pool_give(stw_kv_pool *p, const int32_t *blocks, int32_t n) {
    std::lock_guard<std::mutex> lk(p->mu);
    for (int32_t i = 0; i < n; i++) p->free_list[p->n_free++] = blocks[i];
}

extern "C" uint64_t stw_kv_bytes_per_token(const stw_model *m, int32_t kv_type) {
    if (!m) {
        stw_error(STW_STATUS_INVALID_ARGUMENT, "model is null");
        return 0;
    }
    size_t k_row = 0, v_row = 0;
    if (kv_widths(m, kv_type, &k_row, &v_row) != STW_STATUS_OK) return 0;
    return (uint64_t)m->hp.n_layer * (k_row + v_row);
}

extern "C" stw_status stw_kv_pool_init(const stw_model *m, int32_t kv_type, uint64_t budget_bytes, stw_kv_pool **out) {
    stw_backend *be = stw_backend_default_cpu();
    if (!be) {
        if (out) *out = nullptr;
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot create the shared CPU backend");
    }
    return stw_kv_pool_init_on(be, m, kv_type, budget_bytes, out);
}

extern "C" stw_status stw_kv_pool_init_on(stw_backend *be, const stw_model *m, int32_t kv_type, uint64_t budget_bytes,
                                          stw_kv_pool **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!m || !be) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model or backend is null");
    size_t k_row = 0, v_row = 0;
    stw_status st = kv_widths(m, kv_type, &k_row, &v_row);
    if (st) return st;
    if (!be->supports_type(be, kv_type, STW_TYPE_USE_KV))
        return stw_error(STW_STATUS_UNSUPPORTED, "backend %s:%d has no kernels for KV type %s", be->name, be->ordinal,
                         stw_type_name(kv_type));
    const size_t layer_block = STW_KV_BLOCK_TOKENS * (k_row + v_row);
    const size_t block = (size_t)m->hp.n_layer * layer_block;
    const uint64_t n_blocks = budget_bytes / block;
    if (n_blocks == 0)
        return stw_error(STW_STATUS_BUDGET_EXCEEDED,
                         "KV budget of %" PRIu64 " bytes is smaller than one block of %zu bytes (16 tokens x %zu bytes per token)",
                         budget_bytes, block, block / STW_KV_BLOCK_TOKENS);
    if (n_blocks > INT32_MAX)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "KV budget of %" PRIu64 " bytes makes %" PRIu64 " blocks, limit %d",
                         budget_bytes, n_blocks, INT32_MAX);
    stw_kv_pool *p = new (std::nothrow) stw_kv_pool();
    if (!p) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the KV pool struct");
    p->model = m;
    p->be = be;
    p->kv_type = kv_type;
    p->k_row_bytes = k_row;
    p->v_row_bytes = v_row;
    p->layer_block_bytes = layer_block;
    p->block_bytes = block;
    p->n_blocks = (int32_t)n_blocks;
    p->data = nullptr;
    p->free_list = (int32_t *)std::malloc(sizeof(int32_t) * (size_t)n_blocks);
    if (!p->free_list) {
        pool_release(p);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the free list of a KV pool of %" PRIu64 " blocks", n_blocks);
    }
    // the pool's weights reference first (a non-host backend may upload them now), then its blocks
    const uint8_t *wbase = nullptr;
    if ((st = stw_model_acquire(m, be, nullptr, nullptr, &wbase))) {
        pool_release(p);
        return st;
    }
    void *data = nullptr;
    char what[96];
    std::snprintf(what, sizeof what, "a KV pool (%" PRIu64 " blocks of %zu bytes)", n_blocks, block);
    if ((st = stw_backend_buffer_alloc(be, n_blocks * block, what, &data))) {
        stw_model_release(m, be);
        pool_release(p);
        return st;
    }
    p->data = (uint8_t *)data;
    be->users++;
    // hand out low block ids first (the free list is a stack)
    for (int32_t i = 0; i < p->n_blocks; i++) p->free_list[i] = p->n_blocks - 1 - i;
    p->n_free = p->n_blocks;
    p->n_seqs = 0;
    p->closing = false;
    *out = p;
    return STW_STATUS_OK;
}

extern "C" void stw_kv_pool_free(stw_kv_pool *p) {
    if (!p) return;
    {
        std::lock_guard<std::mutex> lk(p->mu);
        if (p->n_seqs > 0) {
            p->closing = true;
            return;
        }
    }
    pool_release(p);
}

extern "C" uint64_t stw_kv_pool_bytes(const stw_kv_pool *p) {
    return p ? (uint64_t)p->n_blocks * p->block_bytes : 0;
}

extern "C" uint64_t stw_kv_pool_used_bytes(const stw_kv_pool *p) {
    if (!p) return 0;
    std::lock_guard<std::mutex> lk(const_cast<stw_kv_pool *>(p)->mu);
    return (uint64_t)(p->n_blocks - p->n_free) * p->block_bytes;
}

extern "C" int32_t stw_kv_pool_blocks(const stw_kv_pool *p) { return p ? p->n_blocks : 0; }

extern "C" int32_t stw_kv_pool_free_blocks(const stw_kv_pool *p) {
    if (!p) return 0;
    std::lock_guard<std::mutex> lk(const_cast<stw_kv_pool *>(p)->mu);
    return p->n_free;
}

extern "C" stw_status stw_seq_init(stw_kv_pool *p, int32_t max_tokens, stw_seq **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!p) return stw_error(STW_STATUS_INVALID_ARGUMENT, "pool is null");
    if (max_tokens < 1 || max_tokens > kMaxSeqTokens)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "max_tokens is %d, expected 1..%d", max_tokens, kMaxSeqTokens);
    stw_seq *s = (stw_seq *)std::calloc(1, sizeof(stw_seq));
    const int32_t table = (max_tokens + STW_KV_BLOCK_TOKENS - 1) / STW_KV_BLOCK_TOKENS;
    int32_t *bt = (int32_t *)std::malloc(sizeof(int32_t) * (size_t)table);
    if (!s || !bt) {
        std::free(s);
        std::free(bt);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate a sequence of %d tokens", max_tokens);
    }
    s->pool = p;
    s->max_tokens = max_tokens;
    s->block_table = bt;
    {
        std::lock_guard<std::mutex> lk(p->mu);
        if (p->closing) {
            std::free(bt);
            std::free(s);
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "the KV pool is being freed");
        }
        p->n_seqs++;
    }
    *out = s;
    return STW_STATUS_OK;
}

extern "C" void stw_seq_free(stw_seq *s) {
    if (!s) return;
    stw_kv_pool *p = s->pool;
    bool release = false;
    {
        std::lock_guard<std::mutex> lk(p->mu);
        for (int32_t i = 0; i < s->n_blocks; i++) p->free_list[p->n_free++] = s->block_table[i];
        p->n_seqs--;
        release = p->closing && p->n_seqs == 0;
    }
    std::free(s->block_table);
    std::free(s);
    if (release) pool_release(p);
}

extern "C" int32_t stw_seq_length(const stw_seq *s) { return s ? s->length : 0; }

extern "C" stw_status stw_seq_truncate(stw_seq *s, int32_t length) {
    if (!s) return stw_error(STW_STATUS_INVALID_ARGUMENT, "seq is null");
    if (length < 0 || length > s->length)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "truncate length %d is outside 0..%d (the sequence length)", length,
                         s->length);
    const int32_t keep = (length + STW_KV_BLOCK_TOKENS - 1) / STW_KV_BLOCK_TOKENS;
    if (keep < s->n_blocks) stw_kv_pool_give(s->pool, s->block_table + keep, s->n_blocks - keep);
    s->n_blocks = keep;
    s->length = length;
    return STW_STATUS_OK;
}
