// The CPU kernels of the native core: weight-by-activation matrix products in every supported
// ggml weight type, row dequantization, reference quantizers and a persistent thread pool.
//
// Three kernel sets sit behind these entry points: "avx2-vnni" (the AVX2 kernels with AVX-VNNI's
// dpbusd for the int8 dots), "avx2" (AVX2 + FMA + F16C) and "portable" (plain C++). The set is
// chosen once at run time from cpuid; STOWAGE_CPU=portable or STOWAGE_CPU=avx2 caps it. Every entry point checks its arguments and returns a status; none aborts.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ggml tensor type ids (the values stored in a GGUF tensor descriptor).
enum stw_cpu_type {
    STW_CPU_TYPE_F32 = 0,
    STW_CPU_TYPE_F16 = 1,
    STW_CPU_TYPE_Q4_0 = 2,
    STW_CPU_TYPE_Q8_0 = 8,
    STW_CPU_TYPE_Q4_K = 12,
    STW_CPU_TYPE_Q6_K = 14,
    STW_CPU_TYPE_BF16 = 30,
    // Internal, never in a GGUF: the load-time row-interleaved repack of Q4_0 / Q4_K (see
    // stw_cpu_repack_r8). Same bytes per row as the source type; rows is a multiple of 8.
    STW_CPU_TYPE_Q4_0_R8 = 1002,
    STW_CPU_TYPE_Q4_K_R8 = 1012,
};

// Status codes: 0 is success, every error is negative. stw_cpu_last_error() holds the details
// (which argument, its value and the limit) for the calling thread.
enum stw_cpu_status {
    STW_CPU_STATUS_OK = 0,
    STW_CPU_STATUS_UNSUPPORTED_TYPE = -1,
    STW_CPU_STATUS_BAD_SHAPE = -2,
    STW_CPU_STATUS_NULL_POINTER = -3,
    STW_CPU_STATUS_UNAVAILABLE = -4,
    STW_CPU_STATUS_OUT_OF_MEMORY = -5,
};

// Bytes of activation scratch per 32 activations (float scale + 32 int8 values).
#define STW_CPU_QSCRATCH_BLOCK_BYTES 36

// --- thread pool --------------------------------------------------------------------------
// n_threads counts the calling thread: a pool of 4 starts 3 workers and the caller of
// stw_threadpool_run works as thread 0. Workers spin briefly after a run, then sleep.
struct stw_threadpool;
// Returns NULL when n_threads < 1, n_threads > 512 or a thread cannot be started.
struct stw_threadpool *stw_threadpool_init(int n_threads);
void stw_threadpool_free(struct stw_threadpool *pool);  // NULL is a no-op; not during a run
int stw_threadpool_size(const struct stw_threadpool *pool);  // 1 for NULL
// Calls fn(ctx, task, thread) once for every task in [0, n_tasks) and returns when all are done;
// thread is in [0, size). A NULL pool runs every task on the caller. Concurrent runs on one
// pool are serialised; a run started from inside a task executes inline on that thread.
void stw_threadpool_run(struct stw_threadpool *pool, int n_tasks, void (*fn)(void *ctx, int task, int thread),
                        void *ctx);

// --- kernels ------------------------------------------------------------------------------
// y[i*rows + r] = dot(W row r, x[i*cols ...]) for i < n (n <= 2^24; rows, cols <= 2^36).
// W is rows x cols in ggml type `type`
// (rows stored back to back, stw_cpu_row_bytes(type, cols) bytes each). qscratch must hold at
// least stw_cpu_qscratch_bytes(type, cols, n) bytes (n * ceil(cols/32) * 36 is always enough);
// it may be NULL for F32, F16 and BF16. pool may be NULL (single-threaded). y must not overlap
// x or qscratch. For quantized W the activations are quantized to int8 per 32 values first, so
// the result is within half an activation step of the float product.
// Returns 0, or a negative stw_cpu_status for an unsupported type or shape (never aborts).
int stw_cpu_matmul(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                   void *qscratch, struct stw_threadpool *pool);
// Flags of stw_cpu_matmul_ex.
enum stw_cpu_matmul_flags {
    // Keep every activation vector on the row kernels. Their result for one activation vector is
    // bit-identical whatever n is; the prefill GEMM (n >= 4, where the type has one) sums the same
    // integers in another order, so a caller whose results must not depend on what else is in the
    // batch (the engine: one sequence's tokens) passes this except for one sequence's own runs.
    // An R8 type (stw_cpu_repack_r8) gives every vector the same result in any batch, GEMM or not:
    // the flag changes nothing for it.
    STW_CPU_MATMUL_NO_GEMM = 1,
};
// stw_cpu_matmul with flags (stw_cpu_matmul_flags); stw_cpu_matmul is this with flags 0.
int stw_cpu_matmul_ex(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                      void *qscratch, struct stw_threadpool *pool, unsigned flags);
// Dequantizes n elements (one row, or the start of one) to floats: the embedding lookup.
// n must be a multiple of the type's block size.
int stw_cpu_dequantize_row(int type, const void *src, float *dst, int64_t n);
// Quantizes n floats into ggml blocks of `type` (ggml's scalar reference algorithms for Q8_0 and
// Q4_0, a ggml-format-compatible reference for Q4_K and Q6_K; plain conversion for F32/F16/BF16).
// Used for test weights and for a q8_0 KV cache. n must be a multiple of the block size.
int stw_cpu_quantize_row(int type, const float *src, void *dst, int64_t n);
// Bytes of one row of cols elements; 0 if the type is unsupported or cols is not a positive
// multiple of the block size.
size_t stw_cpu_row_bytes(int type, int64_t cols);
// Elements per block of the type (1 for F32/F16/BF16, 32, 256); 0 if unsupported.
int64_t stw_cpu_block_size(int type);
// Scratch bytes stw_cpu_matmul needs for this call (0 for float weight types).
size_t stw_cpu_qscratch_bytes(int type, int64_t cols, int64_t n);
// --- load-time repack (R8) -----------------------------------------------------------------
// The R8 type a rows x cols matrix of `type` would get from stw_cpu_repack_r8 (STW_CPU_TYPE_Q4_0_R8
// for Q4_0 when rows is a positive multiple of 8 and cols a valid row length; Q4_K likewise once
// its layout is built in), or 0 when it gets none.
int stw_cpu_r8_type(int type, int64_t rows, int64_t cols);
// Repacks a whole matrix in place (rows back to back in the GGUF layout, stw_cpu_row_bytes each)
// into its R8 type: every group of 8 rows becomes one panel of the same bytes, so the matrix keeps
// its size and place. Goes 8 rows at a time through a temporary of 8 rows per thread (pool may be
// NULL). Returns the R8 type id, or a negative status (unsupported type, rows not a positive
// multiple of 8, bad cols, NULL data, no memory for the temporary) with data untouched.
// stw_cpu_matmul(_ex) takes the result with the R8 type; stw_cpu_dequantize_row refuses it (its
// rows are not contiguous).
int stw_cpu_repack_r8(int type, void *data, int64_t rows, int64_t cols, struct stw_threadpool *pool);
// The inverse: turns an R8 matrix back into its source type's rows in place; returns the source
// type id or a negative status.
int stw_cpu_unpack_r8(int r8_type, void *data, int64_t rows, int64_t cols, struct stw_threadpool *pool);
// "avx2-vnni", "avx2" or "portable": the kernel set in use.
const char *stw_cpu_kernel_set(void);
// Switches the kernel set: "avx2-vnni", "avx2", "portable" or "auto" (cpuid and STOWAGE_CPU). Returns
// STW_CPU_STATUS_UNAVAILABLE when the CPU (or the build) lacks the set. For tests and
// benchmarks; do not call it while a matmul runs.
int stw_cpu_select_kernel_set(const char *name);
// Human-readable details of the last error returned on this thread ("" if none).
const char *stw_cpu_last_error(void);

#ifdef __cplusplus
}
#endif
