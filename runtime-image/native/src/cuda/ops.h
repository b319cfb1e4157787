// ops.h: the CUDA backend's op entry points. Every pointer is device memory unless it says host; every call
// enqueues on `stream` (a cudaStream_t; NULL is the legacy default stream), checks its arguments, checks the
// launch, and returns 0 or a negative stw_cuda_status with the details in stw_cuda_last_error(). Nothing here
// aborts: an asynchronous fault of a kernel surfaces as a status of the next stw_cuda_synchronize.
//
// Plain C++ (no CUDA headers) so that the backend table, the tests and the tools include it with g++.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "block_math.cuh"

enum stw_cuda_status {
    STW_CUDA_STATUS_OK = 0,
    STW_CUDA_STATUS_BAD_ARGUMENT = -1,  // a shape, type or pointer the op cannot take
    STW_CUDA_STATUS_NO_DEVICE = -2,     // no driver or no visible GPU
    STW_CUDA_STATUS_OUT_OF_MEMORY = -3, // cudaMalloc refused (message: asked, free, budget)
    STW_CUDA_STATUS_LAUNCH = -4,        // a launch or an asynchronous kernel error
    STW_CUDA_STATUS_DEVICE_LOST = -5,   // the device fell off the bus or the context is unusable
};

// Details of the last failure on this thread ("" if none).
const char *stw_cuda_last_error(void);

// --- device ------------------------------------------------------------------------------------
struct stw_cuda_device_info {
    char name[256];
    char uuid[64];  // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    int sm_major, sm_minor;
    int multiprocessors;
    uint64_t total_bytes, free_bytes;
};
// Number of visible devices: 0 (and a reason in stw_cuda_last_error) where there is no driver or no GPU.
int stw_cuda_device_count(void);
// Makes ordinal current on this thread and fills info; STW_CUDA_STATUS_NO_DEVICE when it is not there.
int stw_cuda_device_open(int ordinal, stw_cuda_device_info *info);
// Device memory: *out is NULL on failure. budget_left (bytes the caller may still allocate; UINT64_MAX: no budget)
// only goes into the failure message, so that it names the three numbers: asked, free, budget.
int stw_cuda_malloc(void **out, size_t bytes, uint64_t budget_left);
void stw_cuda_free(void *p);  // NULL is a no-op
int stw_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, void *stream);
int stw_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, void *stream);
int stw_cuda_memset(void *dst, int value, size_t bytes, void *stream);
int stw_cuda_stream_create(void **out);
void stw_cuda_stream_destroy(void *stream);
// Waits for the stream (NULL: the whole device) and reports any asynchronous error of what ran on it.
int stw_cuda_synchronize(void *stream);
// The benchmark's yardstick: seconds of one device-to-device cudaMemcpy of `bytes` (best of iters, after a warm-up),
// on the current device. Copy bandwidth is then 2 * bytes / seconds (each byte read once and written once).
int stw_cuda_measure_copy(size_t bytes, int iters, double *seconds);

// --- ops ---------------------------------------------------------------------------------------
// y[i][r] = dot(W row r, x[i]) for i < n. W: rows x cols of `type` (rows back to back, row_bytes each), read in
// place. Tokens go in groups of up to 8 through the mat-vec kernel (a token's result never depends on the
// batch); stw_cuda_matmul_tiled is the shared-memory mat-mat kernel for prefill runs.
int stw_cuda_matvec(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                    void *stream);
int stw_cuda_matmul_tiled(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                          void *stream);
// out[i] = x[i] / rms(x[i]) * w (out may be x).
int stw_cuda_rmsnorm(const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out, void *stream);
// RoPE in place on n rows of n_heads heads of head_dim values; pos and freq_factors (optional) are device arrays.
int stw_cuda_rope(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim, int32_t rope_type,
                  float freq_base, const float *freq_factors, const int32_t *pos, void *stream);
// gate[i] = silu(gate[i]) * up[i].
int stw_cuda_swiglu(float *gate, const float *up, int64_t n, void *stream);
// x[i][j] += y[i * y_row_stride + j].
int stw_cuda_add(float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride, void *stream);
// out[i] = dequantized row ids[i] (device ids; an id outside [0, n_table) gives a row of NaN and, on the host side,
// is the caller's to check before the step).
int stw_cuda_get_rows(int type, const void *table, int64_t n_table, const int32_t *ids, int64_t n, int64_t dim,
                      float *out, void *stream);

// A step's token-to-cache map on the device (the core's step descriptor, backend.h): token i belongs to sequence
// seqs[tok_seq[i]] (its pool's buffer, row sizes and KV type, and its entries of the flat block_table) at position
// pos[i]. Sequences of several KV pools (replicas) may share a step.
struct stw_cuda_step {
    const stw_step_seq *seqs;
    const int32_t *tok_seq;
    const int32_t *pos;
    const int32_t *block_table;
};
// Host-side check of a step's sequences (h_seqs: the host copy) against the widths the ops will write and read:
// a KV type the kernels take and row sizes equal to what k_width / v_width values of that type need.
int stw_cuda_check_step_seqs(const stw_step_seq *h_seqs, int32_t n_seqs, int64_t k_width, int64_t v_width);
// Writes K row k[i] (k_width values) and V row v[i] of layer `layer` of each of the n tokens into its sequence's
// cache at its position (f32 copied, f16 rounded to nearest even, q8_0 with ggml's reference quantizer: the bytes
// the CPU backend writes).
int stw_cuda_kv_store(int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width, int64_t n,
                      const stw_cuda_step *step, void *stream);

// Attention of a step: token i attends to positions 0..pos[i] of its sequence (K/V already stored).
struct stw_cuda_attn {
    int32_t n_tokens, layer, n_head, n_head_kv, dk, dv;
    float scale;
    const float *q;  // [n_tokens][n_head * dk]
    float *out;      // [n_tokens][n_head * dv]
};
// Largest head dimension the attention kernels take.
constexpr int32_t kCudaMaxHeadDim = 256;
// (tile, split) partial results the decode kernel may keep at most: a step's decode tokens share them, so a single
// token splits its context up to kAttnMaxSplits ways and a batch of more than half the slots decodes unsplit.
constexpr int32_t kCudaAttnPartialSlots = 256;
// Bytes of one slot (one token's split, all heads): n_head * (dv + 2) floats.
inline size_t stw_cuda_attention_slot_bytes(int32_t n_head, int32_t dv) {
    return (size_t)n_head * (size_t)(2 + dv) * sizeof(float);
}
// Bytes of all kCudaAttnPartialSlots slots.
inline size_t stw_cuda_attention_partial_bytes(int32_t n_head, int32_t dv) {
    return (size_t)kCudaAttnPartialSlots * stw_cuda_attention_slot_bytes(n_head, dv);
}
// Writes stw_cuda::plan_attention's plan of the step's n tokens into tiles (device, n entries) on the device.
int stw_cuda_attention_plan(const int32_t *tok_seq, int32_t n, stw_cuda::attn_tile *tiles, void *stream);
// tiles: that plan on the device; tiles_host / pos_host: the same plan and the positions on the host (to size the
// grids). Single-token tiles run the split decode kernel, longer ones the tiled prefill kernel. partials: device
// scratch for the decode splits; its size bounds them (less than two slots per decode token: no split at all).
int stw_cuda_attention(const stw_cuda_attn *a, const stw_cuda_step *step, const stw_cuda::attn_tile *tiles,
                       const stw_cuda::attn_tile *tiles_host, int32_t n_tiles, const int32_t *pos_host, float *partials,
                       size_t partial_bytes, void *stream);

// --- step graphs (backend_cuda.cu; for tests and the benchmark) ---------------------------------------------------
// What a CUDA backend object did with its steps' graphs so far.
struct stw_cuda_graph_stats {
    int32_t enabled;        // 1 while eligible steps run as graphs (STW_CUDA_GRAPHS not 0, no graph failure, not off)
    uint64_t captured;      // steps captured whole (a failed or cancelled forward's capture is dropped, not counted)
    uint64_t instantiated;  // executable graphs made (a new key, or an update the driver rejected)
    uint64_t updated;       // captures applied to a cached executable graph with cudaGraphExecUpdate
    uint64_t replayed;      // steps whose cached graph was launched as it was (same full key: no capture at all)
    uint64_t launched;      // steps run as one graph launch (replayed, or after their capture)
    uint64_t direct;        // steps run with direct launches (not eligible, graphs off, or after a graph failure)
    uint64_t rerun;         // steps whose graph call failed and that ran again with direct launches
    char off_reason[256];   // why graphs are off ("" while on)
};
// Every function returns 0, or STW_CUDA_STATUS_BAD_ARGUMENT when be is not a CUDA backend. They take the backend's
// step lock (never call them from inside a step).
int stw_cuda_graph_stats_get(stw_backend *be, stw_cuda_graph_stats *out);
// Turns graphs on or off for this backend object (A/B runs; STW_CUDA_GRAPHS=0 sets off at creation). Turning them on
// again also clears a failure's switch-off.
int stw_cuda_graph_set_enabled(stw_backend *be, int on);
// Test hook: the next time stage (graph_policy.h stw_cuda::graph::stage: 1 begin, 2 capture, 3 instantiate, 4 update,
// 5 launch fail, and graphs go off; 6 an update rejected by the driver's rules, which re-instantiates) comes, it
// fails once. 0 clears it.
int stw_cuda_graph_inject_failure(stw_backend *be, int32_t stage);
