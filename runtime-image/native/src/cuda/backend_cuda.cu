// backend_cuda.cu: the CUDA backend's table (backend.h) over the kernels of ops.h. One stream per backend object:
// uploads, the step descriptor, every op and the logits download are ordered on it, so a step needs no
// synchronisation until its logits come back (the download, or synchronize, reports any asynchronous error).
//
// The workspace the core shares between the device's contexts is exactly the planner's A_m (the CPU formula).
// Attention's scratch (the step's plan and the decode split partials) is this backend's own buffer of
// kAttnScratchBytes, allocated through the core's accounting when the backend is created: part of the host's fixed
// cost O_host, measured in stw_backend_allocated_bytes.
//
// Decode steps as CUDA graphs. A decode step launches about 14 small kernels per layer; at batch 1 each runs for
// microseconds, so launching them one by one leaves the GPU waiting on the host. A step of at most 8 tokens, each
// the only token of its sequence (batch-1 decode, and replicas decoding together: graph_policy.h), runs as one
// graph launch, driven by the core's step hooks (backend.h step_begin / step_end) around its forward:
//   core: upload the step descriptor (pageable H2D memcpy, outside any capture)
//   pass 1, probe: the ops launch nothing; each mixes its arguments into the step's keys (graph_policy.h). A cached
//         executable graph with the same full key is exactly this step's graph: step_end launches it. Done.
//   pass 2 (no such graph), capture: cudaStreamBeginCapture (thread-local mode), the ops launch into the capture,
//         cudaStreamEndCapture; the capture is applied with cudaGraphExecUpdate to the cached graph of the same
//         shape key (new pointers, a grown split count) or instantiated into a free / least recently used slot
//         (a new model, or a topology change: the first attention split adds the combine kernel); cudaGraphLaunch.
//   core: download the logits (D2H, outside; it synchronizes the stream)
// The captured region holds kernel launches only: the descriptor upload (pageable memory: not capturable) and the
// logits download stay before and after it, in order on the same stream.
//
// Per-step values. What changes every decode step (tokens, positions, block tables, sequence lengths) the kernels
// already read from the step buffer that the descriptor upload refills before each launch, so a graph replayed as
// it is computes the new step. What a launch takes by value from the host (pointers that move when the step buffer
// or the workspace grows, the attention's split count, which is a grid dimension and decides whether the combine
// kernel runs at all, other models' kernels) is in the full key, so a step whose launches would differ is captured
// again and applied with cudaGraphExecUpdate (re-instantiated when the driver rejects the update, as llama.cpp's
// ggml-cuda does). This needs no kernel change: the captured launches are the direct launches, so results are
// bit-identical by construction; the probe costs host work only (no CUDA call), and a steady batch-1 decode is one
// graph launch per step with no capture at all. The one thing the keys must not miss is a host-side launch input:
// record() takes every argument of every op, and the attention adds its plan and each token's split count (the only
// use stw_cuda_attention makes of the host positions).
//
// While a capture is open the backend holds capture_mu, which its memory functions (alloc, free, upload,
// download, synchronize) also take: another thread's weight upload or buffer free cannot land in the capture.
// Any graph API failure (begin, end/capture, instantiate, update, launch) turns graphs off for this backend object
// with one line on stderr (the message stw_cuda::fail_cuda words; stw_cuda_graph_stats_get returns it), and the
// core runs the step again with direct launches: nothing of the failed graph step ran, so results do not change.
// STW_CUDA_GRAPHS=0 (read when the backend is created) turns graphs off from the start.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "common.cuh"
#include "core.h"
#include "graph_policy.h"

namespace {

using stw_cuda::attn_tile;

// A sequence's run of at least this many consecutive tokens goes through the tiled mat-mat kernel (a prompt
// chunk); all other tokens through the mat-vec kernel. Both give a token a result that does not depend on the
// rest of the batch.
constexpr int64_t kTiledMinRun = 16;

// The attention scratch: room for the plan of 64K tokens (512 KiB) and, after it, the decode partials (256 slots of
// a 64-head, 128-wide model); a bigger model gets fewer slots, which only caps the decode splits.
constexpr uint64_t kAttnScratchBytes = (uint64_t)8 << 20;

// Steps taken as graphs never reach the tiled kernel, whose per-sequence grouping the full key does not describe.
static_assert(stw_cuda::graph::kMaxTokens < kTiledMinRun, "graph steps must take the mat-vec path only");

// What the ops do with their launches during a step (see the file header).
enum class step_mode {
    direct,   // launch
    probe,    // launch nothing; only mix the arguments into the step's keys (is there a graph of this exact step?)
    capture,  // launch into the stream's open capture, mixing the keys too
};

struct cuda_impl {
    int ordinal;
    cudaStream_t stream;
    stw_cuda_device_info info;
    std::vector<attn_tile> tiles;  // the current step's attention plan (host copy)
    const int32_t *planned_seq;    // the step (its device token->sequence array) the plan belongs to
    int32_t planned_n;
    uint8_t *scratch;              // kAttnScratchBytes of device memory: the plan's tiles, then the partials
    // step graphs (see the file header); all under the core's step_mu
    stw_cuda::graph::book graphs;
    cudaGraphExec_t execs[stw_cuda::graph::kSlots] = {};  // slot i's executable graph (graphs.slots[i])
    step_mode mode = step_mode::direct;  // probe / capture between a step_begin that returned 1 and its step_end
    bool capture_next = false;     // the probe found no graph of the step: its next pass captures
    uint64_t shape_key = 0, full_key = 0;  // the step's keys so far (graph_policy.h)
    stw_cuda::graph::stage inject = stw_cuda::graph::stage::none;  // test hook: this stage fails once
    bool capture_hooked = false;   // the open capture was invalidated by the test hook
    std::mutex capture_mu;         // held while a capture is open; the memory functions take it
};

cuda_impl *impl_of(const stw_backend *be) { return (cuda_impl *)be->impl; }

uint64_t align256(uint64_t v) { return (v + 255) & ~(uint64_t)255; }

// Reports a failed CUDA op as the core expects: the message set through stw_error, the status kept.
int failed(int rc) {
    stw_error(rc == STW_CUDA_STATUS_OUT_OF_MEMORY ? STW_STATUS_OUT_OF_MEMORY : STW_STATUS_INTERNAL, "cuda: %s",
              stw_cuda_last_error());
    return STW_BACKEND_ERROR_SET;
}

// Every entry point may run on another host thread than the last: make the backend's device current (only when it
// is not: the ops call this inside a capture too).
int use_device(stw_backend *be) {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur == impl_of(be)->ordinal) return 0;
    const cudaError_t err = cudaSetDevice(impl_of(be)->ordinal);
    if (err != cudaSuccess) return failed(stw_cuda::fail_cuda(err, "cudaSetDevice"));
    return 0;
}

uint64_t u64(const void *p) { return (uint64_t)(uintptr_t)p; }
uint64_t u64(float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}

// While a step is probed or captured: mixes an op's shape (the op, types, dimensions) into both keys and its other
// arguments (pointers, scalars) into the full key. Every argument of the op goes into one or the other. Returns true
// when probing: the op then launches nothing.
bool record(stw_backend *be, std::initializer_list<uint64_t> shape, std::initializer_list<uint64_t> args) {
    cuda_impl *im = impl_of(be);
    if (im->mode == step_mode::direct) return false;
    using stw_cuda::graph::key_mix;
    for (uint64_t v : shape) {
        im->shape_key = key_mix(im->shape_key, v);
        im->full_key = key_mix(im->full_key, v);
    }
    for (uint64_t v : args) im->full_key = key_mix(im->full_key, v);
    return im->mode == step_mode::probe;
}

#define CUDA_OP(call)                    \
    do {                                 \
        if (int rc_ = use_device(be)) return rc_; \
        if (int rc_ = (call)) return failed(rc_); \
        return 0;                        \
    } while (0)

int cuda_alloc(stw_backend *be, size_t bytes, void **out) {
    *out = nullptr;
    std::lock_guard<std::mutex> lk(impl_of(be)->capture_mu);
    if (use_device(be)) return -1;
    // the core's stw_backend_buffer_alloc words the failure (asked, free, held); keep the CUDA detail beside it
    return stw_cuda_malloc(out, bytes, UINT64_MAX) == 0 ? 0 : -1;
}

void cuda_free_buffer(stw_backend *be, void *buf) {
    if (!buf) return;
    std::lock_guard<std::mutex> lk(impl_of(be)->capture_mu);
    cudaSetDevice(impl_of(be)->ordinal);
    // the stream may still read the buffer (a cancelled step's kernels): let them finish first
    cudaStreamSynchronize(impl_of(be)->stream);
    stw_cuda_free(buf);
}

int cuda_upload(stw_backend *be, void *dst, size_t dst_offset, const void *src, size_t bytes) {
    std::lock_guard<std::mutex> lk(impl_of(be)->capture_mu);
    CUDA_OP(stw_cuda_memcpy_h2d((uint8_t *)dst + dst_offset, src, bytes, impl_of(be)->stream));
}

int cuda_download(stw_backend *be, void *dst, const void *src, size_t src_offset, size_t bytes) {
    std::lock_guard<std::mutex> lk(impl_of(be)->capture_mu);
    if (int rc = use_device(be)) return rc;
    if (int rc = stw_cuda_memcpy_d2h(dst, (const uint8_t *)src + src_offset, bytes, impl_of(be)->stream)) return failed(rc);
    if (int rc = stw_cuda_synchronize(impl_of(be)->stream)) return failed(rc);
    return 0;
}

int cuda_synchronize(stw_backend *be) {
    std::lock_guard<std::mutex> lk(impl_of(be)->capture_mu);
    CUDA_OP(stw_cuda_synchronize(impl_of(be)->stream));
}

int cuda_memory_info(stw_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (use_device(be)) return -1;
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) != cudaSuccess) return -1;
    *free_bytes = f;
    *total_bytes = t;
    return 0;
}

bool cuda_supports_type(const stw_backend *, int32_t type, int32_t use) {
    if (use == STW_TYPE_USE_KV) return type == STW_TYPE_F32 || type == STW_TYPE_F16 || type == STW_TYPE_Q8_0;
    return use == STW_TYPE_USE_WEIGHT && stw_cuda::weight_type_supported(type);
}

uint64_t cuda_workspace_bytes(const stw_backend *, const stw_hparams *hp, int64_t B, int64_t L) {
    return stw_workspace_bytes_for(*hp, (uint64_t)B, (uint64_t)L);
}

int cuda_device_info(const stw_backend *be, stw_device_info *out) {
    const cuda_impl *im = impl_of(be);
    std::memset(out, 0, sizeof *out);
    out->kind = STW_BACKEND_KIND_CUDA;
    out->ordinal = im->ordinal;
    std::snprintf(out->name, sizeof out->name, "%.127s", im->info.name);
    std::snprintf(out->uuid, sizeof out->uuid, "%s", im->info.uuid);
    out->total_bytes = im->info.total_bytes;
    return 0;
}

int cuda_matmul(stw_backend *be, int32_t type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n,
                float *y, void *, const stw_step *step) {
    if (record(be, {1, (uint64_t)type, (uint64_t)rows, (uint64_t)cols, (uint64_t)n, step == nullptr}, {u64(w), u64(x), u64(y)}))
        return 0;
    if (int rc = use_device(be)) return rc;
    cudaStream_t s = impl_of(be)->stream;
    auto part = [&](int64_t i0, int64_t i1, bool tiled) -> int {
        const int rc = tiled ? stw_cuda_matmul_tiled(type, w, rows, cols, x + i0 * cols, i1 - i0, y + i0 * rows, s)
                             : stw_cuda_matvec(type, w, rows, cols, x + i0 * cols, i1 - i0, y + i0 * rows, s);
        return rc ? failed(rc) : 0;
    };
    if (step == nullptr || n < kTiledMinRun) return part(0, n, false);
    int64_t rest = 0;  // start of the tokens not yet multiplied (all bound for the mat-vec kernel)
    for (int64_t a = 0; a < n;) {
        int64_t b = a + 1;
        while (b < n && step->h_seq[b] == step->h_seq[a]) b++;
        if (b - a >= kTiledMinRun) {
            int rc;
            if (rest < a && (rc = part(rest, a, false))) return rc;
            if ((rc = part(a, b, true))) return rc;
            rest = b;
        }
        a = b;
    }
    return rest < n ? part(rest, n, false) : 0;
}

int cuda_rmsnorm(stw_backend *be, const float *x, const float *w, int64_t n, int64_t dim, float eps, float *out) {
    if (record(be, {2, (uint64_t)n, (uint64_t)dim}, {u64(x), u64(w), u64(eps), u64(out)})) return 0;
    CUDA_OP(stw_cuda_rmsnorm(x, w, n, dim, eps, out, impl_of(be)->stream));
}

int cuda_rope(stw_backend *be, float *x, int64_t n, int32_t n_heads, int32_t head_dim, int32_t rope_dim, int32_t rope_type,
              float freq_base, const float *freq_factors, const int32_t *pos) {
    if (record(be, {3, (uint64_t)n, (uint64_t)n_heads, (uint64_t)head_dim, (uint64_t)rope_dim, (uint64_t)rope_type},
               {u64(x), u64(freq_base), u64(freq_factors), u64(pos)}))
        return 0;
    CUDA_OP(stw_cuda_rope(x, n, n_heads, head_dim, rope_dim, rope_type, freq_base, freq_factors, pos, impl_of(be)->stream));
}

stw_cuda_step device_step(const stw_step *st) { return stw_cuda_step{st->seqs, st->seq, st->pos, st->block_table}; }

int cuda_kv_store(stw_backend *be, int32_t layer, const float *k, int64_t k_width, const float *v, int64_t v_width,
                  const stw_step *st) {
    if (layer == 0)
        if (int rc = stw_cuda_check_step_seqs(st->h_seqs, st->n_seqs, k_width, v_width)) return failed(rc);
    if (record(be, {4, (uint64_t)layer, (uint64_t)k_width, (uint64_t)v_width, (uint64_t)st->n_tokens},
               {u64(k), u64(v), u64(st->seqs), u64(st->seq), u64(st->pos), u64(st->block_table)}))
        return 0;
    if (int rc = use_device(be)) return rc;
    const stw_cuda_step ds = device_step(st);
    if (int rc = stw_cuda_kv_store(layer, k, k_width, v, v_width, st->n_tokens, &ds, impl_of(be)->stream)) return failed(rc);
    return 0;
}

int cuda_attention(stw_backend *be, const stw_attn_args *a) {
    cuda_impl *im = impl_of(be);
    const stw_step *st = a->step;
    const int32_t n = st->n_tokens;
    // the backend's attention scratch: the plan's tiles first, the decode partials in the rest
    const uint64_t tile_bytes = align256((uint64_t)n * sizeof(attn_tile));
    if (tile_bytes >= kAttnScratchBytes) {
        stw_error(STW_STATUS_INVALID_ARGUMENT, "cuda: a step of %d tokens exceeds the attention plan's room (%llu tokens)",
                  n, (unsigned long long)(kAttnScratchBytes / sizeof(attn_tile)));
        return STW_BACKEND_ERROR_SET;
    }
    attn_tile *tiles_dev = (attn_tile *)im->scratch;
    float *partials = (float *)(im->scratch + tile_bytes);
    const uint64_t part_bytes = kAttnScratchBytes - tile_bytes;
    // the plan is made once per step, at its first layer, on the host (grid sizes) and on the device (the kernels)
    const bool plan = a->layer == 0 || im->planned_seq != st->seq || im->planned_n != n;
    if (plan) {
        try {
            im->tiles.resize((size_t)n);
        } catch (const std::bad_alloc &) {
            stw_error(STW_STATUS_OUT_OF_MEMORY, "cuda: cannot plan the attention of %d tokens", n);
            return STW_BACKEND_ERROR_SET;
        }
        im->tiles.resize((size_t)stw_cuda::plan_attention(st->h_seq, n, im->tiles.data()));
        im->planned_seq = st->seq;
        im->planned_n = n;
    }
    if (im->mode != step_mode::direct) {
        // the launches' host-side inputs: the plan (tiles) and the positions, which stw_cuda_attention reads only as
        // each decode token's split count (its launch plan); a graph step holds decode tokens only
        for (const attn_tile &t : im->tiles) {
            const uint64_t splits = t.count == 1 ? (uint64_t)stw_cuda::attn_splits(st->h_pos[t.first] + 1) : 0;
            record(be, {}, {(uint64_t)t.first, (uint64_t)t.count, splits});
        }
    }
    if (record(be, {5, (uint64_t)n, (uint64_t)a->layer, (uint64_t)a->n_head, (uint64_t)a->n_head_kv, (uint64_t)a->dk,
                    (uint64_t)a->dv, plan, im->tiles.size()},
               {u64(a->scale), u64(a->q), u64(a->out), u64(st->seqs), u64(st->seq), u64(st->pos), u64(st->block_table),
                u64(im->scratch), tile_bytes}))
        return 0;
    if (int rc = use_device(be)) return rc;
    if (plan)
        if (int rc = stw_cuda_attention_plan(st->seq, n, tiles_dev, im->stream)) return failed(rc);
    const stw_cuda_step ds = device_step(st);
    stw_cuda_attn ca{n, a->layer, a->n_head, a->n_head_kv, a->dk, a->dv, a->scale, a->q, a->out};
    if (int rc = stw_cuda_attention(&ca, &ds, tiles_dev, im->tiles.data(), (int32_t)im->tiles.size(), st->h_pos, partials,
                                    part_bytes, im->stream))
        return failed(rc);
    return 0;
}

int cuda_swiglu(stw_backend *be, float *gate, const float *up, int64_t n) {
    if (record(be, {6, (uint64_t)n}, {u64(gate), u64(up)})) return 0;
    CUDA_OP(stw_cuda_swiglu(gate, up, n, impl_of(be)->stream));
}

int cuda_add(stw_backend *be, float *x, const float *y, int64_t n, int64_t dim, int64_t y_row_stride) {
    if (record(be, {7, (uint64_t)n, (uint64_t)dim, (uint64_t)y_row_stride}, {u64(x), u64(y)})) return 0;
    CUDA_OP(stw_cuda_add(x, y, n, dim, y_row_stride, impl_of(be)->stream));
}

int cuda_get_rows(stw_backend *be, int32_t type, const void *table, size_t row_bytes, int64_t n_table, const int32_t *ids,
                  int64_t n, int64_t dim, float *out) {
    if (stw_cuda::row_bytes(type, dim) != row_bytes) {
        stw_error(STW_STATUS_INTERNAL, "cuda: get_rows of %lld values of type %d: rows of %zu bytes, expected %zu",
                  (long long)dim, type, row_bytes, stw_cuda::row_bytes(type, dim));
        return STW_BACKEND_ERROR_SET;
    }
    if (record(be, {8, (uint64_t)type, (uint64_t)row_bytes, (uint64_t)n_table, (uint64_t)n, (uint64_t)dim},
               {u64(table), u64(ids), u64(out)}))
        return 0;
    CUDA_OP(stw_cuda_get_rows(type, table, n_table, ids, n, dim, out, impl_of(be)->stream));
}

// ---- step graphs (see the file header) ----
using stw_cuda::graph::stage;

void drop_execs(cuda_impl *im) {
    for (int i = 0; i < stw_cuda::graph::kSlots; i++) {
        if (im->execs[i]) cudaGraphExecDestroy(im->execs[i]);
        im->execs[i] = nullptr;
        im->graphs.forget(i);
    }
}

// Whether the test hook makes this stage fail now (once).
bool injected(cuda_impl *im, stage s) {
    if (im->inject != s) return false;
    im->inject = stage::none;
    return true;
}

// A graph API call failed (err; injected: the test hook's pretend failure): graphs off for this backend, with one line
// on stderr the first time. The executable graphs go (nothing of them is in flight: every step ends synchronized by
// its download or synchronize), and the error is cleared so that the direct launches do not see it.
void graphs_off(stw_backend *be, stage s, cudaError_t err, bool injected_failure) {
    cuda_impl *im = impl_of(be);
    cudaGetLastError();
    char what[96];
    std::snprintf(what, sizeof what, "%s%s", stw_cuda::graph::stage_name(s), injected_failure ? " (test hook)" : "");
    stw_cuda::fail_cuda(err, what);
    char reason[256];
    std::snprintf(reason, sizeof reason, "%.200s", stw_cuda_last_error());
    if (im->graphs.disable(reason))
        std::fprintf(stderr, "stowage: cuda:%d: CUDA graphs turned off for this backend after %s; steps run with direct launches\n",
                     im->ordinal, reason);
    drop_execs(im);
}

// A graph step takes two passes of the forward when its graph is not cached yet, one when it is: the first pass
// probes (the ops launch nothing, they only make the step's keys); when a cached graph has the step's full key,
// step_end launches it and the step is done; otherwise step_end asks the core for another pass, which captures.
int cuda_step_begin(stw_backend *be, const stw_step *st) {
    cuda_impl *im = impl_of(be);
    if (!im->graphs.begin(st->n_tokens, st->n_seqs)) return 0;
    if (use_device(be)) {  // the direct path reports it
        im->graphs.direct++;
        return 0;
    }
    const uint64_t seed = stw_cuda::graph::key_mix(stw_cuda::graph::kKeySeed, (uint64_t)st->n_tokens);
    im->shape_key = im->full_key = seed;
    if (!im->capture_next) {
        im->mode = step_mode::probe;
        return 1;
    }
    im->capture_next = false;
    im->capture_mu.lock();
    const bool inj = injected(im, stage::begin);
    const cudaError_t err = inj ? cudaErrorNotSupported : cudaStreamBeginCapture(im->stream, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
        graphs_off(be, stage::begin, err, inj);
        im->graphs.direct++;
        im->capture_mu.unlock();
        return 0;
    }
    // the test hook's capture failure is real: a stream synchronize is not allowed while capturing and invalidates
    // the capture, so the forward's launches fail and cudaStreamEndCapture reports it
    im->capture_hooked = injected(im, stage::capture);
    if (im->capture_hooked) cudaStreamSynchronize(im->stream);
    im->mode = step_mode::capture;
    return 1;
}

// graph::apply's driver: the CUDA calls on this backend's slots, each failure kept (and the test hook's pretend ones).
struct exec_driver {
    cuda_impl *im;
    cudaGraph_t g;         // the step's capture
    cudaError_t err;       // the last failed call's error
    bool injected_failure; // it was the test hook's
    // The test hook's pretend failure of stage s, when armed: err set, true.
    bool hooked(stage s) {
        if (!injected(im, s)) return false;
        injected_failure = true;
        err = cudaErrorNotSupported;
        return true;
    }
    bool update(int slot, bool *rejected) {
        *rejected = false;
        if (hooked(stage::update)) return false;
        if (injected(im, stage::reject_update)) {
            err = cudaErrorGraphExecUpdateFailure;
        } else {
            cudaGraphExecUpdateResultInfo info;
            std::memset(&info, 0, sizeof info);
            err = cudaGraphExecUpdate(im->execs[slot], g, &info);
        }
        *rejected = err == cudaErrorGraphExecUpdateFailure;
        if (*rejected) cudaGetLastError();  // not an error: this capture needs its own executable graph
        return err == cudaSuccess;
    }
    bool instantiate(int slot) {
        if (hooked(stage::instantiate)) return false;
        err = cudaGraphInstantiate(&im->execs[slot], g, 0);
        if (err != cudaSuccess) im->execs[slot] = nullptr;
        return err == cudaSuccess;
    }
    bool launch(int slot) {
        if (hooked(stage::launch)) return false;
        err = cudaGraphLaunch(im->execs[slot], im->stream);
        return err == cudaSuccess;
    }
    void destroy(int slot) {
        if (im->execs[slot]) cudaGraphExecDestroy(im->execs[slot]);
        im->execs[slot] = nullptr;
    }
};

// Ends the capture step_begin opened: launches it as one graph (ok) or drops it. STW_BACKEND_STEP_RERUN when a graph
// call failed (graphs are off then, nothing of the step ran).
int step_end_locked(stw_backend *be, bool ok) {
    cuda_impl *im = impl_of(be);
    stw_cuda::graph::book &gb = im->graphs;
    cudaGraph_t g = nullptr;
    cudaError_t err = cudaStreamEndCapture(im->stream, &g);
    if (err != cudaSuccess || g == nullptr) {
        if (g) cudaGraphDestroy(g);
        graphs_off(be, stage::capture, err != cudaSuccess ? err : cudaErrorStreamCaptureInvalidated, im->capture_hooked);
        return STW_BACKEND_STEP_RERUN;
    }
    if (!ok) {  // the forward failed with the capture intact (cancelled, a refused argument): nothing to run
        cudaGraphDestroy(g);
        return 0;
    }
    gb.captured++;
    size_t nodes = 0;
    if ((err = cudaGraphGetNodes(g, nullptr, &nodes)) != cudaSuccess) {
        cudaGraphDestroy(g);
        graphs_off(be, stage::capture, err, false);
        return STW_BACKEND_STEP_RERUN;
    }
    const uint64_t shape_key = stw_cuda::graph::key_mix(im->shape_key, (uint64_t)nodes);
    exec_driver d{im, g, cudaSuccess, false};
    const stage failed_at = stw_cuda::graph::apply(gb, shape_key, im->full_key, d);
    cudaGraphDestroy(g);  // an executable graph keeps what it needs
    if (failed_at != stage::none) {
        graphs_off(be, failed_at, d.err, d.injected_failure);
        return STW_BACKEND_STEP_RERUN;
    }
    return 0;
}

// The end of a probe pass: launch the cached graph of exactly this step, or ask for a capturing pass.
int probe_end(stw_backend *be, bool ok) {
    cuda_impl *im = impl_of(be);
    stw_cuda::graph::book &gb = im->graphs;
    if (!ok) return 0;  // nothing was launched; the forward's failure (a cancel, a refused argument) stands
    exec_driver d{im, nullptr, cudaSuccess, false};
    switch (stw_cuda::graph::replay(gb, im->full_key, d)) {
        case stw_cuda::graph::replay_result::launched:
            return 0;
        case stw_cuda::graph::replay_result::miss:
            im->capture_next = true;
            return STW_BACKEND_STEP_RERUN;
        case stw_cuda::graph::replay_result::launch_failed:
            break;
    }
    graphs_off(be, stage::launch, d.err, d.injected_failure);
    gb.rerun++;
    return STW_BACKEND_STEP_RERUN;
}

int cuda_step_end(stw_backend *be, bool ok) {
    cuda_impl *im = impl_of(be);
    const step_mode m = im->mode;
    im->mode = step_mode::direct;
    if (m == step_mode::probe) return probe_end(be, ok);
    const int rc = step_end_locked(be, ok);
    if (rc == STW_BACKEND_STEP_RERUN) im->graphs.rerun++;
    im->capture_mu.unlock();
    return rc;
}

void cuda_free(stw_backend *be) {
    cuda_impl *im = impl_of(be);
    if (!im) return;
    cudaSetDevice(im->ordinal);
    stw_cuda_synchronize(im->stream);
    drop_execs(im);
    stw_backend_buffer_free(be, im->scratch, kAttnScratchBytes);
    stw_cuda_stream_destroy(im->stream);
    delete im;
    be->impl = nullptr;
}

}  // namespace

stw_status stw_backend_cuda_create(stw_backend *be, int32_t ordinal) {
    const int n = stw_cuda_device_count();
    if (n == 0) return stw_error(STW_STATUS_UNSUPPORTED, "no CUDA device: %s", stw_cuda_last_error());
    if (ordinal < 0 || ordinal >= n)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "CUDA device %d asked for, but %d %s visible (cuda:0..cuda:%d)",
                         ordinal, n, n == 1 ? "is" : "are", n - 1);
    cuda_impl *im = new (std::nothrow) cuda_impl();
    if (!im) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the CUDA backend's state");
    im->ordinal = ordinal;
    bool graphs_on = true;
    const char *env = std::getenv("STW_CUDA_GRAPHS");
    if (!stw_cuda::graph::parse_env(env, &graphs_on)) {
        delete im;
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "STW_CUDA_GRAPHS is '%.40s', expected 1 (CUDA graphs on, the default) or 0 (off)",
                         env);
    }
    if (!graphs_on) im->graphs.set(false, "STW_CUDA_GRAPHS=0");
    int rc = stw_cuda_device_open(ordinal, &im->info);
    if (rc == 0) rc = stw_cuda_stream_create((void **)&im->stream);
    if (rc != 0) {
        const stw_status st = rc == STW_CUDA_STATUS_NO_DEVICE ? STW_STATUS_UNSUPPORTED : STW_STATUS_INTERNAL;
        delete im;
        return stw_error(st, "CUDA device %d: %s", ordinal, stw_cuda_last_error());
    }
    be->name = "cuda";
    be->kind = STW_BACKEND_KIND_CUDA;
    be->ordinal = ordinal;
    be->host_memory = false;
    be->impl = im;
    be->alloc = cuda_alloc;
    be->free_buffer = cuda_free_buffer;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->synchronize = cuda_synchronize;
    be->memory_info = cuda_memory_info;
    be->supports_type = cuda_supports_type;
    be->workspace_bytes = cuda_workspace_bytes;
    be->device_info = cuda_device_info;
    be->matmul = cuda_matmul;
    be->rmsnorm = cuda_rmsnorm;
    be->rope = cuda_rope;
    be->kv_store = cuda_kv_store;
    be->attention = cuda_attention;
    be->swiglu = cuda_swiglu;
    be->add = cuda_add;
    be->get_rows = cuda_get_rows;
    be->free = cuda_free;
    be->step_begin = cuda_step_begin;
    be->step_end = cuda_step_end;
    void *scratch = nullptr;
    const stw_status st = stw_backend_buffer_alloc(be, kAttnScratchBytes, "the CUDA attention scratch", &scratch);
    if (st != STW_STATUS_OK) {
        const std::string msg = stw_last_error();
        cuda_free(be);
        return stw_error(st, "%s", msg.c_str());
    }
    im->scratch = (uint8_t *)scratch;
    return STW_STATUS_OK;
}

namespace {
cuda_impl *cuda_impl_or_null(const stw_backend *be) {
    return be && be->kind == STW_BACKEND_KIND_CUDA && be->impl && be->step_begin == cuda_step_begin ? impl_of(be) : nullptr;
}
}  // namespace

int stw_cuda_graph_stats_get(stw_backend *be, stw_cuda_graph_stats *out) {
    cuda_impl *im = cuda_impl_or_null(be);
    if (!im || !out) return stw_cuda::fail(STW_CUDA_STATUS_BAD_ARGUMENT, "graph stats: not a CUDA backend");
    std::lock_guard<std::mutex> lk(be->step_mu);
    const stw_cuda::graph::book &gb = im->graphs;
    std::memset(out, 0, sizeof *out);
    out->enabled = gb.enabled ? 1 : 0;
    out->captured = gb.captured;
    out->instantiated = gb.instantiated;
    out->updated = gb.updated;
    out->replayed = gb.replayed;
    out->launched = gb.launched;
    out->direct = gb.direct;
    out->rerun = gb.rerun;
    std::snprintf(out->off_reason, sizeof out->off_reason, "%s", gb.off_reason);
    return 0;
}

int stw_cuda_graph_set_enabled(stw_backend *be, int on) {
    cuda_impl *im = cuda_impl_or_null(be);
    if (!im) return stw_cuda::fail(STW_CUDA_STATUS_BAD_ARGUMENT, "graph switch: not a CUDA backend");
    std::lock_guard<std::mutex> lk(be->step_mu);
    if (!on) {
        cudaSetDevice(im->ordinal);
        drop_execs(im);
    }
    im->graphs.set(on != 0, "turned off by stw_cuda_graph_set_enabled");
    return 0;
}

int stw_cuda_graph_inject_failure(stw_backend *be, int32_t stage_id) {
    cuda_impl *im = cuda_impl_or_null(be);
    if (!im || stage_id < (int32_t)stage::none || stage_id > (int32_t)stage::reject_update)
        return stw_cuda::fail(STW_CUDA_STATUS_BAD_ARGUMENT, "graph failure hook: not a CUDA backend or stage %d outside 0..%d",
                              stage_id, (int32_t)stage::reject_update);
    std::lock_guard<std::mutex> lk(be->step_mu);
    im->inject = (stage)stage_id;
    return 0;
}
