// context.cpp: the compute context (backend + the workspace of the memory contract, allocated once)
// and stw_decode, the batched llama-family forward step that allocates nothing.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "core.h"

namespace {

constexpr int32_t kMaxThreads = 512;
constexpr int32_t kMaxBatch = 1 << 16;

stw_status op_failed(const char *op, int32_t layer, int rc) {
    if (rc == STW_BACKEND_ERROR_SET) return STW_STATUS_INTERNAL; // the backend's own message stands
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
        if (!stw_backend_compatible(seqs[i]->pool->be, c->be))
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "seqs[%d] has its KV pool on backend %s:%d, the context runs on %s:%d",
                             i, seqs[i]->pool->be->name, seqs[i]->pool->be->ordinal, c->be->name, c->be->ordinal);
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
        s->step_index = -1;
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

stw_status forward(stw_context *c, const stw_step *st, const uint8_t *want_logits, int32_t n_logits) {
    const stw_model *m = c->model;
    const stw_hparams &hp = m->hp;
    stw_backend *be = c->be;
    const int32_t n = st->n_tokens;
    const int64_t e = hp.n_embd, dk = hp.head_dim_k, dv = hp.head_dim_v, ff = hp.n_ff;
    const int64_t q_w = hp.n_head * dk, k_w = hp.n_head_kv * dk, v_w = hp.n_head_kv * dv, o_w = hp.n_head * dv;
    // a weight in the model's buffer on this backend (never dereferenced here)
    const uint8_t *wb = c->wbase;
    auto W = [wb](const stw_weight &w) -> const void * { return w.data ? wb + w.rel : nullptr; };
    auto F = [wb](const stw_weight &w) -> const float * { return w.data ? (const float *)(wb + w.rel) : nullptr; };
    // the type a matmul weight is read as (R8 where the CPU's load-time repack rewrote it)
    const bool r8 = c->w_r8;
    auto T = [m, r8](const stw_weight &w) -> int32_t { return stw_model_matmul_type(m, w, r8); };
    int rc;

    const stw_weight &te = m->tok_embd;
    if ((rc = be->get_rows(be, te.type, W(te), te.row_bytes, te.ne1, st->tokens, n, e, c->x))) return op_failed("get_rows", -1, rc);

    stw_attn_args attn;
    attn.n_tokens = n;
    attn.n_head = hp.n_head;
    attn.n_head_kv = hp.n_head_kv;
    attn.dk = hp.head_dim_k;
    attn.dv = hp.head_dim_v;
    attn.scale = 1.0f / sqrtf((float)dk);
    attn.q = c->q;
    attn.out = c->att;
    attn.step = st;
    const float *rope_freqs = F(m->rope_freqs);

    for (int32_t l = 0; l < hp.n_layer; l++) {
        if (__atomic_exchange_n(&c->cancel, 0, __ATOMIC_ACQ_REL))
            return stw_error(STW_STATUS_CANCELLED, "step of %d tokens cancelled before layer %d", n, l);
        const stw_layer_weights &L = m->layers[(size_t)l];
        // attention block
        if ((rc = be->rmsnorm(be, c->x, F(L.attn_norm), n, e, hp.rms_eps, c->xb))) return op_failed("rmsnorm", l, rc);
        if ((rc = be->matmul(be, T(L.wq), W(L.wq), q_w, e, c->xb, n, c->q, c->qscratch, st))) return op_failed("matmul q", l, rc);
        if ((rc = be->matmul(be, T(L.wk), W(L.wk), k_w, e, c->xb, n, c->k, c->qscratch, st))) return op_failed("matmul k", l, rc);
        if ((rc = be->matmul(be, T(L.wv), W(L.wv), v_w, e, c->xb, n, c->v, c->qscratch, st))) return op_failed("matmul v", l, rc);
        if (L.bq.data && (rc = be->add(be, c->q, F(L.bq), n, q_w, 0))) return op_failed("add q bias", l, rc);
        if (L.bk.data && (rc = be->add(be, c->k, F(L.bk), n, k_w, 0))) return op_failed("add k bias", l, rc);
        if (L.bv.data && (rc = be->add(be, c->v, F(L.bv), n, v_w, 0))) return op_failed("add v bias", l, rc);
        if ((rc = be->rope(be, c->q, n, hp.n_head, hp.head_dim_k, hp.rope_dim, hp.rope_type, hp.rope_freq_base, rope_freqs,
                           st->pos)))
            return op_failed("rope q", l, rc);
        if ((rc = be->rope(be, c->k, n, hp.n_head_kv, hp.head_dim_k, hp.rope_dim, hp.rope_type, hp.rope_freq_base,
                           rope_freqs, st->pos)))
            return op_failed("rope k", l, rc);
        // every token's K/V is stored before any attention so tokens of one sequence in this step see each other
        if ((rc = be->kv_store(be, l, c->k, k_w, c->v, v_w, st))) return op_failed("kv_store", l, rc);
        attn.layer = l;
        if ((rc = be->attention(be, &attn))) return op_failed("attention", l, rc);
        if ((rc = be->matmul(be, T(L.wo), W(L.wo), e, o_w, c->att, n, c->xb, c->qscratch, st))) return op_failed("matmul o", l, rc);
        if ((rc = be->add(be, c->x, c->xb, n, e, e))) return op_failed("add", l, rc);
        // feed-forward block
        if ((rc = be->rmsnorm(be, c->x, F(L.ffn_norm), n, e, hp.rms_eps, c->xb))) return op_failed("rmsnorm", l, rc);
        if ((rc = be->matmul(be, T(L.w_gate), W(L.w_gate), ff, e, c->xb, n, c->gate, c->qscratch, st))) return op_failed("matmul gate", l, rc);
        if ((rc = be->matmul(be, T(L.w_up), W(L.w_up), ff, e, c->xb, n, c->up, c->qscratch, st))) return op_failed("matmul up", l, rc);
        if ((rc = be->swiglu(be, c->gate, c->up, n * ff))) return op_failed("swiglu", l, rc);
        if ((rc = be->matmul(be, T(L.w_down), W(L.w_down), e, ff, c->gate, n, c->xb, c->qscratch, st))) return op_failed("matmul down", l, rc);
        if ((rc = be->add(be, c->x, c->xb, n, e, e))) return op_failed("add", l, rc);
    }

    if (n_logits == 0) return STW_STATUS_OK;
    // only the wanted rows go through the output norm and head, packed in order
    int32_t j = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!want_logits[i]) continue;
        if ((rc = be->rmsnorm(be, c->x + (int64_t)i * e, F(m->output_norm), 1, e, hp.rms_eps, c->xb + (int64_t)j * e)))
            return op_failed("rmsnorm", hp.n_layer, rc);
        j++;
    }
    const stw_weight &out = m->output;
    if ((rc = be->matmul(be, T(out), W(out), hp.n_vocab, e, c->xb, n_logits, c->logits, c->qscratch, nullptr)))
        return op_failed("matmul output", hp.n_layer, rc);
    return STW_STATUS_OK;
}

// The forward through the backend's step hooks (backend.h). A backend that records its steps (CUDA graphs) may
// ask from step_end for another pass: step_begin again, then the forward again (at most kStepPasses passes with
// hooks, then one without). Without hooks (CPU) this is forward itself.
constexpr int kStepPasses = 3;
stw_status run_forward(stw_context *c, const stw_step *st, const uint8_t *want_logits, int32_t n_logits) {
    stw_backend *be = c->be;
    for (int pass = 0; be->step_begin && pass < kStepPasses; pass++) {
        if (be->step_begin(be, st) != 1) break;
        const stw_status fs = forward(c, st, want_logits, n_logits);
        const int rc = be->step_end(be, fs == STW_STATUS_OK);
        if (rc == STW_BACKEND_STEP_RERUN) continue;
        if (rc) return op_failed("step end", c->model->hp.n_layer, rc);
        return fs;
    }
    return forward(c, st, want_logits, n_logits);
}

// Fills the step descriptor's host side after the blocks are reserved: each distinct sequence once,
// its block table copied into the flat table.
stw_status describe_step(stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_step *st) {
    int32_t n_seqs = 0;
    size_t n_table = 0;
    for (int32_t i = 0; i < n_tokens; i++) {
        stw_seq *s = c->tok_seq[i];
        c->tokens[i] = tokens[i];
        if (s->step_index < 0) {
            s->step_index = n_seqs++;
            n_table += (size_t)s->n_blocks;
        }
        c->tok_seq_index[i] = s->step_index;
    }
    if (n_table > (size_t)INT32_MAX)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "the step's sequences hold %zu KV blocks, more than %d", n_table, INT32_MAX);
    try {
        if (c->block_table.size() < n_table) c->block_table.resize(n_table);
    } catch (const std::bad_alloc &) {
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot grow the step's block table to %zu entries", n_table);
    }
    // sequences were numbered in order of their first token: fill each at its first token
    int32_t off = 0, filled = 0;
    for (int32_t i = 0; i < n_tokens && filled < n_seqs; i++) {
        const stw_seq *s = c->tok_seq[i];
        if (s->step_index != filled) continue;
        const stw_kv_pool *p = s->pool;
        stw_step_seq &ss = c->step_seqs[filled++];
        ss.kv = p->data;
        ss.block_bytes = p->block_bytes;
        ss.layer_block_bytes = p->layer_block_bytes;
        ss.k_row_bytes = p->k_row_bytes;
        ss.v_row_bytes = p->v_row_bytes;
        ss.kv_type = p->kv_type;
        ss.bt_offset = off;
        ss.n_blocks = s->n_blocks;
        ss.pad_ = 0;
        std::memcpy(c->block_table.data() + off, s->block_table, sizeof(int32_t) * (size_t)s->n_blocks);
        off += s->n_blocks;
    }
    st->n_tokens = n_tokens;
    st->n_seqs = n_seqs;
    st->n_table = off;
    st->tokens = st->h_tokens = c->tokens;
    st->pos = st->h_pos = c->pos;
    st->seq = st->h_seq = c->tok_seq_index;
    st->seqs = st->h_seqs = c->step_seqs;
    st->block_table = st->h_block_table = c->block_table.data();
    return STW_STATUS_OK;
}

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Non-host backends: packs the descriptor into one host buffer, uploads it into the backend's step
// buffer and points the step's backend views there. Called under the backend's step lock.
stw_status upload_step(stw_context *c, stw_step *st) {
    stw_backend *be = c->be;
    const size_t n = (size_t)st->n_tokens;
    const size_t o_pos = align_up(4 * n, 16), o_seq = o_pos + align_up(4 * n, 16);
    const size_t o_seqs = o_seq + align_up(4 * n, 16);
    const size_t o_table = o_seqs + align_up(sizeof(stw_step_seq) * (size_t)st->n_seqs, 16);
    const size_t bytes = o_table + 4 * (size_t)st->n_table;
    try {
        if (c->packed.size() < bytes) c->packed.resize(bytes);
    } catch (const std::bad_alloc &) {
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot grow the step descriptor to %zu bytes", bytes);
    }
    uint8_t *h = c->packed.data();
    std::memcpy(h, st->h_tokens, 4 * n);
    std::memcpy(h + o_pos, st->h_pos, 4 * n);
    std::memcpy(h + o_seq, st->h_seq, 4 * n);
    std::memcpy(h + o_seqs, st->h_seqs, sizeof(stw_step_seq) * (size_t)st->n_seqs);
    std::memcpy(h + o_table, st->h_block_table, 4 * (size_t)st->n_table);
    stw_status s = stw_backend_step_buffer_locked(be, bytes);
    if (s) return s;
    const int rc = be->upload(be, be->step_buf, 0, h, bytes);
    if (rc) return op_failed("upload step descriptor", -1, rc);
    uint8_t *d = (uint8_t *)be->step_buf;
    st->tokens = (const int32_t *)d;
    st->pos = (const int32_t *)(d + o_pos);
    st->seq = (const int32_t *)(d + o_seq);
    st->seqs = (const stw_step_seq *)(d + o_seqs);
    st->block_table = (const int32_t *)(d + o_table);
    return STW_STATUS_OK;
}

// Points the run-state buffers at the shared workspace (its base changes when it is reallocated).
void bind_workspace(stw_context *c) {
    float *f = (float *)c->be->workspace;
    const stw_workspace_layout &w = c->ws;
    c->x = f + w.x;
    c->xb = f + w.xb;
    c->q = f + w.q;
    c->att = f + w.att;
    c->k = f + w.k;
    c->v = f + w.v;
    c->gate = f + w.gate;
    c->up = f + w.up;
    c->logits = f + w.logits;
    c->qscratch = f + w.qscratch;
}

stw_status decode_step(stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_seq *const *seqs,
                       const uint8_t *want_logits, float *logits_out) {
    int32_t n_logits = 0;
    stw_status st = check_step(c, n_tokens, tokens, seqs, want_logits, logits_out, &n_logits);
    if (st) return st;
    if ((st = reserve_step(c, n_tokens, seqs))) return st;
    stw_step step;
    if ((st = describe_step(c, n_tokens, tokens, &step))) {
        release_step_blocks(seqs, n_tokens);
        return st;
    }
    stw_backend *be = c->be;
    {
        // one step at a time per device: the workspace (and the CPU's thread pool) is shared
        std::lock_guard<std::mutex> lk(be->step_mu);
        st = stw_backend_workspace_ensure_locked(be);
        if (st == STW_STATUS_OK && be->ws_bytes < c->workspace_bytes)
            st = stw_error(STW_STATUS_INTERNAL, "the shared workspace has %" PRIu64 " bytes, this context needs %" PRIu64,
                           be->ws_bytes.load(), c->workspace_bytes);
        if (st == STW_STATUS_OK) {
            bind_workspace(c);
            if (!be->host_memory) st = upload_step(c, &step);
        }
        if (st == STW_STATUS_OK) st = run_forward(c, &step, want_logits, n_logits);
        if (st == STW_STATUS_OK) {
            int rc = 0;
            if (n_logits > 0)
                rc = be->download(be, logits_out, c->logits, 0, sizeof(float) * (size_t)n_logits * (size_t)c->model->hp.n_vocab);
            else if (!be->host_memory)
                rc = be->synchronize(be);
            if (rc) st = op_failed(n_logits > 0 ? "download logits" : "synchronize", c->model->hp.n_layer, rc);
        }
    }
    if (st) {
        release_step_blocks(seqs, n_tokens);
        return st;
    }
    for (int32_t i = 0; i < n_tokens; i++) c->tok_seq[i]->length = c->pos[i] + 1;
    return STW_STATUS_OK;
}

} // namespace

stw_workspace_layout stw_workspace_layout_for(const stw_hparams &hp, uint64_t B, uint64_t L) {
    const uint64_t e = (uint64_t)hp.n_embd, dk = (uint64_t)hp.head_dim_k, dv = (uint64_t)hp.head_dim_v;
    stw_workspace_layout w;
    uint64_t f = 0;
    w.x = f; f += B * e;
    w.xb = f; f += B * e;
    w.q = f; f += B * (uint64_t)hp.n_head * dk;
    w.att = f; f += B * (uint64_t)hp.n_head * dv;
    w.k = f; f += B * (uint64_t)hp.n_head_kv * dk;
    w.v = f; f += B * (uint64_t)hp.n_head_kv * dv;
    w.gate = f; f += B * (uint64_t)hp.n_ff;
    w.up = f; f += B * (uint64_t)hp.n_ff;
    w.logits = f; f += L * (uint64_t)hp.n_vocab;
    w.qscratch = f;
    w.floats = f;
    return w;
}

uint64_t stw_workspace_bytes_for(const stw_hparams &hp, uint64_t B, uint64_t L) {
    const uint64_t e = (uint64_t)hp.n_embd;
    const uint64_t widest = std::max<uint64_t>({e, (uint64_t)hp.n_head * (uint64_t)hp.head_dim_v, (uint64_t)hp.n_ff});
    return 4 * stw_workspace_layout_for(hp, B, L).floats + B * ((widest + 31) / 32) * 36;
}

static void context_release(stw_context *c) {
    std::free(c->tokens);
    std::free(c->pos);
    std::free(c->tok_seq_index);
    std::free(c->tok_seq);
    std::free(c->step_seqs);
    delete c;
}

extern "C" stw_status stw_context_init_on(stw_backend *be, const stw_model *m, int32_t max_batch_tokens,
                                          int32_t max_logit_rows, stw_context **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!m || !be) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model or backend is null");
    if (max_batch_tokens < 1 || max_batch_tokens > kMaxBatch)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "max_batch_tokens is %d, expected 1..%d", max_batch_tokens, kMaxBatch);
    if (max_logit_rows < 1 || max_logit_rows > max_batch_tokens)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "max_logit_rows is %d, expected 1..%d (max_batch_tokens)",
                         max_logit_rows, max_batch_tokens);
    const stw_hparams &hp = m->hp;
    const uint64_t B = (uint64_t)max_batch_tokens, L = (uint64_t)max_logit_rows;
    const uint64_t bytes = be->workspace_bytes(be, &hp, (int64_t)B, (int64_t)L);
    stw_context *c = new (std::nothrow) stw_context();
    if (!c) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the context struct");
    c->model = m;
    c->be = be;
    c->max_batch = max_batch_tokens;
    c->max_logit_rows = max_logit_rows;
    c->workspace_bytes = bytes;
    c->ws = stw_workspace_layout_for(hp, B, L);
    c->tokens = (int32_t *)std::malloc(sizeof(int32_t) * B);
    c->pos = (int32_t *)std::malloc(sizeof(int32_t) * B);
    c->tok_seq_index = (int32_t *)std::malloc(sizeof(int32_t) * B);
    c->tok_seq = (stw_seq **)std::malloc(sizeof(stw_seq *) * B);
    c->step_seqs = (stw_step_seq *)std::calloc(B, sizeof(stw_step_seq));
    if (bytes > SIZE_MAX || !c->tokens || !c->pos || !c->tok_seq_index || !c->tok_seq || !c->step_seqs) {
        context_release(c);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the step metadata of %d tokens", max_batch_tokens);
    }
    stw_status st = stw_model_acquire(m, be, nullptr, nullptr, &c->wbase);
    if (st) {
        context_release(c);
        return st;
    }
    c->w_r8 = stw_model_base_repacked(m, c->wbase);
    {
        std::lock_guard<std::mutex> lk(be->step_mu);
        st = stw_backend_workspace_add_locked(be, bytes);
    }
    if (st) {
        stw_model_release(m, be);
        context_release(c);
        return stw_error(st, "%s (context of max_batch_tokens %d, max_logit_rows %d)", std::string(stw_last_error()).c_str(),
                         max_batch_tokens, max_logit_rows);
    }
    be->users++;
    *out = c;
    return STW_STATUS_OK;
}

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
    stw_backend *be = nullptr;
    stw_status st = stw_backend_init(STW_BACKEND_KIND_CPU, 0, n_threads, &be);
    if (st) return st;
    if ((st = stw_context_init_on(be, m, max_batch_tokens, max_logit_rows, out))) {
        const std::string msg = stw_last_error();
        stw_backend_free(be);
        return stw_error(st, "%s", msg.c_str());
    }
    (*out)->owns_backend = true;
    return STW_STATUS_OK;
}

extern "C" void stw_context_free(stw_context *c) {
    if (!c) return;
    stw_backend *be = c->be;
    {
        std::lock_guard<std::mutex> lk(be->step_mu);
        stw_backend_workspace_remove_locked(be, c->workspace_bytes);
    }
    stw_model_release(c->model, be);
    be->users--;
    const bool owns = c->owns_backend;
    context_release(c);
    if (owns) stw_backend_free(be);
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
