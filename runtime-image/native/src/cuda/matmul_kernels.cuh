// matmul_kernels.cuh: the weight x activation kernels (mat-vec for decode, tiled mat-mat for prefill)
// Included by the .cu that launches them and, on the CPU, by tests/cuda/test_cuda_kernels_emulated.cpp, which runs
// them through an emulation of blocks, threads, shared memory and warp shuffles (tests/cuda/cuda_emu.h).
#pragma once

#include "kernel_defs.cuh"

namespace stw_cuda {
namespace {  // internal linkage: the emulation test compiles these too, beside the library
namespace mm {

constexpr int kVecTokens = 8;   // tokens one mat-vec pass reads each weight unit for
constexpr int kVecWarps = 4;    // rows per block of the mat-vec kernel
constexpr int kTileRows = 32;   // mat-mat tile: rows x tokens, k chunk of 4 units
constexpr int kTileTokens = 32;
constexpr int kTileK = 128;
constexpr int kTileThreads = 256;

// Unit u of a row with cols values: float types may end in a partial unit, which is zero-filled.
__device__ __forceinline__ void load_w_unit(int type, const uint8_t *row, int64_t u, int64_t cols, float *w) {
    if ((u + 1) * kUnit <= cols) {
        dequant_unit(type, row, u, w);
        return;
    }
    for (int j = 0; j < kUnit; j++) {
        const int64_t e = u * kUnit + j;
        float v = 0.0f;
        if (e < cols) {
            if (type == kTypeF32) v = ((const float *)row)[e];
            else if (type == kTypeF16) v = half_to_f32(load_u16(row + 2 * e));
            else if (type == kTypeBF16) v = bf16_to_f32(load_u16(row + 2 * e));
        }
        w[j] = v;
    }
}

// y[t][r] for tokens t0 .. t0 + nt (nt <= 8) and rows of this block's warps. Each lane walks units lane,
// lane + 32, ...; a token's sum order is fixed by cols alone, so its result does not depend on the batch.
__global__ void matvec_kernel(int type, const uint8_t *__restrict__ w, size_t row_bytes, int64_t rows, int64_t cols,
                              const float *__restrict__ x, int64_t n, float *__restrict__ y) {
    const int lane = threadIdx.x % 32;
    const int64_t r = (int64_t)blockIdx.x * kVecWarps + threadIdx.x / 32;
    const int64_t t0 = (int64_t)blockIdx.y * kVecTokens;
    if (r >= rows) return;
    const int nt = (int)(n - t0 < kVecTokens ? n - t0 : kVecTokens);
    const uint8_t *row = w + (size_t)r * row_bytes;
    const int64_t units = (cols + kUnit - 1) / kUnit;
    float acc[kVecTokens];
    for (int t = 0; t < kVecTokens; t++) acc[t] = 0.0f;
    float wu[kUnit];
    for (int64_t u = lane; u < units; u += 32) {
        load_w_unit(type, row, u, cols, wu);
        const int64_t e0 = u * kUnit;
        const int ne = (int)(cols - e0 < kUnit ? cols - e0 : kUnit);
        for (int t = 0; t < kVecTokens; t++) {
            if (t >= nt) break;
            const float *xt = x + (t0 + t) * cols + e0;
            float s = 0.0f;
            for (int j = 0; j < ne; j++) s += wu[j] * xt[j];
            acc[t] += s;
        }
    }
    for (int t = 0; t < kVecTokens; t++) {
        if (t >= nt) break;
        float s = acc[t];
        for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) y[(t0 + t) * rows + r] = s;
    }
}

// One 32-row x 32-token tile of y, the k dimension in chunks of 128: the chunk's weight units are dequantized
// into shared memory by 128 threads (one unit each), the activations loaded by all 256, then each thread
// accumulates 4 rows of one token.
__global__ void __launch_bounds__(kTileThreads) matmul_tiled_kernel(int type, const uint8_t *__restrict__ w,
                                                                    size_t row_bytes, int64_t rows, int64_t cols,
                                                                    const float *__restrict__ x, int64_t n,
                                                                    float *__restrict__ y) {
    __shared__ float ws[kTileRows][kTileK + 1];
    __shared__ float xs[kTileTokens][kTileK + 1];
    const int tid = threadIdx.x;
    const int64_t r0 = (int64_t)blockIdx.x * kTileRows;
    const int64_t t0 = (int64_t)blockIdx.y * kTileTokens;
    const int tn = tid % kTileTokens;
    const int rq = (tid / kTileTokens) * 4;  // this thread's 4 rows of the tile
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int64_t units = (cols + kUnit - 1) / kUnit;
    for (int64_t k0 = 0; k0 < units * kUnit; k0 += kTileK) {
        if (tid < kTileRows * (kTileK / kUnit)) {
            const int rr = tid / (kTileK / kUnit), uu = tid % (kTileK / kUnit);
            const int64_t u = k0 / kUnit + uu;
            float wu[kUnit];
            if (r0 + rr < rows && u < units) load_w_unit(type, w + (size_t)(r0 + rr) * row_bytes, u, cols, wu);
            else
                for (int j = 0; j < kUnit; j++) wu[j] = 0.0f;
            for (int j = 0; j < kUnit; j++) ws[rr][uu * kUnit + j] = wu[j];
        }
        for (int i = tid; i < kTileTokens * kTileK; i += kTileThreads) {
            const int tt = i / kTileK, kk = i % kTileK;
            const int64_t e = k0 + kk;
            xs[tt][kk] = (t0 + tt < n && e < cols) ? x[(t0 + tt) * cols + e] : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < kTileK; kk++) {
            const float xv = xs[tn][kk];
            for (int i = 0; i < 4; i++) acc[i] += ws[rq + i][kk] * xv;
        }
        __syncthreads();
    }
    if (t0 + tn < n)
        for (int i = 0; i < 4; i++)
            if (r0 + rq + i < rows) y[(t0 + tn) * rows + r0 + rq + i] = acc[i];
}

}  // namespace mm
}  // namespace
}  // namespace stw_cuda
