// core.h: the engine's internal structs (model weights, KV pool, sequences, compute context) and
// helpers shared by the core's translation units; llama2.c-style, with shapes in the comments.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "stowage.h"

// Largest head dimension the attention loop supports: its per-thread scratch lives on the stack.
constexpr int32_t kMaxHeadDim = 1024;

// Sets the thread-local error message and returns the status (printf-style).
stw_status stw_error(stw_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *stw_type_name(int32_t type);
// Elements per block and bytes per block of a ggml type the core knows; 0 for an unknown id.
int64_t stw_type_block_size(int32_t type);
int64_t stw_type_block_bytes(int32_t type);
// Whether the CPU kernels can use weights of this type.
bool stw_type_supported_weight(int32_t type);

// One weight tensor inside the mapping. Shapes in GGUF order: ne0 = row length (input width),
// ne1 = number of rows (output width).
struct stw_weight {
    const void *data; // points into the read-only mapping; null when absent
    uint64_t rel; // byte offset from the model's weight span start (offset in every backend's weight buffer)
    int32_t type;
    int64_t ne0, ne1;
    size_t row_bytes; // bytes of one row of ne0 values
};

struct stw_layer_weights {
    stw_weight attn_norm; // [n_embd] f32
    stw_weight wq; // [n_embd] -> [n_head * dk]
    stw_weight wk; // [n_embd] -> [n_head_kv * dk]
    stw_weight wv; // [n_embd] -> [n_head_kv * dv]
    stw_weight bq, bk, bv; // qwen2 biases, f32 [n_head*dk], [n_head_kv*dk], [n_head_kv*dv]
    stw_weight wo; // [n_head * dv] -> [n_embd]
    stw_weight ffn_norm; // [n_embd] f32
    stw_weight w_gate; // [n_embd] -> [n_ff]
    stw_weight w_up; // [n_embd] -> [n_ff]
    stw_weight w_down; // [n_ff] -> [n_embd]
};

// The model's weights on one backend: CPU, the mapping (buf = map + span_start, nothing allocated);
// other backends, one buffer holding the file's tensor data span, uploaded once and shared.
struct stw_model_buffer {
    stw_backend *be;
    const uint8_t *base; // backend memory: weight w lives at base + w.rel
    uint64_t bytes; // span_bytes
    bool owned; // allocated through the backend (freed with the last reference)
    int32_t refs; // stw_model_load calls + contexts + KV pools on this backend
};

// The weights every CPU backend reads. Zero-copy (map == nullptr: the shared mapping itself) unless the
// load-time repack (R8, src/cpu kernels.h stw_cpu_repack_r8) found matrices to rewrite: then the span is
// mapped a second time, MAP_PRIVATE from the file (offset rounded down to a page), those matrices are
// repacked in place there (copy-on-write makes exactly their pages private; the rest stay the file's
// page-cache pages) and the mapping is made read-only. Shared by all CPU backends of the model, so the
// process holds one copy of each weight whatever the number of CPU contexts; unmapped with the last.
struct stw_cpu_weights {
    uint8_t *map = nullptr; // the private mapping (nullptr: zero-copy)
    size_t bytes = 0; // its length
    uint64_t delta = 0; // span start - the mapping's file offset
    int32_t users = 0; // CPU weight buffers on it
    std::vector<uint64_t> r8_rels; // sorted rel offsets of the repacked matrices
    uint64_t r8_bytes = 0; // their bytes
    double seconds = 0; // the repack's wall time
};

struct stw_model {
    stw_hparams hp;
    int fd = -1;
    const uint8_t *map = nullptr; // read-only MAP_SHARED mapping of the whole file
    size_t map_bytes = 0;
    uint64_t weight_bytes = 0; // sum of every tensor's bytes as stored
    stw_weight tok_embd; // [n_embd] x n_vocab rows
    stw_weight output_norm; // [n_embd] f32
    stw_weight output; // [n_embd] x n_vocab rows; == tok_embd when the file ties them
    stw_weight rope_freqs; // optional [rope_dim / 2] f32 divisors of the RoPE frequencies (llama 3.x)
    std::vector<stw_layer_weights> layers; // n_layer
    uint64_t span_start = 0, span_bytes = 0; // [lowest tensor offset, highest tensor end) of the file
    std::mutex buf_mu; // guards buffers (contexts and pools of several threads share the model)
    std::vector<stw_model_buffer> buffers; // one per backend the weights are resident on
    stw_cpu_weights cpu; // what CPU backends read (guarded by buf_mu; fixed while any CPU buffer lives)
};

// The ggml type the CPU kernels take weight w as through a buffer that repacked is true for: its R8 type
// when the load-time repack rewrote it, else its own type (always its own type elsewhere).
int32_t stw_model_matmul_type(const stw_model *m, const stw_weight &w, bool repacked);
// Whether base (from stw_model_acquire) is the repacked CPU mapping.
bool stw_model_base_repacked(const stw_model *m, const uint8_t *base);

// Takes one reference on m's weight buffer on be (uploading it first when there is none; progress may
// be NULL) and returns its base; releases one. Both lock m->buf_mu.
stw_status stw_model_acquire(const stw_model *m, stw_backend *be, stw_progress_fn progress, void *user,
                             const uint8_t **base);
void stw_model_release(const stw_model *m, stw_backend *be);

struct stw_kv_pool {
    const stw_model *model;
    stw_backend *be; // owns data
    int32_t kv_type;
    size_t k_row_bytes; // one token's K row of one layer: n_head_kv * dk values
    size_t v_row_bytes; // one token's V row of one layer: n_head_kv * dv values
    size_t layer_block_bytes; // 16 * (k_row_bytes + v_row_bytes)
    size_t block_bytes; // n_layer * layer_block_bytes
    int32_t n_blocks;
    uint8_t *data; // backend memory, n_blocks * block_bytes; block b, layer l: K slots then V slots
    std::mutex mu; // guards the free list and the sequence count
    int32_t *free_list; // n_blocks block ids; [0, n_free) are free
    int32_t n_free;
    int32_t n_seqs;
    bool closing; // stw_kv_pool_free was called while sequences lived: the last stw_seq_free frees it
};

// Takes a free block (false when the pool is dry) / returns one; both lock the pool.
bool stw_kv_pool_take(stw_kv_pool *p, int32_t *block);
void stw_kv_pool_give(stw_kv_pool *p, const int32_t *blocks, int32_t n);

struct stw_seq {
    stw_kv_pool *pool;
    int32_t max_tokens;
    int32_t length; // tokens whose K/V are in the cache
    int32_t n_blocks; // blocks held (block_table[0 .. n_blocks))
    int32_t *block_table; // ceil(max_tokens / 16) entries
    int32_t step_count; // scratch of stw_decode: this sequence's tokens in the current step
    int32_t step_blocks; // scratch of stw_decode: blocks held before the current step
    int32_t step_index; // scratch of stw_decode: its index in the step descriptor's sequences
};

// K (is_v false) or V row of one token of one layer in a step sequence's cache (block_table: the
// step's flat table, in the same memory as ss).
static inline uint8_t *stw_seq_kv_row(const stw_step_seq *ss, const int32_t *block_table, int32_t layer, int32_t pos,
                                      bool is_v) {
    const int32_t block = block_table[ss->bt_offset + pos / STW_KV_BLOCK_TOKENS];
    const int32_t slot = pos % STW_KV_BLOCK_TOKENS;
    uint8_t *base = ss->kv + (size_t)block * ss->block_bytes + (size_t)layer * ss->layer_block_bytes;
    if (is_v) return base + STW_KV_BLOCK_TOKENS * ss->k_row_bytes + (size_t)slot * ss->v_row_bytes;
    return base + (size_t)slot * ss->k_row_bytes;
}

// Bytes of a KV row of width w for a KV type per the memory contract; 0 when the type cannot hold it.
size_t stw_kv_row_bytes(int32_t kv_type, int64_t w);

// Offsets (in floats) of the run-state buffers inside a workspace, in the order of the contract's formula;
// qscratch (bytes) follows the floats.
struct stw_workspace_layout {
    uint64_t x, xb, q, att, k, v, gate, up, logits, qscratch, floats;
};
stw_workspace_layout stw_workspace_layout_for(const stw_hparams &hp, uint64_t B, uint64_t L);
// The memory contract's A_m for a step of B tokens with L logit rows (the CPU backend's workspace_bytes).
uint64_t stw_workspace_bytes_for(const stw_hparams &hp, uint64_t B, uint64_t L);

struct stw_context {
    const stw_model *model;
    stw_backend *be; // the device: its shared workspace holds the run state during a step
    bool owns_backend; // stw_context_init's private CPU backend
    const uint8_t *wbase; // the model's weight buffer on be (weight w at wbase + w.rel)
    bool w_r8; // wbase is the repacked CPU mapping: matmuls take stw_model_matmul_type
    int32_t max_batch; // B
    int32_t max_logit_rows; // L
    uint64_t workspace_bytes; // the memory contract's A_m (this context's share of the maximum)
    stw_workspace_layout ws; // where the run state lives in the shared workspace
    // run state, set from the shared workspace at the start of each step (backend memory)
    float *x; // [B][n_embd] residual stream
    float *xb; // [B][n_embd] normed input / projection output
    float *q; // [B][n_head * dk]
    float *att; // [B][n_head * dv] attention output
    float *k; // [B][n_head_kv * dk]
    float *v; // [B][n_head_kv * dv]
    float *gate; // [B][n_ff]
    float *up; // [B][n_ff]
    float *logits; // [L][n_vocab]
    void *qscratch; // B * ceil(max(n_embd, n_head*dv, n_ff)/32) * 36 bytes
    // the step descriptor's host side, allocated once beside the workspace (host overhead: 12*B bytes
    // + B step sequences + the flat block table, which grows to the largest step's and stays)
    int32_t *tokens; // [B]
    int32_t *pos; // [B] position of each token in its sequence
    int32_t *tok_seq_index; // [B] index of each token's sequence in step_seqs
    stw_seq **tok_seq; // [B] sequence of each token
    stw_step_seq *step_seqs; // [B] (at most B sequences in a step)
    std::vector<int32_t> block_table; // flat: each step sequence's table at its bt_offset
    std::vector<uint8_t> packed; // the descriptor packed for one upload (non-host backends)
    int busy; // 1 while a step runs (atomic builtins)
    int cancel; // set by stw_context_cancel, read between layers (atomic builtins)
};

// Shared by stw_model_init and stw_model_init_file: checks hparams and descriptors against the
// mapping and fills the weights. Takes ownership of fd and map (released by stw_model_free on error).
stw_status stw_model_init_mapped(stw_model *m, const stw_hparams *hp, const stw_tensor_desc *tensors,
                                 int32_t n_tensors);

// The checked GGUF parser: reads the header of the mapped file into hparams and descriptors.
struct stw_gguf_tensors {
    std::vector<std::string> names;
    std::vector<stw_tensor_desc> descs; // name pointers refer into names
};
stw_status stw_gguf_parse(const uint8_t *data, size_t size, stw_hparams *hp, stw_gguf_tensors *out);
