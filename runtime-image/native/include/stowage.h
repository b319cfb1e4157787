/* stowage.h: the C API of the Stowage native inference core. C-compatible.
 *
 * The core never exits or aborts: every call that can fail returns a status, and
 * stw_last_error() holds a message naming the object, the value and the limit. */
#ifndef STOWAGE_H
#define STOWAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum stw_status {
    STW_STATUS_OK = 0,
    STW_STATUS_INVALID_ARGUMENT = 1,
    STW_STATUS_BAD_MODEL = 2,
    STW_STATUS_UNSUPPORTED = 3,
    STW_STATUS_BUDGET_EXCEEDED = 4,
    STW_STATUS_OUT_OF_MEMORY = 5,
    STW_STATUS_IO = 6,
    STW_STATUS_CANCELLED = 7,
    STW_STATUS_INTERNAL = 8
} stw_status;

/* Architectures (stw_hparams.arch). */
#define STW_ARCH_LLAMA 0
#define STW_ARCH_QWEN2 1

/* RoPE layouts (stw_hparams.rope_type), numbered as in llama.cpp. */
#define STW_ROPE_TYPE_NORM 0 /* adjacent pairs (x[2i], x[2i+1]): llama */
#define STW_ROPE_TYPE_NEOX 2 /* halves (x[i], x[i + rope_dim/2]): qwen2 */

/* ggml tensor type ids used by the core (weights and KV cache). */
#define STW_TYPE_F32 0
#define STW_TYPE_F16 1
#define STW_TYPE_Q4_0 2
#define STW_TYPE_Q8_0 8
#define STW_TYPE_Q4_K 12
#define STW_TYPE_Q6_K 14
#define STW_TYPE_BF16 30

/* Token slots per KV block (the memory contract's kvBlockTokens). */
#define STW_KV_BLOCK_TOKENS 16

/* Thread-local message of the last failed call on this thread ("" if none). */
const char *stw_last_error(void);
const char *stw_version(void);
/* CPU features seen at run time and the active kernel set, e.g. "avx2 fma f16c; kernels=avx2". */
const char *stw_cpu_features(void);

typedef struct stw_tensor_desc {
    const char *name;
    int32_t type; /* ggml type id */
    int32_t n_dims;
    int64_t ne[4]; /* GGUF order: ne[0] is the fastest (row length) */
    uint64_t offset; /* absolute byte offset in the file */
    uint64_t nbytes;
} stw_tensor_desc;

typedef struct stw_hparams {
    int32_t arch; /* STW_ARCH_* */
    int32_t n_layer, n_embd, n_ff, n_head, n_head_kv;
    int32_t head_dim_k, head_dim_v; /* GGUF attention.key_length / value_length */
    int32_t n_vocab, n_ctx_train, rope_dim;
    int32_t rope_type; /* STW_ROPE_TYPE_* */
    float rope_freq_base, rms_eps;
} stw_hparams;

typedef struct stw_backend stw_backend;
typedef struct stw_model stw_model;
typedef struct stw_kv_pool stw_kv_pool;
typedef struct stw_seq stw_seq;
typedef struct stw_context stw_context;
typedef struct stw_sampler stw_sampler;

/* ---- Backends: one object per device, owning that device's memory ----
 *
 * A backend allocates everything a model needs on its device: the weight buffer of each model (CPU: the
 * zero-copy mapping itself; a GPU: one device copy per model, shared by all contexts and KV pools of that
 * model on that backend), the KV pools, and ONE compute workspace shared by every context on it, sized to
 * the largest context's A_m (the memory model: O_host + max A_m + sum W + sum K). Steps of all contexts
 * on one backend serialize on that workspace. Free order: contexts and KV pools, then models, then the
 * backend. A backend may be used from several threads. */
typedef enum stw_backend_kind {
    STW_BACKEND_KIND_CPU = 0,
    STW_BACKEND_KIND_CUDA = 1
} stw_backend_kind;

/* Where a type is used, for stw_backend_supports_type. */
#define STW_TYPE_USE_WEIGHT 0
#define STW_TYPE_USE_KV 1

typedef struct stw_device_info {
    int32_t kind; /* stw_backend_kind */
    int32_t ordinal; /* CUDA device ordinal; 0 on the CPU */
    char name[128]; /* CPU: the model name from /proc/cpuinfo ("cpu" when unknown); CUDA: the device name */
    char uuid[64]; /* CUDA: "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (MIG: "MIG-..."); CPU: "" */
    uint64_t total_bytes; /* CUDA: device memory; CPU: MemTotal */
} stw_device_info;

/* Creates the backend of one device. CPU: ordinal must be 0; n_threads (1..512) sizes its thread pool.
 * CUDA: ordinal is the device number as CUDA numbers the visible devices; n_threads is ignored.
 * UNSUPPORTED (with a one-line message) when the library was built without CUDA or no CUDA device or
 * driver is present; INVALID_ARGUMENT for an ordinal past the visible devices. */
stw_status stw_backend_init(stw_backend_kind kind, int32_t ordinal, int32_t n_threads, stw_backend **out);
/* 1 when this library was built with the backend of that kind (CPU: always; CUDA: when the build found a
 * toolkit, STW_CUDA), else 0. Says nothing about a device being present: stw_backend_init tells that. */
int32_t stw_backend_kind_built(stw_backend_kind kind);
/* The CUDA device whose UUID is uuid ("GPU-..." or "MIG-...", as nvidia-smi -L prints it). */
stw_status stw_backend_init_uuid(const char *uuid, int32_t n_threads, stw_backend **out);
/* INVALID_ARGUMENT (and nothing freed) while contexts, KV pools or model weights still live on it. */
stw_status stw_backend_free(stw_backend *be);
stw_status stw_backend_device_info(const stw_backend *be, stw_device_info *out);
/* The device's free and total memory as its driver reports them now (CPU: MemAvailable, MemTotal). */
stw_status stw_backend_memory_info(stw_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);
/* 1 when the backend's kernels take tensors of this ggml type for that use (STW_TYPE_USE_*), else 0. */
int32_t stw_backend_supports_type(const stw_backend *be, int32_t type, int32_t use);
/* Bytes this backend has allocated and not freed: weight copies, KV pools, the shared workspace and the
 * per-step descriptor buffer (measured, not computed). The CPU's weights stay in the mapping: 0 here. */
uint64_t stw_backend_allocated_bytes(const stw_backend *be);
/* The shared workspace now: max over the contexts on this backend of their A_m (0 with no context). */
uint64_t stw_backend_workspace_bytes(const stw_backend *be);
/* Bytes of the buffer the step descriptor is uploaded into (0 on the CPU, whose steps read host memory);
 * part of the host's fixed cost O_host, not of any A_m. */
uint64_t stw_backend_step_buffer_bytes(const stw_backend *be);

/* Java parses the header (placement library) and passes the descriptors of every tensor in the
 * file; the core maps the file read-only (MAP_SHARED) and re-checks each descriptor against the
 * mapping: offset + nbytes within the file, nbytes equal to the size computed from type and
 * shape, alignment, and the required tensors present with the shapes the hparams imply. */
stw_status stw_model_init(const char *gguf_path, const stw_hparams *hp, const stw_tensor_desc *tensors,
                          int32_t n_tensors, stw_model **out);
/* The core's own checked GGUF parser (tests, tools); then the same checks as stw_model_init. */
stw_status stw_model_init_file(const char *gguf_path, stw_model **out);
void stw_model_free(stw_model *m);
stw_status stw_model_hparams(const stw_model *m, stw_hparams *out);
/* The exact tensor bytes of every tensor in the file (the memory contract's W_m). */
uint64_t stw_model_weight_bytes(const stw_model *m);

/* Called during an upload after each chunk: bytes copied so far and the total. Nonzero cancels the
 * upload (stw_model_load then returns CANCELLED and keeps nothing). */
typedef int32_t (*stw_progress_fn)(uint64_t done_bytes, uint64_t total_bytes, void *user);
/* Makes the model's weights resident on the backend and takes one reference on that weight buffer.
 * CPU: the mapping itself (nothing copied). Other backends: the first reference allocates one buffer
 * (the file's tensor data span, offsets kept) and uploads it in chunks from the mapping, calling
 * progress (may be NULL); later references share it. Every weight type is checked against the backend
 * (UNSUPPORTED) before anything is allocated. Contexts and KV pools take their own reference. */
stw_status stw_model_load(stw_model *m, stw_backend *be, stw_progress_fn progress, void *user);
/* Drops one stw_model_load reference; the last reference of a backend frees that weight buffer. */
void stw_model_unload(stw_model *m, stw_backend *be);
/* Measured bytes of the model's weight buffer on that backend (0 when not resident there). CPU: the
 * mapped span the tensors occupy (zero-copy, not in stw_backend_allocated_bytes). */
uint64_t stw_model_device_bytes(const stw_model *m, const stw_backend *be);
/* References held on the model's weight buffer on that backend (loads + contexts + KV pools). */
int32_t stw_model_device_refs(const stw_model *m, const stw_backend *be);
/* CPU backends read the weights through the file mapping, except the matrices the load-time repack rewrites
 * into row-interleaved panels for the CPU kernels (Q4_0 matmul weights with rows a multiple of 8; never
 * token_embd): those live in private copy-on-write pages of a second, private mapping of the same span, so
 * the process still holds each weight byte once. The first CPU reference repacks (on that backend's threads),
 * the last one unmaps; STW_CPU_REPACK=0 in the environment at that moment keeps every weight zero-copy.
 * Other backends always get the file's bytes. bytes, matrices, seconds: what the current repack rewrote and
 * how long it took (all 0 when no CPU reference holds a repacked mapping). Any out pointer may be NULL. */
stw_status stw_model_repack_info(const stw_model *m, uint64_t *bytes, int32_t *matrices, double *seconds);

/* KV pool: blocks of 16 token slots for all layers, allocated up front; never allocates past
 * budget_bytes (it holds floor(budget / block bytes) blocks). kv_type: 0 f32, 1 f16, 8 q8_0. */
stw_status stw_kv_pool_init(const stw_model *m, int32_t kv_type, uint64_t budget_bytes, stw_kv_pool **out);
/* The same pool allocated through a backend (device memory on a GPU), on which its model's weights get
 * one more reference. stw_kv_pool_init is this on the process's shared CPU backend. */
stw_status stw_kv_pool_init_on(stw_backend *be, const stw_model *m, int32_t kv_type, uint64_t budget_bytes,
                               stw_kv_pool **out);
void stw_kv_pool_free(stw_kv_pool *p); /* all its sequences must be freed first */
uint64_t stw_kv_pool_bytes(const stw_kv_pool *p); /* allocated */
uint64_t stw_kv_pool_used_bytes(const stw_kv_pool *p); /* in blocks held by sequences */
int32_t stw_kv_pool_blocks(const stw_kv_pool *p); /* total blocks */
int32_t stw_kv_pool_free_blocks(const stw_kv_pool *p);
/* Bytes of one token's K and V over all layers; 0 (with stw_last_error set) if the type cannot
 * hold this model's rows (q8_0 needs row widths that are multiples of 32). */
uint64_t stw_kv_bytes_per_token(const stw_model *m, int32_t kv_type);
/* Blocks are taken as the sequence grows (BUDGET_EXCEEDED in stw_decode when the pool is dry). */
stw_status stw_seq_init(stw_kv_pool *p, int32_t max_tokens, stw_seq **out);
void stw_seq_free(stw_seq *s); /* returns its blocks at once */
int32_t stw_seq_length(const stw_seq *s);
/* Forgets tokens past length (length <= current length) and returns the blocks no longer needed. */
stw_status stw_seq_truncate(stw_seq *s, int32_t length);

/* Compute context: thread pool + the workspace for steps of up to max_batch_tokens tokens and
 * max_logit_rows logit rows (1 <= max_logit_rows <= max_batch_tokens), allocated once. */
stw_status stw_context_init(const stw_model *m, int32_t n_threads, int32_t max_batch_tokens, int32_t max_logit_rows,
                            stw_context **out);
/* A context on a backend: its A_m joins the backend's shared workspace (grown to the largest A_m on the
 * backend; allocated when it grows, OUT_OF_MEMORY with the numbers when that fails) and its steps
 * serialize with every other context of that backend. The CPU backend's thread pool runs its matrix
 * work. Its sequences' KV pools must live on the same backend (any CPU backend for a CPU context).
 * stw_context_init is this on a private CPU backend of n_threads threads that the context owns. */
stw_status stw_context_init_on(stw_backend *be, const stw_model *m, int32_t max_batch_tokens, int32_t max_logit_rows,
                               stw_context **out);
void stw_context_free(stw_context *c);
/* Exactly the memory contract's A_m for (max_batch_tokens, max_logit_rows). */
uint64_t stw_context_workspace_bytes(const stw_context *c);
/* Asks the step running on this context (on another thread) to stop at the next layer: that
 * stw_decode returns STW_STATUS_CANCELLED and changes no sequence. Dropped when no step runs. */
void stw_context_cancel(stw_context *c);
/* One batched forward step over tokens of one or more sequences (all of the context's model; the
 * sequences may come from different pools). Token i is appended to seqs[i] (tokens of one sequence
 * appear in order). Logits for tokens with want_logits[i] != 0 are written in order into logits_out
 * (rows x n_vocab floats). want_logits may be NULL (no logits). On any error no sequence changes.
 * A context runs one step at a time (a concurrent call gets INVALID_ARGUMENT); a sequence must not be
 * in two steps at once. */
stw_status stw_decode(stw_context *c, int32_t n_tokens, const int32_t *tokens, stw_seq *const *seqs,
                      const uint8_t *want_logits, float *logits_out);

typedef struct stw_sampler_params {
    float temperature; /* 0 = greedy (ties to the lowest id) */
    int32_t top_k; /* <= 0: off */
    float top_p; /* >= 1: off */
    float min_p; /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n; /* how many of the recent tokens the penalty looks at; < 0: all given */
    uint64_t seed;
} stw_sampler_params;

stw_status stw_sampler_init(const stw_sampler_params *p, int32_t n_vocab, stw_sampler **out);
void stw_sampler_free(stw_sampler *s);
/* recent: the last tokens (oldest first) for the repetition penalty; may be NULL when n_recent is 0. */
stw_status stw_sampler_sample(stw_sampler *s, const float *logits, const int32_t *recent, int32_t n_recent,
                              int32_t *token_out);

#ifdef __cplusplus
}
#endif

#endif /* STOWAGE_H */
