// matmul.cu: weight x activation products reading the GGUF blocks in place (no dequantized copy of the weights):
// a mat-vec kernel for decode (one warp per row, up to 8 tokens per pass) and a shared-memory tiled mat-mat
// kernel for prefill runs.
#include "common.cuh"
#include "matmul_kernels.cuh"

namespace stw_cuda {
namespace {

int check_matmul(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                 size_t *rb) {
    STW_CUDA_REQUIRE(weight_type_supported(type), "matmul: weight type %d is not one the CUDA kernels read "
                     "(F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)", type);
    STW_CUDA_REQUIRE(rows > 0 && rows <= kMaxDim && cols > 0 && cols <= kMaxDim && n >= 0 && n <= kMaxDim,
                     "matmul: shape rows=%lld cols=%lld n=%lld outside 1..2^30", (long long)rows, (long long)cols,
                     (long long)n);
    *rb = type == kTypeF32 ? (size_t)cols * 4 : (type == kTypeF16 || type == kTypeBF16) ? (size_t)cols * 2
                                                                                       : row_bytes(type, cols);
    STW_CUDA_REQUIRE(*rb != 0, "matmul: %lld columns are not a whole number of blocks of type %d", (long long)cols,
                     type);
    STW_CUDA_REQUIRE(w && (x && y || n == 0), "matmul: null weight, input or output pointer");
    return 0;
}

}  // namespace
}  // namespace stw_cuda

using namespace stw_cuda;
using namespace stw_cuda::mm;

int stw_cuda_matvec(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                    void *stream) {
    size_t rb = 0;
    if (int rc = check_matmul(type, w, rows, cols, x, n, y, &rb)) return rc;
    if (n == 0) return 0;
    const dim3 grid((unsigned)((rows + kVecWarps - 1) / kVecWarps), (unsigned)((n + kVecTokens - 1) / kVecTokens));
    STW_CUDA_REQUIRE(grid.y <= 65535, "matmul: %lld tokens exceed the mat-vec grid (%d)", (long long)n,
                     65535 * kVecTokens);
    matvec_kernel<<<grid, kVecWarps * 32, 0, (cudaStream_t)stream>>>(type, (const uint8_t *)w, rb, rows, cols, x, n, y);
    STW_CUDA_CHECK_LAUNCH("matvec");
    return 0;
}

int stw_cuda_matmul_tiled(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                          void *stream) {
    size_t rb = 0;
    if (int rc = check_matmul(type, w, rows, cols, x, n, y, &rb)) return rc;
    if (n == 0) return 0;
    const dim3 grid((unsigned)((rows + kTileRows - 1) / kTileRows), (unsigned)((n + kTileTokens - 1) / kTileTokens));
    STW_CUDA_REQUIRE(grid.y <= 65535, "matmul: %lld tokens exceed the tiled grid", (long long)n);
    matmul_tiled_kernel<<<grid, kTileThreads, 0, (cudaStream_t)stream>>>(type, (const uint8_t *)w, rb, rows, cols, x,
                                                                         n, y);
    STW_CUDA_CHECK_LAUNCH("matmul_tiled");
    return 0;
}
