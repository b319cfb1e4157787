// norm.cu: the row-wise and element-wise ops of a layer: RMSNorm, RoPE (normal and NEOX), SwiGLU, add, get_rows.
#include "common.cuh"
#include "norm_kernels.cuh"

namespace stw_cuda {
namespace {

using namespace nrm;

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace
}  // namespace stw_cuda

using namespace stw_cuda;
using namespace stw_cuda::nrm;

int stw_cuda_rmsnorm(const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out, void *stream) {
    STW_CUDA_REQUIRE(n >= 0 && n <= kMaxDim && dim > 0 && dim <= kMaxDim, "rmsnorm: shape n=%lld dim=%lld",
                     (long long)n, (long long)dim);
    STW_CUDA_REQUIRE(x && w && out, "rmsnorm: null pointer");
    if (n == 0) return 0;
    rmsnorm_kernel<<<(unsigned)n, kThreads, 0, (cudaStream_t)stream>>>(x, w, dim, eps, out);
    STW_CUDA_CHECK_LAUNCH("rmsnorm");
    return 0;
}

int stw_cuda_rope(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim, int32_t rope_type,
                  float freq_base, const float *freq_factors, const int32_t *pos, void *stream) {
    STW_CUDA_REQUIRE(rope_dim > 0 && rope_dim % 2 == 0 && rope_dim <= head_dim && n_heads > 0 && n >= 0 &&
                         n * n_heads <= kMaxDim,
                     "rope: rope_dim=%d must be even and within head_dim=%d (n=%lld, heads=%d)", rope_dim, head_dim,
                     (long long)n, n_heads);
    STW_CUDA_REQUIRE(rope_type == 0 || rope_type == 2, "rope: type %d is neither normal (0) nor NEOX (2)", rope_type);
    STW_CUDA_REQUIRE(x && pos, "rope: null pointer");
    const int64_t total = n * n_heads * (rope_dim / 2);
    if (total == 0) return 0;
    rope_kernel<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(x, n, n_heads, head_dim, rope_dim,
                                                                         rope_type == 2, freq_base, freq_factors, pos);
    STW_CUDA_CHECK_LAUNCH("rope");
    return 0;
}

int stw_cuda_swiglu(float *gate, const float *up, int64_t n, void *stream) {
    STW_CUDA_REQUIRE(n >= 0 && n <= kMaxDim * 32, "swiglu: n=%lld", (long long)n);
    STW_CUDA_REQUIRE(gate && up, "swiglu: null pointer");
    if (n == 0) return 0;
    swiglu_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(gate, up, n);
    STW_CUDA_CHECK_LAUNCH("swiglu");
    return 0;
}

int stw_cuda_add(float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride, void *stream) {
    STW_CUDA_REQUIRE(n >= 0 && dim > 0 && n * dim <= kMaxDim * 32 && y_row_stride >= 0,
                     "add: shape n=%lld dim=%lld stride=%lld", (long long)n, (long long)dim, (long long)y_row_stride);
    STW_CUDA_REQUIRE(x && y, "add: null pointer");
    if (n == 0) return 0;
    add_kernel<<<blocks_for(n * dim), kThreads, 0, (cudaStream_t)stream>>>(x, y, n, dim, y_row_stride);
    STW_CUDA_CHECK_LAUNCH("add");
    return 0;
}

int stw_cuda_get_rows(int type, const void *table, int64_t n_table, const int32_t *ids, int64_t n, int64_t dim,
                      float *out, void *stream) {
    STW_CUDA_REQUIRE(weight_type_supported(type), "get_rows: table type %d is not supported", type);
    const size_t rb = row_bytes(type, dim);
    STW_CUDA_REQUIRE(rb != 0 && n >= 0 && n <= kMaxDim && n_table > 0,
                     "get_rows: dim=%lld is not a whole number of blocks of type %d (or n=%lld, n_table=%lld)",
                     (long long)dim, type, (long long)n, (long long)n_table);
    STW_CUDA_REQUIRE(table && ids && out, "get_rows: null pointer");
    if (n == 0) return 0;
    const int64_t units = (dim + kUnit - 1) / kUnit;
    get_rows_kernel<<<blocks_for(n * units), kThreads, 0, (cudaStream_t)stream>>>(type, (const uint8_t *)table, rb,
                                                                                 n_table, ids, n, dim, out);
    STW_CUDA_CHECK_LAUNCH("get_rows");
    return 0;
}
