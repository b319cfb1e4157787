// kernel_defs.cuh: what the kernel headers (*_kernels.cuh) need besides CUDA itself: the block math, the op
// argument types and the few constructs that differ between nvcc and the CPU emulation of tests/cuda/cuda_emu.h
// (which defines STW_CUDA_EMULATION, blocks, threads, __shared__, __syncthreads and __shfl_xor_sync before this).
#pragma once

#include <math.h>

#include "block_math.cuh"
#include "ops.h"

#if defined(__CUDACC__)
#define STW_DYNAMIC_SMEM(type, name) extern __shared__ type name[]
#elif !defined(STW_CUDA_EMULATION)
#error "the kernel headers compile under nvcc or under the CPU emulation (tests/cuda/cuda_emu.h)"
#endif
