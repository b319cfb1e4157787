// common.cuh: status plumbing shared by the CUDA translation units: the thread-local error message and the
// checks that turn a cudaError_t into a stw_cuda_status (never an abort: the opposite of ggml's CUDA_CHECK).
#pragma once

#include <cuda_runtime.h>

#include "ops.h"

namespace stw_cuda {

// Sets the thread-local message and returns the status (printf-style).
int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Maps a CUDA error to a status, recording "what: cudaErrorName: description".
int fail_cuda(cudaError_t err, const char *what);

// Largest rows, cols or token count an op takes (grid dimensions and 32-bit unit indices stay in range).
constexpr int64_t kMaxDim = (int64_t)1 << 30;

}  // namespace stw_cuda

// Returns from the calling entry point with a status when a CUDA call fails.
#define STW_CUDA_TRY(call)                                              \
    do {                                                                \
        const cudaError_t stw_err_ = (call);                            \
        if (stw_err_ != cudaSuccess) return stw_cuda::fail_cuda(stw_err_, #call); \
    } while (0)

// After a launch: a bad configuration is reported now, a fault in the kernel by the next synchronize.
#define STW_CUDA_CHECK_LAUNCH(name) STW_CUDA_TRY(cudaGetLastError())

#define STW_CUDA_REQUIRE(cond, ...)                                                  \
    do {                                                                             \
        if (!(cond)) return stw_cuda::fail(STW_CUDA_STATUS_BAD_ARGUMENT, __VA_ARGS__); \
    } while (0)
