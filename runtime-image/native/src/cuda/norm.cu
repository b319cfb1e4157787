// norm.cu: the row-wise and element-wise ops of a layer: RMSNorm, RoPE (normal and NEOX), SwiGLU, add, get_rows.
#include "common.cuh"

namespace stw_cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

// One block per row: sum of squares reduced across the block (warp shuffles, then one value per warp).
__global__ void rmsnorm_kernel(const float *__restrict__ x, const float *__restrict__ w, int64_t dim, float eps,
                               float *out) {
    __shared__ float partial[kThreads / 32];
    const float *xi = x + (int64_t)blockIdx.x * dim;
    float *oi = out + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xi[j] * xi[j];
    for (int off = 16; off > 0; off /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < (int)blockDim.x / 32; i++) total += partial[i];
    const float scale = rsqrtf(total / (float)dim + eps);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) oi[j] = w[j] * (scale * xi[j]);
}

// One thread per rotated pair (token, head, k < rope_dim / 2).
__global__ void rope_kernel(float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim, bool neox,
                            float freq_base, const float *freq_factors, const int32_t *pos) {
    const int32_t half = rope_dim / 2;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * n_heads * half) return;
    const int32_t k = (int32_t)(idx % half);
    const int64_t th = idx / half;  // token * n_heads + head
    const int64_t i = th / n_heads;
    float freq = 1.0f / powf(freq_base, (float)(2 * k) / (float)rope_dim);
    if (freq_factors) freq /= freq_factors[k];
    const float theta = (float)pos[i] * freq;
    float sn, cs;
    sincosf(theta, &sn, &cs);
    float *v = x + th * head_dim;
    const int32_t a = neox ? k : 2 * k, b = neox ? k + half : 2 * k + 1;
    const float v0 = v[a], v1 = v[b];
    v[a] = v0 * cs - v1 * sn;
    v[b] = v0 * sn + v1 * cs;
}

__global__ void swiglu_kernel(float *gate, const float *up, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
}

__global__ void add_kernel(float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * dim) return;
    const int64_t i = idx / dim, j = idx % dim;
    x[idx] += y[i * y_row_stride + j];
}

// One thread per (row, unit of 32): float tables may end in a partial unit.
__global__ void get_rows_kernel(int type, const uint8_t *table, size_t rb, int64_t n_table, const int32_t *ids,
                                int64_t n, int64_t dim, float *out) {
    const int64_t units = (dim + kUnit - 1) / kUnit;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * units) return;
    const int64_t i = idx / units, u = idx % units;
    const int32_t id = ids[i];
    float *o = out + i * dim + u * kUnit;
    const int ne = (int)(dim - u * kUnit < kUnit ? dim - u * kUnit : kUnit);
    if (id < 0 || id >= n_table) {
        for (int j = 0; j < ne; j++) o[j] = __int_as_float(0x7fc00000);
        return;
    }
    const uint8_t *row = table + (size_t)id * rb;
    float w[kUnit];
    if (ne == kUnit) {
        dequant_unit(type, row, u, w);
    } else {
        for (int j = 0; j < ne; j++) {
            const int64_t e = u * kUnit + j;
            w[j] = type == kTypeF32 ? ((const float *)row)[e]
                 : type == kTypeF16 ? half_to_f32(load_u16(row + 2 * e)) : bf16_to_f32(load_u16(row + 2 * e));
        }
    }
    for (int j = 0; j < ne; j++) o[j] = w[j];
}

}  // namespace
}  // namespace stw_cuda

using namespace stw_cuda;

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
