// attention_kernels.cuh: the paged-KV kernels: KV store, split decode attention and its combine, tiled prefill attention
// Included by the .cu that launches them and, on the CPU, by tests/cuda/test_cuda_kernels_emulated.cpp, which runs
// them through an emulation of blocks, threads, shared memory and warp shuffles (tests/cuda/cuda_emu.h).
#pragma once

#include "kernel_defs.cuh"

namespace stw_cuda {
namespace {  // internal linkage: the emulation test compiles these too, beside the library
namespace att {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kPerLane = kCudaMaxHeadDim / 32;  // head values one lane holds in the decode kernel

// The pool layout of a step sequence, and its entries of the flat block table.
__device__ __forceinline__ kv_layout layout_of(const stw_step_seq &ss) {
    kv_layout L;
    L.type = ss.kv_type;
    L.k_row_bytes = (size_t)ss.k_row_bytes;
    L.v_row_bytes = (size_t)ss.v_row_bytes;
    L.layer_block_bytes = (size_t)ss.layer_block_bytes;
    L.block_bytes = (size_t)ss.block_bytes;
    return L;
}

// One thread per (token, unit of 32 values) of the K row then the V row.
__global__ void kv_store_kernel(int32_t layer, const float *k, int64_t kw, const float *v, int64_t vw, int64_t n,
                                stw_cuda_step st) {
    const int64_t ku = (kw + 31) / 32, vu = (vw + 31) / 32;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * (ku + vu)) return;
    const int64_t i = idx / (ku + vu);
    int64_t u = idx % (ku + vu);
    const bool is_v = u >= ku;
    if (is_v) u -= ku;
    const int64_t w = is_v ? vw : kw;
    const float *src = (is_v ? v + i * vw : k + i * kw) + u * 32;
    const stw_step_seq ss = st.seqs[st.tok_seq[i]];
    const kv_layout L = layout_of(ss);
    uint8_t *row = ss.kv + kv_row_offset(L, st.block_table + ss.bt_offset, layer, st.pos[i], is_v);
    const int ne = (int)(w - u * 32 < 32 ? w - u * 32 : 32);
    if (L.type == kTypeQ8_0) {
        quantize_q8_0_block(src, row + u * kQ8_0Bytes);
    } else if (L.type == kTypeF16) {
        for (int j = 0; j < ne; j++) {
            const uint32_t h = f32_to_half(src[j]);
            row[2 * (u * 32 + j)] = (uint8_t)(h & 0xff);
            row[2 * (u * 32 + j) + 1] = (uint8_t)(h >> 8);
        }
    } else {
        for (int j = 0; j < ne; j++) ((float *)row)[u * 32 + j] = src[j];
    }
}

__device__ __forceinline__ float warp_sum(float s) {
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    return s;
}

struct attn_params {
    stw_cuda_attn a;
    stw_cuda_step st;
    const attn_tile *tiles;
    int32_t max_splits;  // 1: the decode kernel writes the output itself, no partials
    float *scratch;      // partials: [(tile * max_splits + split) * n_head + head][2 + dv] = m, l, acc
};

__device__ __forceinline__ int32_t splits_of(int32_t len, int32_t max_splits) {
    const int32_t s = attn_splits(len);
    return s < max_splits ? s : max_splits;
}

// Decode: block (tile, head, split) over positions [begin, end) of the token's sequence. Each warp takes every
// 4th position with its own online softmax; the four are merged into the split's partial (m, l, acc).
__global__ void __launch_bounds__(kThreads) attn_decode_kernel(attn_params p) {
    const attn_tile tile = p.tiles[blockIdx.x];
    if (tile.count != 1) return;
    const stw_cuda_attn &a = p.a;
    const int32_t i = tile.first, h = blockIdx.y, split = blockIdx.z;
    const int32_t len = p.st.pos[i] + 1;
    const int32_t n_splits = splits_of(len, p.max_splits);
    if (split >= n_splits) return;
    int32_t begin, end;
    attn_split_range(len, n_splits, split, &begin, &end);
    const stw_step_seq &ss = p.st.seqs[p.st.tok_seq[i]];
    const kv_layout L = layout_of(ss);
    const uint8_t *pool = ss.kv;
    const int32_t *table = p.st.block_table + ss.bt_offset;
    const int32_t kvh = h / (a.n_head / a.n_head_kv);
    const int32_t dk = a.dk, dv = a.dv;
    __shared__ float qs[kCudaMaxHeadDim];
    __shared__ float wm[kWarps], wl[kWarps];
    __shared__ float wacc[kWarps][kCudaMaxHeadDim];
    for (int j = threadIdx.x; j < dk; j += kThreads) qs[j] = a.q[((int64_t)i * a.n_head + h) * dk + j];
    __syncthreads();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float m = -INFINITY, l = 0.0f, acc[kPerLane];
    for (int k = 0; k < kPerLane; k++) acc[k] = 0.0f;
    for (int32_t t = begin + warp; t < end; t += kWarps) {
        const uint8_t *kr = pool + kv_row_offset(L, table, a.layer, t, false);
        float s = 0.0f;
        for (int j = lane; j < dk; j += 32) s += qs[j] * kv_load(L.type, kr, (int64_t)kvh * dk + j);
        s = warp_sum(s) * a.scale;
        const float mn = fmaxf(m, s);
        const float c = expf(m - mn);  // 0 on the first position (m = -inf)
        const float pw = expf(s - mn);
        l = l * c + pw;
        m = mn;
        const uint8_t *vr = pool + kv_row_offset(L, table, a.layer, t, true);
        for (int k = 0; k < kPerLane; k++) {
            const int j = lane + 32 * k;
            if (j < dv) acc[k] = acc[k] * c + pw * kv_load(L.type, vr, (int64_t)kvh * dv + j);
        }
    }
    if (lane == 0) {
        wm[warp] = m;
        wl[warp] = l;
    }
    for (int k = 0; k < kPerLane; k++)
        if (lane + 32 * k < dv) wacc[warp][lane + 32 * k] = acc[k];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, wm[w]);
    if (p.max_splits == 1) {  // unsplit: normalize straight into the output row
        float L = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (wl[w] > 0.0f) L += wl[w] * expf(wm[w] - M);
        float *o = a.out + ((int64_t)i * a.n_head + h) * dv;
        for (int j = threadIdx.x; j < dv; j += kThreads) {
            float s = 0.0f;
            for (int w = 0; w < kWarps; w++)
                if (wl[w] > 0.0f) s += wacc[w][j] * expf(wm[w] - M);
            o[j] = s / L;
        }
        return;
    }
    float *out = p.scratch + ((int64_t)(blockIdx.x * p.max_splits + split) * a.n_head + h) * (2 + dv);
    if (threadIdx.x == 0) {
        float L = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (wl[w] > 0.0f) L += wl[w] * expf(wm[w] - M);
        out[0] = M;
        out[1] = L;
    }
    for (int j = threadIdx.x; j < dv; j += kThreads) {
        float s = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (wl[w] > 0.0f) s += wacc[w][j] * expf(wm[w] - M);
        out[2 + j] = s;
    }
}

// Merges a decode token's split partials into its output row.
__global__ void attn_combine_kernel(attn_params p) {
    const attn_tile tile = p.tiles[blockIdx.x];
    if (tile.count != 1) return;
    const stw_cuda_attn &a = p.a;
    const int32_t i = tile.first, h = blockIdx.y, dv = a.dv;
    const int32_t n_splits = splits_of(p.st.pos[i] + 1, p.max_splits);
    const float *part = p.scratch + ((int64_t)blockIdx.x * p.max_splits * a.n_head + h) * (2 + dv);
    const int64_t stride = (int64_t)a.n_head * (2 + dv);  // from one split's partial to the next
    float M = -INFINITY;
    for (int32_t c = 0; c < n_splits; c++) M = fmaxf(M, part[c * stride]);
    float L = 0.0f;
    for (int32_t c = 0; c < n_splits; c++)
        if (part[c * stride + 1] > 0.0f) L += part[c * stride + 1] * expf(part[c * stride] - M);
    float *out = a.out + ((int64_t)i * a.n_head + h) * dv;
    for (int j = threadIdx.x; j < dv; j += blockDim.x) {
        float s = 0.0f;
        for (int32_t c = 0; c < n_splits; c++)
            if (part[c * stride + 1] > 0.0f) s += part[c * stride + 2 + j] * expf(part[c * stride] - M);
        out[j] = s / L;
    }
}

size_t prefill_smem_bytes(int32_t dk, int32_t dv) {
    return sizeof(float) * ((size_t)kAttnTileTokens * (2 * dk + 2 * dv) + kAttnTileTokens * kAttnTileTokens +
                            4 * kAttnTileTokens);
}

// Prefill: block (tile, head) of up to 16 query tokens of one sequence. K/V are read one cache block (16
// positions) at a time into shared memory; scores, the online-softmax update and the accumulators are per
// query row, each position masked by the row's own position (causal).
__global__ void __launch_bounds__(kThreads) attn_prefill_kernel(attn_params p) {
    const attn_tile tile = p.tiles[blockIdx.x];
    if (tile.count < 2) return;
    const stw_cuda_attn &a = p.a;
    const int32_t h = blockIdx.y, dk = a.dk, dv = a.dv, cnt = tile.count;
    const stw_step_seq &ss = p.st.seqs[p.st.tok_seq[tile.first]];
    const kv_layout L = layout_of(ss);
    const uint8_t *pool = ss.kv;
    const int32_t *table = p.st.block_table + ss.bt_offset;
    const int32_t kvh = h / (a.n_head / a.n_head_kv);
    constexpr int T = kAttnTileTokens;
    STW_DYNAMIC_SMEM(float, smem);
    float *qs = smem;             // [T][dk], pre-scaled
    float *ks = qs + T * dk;      // [T][dk]
    float *vs = ks + T * dk;      // [T][dv]
    float *acc = vs + T * dv;     // [T][dv]
    float *sc = acc + T * dv;     // [T][T] scores, then probabilities
    float *rm = sc + T * T;       // [T] running max
    float *rl = rm + T;           // [T] running sum
    float *rc = rl + T;           // [T] this block's rescale factor
    int32_t *qpos = (int32_t *)(rc + T);
    const int tid = threadIdx.x;
    if (tid < T) {
        qpos[tid] = tid < cnt ? p.st.pos[tile.first + tid] : -1;
        rm[tid] = -INFINITY;
        rl[tid] = 0.0f;
    }
    for (int idx = tid; idx < T * dk; idx += kThreads) {
        const int r = idx / dk, j = idx % dk;
        qs[idx] = r < cnt ? a.q[((int64_t)(tile.first + r) * a.n_head + h) * dk + j] * a.scale : 0.0f;
    }
    for (int idx = tid; idx < T * dv; idx += kThreads) acc[idx] = 0.0f;
    __syncthreads();
    int32_t maxpos = 0;
    for (int r = 0; r < cnt; r++) maxpos = qpos[r] > maxpos ? qpos[r] : maxpos;
    for (int32_t kb = 0; kb * T <= maxpos; kb++) {
        for (int idx = tid; idx < T * dk; idx += kThreads) {
            const int jj = idx / dk, d = idx % dk;
            const int32_t t = kb * T + jj;
            ks[idx] = t <= maxpos ? kv_load(L.type, pool + kv_row_offset(L, table, a.layer, t, false),
                                            (int64_t)kvh * dk + d)
                                  : 0.0f;
        }
        for (int idx = tid; idx < T * dv; idx += kThreads) {
            const int jj = idx / dv, d = idx % dv;
            const int32_t t = kb * T + jj;
            vs[idx] = t <= maxpos ? kv_load(L.type, pool + kv_row_offset(L, table, a.layer, t, true),
                                            (int64_t)kvh * dv + d)
                                  : 0.0f;
        }
        __syncthreads();
        for (int idx = tid; idx < T * T; idx += kThreads) {
            const int r = idx / T, jj = idx % T;
            float s = -INFINITY;
            if (r < cnt && kb * T + jj <= qpos[r]) {
                s = 0.0f;
                for (int d = 0; d < dk; d++) s += qs[r * dk + d] * ks[jj * dk + d];
            }
            sc[idx] = s;
        }
        __syncthreads();
        if (tid < T) {
            const int r = tid;
            float mx = rm[r];
            for (int jj = 0; jj < T; jj++) mx = fmaxf(mx, sc[r * T + jj]);
            if (mx == -INFINITY) {  // nothing visible yet (padding row): keep the row empty
                rc[r] = 1.0f;
                for (int jj = 0; jj < T; jj++) sc[r * T + jj] = 0.0f;
            } else {
                const float c = expf(rm[r] - mx);
                float sum = 0.0f;
                for (int jj = 0; jj < T; jj++) {
                    const float pw = expf(sc[r * T + jj] - mx);  // 0 for a masked position
                    sc[r * T + jj] = pw;
                    sum += pw;
                }
                rl[r] = rl[r] * c + sum;
                rm[r] = mx;
                rc[r] = c;
            }
        }
        __syncthreads();
        for (int idx = tid; idx < T * dv; idx += kThreads) {
            const int r = idx / dv, d = idx % dv;
            float s = acc[idx] * rc[r];
            for (int jj = 0; jj < T; jj++) s += sc[r * T + jj] * vs[jj * dv + d];
            acc[idx] = s;
        }
        __syncthreads();
    }
    for (int idx = tid; idx < cnt * dv; idx += kThreads) {
        const int r = idx / dv, d = idx % dv;
        a.out[((int64_t)(tile.first + r) * a.n_head + h) * dv + d] = acc[idx] / rl[r];
    }
}

// The launch shape of a step's attention, from its plan and positions on the host and the partial slots its scratch
// holds: whether the decode and the prefill kernels have tiles to run, and how many splits a decode token may use
// (1: unsplit, no partials).
struct launch_plan {
    bool any_decode, any_prefill;
    int32_t max_splits;
};
inline launch_plan plan_launch(const attn_tile *tiles, int32_t n_tiles, const int32_t *pos, int32_t slots) {
    launch_plan lp{false, false, 1};
    int32_t want = 1;
    for (int32_t t = 0; t < n_tiles; t++) {
        if (tiles[t].count == 1) {
            lp.any_decode = true;
            const int32_t s = attn_splits(pos[tiles[t].first] + 1);
            want = s > want ? s : want;
        } else {
            lp.any_prefill = true;
        }
    }
    if (slots > kCudaAttnPartialSlots) slots = kCudaAttnPartialSlots;
    const int32_t cap = n_tiles > 0 ? slots / n_tiles : 1;
    lp.max_splits = want < cap ? want : cap;
    if (lp.max_splits < 2) lp.max_splits = 1;
    return lp;
}

}  // namespace att
}  // namespace
}  // namespace stw_cuda
