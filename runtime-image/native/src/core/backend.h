// backend.h: what a compute backend provides (a table of functions: memory, then ops) and the flat step
// descriptor the forward hands to the ops. One stw_backend object per device (stowage.h's stw_backend).
//
// Memory: every buffer an op touches is backend memory (device pointers on a GPU) obtained through
// alloc: weights (the CPU backend instead reads the model's mapping in place), KV pools, the shared
// workspace and the step buffer. The core never dereferences backend memory on the host unless
// host_memory is true (the CPU backend); it moves bytes only through upload/download.
//
// A new backend (src/cuda) fills the table in its create function and leaves the core's fields alone.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>

#include "stowage.h"

// One sequence of a step, as the KV ops see it (all pointers backend memory). A sequence's KV row of
// layer l at position t lives at kv + block * block_bytes + l * layer_block_bytes, then K slots then V
// slots of 16 tokens each, block = block_table[bt_offset + t / 16] (see core.h stw_seq_kv_row).
struct stw_step_seq {
    uint8_t *kv; // its pool's buffer
    uint64_t block_bytes; // n_layer * layer_block_bytes
    uint64_t layer_block_bytes; // 16 * (k_row_bytes + v_row_bytes)
    uint64_t k_row_bytes, v_row_bytes; // one token's K / V row of one layer, as stored
    int32_t kv_type; // STW_TYPE_F32, F16 or Q8_0
    int32_t bt_offset; // its first entry in block_table
    int32_t n_blocks; // entries of its block table valid for this step
    int32_t pad_;
};

// The flat descriptor of one step: built on the host, uploaded into the backend's step buffer in one
// copy (CPU: read in place). Shapes: [n_tokens] per token, [n_seqs] per sequence, block_table flat.
struct stw_step {
    int32_t n_tokens, n_seqs, n_table; // n_table: entries of block_table
    // backend memory (device on a GPU; the host arrays below on the CPU)
    const int32_t *tokens; // token ids
    const int32_t *pos; // position of each token in its sequence
    const int32_t *seq; // index of each token's sequence in seqs
    const stw_step_seq *seqs;
    const int32_t *block_table;
    // host copies of the same, for launch decisions (e.g. the CPU matmul's grouping by sequence)
    const int32_t *h_tokens, *h_pos, *h_seq;
    const stw_step_seq *h_seqs;
    const int32_t *h_block_table;
};

// Arguments of one attention op over a batch: token i (at position pos[i] of sequence seq[i]) attends
// to positions 0..pos[i] of its own sequence, whose K/V for this step are already stored.
struct stw_attn_args {
    int32_t n_tokens, layer;
    int32_t n_head, n_head_kv, dk, dv;
    float scale; // 1/sqrt(dk)
    const float *q; // [n_tokens][n_head * dk], RoPE applied
    float *out; // [n_tokens][n_head * dv]
    const stw_step *step;
};

// Every function returns 0 or a negative error code unless it says otherwise; the core turns a failure
// into a status with stw_last_error set (a backend may set a more precise message with stw_error first:
// the core keeps it when the backend returned STW_BACKEND_ERROR_SET).
constexpr int STW_BACKEND_ERROR_SET = -1000;
// step_end: nothing of the step ran; make another pass of the forward (step_begin first).
constexpr int STW_BACKEND_STEP_RERUN = -1001;

struct stw_backend {
    // ---- filled by the backend's create function ----
    const char *name; // "cpu", "cuda"
    int32_t kind; // stw_backend_kind
    int32_t ordinal;
    bool host_memory; // buffers are host memory the core may read and write directly (CPU)
    void *impl; // backend state (CPU: the thread pool)

    // Memory. alloc returns a buffer of bytes (aligned to at least 256 bytes) or fails; free_buffer(NULL)
    // is a no-op. upload/download copy between host memory and a buffer at a byte offset, in order with
    // the ops on the backend's stream: an upload returns once src may be reused (the core refills its
    // host buffers at once), a download once dst holds the bytes.
    int (*alloc)(stw_backend *be, size_t bytes, void **out);
    void (*free_buffer)(stw_backend *be, void *buf);
    int (*upload)(stw_backend *be, void *dst, size_t dst_offset, const void *src, size_t bytes);
    int (*download)(stw_backend *be, void *dst, const void *src, size_t src_offset, size_t bytes);
    // Waits for all work queued on the backend; reports an asynchronous error of that work.
    int (*synchronize)(stw_backend *be);
    int (*memory_info)(stw_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);
    bool (*supports_type)(const stw_backend *be, int32_t type, int32_t use); // STW_TYPE_USE_*
    // Bytes of the workspace a context of this model needs for steps of B tokens and L logit rows: the
    // memory contract's A_m (placement's MemoryModel computes the same figure: change both together). The
    // core lays the run state out as stw_workspace_layout (core.h); the tail after it (qscratch,
    // B * ceil(widest / 32) * 36 bytes) is the backend's scratch for each op.
    uint64_t (*workspace_bytes)(const stw_backend *be, const stw_hparams *hp, int64_t B, int64_t L);
    int (*device_info)(const stw_backend *be, stw_device_info *out);

    // Ops: all pointers are backend memory except where a "host" name says otherwise.
    // y[i][r] = dot(W row r, x[i]) for i < n; W has `rows` rows of `cols` values stored as ggml `type`.
    // step (may be NULL: no grouping): token i's result must depend only on its own sequence's tokens in
    // the step, never on what else the batch holds.
    int (*matmul)(stw_backend *be, int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n,
                  float *y, void *qscratch, const stw_step *step);
    // out[i] = x[i] / rms(x[i]) * w for n rows of dim values (out may be x).
    int (*rmsnorm)(stw_backend *be, const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out);
    // Rotates the first rope_dim values of each of n_heads heads of head_dim values in each of n rows at
    // positions pos (backend memory); freq_factors (optional, rope_dim/2 values) divide the frequencies.
    int (*rope)(stw_backend *be, float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim,
                int32_t rope_type, float freq_base, const float *freq_factors, const int32_t *pos);
    // Writes the K row k[i] and V row v[i] of layer `layer` of every token of the step into its
    // sequence's cache at its position.
    int (*kv_store)(stw_backend *be, int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width,
                    const stw_step *step);
    int (*attention)(stw_backend *be, const stw_attn_args *a);
    // gate[i] = silu(gate[i]) * up[i] for i < n.
    int (*swiglu)(stw_backend *be, float *gate, const float *up, int64_t n);
    // x[i][j] += y[i * y_row_stride + j] for n rows of dim values (stride 0 broadcasts a bias).
    int (*add)(stw_backend *be, float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride);
    // out[i] = dequantized row ids[i] (backend memory) of a table of n_table rows of dim values stored as
    // `type`; ids were checked against n_table on the host.
    int (*get_rows)(stw_backend *be, int32_t type, const void *table, size_t row_bytes, int64_t n_table,
                    const int32_t *ids, int64_t n, int64_t dim, float *out);
    // Releases impl (everything the core allocated through alloc is already freed).
    void (*free)(stw_backend *be);

    // Step hooks, optional (NULL on the CPU: its steps run exactly as before). The core calls them under step_mu,
    // step_begin once the step descriptor is uploaded and before the forward's first op, step_end after the
    // forward's last op and before the logits download, and nothing else of the backend in between but ops.
    // step_begin returns 1 when the backend takes this pass of the forward's ops otherwise than launching them as
    // they come (CUDA: probing for a cached graph of the step, or capturing one), else 0 (the ops run directly).
    // step_end follows whenever it returned 1, ok saying whether the forward succeeded; it runs what the pass
    // prepared (ok) or drops it (!ok, e.g. a cancelled step) and returns 0, a negative error, or
    // STW_BACKEND_STEP_RERUN: nothing of the step ran, and the core makes another pass (step_begin, the forward,
    // step_end), at most 3 with hooks, then one without. A backend whose graph call failed asks for a rerun and
    // answers the next step_begin with 0.
    int (*step_begin)(stw_backend *be, const stw_step *step);
    int (*step_end)(stw_backend *be, bool ok);

    // ---- the core's (backend.cpp); a create function leaves them zero ----
    std::atomic<uint64_t> allocated{0}; // live bytes through stw_backend_buffer_alloc
    std::atomic<int32_t> users{0}; // contexts, KV pools and weight buffers living on it
    std::mutex step_mu; // one step at a time on the shared workspace; guards the fields below
    std::multiset<uint64_t> ws_wanted; // A_m of every context on this backend
    void *workspace = nullptr; // the shared workspace (ws_bytes)
    std::atomic<uint64_t> ws_bytes{0}; // written under step_mu, read by stw_backend_workspace_bytes without it
    void *step_buf = nullptr; // the step descriptor's backend copy (non-host backends), grown on demand
    std::atomic<uint64_t> step_buf_bytes{0};
    bool owned_by_context = false; // stw_context_init's private CPU backend
};

// Fills the table with the CPU backend and starts its thread pool. emulate_device: buffers are still host
// memory but the core treats them as device memory (weights uploaded, descriptor uploaded, logits
// downloaded): the device path of the core, testable without a device.
stw_status stw_backend_cpu_create(stw_backend *be, int32_t n_threads, bool emulate_device);
// The CPU backend's thread pool (NULL for any other backend): the load-time repack runs on it.
struct stw_threadpool *stw_backend_cpu_pool(stw_backend *be);

// Provided by src/cuda when the library is built with CUDA (compile definition STW_HAVE_CUDA on the core;
// backend_cuda_stub.cpp then defines nothing). Fills the table for CUDA device `ordinal`, or returns
// UNSUPPORTED ("no CUDA device: ..."), INVALID_ARGUMENT (ordinal past the devices) or another status,
// with stw_error's message set, leaving nothing allocated. Without CUDA the stub returns UNSUPPORTED
// "CUDA backend not built into this library".
stw_status stw_backend_cuda_create(stw_backend *be, int32_t ordinal);

// Core helpers over the table (backend.cpp): accounted allocation with a one-line error naming the
// bytes asked, the device's free bytes and what this backend already holds.
stw_status stw_backend_buffer_alloc(stw_backend *be, uint64_t bytes, const char *what, void **out);
void stw_backend_buffer_free(stw_backend *be, void *buf, uint64_t bytes);
// A backend object for internal use (tests): kind CPU with emulate_device.
stw_status stw_backend_init_emulated(int32_t n_threads, stw_backend **out);
// The process's shared CPU backend (1 thread) behind stw_kv_pool_init; never freed.
stw_backend *stw_backend_default_cpu(void);
// Registers / unregisters a context's A_m: the shared workspace follows the maximum. Take step_mu.
stw_status stw_backend_workspace_add_locked(stw_backend *be, uint64_t bytes);
void stw_backend_workspace_remove_locked(stw_backend *be, uint64_t bytes);
// Reallocates the workspace when an earlier shrink failed to (a step calls it before running).
stw_status stw_backend_workspace_ensure_locked(stw_backend *be);
// Makes the step buffer at least bytes large (non-host backends). Takes step_mu (held by the caller).
stw_status stw_backend_step_buffer_locked(stw_backend *be, uint64_t bytes);
// Two backends whose buffers the same host code can read (both host memory), or the same backend.
bool stw_backend_compatible(const stw_backend *a, const stw_backend *b);
