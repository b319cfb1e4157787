// kernels.h (scalar fallback): the CPU kernel interface of src/cpu/kernels.h, built only when the
// kernels library (src/cpu) is absent, so the core builds and its tests run on their own.
#pragma once

#include <cstddef>
#include <cstdint>

struct stw_threadpool;
stw_threadpool *stw_threadpool_init(int n_threads);
void stw_threadpool_free(stw_threadpool *);
int stw_threadpool_size(const stw_threadpool *);
void stw_threadpool_run(stw_threadpool *, int n_tasks, void (*fn)(void *ctx, int task, int thread), void *ctx);

// y[i*rows + r] = dot(W row r, x[i*cols ...]) for i < n; W rows stored in ggml type `type`.
int stw_cpu_matmul(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                   void *qscratch, stw_threadpool *pool);
int stw_cpu_dequantize_row(int type, const void *src, float *dst, int64_t n);
size_t stw_cpu_row_bytes(int type, int64_t cols);
const char *stw_cpu_kernel_set(void);
