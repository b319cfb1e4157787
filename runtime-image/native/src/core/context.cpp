// context.cpp: the compute context (backend + the workspace of the memory contract, allocated once)
// and stw_decode, the batched llama-family forward step that allocates nothing.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core.h"

namespace {

constexpr int32_t kMaxThreads = 512;
constexpr int32_t kMaxBatch = 1 << 16;

// The memory contract's A_m for a step of B tokens with L logit rows.
uint64_t workspace_bytes_for(const stw_hparams &hp, uint64_t B, uint64_t L) {
    const uint64_t e = (uint64_t)hp.n_embd, dk = (uint64_t)hp.head_dim_k, dv = (uint64_t)hp.head_dim_v;
    const uint64_t floats = 2 * e + (uint64_t)hp.n_head * dk + (uint64_t)hp.n_head * dv +
                            (uint64_t)hp.n_head_kv * (dk + dv) + 2 * (uint64_t)hp.n_ff;
    const uint64_t widest = std::max<uint64_t>({e, (uint64_t)hp.n_head * dv, (uint64_t)hp.n_ff});
    return 4 * B * floats + 4 * L * (uint64_t)hp.n_vocab + B * ((widest + 31) / 32) * 36;
}

stw_status op_failed(const char *op, int32_t layer, int rc) {
    return stw_error(STW_STATUS_INTERNAL, "backend op %s failed in layer %d (code %d)", op, layer, rc);
}

// Undoes the block reservations of a failed step: every sequence gives back what it took in it.
void release_step_blocks(stw_seq *const *seqs, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        stw_seq *s = seqs[i];
        if (s->n_blocks > s->step_blocks) {
            stw_kv_pool_give(s->pool, s->block_table + s->step_blocks, s->n_blocks - s->step_blocks);
            s->n_blocks = s->step_blocks;
        }
    }
}

stw_status check_step(const stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_seq *const *seqs,
                      const uint8_t *want_logits, float *logits_out, int32_t *n_logits) {
    if (n_tokens < 1 || n_tokens > c->max_batch)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "n_tokens is %d, expected 1..%d (the context's max_batch_tokens)",
                         n_tokens, c->max_batch);
    if (!tokens || !seqs) return stw_error(STW_STATUS_INVALID_ARGUMENT, "tokens or seqs is null");
    const int32_t n_vocab = c->model->hp.n_vocab;
    int32_t rows = 0;
    for (int32_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "tokens[%d] is %d, expected 0..%d (n_vocab - 1)", i, tokens[i],
                             n_vocab - 1);
        if (!seqs[i]) return stw_error(STW_STATUS_INVALID_ARGUMENT, "seqs[%d] is null", i);
        if (seqs[i]->pool->model != c->model)
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "seqs[%d] belongs to a KV pool of another model", i);
        if (want_logits && want_logits[i]) rows++;
    }
    if (rows > c->max_logit_rows)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "%d tokens want logits, the context's max_logit_rows is %d", rows,
                         c->max_logit_rows);
    if (rows > 0 && !logits_out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "logits_out is null but %d rows are wanted", rows);
    *n_logits = rows;
    return STW_STATUS_OK;
}

// Assigns each token its position and takes the KV blocks the step needs; all or nothing.
stw_status reserve_step(stw_context *c, int32_t n_tokens, stw_seq *const *seqs) {
    for (int32_t i = 0; i < n_tokens; i++) {
        seqs[i]->step_count = 0;
        seqs[i]->step_blocks = seqs[i]->n_blocks;
    }
    for (int32_t i = 0; i < n_tokens; i++) {
        stw_seq *s = seqs[i];
        const int32_t pos = s->length + s->step_count++;
        if (pos >= s->max_tokens) {
            release_step_blocks(seqs, n_tokens);
            return stw_error(STW_STATUS_BUDGET_EXCEEDED,
                             "seqs[%d] would hold %d tokens, more than its max_tokens %d; truncate or free it", i, pos + 1,
                             s->max_tokens);
        }
        c->pos[i] = pos;
        c->tok_seq[i] = s;
        while (s->n_blocks <= pos / STW_KV_BLOCK_TOKENS) {
            int32_t block;
            if (!stw_kv_pool_take(s->pool, &block)) {
                release_step_blocks(seqs, n_tokens);
                return stw_error(STW_STATUS_BUDGET_EXCEEDED,
                                 "KV pool is full: seqs[%d] needs a block for position %d but all %d blocks (%" PRIu64
                                 " bytes) are held; free a sequence or raise the KV budget",
                                 i, pos, s->pool->n_blocks, stw_kv_pool_bytes(s->pool));
            }
            s->block_table[s->n_blocks++] = block;
        }
    }
    return STW_STATUS_OK;
}

stw_status forward(stw_context *c, int32_t n, const int32_t *tokens, const uint8_t *want_logits, int32_t n_logits) {
    const stw_model *m = c->model;
    const stw_hparams &hp = m->hp;
    stw_backend *be = &c->backend;
    const int64_t e = hp.n_embd, dk = hp.head_dim_k, dv = hp.head_dim_v, ff = hp.n_ff;
    const int64_t q_w = hp.n_head * dk, k_w = hp.n_head_kv * dk, v_w = hp.n_head_kv * dv, o_w = hp.n_head * dv;
    int rc;

    const stw_weight &te = m->tok_embd;
    if ((rc = be->get_rows(be, te.type, te.data, te.row_bytes, te.ne1, tokens, n, e, c->x))) return op_failed("get_rows", -1, rc);

    stw_attn_args attn;
    attn.n_tokens = n;
    attn.n_head = hp.n_head;
    attn.n_head_kv = hp.n_head_kv;
    attn.dk = hp.head_dim_k;
    attn.dv = hp.head_dim_v;
    attn.scale = 1.0f / sqrtf((float)dk);
    attn.q = c->q;
    attn.out = c->att;
    attn.seqs = c->tok_seq;
    attn.pos = c->pos;

    for (int32_t l = 0; l < hp.n_layer; l++) {
        if (__atomic_exchange_n(&c->cancel, 0, __ATOMIC_ACQ_REL))
            return stw_error(STW_STATUS_CANCELLED, "step of %d tokens cancelled before layer %d", n, l);
        const stw_layer_weights &L = m->layers[(size_t)l];
        // attention block
        if ((rc = be->rmsnorm(be, c->x, (const float *)L.attn_norm.data, n, e, hp.rms_eps, c->xb))) return op_failed("rmsnorm", l, rc);
        if ((rc = be->matmul(be, L.wq.type, L.wq.data, q_w, e, c->xb, n, c->q, c->qscratch, c->tok_seq))) return op_failed("matmul q", l, rc);
        if ((rc = be->matmul(be, L.wk.type, L.wk.data, k_w, e, c->xb, n, c->k, c->qscratch, c->tok_seq))) return op_failed("matmul k", l, rc);
        if ((rc = be->matmul(be, L.wv.type, L.wv.data, v_w, e, c->xb, n, c->v, c->qscratch, c->tok_seq))) return op_failed("matmul v", l, rc);
        if (L.bq.data && (rc = be->add(be, c->q, (const float *)L.bq.data, n, q_w, 0))) return op_failed("add q bias", l, rc);
        if (L.bk.data && (rc = be->add(be, c->k, (const float *)L.bk.data, n, k_w, 0))) return op_failed("add k bias", l, rc);
        if (L.bv.data && (rc = be->add(be, c->v, (const float *)L.bv.data, n, v_w, 0))) return op_failed("add v bias", l, rc);
        if ((rc = be->rope(be, c->q, n, hp.n_head, hp.head_dim_k, hp.rope_dim, hp.rope_type, hp.rope_freq_base,
                           (const float *)m->rope_freqs.data, c->pos)))
            return op_failed("rope q", l, rc);
        if ((rc = be->rope(be, c->k, n, hp.n_head_kv, hp.head_dim_k, hp.rope_dim, hp.rope_type, hp.rope_freq_base,
                           (const float *)m->rope_freqs.data, c->pos)))
            return op_failed("rope k", l, rc);
        // every token's K/V is stored before any attention so tokens of one sequence in this step see each other
        if ((rc = be->kv_store(be, l, c->k, k_w, c->v, v_w, n, c->tok_seq, c->pos))) return op_failed("kv_store", l, rc);
        attn.layer = l;
        if ((rc = be->attention(be, &attn))) return op_failed("attention", l, rc);
        if ((rc = be->matmul(be, L.wo.type, L.wo.data, e, o_w, c->att, n, c->xb, c->qscratch, c->tok_seq))) return op_failed("matmul o", l, rc);
        if ((rc = be->add(be, c->x, c->xb, n, e, e))) return op_failed("add", l, rc);
        // feed-forward block
        if ((rc = be->rmsnorm(be, c->x, (const float *)L.ffn_norm.data, n, e, hp.rms_eps, c->xb))) return op_failed("rmsnorm", l, rc);
        if ((rc = be->matmul(be, L.w_gate.type, L.w_gate.data, ff, e, c->xb, n, c->gate, c->qscratch, c->tok_seq))) return op_failed("matmul gate", l, rc);
        if ((rc = be->matmul(be, L.w_up.type, L.w_up.data, ff, e, c->xb, n, c->up, c->qscratch, c->tok_seq))) return op_failed("matmul up", l, rc);
        if ((rc = be->swiglu(be, c->gate, c->up, n * ff))) return op_failed("swiglu", l, rc);
        if ((rc = be->matmul(be, L.w_down.type, L.w_down.data, e, ff, c->gate, n, c->xb, c->qscratch, c->tok_seq))) return op_failed("matmul down", l, rc);
        if ((rc = be->add(be, c->x, c->xb, n, e, e))) return op_failed("add", l, rc);
    }

    if (n_logits == 0) return STW_STATUS_OK;
    // only the wanted rows go through the output norm and head, packed in order
    int32_t j = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!want_logits[i]) continue;
        if ((rc = be->rmsnorm(be, c->x + (int64_t)i * e, (const float *)m->output_norm.data, 1, e, hp.rms_eps,
                              c->xb + (int64_t)j * e)))
            return op_failed("rmsnorm", hp.n_layer, rc);
        j++;
    }
    const stw_weight &out = m->output;
    if ((rc = be->matmul(be, out.type, out.data, hp.n_vocab, e, c->xb, n_logits, c->logits, c->qscratch, nullptr)))
        return op_failed("matmul output", hp.n_layer, rc);
    return STW_STATUS_OK;
}

stw_status decode_step(stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_seq *const *seqs,
                       const uint8_t *want_logits, float *logits_out) {
    int32_t n_logits = 0;
    stw_status st = check_step(c, n_tokens, tokens, seqs, want_logits, logits_out, &n_logits);
    if (st) return st;
    if ((st = reserve_step(c, n_tokens, seqs))) return st;
    st = forward(c, n_tokens, tokens, want_logits, n_logits);
    if (st) {
        release_step_blocks(seqs, n_tokens);
        return st;
    }
    for (int32_t i = 0; i < n_tokens; i++) c->tok_seq[i]->length = c->pos[i] + 1;
    if (n_logits > 0)
        std::memcpy(logits_out, c->logits, sizeof(float) * (size_t)n_logits * (size_t)c->model->hp.n_vocab);
    return STW_STATUS_OK;
}

} // namespace

extern "C" stw_status stw_context_init(const stw_model *m, int32_t n_threads, int32_t max_batch_tokens,
                                       int32_t max_logit_rows, stw_context **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!m) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model is null");
    if (n_threads < 1 || n_threads > kMaxThreads)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "n_threads is %d, expected 1..%d", n_threads, kMaxThreads);
    if (max_batch_tokens < 1 || max_batch_tokens > kMaxBatch)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "max_batch_tokens is %d, expected 1..%d", max_batch_tokens, kMaxBatch);
    if (max_logit_rows < 1 || max_logit_rows > max_batch_tokens)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "max_logit_rows is %d, expected 1..%d (max_batch_tokens)",
                         max_logit_rows, max_batch_tokens);
    const stw_hparams &hp = m->hp;
    const uint64_t B = (uint64_t)max_batch_tokens, L = (uint64_t)max_logit_rows;
    const uint64_t bytes = workspace_bytes_for(hp, B, L);
    stw_context *c = (stw_context *)std::calloc(1, sizeof(stw_context));
    if (!c) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the context struct");
    c->model = m;
    c->max_batch = max_batch_tokens;
    c->max_logit_rows = max_logit_rows;
    c->workspace_bytes = bytes;
    c->pos = (int32_t *)std::malloc(sizeof(int32_t) * B);
    c->tok_seq = (stw_seq **)std::malloc(sizeof(stw_seq *) * B);
    if (bytes > SIZE_MAX || !c->pos || !c->tok_seq || posix_memalign(&c->workspace, 64, (size_t)bytes) != 0) {
        c->workspace = nullptr;
        stw_context_free(c);
        return stw_error(STW_STATUS_OUT_OF_MEMORY,
                         "cannot allocate a workspace of %" PRIu64 " bytes (max_batch_tokens %d, max_logit_rows %d)",
                         bytes, max_batch_tokens, max_logit_rows);
    }
    if (!stw_backend_cpu_init(&c->backend, n_threads)) {
        stw_context_free(c);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot start a CPU thread pool of %d threads", n_threads);
    }
    // carve the buffers in the order of the contract's formula
    float *f = (float *)c->workspace;
    const uint64_t e = (uint64_t)hp.n_embd, dk = (uint64_t)hp.head_dim_k, dv = (uint64_t)hp.head_dim_v;
    c->x = f; f += B * e;
    c->xb = f; f += B * e;
    c->q = f; f += B * hp.n_head * dk;
    c->att = f; f += B * hp.n_head * dv;
    c->k = f; f += B * hp.n_head_kv * dk;
    c->v = f; f += B * hp.n_head_kv * dv;
    c->gate = f; f += B * (uint64_t)hp.n_ff;
    c->up = f; f += B * (uint64_t)hp.n_ff;
    c->logits = f; f += L * (uint64_t)hp.n_vocab;
    c->qscratch = f;
    *out = c;
    return STW_STATUS_OK;
}

extern "C" void stw_context_free(stw_context *c) {
    if (!c) return;
    if (c->backend.free) c->backend.free(&c->backend);
    std::free(c->workspace);
    std::free(c->pos);
    std::free(c->tok_seq);
    std::free(c);
}

extern "C" uint64_t stw_context_workspace_bytes(const stw_context *c) { return c ? c->workspace_bytes : 0; }

extern "C" stw_status stw_decode(stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_seq *const *seqs,
                                 const uint8_t *want_logits, float *logits_out) {
    if (!c) return stw_error(STW_STATUS_INVALID_ARGUMENT, "context is null");
    if (__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE))
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "the context is running a step on another thread");
    __atomic_store_n(&c->cancel, 0, __ATOMIC_RELEASE);
    const stw_status st = decode_step(c, n_tokens, tokens, seqs, want_logits, logits_out);
    __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
    return st;
}

extern "C" void stw_context_cancel(stw_context *c) {
    if (c && __atomic_load_n(&c->busy, __ATOMIC_ACQUIRE)) __atomic_store_n(&c->cancel, 1, __ATOMIC_RELEASE);
}
