// backend.h: the table of per-op functions a compute backend provides (CPU now, CUDA later).
#pragma once

#include <cstddef>
#include <cstdint>

#include "stowage.h"

// Arguments of one attention op over a batch: token i (at position pos[i] of seqs[i]) attends to
// positions 0..pos[i] of its own sequence, whose K/V for this step are already stored.
struct stw_attn_args {
    int32_t n_tokens, layer;
    int32_t n_head, n_head_kv, dk, dv;
    float scale; // 1/sqrt(dk)
    const float *q; // [n_tokens][n_head * dk], RoPE applied
    float *out; // [n_tokens][n_head * dv]
    stw_seq *const *seqs; // [n_tokens]
    const int32_t *pos; // [n_tokens]
};

// Every op returns 0 or a negative error code; the forward turns a failure into STW_STATUS_INTERNAL
// (the forward checks shapes before calling, so a failure means a backend bug or an unsupported type).
struct stw_backend {
    const char *name;
    void *impl; // backend state (CPU: the thread pool)
    // y[i][r] = dot(W row r, x[i]) for i < n; W has `rows` rows of `cols` values stored as ggml `type`.
    // seqs[i] is token i's sequence (NULL: no grouping): token i's result must depend only on its own
    // sequence's tokens in the step, never on what else the batch holds.
    int (*matmul)(stw_backend *be, int32_t type, const void *w, int64_t rows, int64_t cols, const float *x,
                  int64_t n, float *y, void *qscratch, stw_seq *const *seqs);
    // out[i] = x[i] / rms(x[i]) * w for n rows of dim values (out may be x).
    int (*rmsnorm)(stw_backend *be, const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out);
    // Rotates the first rope_dim values of each of n_heads heads of head_dim values in each of n rows;
    // freq_factors (optional, rope_dim/2 values) divide the frequencies.
    int (*rope)(stw_backend *be, float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim,
                int32_t rope_type, float freq_base, const float *freq_factors, const int32_t *pos);
    // Writes the K row k[i] and V row v[i] of layer `layer` into seqs[i]'s cache at pos[i].
    int (*kv_store)(stw_backend *be, int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width,
                    int64_t n, stw_seq *const *seqs, const int32_t *pos);
    int (*attention)(stw_backend *be, const stw_attn_args *a);
    // gate[i] = silu(gate[i]) * up[i] for i < n.
    int (*swiglu)(stw_backend *be, float *gate, const float *up, int64_t n);
    // x[i][j] += y[i * y_row_stride + j] for n rows of dim values (stride 0 broadcasts a bias).
    int (*add)(stw_backend *be, float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride);
    // out[i] = dequantized row ids[i] of a table of n_table rows of dim values stored as `type`.
    int (*get_rows)(stw_backend *be, int32_t type, const void *table, size_t row_bytes, int64_t n_table,
                    const int32_t *ids, int64_t n, int64_t dim, float *out);
    void (*free)(stw_backend *be);
};

// Fills the table with the CPU backend and starts its thread pool; false when out of memory.
bool stw_backend_cpu_init(stw_backend *be, int n_threads);
