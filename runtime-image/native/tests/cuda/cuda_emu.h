// cuda_emu.h: just enough of CUDA's execution model to run the backend's kernel headers (src/cuda/*_kernels.cuh)
// on the CPU with g++: a launch runs the grid's blocks one after another, each block as blockDim.x real threads;
// __shared__ variables are function statics (one block runs at a time, so its threads share them),
// __syncthreads is a barrier of the block's threads, __shfl_xor_sync exchanges through a per-warp buffer between
// two barriers of the warp's 32 threads. It checks the kernels' index arithmetic, barriers and reductions, not
// CUDA's memory model or performance. Include it before any kernel header.
#pragma once

#include <math.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define STW_CUDA_EMULATION 1

namespace stw_emu {

struct uint3e {
    unsigned x = 0, y = 0, z = 0;
};

// A reusable barrier of n threads.
class barrier {
  public:
    explicit barrier(int n) : n_(n) {}
    void wait() {
        std::unique_lock<std::mutex> lk(mu_);
        const uint64_t gen = gen_;
        if (++count_ == n_) {
            count_ = 0;
            gen_++;
            cv_.notify_all();
        } else {
            cv_.wait(lk, [&] { return gen_ != gen; });
        }
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int n_, count_ = 0;
    uint64_t gen_ = 0;
};

inline thread_local uint3e tl_thread, tl_block;
inline uint3e g_block_dim, g_grid_dim;
inline barrier *g_block_barrier = nullptr;
inline std::vector<barrier *> g_warp_barriers;
inline std::vector<float> g_warp_xchg;  // [warp][32]
inline std::vector<float> g_dyn_smem;

inline void syncthreads() { g_block_barrier->wait(); }

inline float shfl_xor(unsigned, float v, int lane_mask) {
    const unsigned t = tl_thread.x, warp = t / 32, lane = t % 32;
    g_warp_xchg[warp * 32 + lane] = v;
    g_warp_barriers[warp]->wait();
    const float r = g_warp_xchg[warp * 32 + (lane ^ (unsigned)lane_mask)];
    g_warp_barriers[warp]->wait();
    return r;
}

// Runs kernel() for every thread of every block of grid x threads: blockDim.x threads live for the whole launch and
// take the blocks in turn, meeting at a barrier after each block (so the next block's shared memory is free).
inline void launch(uint3e grid, unsigned threads, size_t dyn_smem_bytes, const std::function<void()> &kernel) {
    g_grid_dim = grid;
    g_block_dim = uint3e{threads, 1, 1};
    g_dyn_smem.assign(dyn_smem_bytes / sizeof(float) + 1, 0.0f);
    const unsigned warps = (threads + 31) / 32;
    g_warp_xchg.assign(warps * 32, 0.0f);
    barrier block_barrier((int)threads);
    std::vector<std::unique_ptr<barrier>> wb;
    g_warp_barriers.clear();
    for (unsigned w = 0; w < warps; w++) {
        wb.push_back(std::make_unique<barrier>(32));
        g_warp_barriers.push_back(wb.back().get());
    }
    g_block_barrier = &block_barrier;
    std::vector<std::thread> ts;
    ts.reserve(threads);
    for (unsigned t = 0; t < threads; t++)
        ts.emplace_back([&, t] {
            tl_thread = uint3e{t, 0, 0};
            for (unsigned z = 0; z < (grid.z ? grid.z : 1); z++)
                for (unsigned y = 0; y < (grid.y ? grid.y : 1); y++)
                    for (unsigned x = 0; x < (grid.x ? grid.x : 1); x++) {
                        tl_block = uint3e{x, y, z};
                        kernel();
                        block_barrier.wait();
                    }
        });
    for (std::thread &th : ts) th.join();
}

}  // namespace stw_emu

#define threadIdx stw_emu::tl_thread
#define blockIdx stw_emu::tl_block
#define blockDim stw_emu::g_block_dim
#define gridDim stw_emu::g_grid_dim
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
#define __syncthreads() stw_emu::syncthreads()
#define __shfl_xor_sync(mask, v, lane_mask) stw_emu::shfl_xor(mask, v, lane_mask)
#define STW_DYNAMIC_SMEM(type, name) type *name = (type *)stw_emu::g_dyn_smem.data()

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
