// attention.cu: the paged KV cache on the device: storing a step's K/V rows into their blocks (f32, f16, q8_0),
// split-over-the-sequence attention for decode tokens and tiled causal attention with online softmax for prefill
// runs. Both read K/V through the sequence's block table, 16 positions per block, exactly as the CPU does.
#include "attention_kernels.cuh"
#include "common.cuh"

namespace stw_cuda {
namespace {

using namespace att;

__global__ void attn_plan_kernel(const int32_t *tok_seq, int32_t n, attn_tile *tiles) { plan_attention(tok_seq, n, tiles); }

}  // namespace
}  // namespace stw_cuda

using namespace stw_cuda;
using namespace stw_cuda::att;

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
    for (int32_t t = 0; t < n_tiles; t++) {
        const attn_tile &tl = tiles_host[t];
        STW_CUDA_REQUIRE(tl.count >= 1 && tl.count <= kAttnTileTokens && tl.first >= 0 &&
                             tl.first + tl.count <= a->n_tokens,
                         "attention: tile %d (first %d, count %d) outside the step's %d tokens", t, tl.first, tl.count,
                         a->n_tokens);
    }
    const size_t slot = stw_cuda_attention_slot_bytes(a->n_head, a->dv);
    const int32_t slots = partials ? (int32_t)(partial_bytes / slot < (size_t)kCudaAttnPartialSlots ? partial_bytes / slot
                                                                                               : kCudaAttnPartialSlots)
                                   : 0;
    // pos_host is read here only, as each decode token's split count: backend_cuda.cu's graph key records exactly that
    // (a graph step is replayed when its recorded launch inputs match); change both together
    const launch_plan lp = plan_launch(tiles_host, n_tiles, pos_host, slots);
    const bool any_decode = lp.any_decode, any_prefill = lp.any_prefill;
    attn_params p;
    p.a = *a;
    p.st = *step;
    p.tiles = tiles;
    p.max_splits = lp.max_splits;
    p.scratch = partials;
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
