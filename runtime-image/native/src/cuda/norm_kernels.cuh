// norm_kernels.cuh: RMSNorm, RoPE, SwiGLU, add and get_rows kernels
// Included by the .cu that launches them and, on the CPU, by tests/cuda/test_cuda_kernels_emulated.cpp, which runs
// them through an emulation of blocks, threads, shared memory and warp shuffles (tests/cuda/cuda_emu.h).
#pragma once

#include "kernel_defs.cuh"

namespace stw_cuda {
namespace {  // internal linkage: the emulation test compiles these too, beside the library
namespace nrm {

constexpr int kThreads = 256;

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
        for (int j = 0; j < ne; j++) o[j] = NAN;
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

}  // namespace nrm
}  // namespace
}  // namespace stw_cuda
