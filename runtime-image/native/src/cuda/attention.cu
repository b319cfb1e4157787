// attention.cu: the paged KV cache on the device: storing a step's K/V rows into their blocks (f32, f16, q8_0),
// split-over-the-sequence attention for decode tokens and tiled causal attention with online softmax for prefill
// runs. Both read K/V through the sequence's block table, 16 positions per block, exactly as the CPU does.
#include "common.cuh"

namespace stw_cuda {
namespace {

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
    extern __shared__ float smem[];
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
    for (int r = 0; r < cnt; r++) maxpos = max(maxpos, qpos[r]);
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

__global__ void attn_plan_kernel(const int32_t *tok_seq, int32_t n, attn_tile *tiles) { plan_attention(tok_seq, n, tiles); }

}  // namespace
}  // namespace stw_cuda

using namespace stw_cuda;

int stw_cuda_check_step_seqs(const stw_step_seq *h_seqs, int32_t n_seqs, int64_t k_width, int64_t v_width) {
    for (int32_t s = 0; s < n_seqs; s++) {
        const stw_step_seq &q = h_seqs[s];
        STW_CUDA_REQUIRE(q.kv_type == kTypeF32 || q.kv_type == kTypeF16 || q.kv_type == kTypeQ8_0,
                         "step sequence %d: KV cache type %d is not f32, f16 or q8_0", s, q.kv_type);
        STW_CUDA_REQUIRE(kv_row_bytes(q.kv_type, k_width) == q.k_row_bytes && kv_row_bytes(q.kv_type, v_width) == q.v_row_bytes,
                         "step sequence %d: K/V widths %lld/%lld need %zu/%zu-byte rows, its pool has %llu/%llu", s,
                         (long long)k_width, (long long)v_width, kv_row_bytes(q.kv_type, k_width),
                         kv_row_bytes(q.kv_type, v_width), (unsigned long long)q.k_row_bytes,
                         (unsigned long long)q.v_row_bytes);
        STW_CUDA_REQUIRE(q.kv != nullptr && q.layer_block_bytes == (uint64_t)kKvBlockTokens * (q.k_row_bytes + q.v_row_bytes),
                         "step sequence %d: no pool buffer or a block layout of %llu bytes per layer", s,
                         (unsigned long long)q.layer_block_bytes);
    }
    return 0;
}

int stw_cuda_kv_store(int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width, int64_t n,
                      const stw_cuda_step *step, void *stream) {
    STW_CUDA_REQUIRE(layer >= 0 && n >= 0 && n <= kMaxDim && k_width > 0 && v_width > 0 && k && v && step &&
                         step->seqs && step->tok_seq && step->pos && step->block_table,
                     "kv_store: layer %d, n %lld, widths %lld/%lld or a null pointer", layer, (long long)n,
                     (long long)k_width, (long long)v_width);
    if (n == 0) return 0;
    const int64_t total = n * ((k_width + 31) / 32 + (v_width + 31) / 32);
    kv_store_kernel<<<(unsigned)((total + 255) / 256), 256, 0, (cudaStream_t)stream>>>(layer, k, k_width, v, v_width, n,
                                                                                       *step);
    STW_CUDA_CHECK_LAUNCH("kv_store");
    return 0;
}

size_t stw_cuda_attention_partial_bytes(int32_t n_head, int32_t dv) {
    return (size_t)kCudaAttnPartialSlots * (size_t)n_head * (size_t)(2 + dv) * sizeof(float);
}

int stw_cuda_attention_plan(const int32_t *tok_seq, int32_t n, attn_tile *tiles, void *stream) {
    STW_CUDA_REQUIRE(tok_seq && tiles && n >= 0, "attention plan: null pointer or n=%d", n);
    if (n == 0) return 0;
    attn_plan_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(tok_seq, n, tiles);
    STW_CUDA_CHECK_LAUNCH("attention plan");
    return 0;
}

int stw_cuda_attention(const stw_cuda_attn *a, const stw_cuda_step *step, const attn_tile *tiles,
                       const attn_tile *tiles_host, int32_t n_tiles, const int32_t *pos_host, float *partials,
                       size_t partial_bytes, void *stream) {
    STW_CUDA_REQUIRE(a && step && step->seqs && step->tok_seq && step->pos && step->block_table && tiles &&
                         tiles_host && pos_host && a->q && a->out,
                     "attention: null argument");
    STW_CUDA_REQUIRE(a->dk > 0 && a->dk <= kCudaMaxHeadDim && a->dv > 0 && a->dv <= kCudaMaxHeadDim,
                     "attention: head dims dk=%d dv=%d outside 1..%d", a->dk, a->dv, kCudaMaxHeadDim);
    STW_CUDA_REQUIRE(a->n_head > 0 && a->n_head <= 65535 && a->n_head_kv > 0 && a->n_head % a->n_head_kv == 0,
                     "attention: %d query heads are not a multiple of %d KV heads", a->n_head, a->n_head_kv);
    STW_CUDA_REQUIRE(n_tiles >= 0 && n_tiles <= a->n_tokens && a->n_tokens <= (1 << 24),
                     "attention: %d tiles for %d tokens", n_tiles, a->n_tokens);
    if (n_tiles == 0) return 0;
    int32_t want = 1;
    bool any_decode = false, any_prefill = false;
    for (int32_t t = 0; t < n_tiles; t++) {
        const attn_tile &tl = tiles_host[t];
        STW_CUDA_REQUIRE(tl.count >= 1 && tl.count <= kAttnTileTokens && tl.first >= 0 &&
                             tl.first + tl.count <= a->n_tokens,
                         "attention: tile %d (first %d, count %d) outside the step's %d tokens", t, tl.first, tl.count,
                         a->n_tokens);
        if (tl.count == 1) {
            any_decode = true;
            const int32_t s = attn_splits(pos_host[tl.first] + 1);
            want = s > want ? s : want;
        } else {
            any_prefill = true;
        }
    }
    attn_params p;
    p.a = *a;
    p.st = *step;
    p.tiles = tiles;
    p.max_splits = want < kCudaAttnPartialSlots / n_tiles ? want : kCudaAttnPartialSlots / n_tiles;
    if (p.max_splits < 2) p.max_splits = 1;
    p.scratch = partials;
    if (p.max_splits > 1)
        STW_CUDA_REQUIRE(partials && partial_bytes >= stw_cuda_attention_partial_bytes(a->n_head, a->dv),
                         "attention: %zu bytes of partials, %zu needed", partial_bytes,
                         stw_cuda_attention_partial_bytes(a->n_head, a->dv));
    if (any_decode) {
        attn_decode_kernel<<<dim3((unsigned)n_tiles, (unsigned)a->n_head, (unsigned)p.max_splits), kThreads, 0,
                             (cudaStream_t)stream>>>(p);
        STW_CUDA_CHECK_LAUNCH("attention decode");
        if (p.max_splits > 1) {
            attn_combine_kernel<<<dim3((unsigned)n_tiles, (unsigned)a->n_head), kThreads, 0, (cudaStream_t)stream>>>(p);
            STW_CUDA_CHECK_LAUNCH("attention combine");
        }
    }
    if (any_prefill) {
        const size_t smem = prefill_smem_bytes(a->dk, a->dv);
        if (smem > 48 * 1024)
            STW_CUDA_TRY(cudaFuncSetAttribute(attn_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        attn_prefill_kernel<<<dim3((unsigned)n_tiles, (unsigned)a->n_head), kThreads, smem, (cudaStream_t)stream>>>(p);
        STW_CUDA_CHECK_LAUNCH("attention prefill");
    }
    return 0;
}
