// model.cpp: maps a GGUF read-only and shared, re-checks every tensor descriptor against the
// mapping and the hyperparameters, and binds the llama-family weights.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>

#include "core.h"
#include "kernels.h"

namespace {

constexpr uint64_t kMinTensorAlignment = 4; // F32 rows are read as floats in place
constexpr int32_t kMaxTensors = 1 << 20;

stw_status check_range(const char *field, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi)
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.%s is %" PRId64 ", expected %" PRId64 "..%" PRId64, field, value,
                         lo, hi);
    return STW_STATUS_OK;
}

stw_status check_hparams(const stw_hparams *hp) {
    stw_status st;
    if (hp->arch != STW_ARCH_LLAMA && hp->arch != STW_ARCH_QWEN2)
        return stw_error(STW_STATUS_UNSUPPORTED, "hparams.arch is %d; supported: %d (llama), %d (qwen2)", hp->arch,
                         STW_ARCH_LLAMA, STW_ARCH_QWEN2);
    if ((st = check_range("n_layer", hp->n_layer, 1, 4096))) return st;
    if ((st = check_range("n_embd", hp->n_embd, 1, 1 << 17))) return st;
    if ((st = check_range("n_ff", hp->n_ff, 1, 1 << 20))) return st;
    if ((st = check_range("n_head", hp->n_head, 1, 4096))) return st;
    if ((st = check_range("n_head_kv", hp->n_head_kv, 1, hp->n_head))) return st;
    if (hp->n_head % hp->n_head_kv != 0)
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.n_head %d is not a multiple of n_head_kv %d", hp->n_head,
                         hp->n_head_kv);
    if ((st = check_range("head_dim_k", hp->head_dim_k, 1, kMaxHeadDim))) return st;
    if ((st = check_range("head_dim_v", hp->head_dim_v, 1, kMaxHeadDim))) return st;
    if ((st = check_range("n_vocab", hp->n_vocab, 1, 1 << 24))) return st;
    if ((st = check_range("n_ctx_train", hp->n_ctx_train, 1, INT32_MAX))) return st;
    if ((st = check_range("rope_dim", hp->rope_dim, 2, hp->head_dim_k))) return st;
    if (hp->rope_dim % 2 != 0)
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.rope_dim is %d, expected an even number", hp->rope_dim);
    if (hp->rope_type != STW_ROPE_TYPE_NORM && hp->rope_type != STW_ROPE_TYPE_NEOX)
        return stw_error(STW_STATUS_UNSUPPORTED, "hparams.rope_type is %d; supported: 0 (adjacent pairs), 2 (neox)",
                         hp->rope_type);
    // the layout follows the architecture; a mismatch would run and silently produce garbage
    const int32_t want_rope = hp->arch == STW_ARCH_QWEN2 ? STW_ROPE_TYPE_NEOX : STW_ROPE_TYPE_NORM;
    if (hp->rope_type != want_rope)
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.rope_type is %d but architecture %s uses %d", hp->rope_type,
                         hp->arch == STW_ARCH_QWEN2 ? "qwen2" : "llama", want_rope);
    if (!(std::isfinite(hp->rope_freq_base) && hp->rope_freq_base > 0))
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.rope_freq_base is %g, expected a positive number",
                         (double)hp->rope_freq_base);
    if (!(std::isfinite(hp->rms_eps) && hp->rms_eps > 0 && hp->rms_eps < 1))
        return stw_error(STW_STATUS_BAD_MODEL, "hparams.rms_eps is %g, expected 0 < eps < 1", (double)hp->rms_eps);
    return STW_STATUS_OK;
}

// Checks one descriptor against the mapping: known type, shape, computed size, bounds, alignment.
stw_status check_desc(const stw_tensor_desc &d, int32_t index, size_t map_bytes) {
    if (!d.name) return stw_error(STW_STATUS_INVALID_ARGUMENT, "tensors[%d].name is null", index);
    if (strnlen(d.name, 257) > 256)
        return stw_error(STW_STATUS_BAD_MODEL, "tensors[%d].name is longer than 256 bytes", index);
    if (d.n_dims < 1 || d.n_dims > 4)
        return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has n_dims %d, expected 1..4", d.name, d.n_dims);
    for (int k = 0; k < d.n_dims; k++)
        if (d.ne[k] < 1 || d.ne[k] > ((int64_t)1 << 40))
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has ne[%d] = %" PRId64 ", expected 1..2^40", d.name, k,
                             d.ne[k]);
    const int64_t bs = stw_type_block_size(d.type);
    if (bs == 0)
        return stw_error(STW_STATUS_UNSUPPORTED, "tensor '%s' has ggml type %d, which this engine does not know", d.name,
                         d.type);
    if (d.ne[0] % bs != 0)
        return stw_error(STW_STATUS_BAD_MODEL,
                         "tensor '%s' has row length %" PRId64 ", not a multiple of the %s block size %" PRId64, d.name,
                         d.ne[0], stw_type_name(d.type), bs);
    unsigned __int128 bytes = (unsigned __int128)(d.ne[0] / bs) * (uint64_t)stw_type_block_bytes(d.type);
    for (int k = 1; k < d.n_dims; k++) {
        bytes *= (uint64_t)d.ne[k];
        if (bytes > (unsigned __int128)UINT64_MAX)
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has more than 2^64 bytes", d.name);
    }
    if ((uint64_t)bytes != d.nbytes)
        return stw_error(STW_STATUS_BAD_MODEL,
                         "tensor '%s' declares %" PRIu64 " bytes but type %s and shape [%" PRId64 ", %" PRId64 ", %" PRId64
                         ", %" PRId64 "] need %" PRIu64,
                         d.name, d.nbytes, stw_type_name(d.type), d.ne[0], d.n_dims > 1 ? d.ne[1] : 1,
                         d.n_dims > 2 ? d.ne[2] : 1, d.n_dims > 3 ? d.ne[3] : 1, (uint64_t)bytes);
    if (d.offset > map_bytes || d.nbytes > map_bytes - d.offset)
        return stw_error(STW_STATUS_BAD_MODEL,
                         "tensor '%s' spans bytes %" PRIu64 "..%" PRIu64 " but the file is %zu bytes (truncated or corrupt)",
                         d.name, d.offset, (uint64_t)((unsigned __int128)d.offset + d.nbytes), map_bytes);
    if (d.offset % kMinTensorAlignment != 0)
        return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' starts at byte %" PRIu64 ", not aligned to %" PRIu64, d.name,
                         d.offset, kMinTensorAlignment);
    return STW_STATUS_OK;
}

struct binder {
    stw_model *m;
    std::unordered_map<std::string, const stw_tensor_desc *> by_name;

    // Binds a tensor that must have shape [ne0] (ne1 == 0) or [ne0, ne1]; optional ones may be absent.
    stw_status bind(const std::string &name, int64_t ne0, int64_t ne1, bool required, stw_weight *w) {
        std::memset(w, 0, sizeof *w);
        auto it = by_name.find(name);
        if (it == by_name.end()) {
            if (required) return stw_error(STW_STATUS_BAD_MODEL, "required tensor '%s' is missing", name.c_str());
            return STW_STATUS_OK;
        }
        const stw_tensor_desc &d = *it->second;
        const int64_t got1 = d.n_dims > 1 ? d.ne[1] : 1;
        const int64_t got2 = (d.n_dims > 2 ? d.ne[2] : 1) * (d.n_dims > 3 ? d.ne[3] : 1);
        const int64_t want1 = ne1 == 0 ? 1 : ne1;
        if (d.ne[0] != ne0 || got1 != want1 || got2 != 1)
            return stw_error(STW_STATUS_BAD_MODEL,
                             "tensor '%s' has shape [%" PRId64 ", %" PRId64 "] but the hparams need [%" PRId64 ", %" PRId64 "]",
                             name.c_str(), d.ne[0], got1, ne0, want1);
        if (ne1 == 0 && d.type != STW_TYPE_F32)
            return stw_error(STW_STATUS_UNSUPPORTED, "tensor '%s' has type %s; vectors (norms, biases) must be F32",
                             name.c_str(), stw_type_name(d.type));
        if (ne1 != 0 && (!stw_type_supported_weight(d.type) || stw_cpu_row_bytes(d.type, d.ne[0]) == 0))
            return stw_error(STW_STATUS_UNSUPPORTED,
                             "tensor '%s' has type %s; supported weight types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K",
                             name.c_str(), stw_type_name(d.type));
        w->data = m->map + d.offset;
        w->rel = d.offset - m->span_start;
        w->type = d.type;
        w->ne0 = d.ne[0];
        w->ne1 = want1;
        w->row_bytes = (size_t)(d.nbytes / (uint64_t)want1);
        return STW_STATUS_OK;
    }
};

stw_status map_file(const char *path, stw_model *m) {
    if (!path) return stw_error(STW_STATUS_INVALID_ARGUMENT, "gguf_path is null");
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return stw_error(STW_STATUS_IO, "cannot open model file '%s': %s", path, strerror(errno));
    m->fd = fd;
    struct stat stbuf;
    if (fstat(fd, &stbuf) != 0) return stw_error(STW_STATUS_IO, "cannot stat '%s': %s", path, strerror(errno));
    if (!S_ISREG(stbuf.st_mode)) return stw_error(STW_STATUS_IO, "model file '%s' is not a regular file", path);
    if (stbuf.st_size <= 0) return stw_error(STW_STATUS_BAD_MODEL, "model file '%s' is empty", path);
    void *p = mmap(nullptr, (size_t)stbuf.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return stw_error(STW_STATUS_IO, "cannot map '%s' (%lld bytes): %s", path,
                                          (long long)stbuf.st_size, strerror(errno));
    m->map = (const uint8_t *)p;
    m->map_bytes = (size_t)stbuf.st_size;
    return STW_STATUS_OK;
}

// Every bound weight of the model (absent optional ones have data == nullptr).
template <typename F> void for_each_weight(const stw_model *m, F f) {
    f("token_embd.weight", m->tok_embd);
    f("output_norm.weight", m->output_norm);
    f("output.weight", m->output);
    f("rope_freqs.weight", m->rope_freqs);
    for (const stw_layer_weights &L : m->layers)
        for (const stw_weight *w : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.ffn_norm, &L.w_gate,
                                    &L.w_up, &L.w_down})
            f("a layer tensor", *w);
}

constexpr uint64_t kUploadChunk = 64ull << 20;

// Allocates one buffer for the model's span on a non-host backend and uploads it chunk by chunk.
stw_status upload_weights(const stw_model *m, stw_backend *be, stw_progress_fn progress, void *user, void **out) {
    stw_status st = STW_STATUS_OK;
    for_each_weight(m, [&](const char *name, const stw_weight &w) {
        if (st == STW_STATUS_OK && w.data && !be->supports_type(be, w.type, STW_TYPE_USE_WEIGHT))
            st = stw_error(STW_STATUS_UNSUPPORTED, "backend %s:%d has no kernels for weight type %s (%s); nothing was uploaded",
                           be->name, be->ordinal, stw_type_name(w.type), name);
    });
    if (st) return st;
    void *buf = nullptr;
    if ((st = stw_backend_buffer_alloc(be, m->span_bytes, "the model's weights", &buf))) return st;
    for (uint64_t done = 0; done < m->span_bytes;) {
        const uint64_t n = std::min(kUploadChunk, m->span_bytes - done);
        int rc = be->upload(be, buf, (size_t)done, m->map + m->span_start + done, (size_t)n);
        if (rc == 0 && done + n == m->span_bytes) rc = be->synchronize(be);
        if (rc != 0) {
            stw_backend_buffer_free(be, buf, m->span_bytes);
            return rc == STW_BACKEND_ERROR_SET ? STW_STATUS_INTERNAL
                                               : stw_error(STW_STATUS_INTERNAL,
                                                           "%s:%d weight upload failed at byte %" PRIu64 " of %" PRIu64 " (code %d)",
                                                           be->name, be->ordinal, done, m->span_bytes, rc);
        }
        done += n;
        if (progress && progress(done, m->span_bytes, user) != 0) {
            stw_backend_buffer_free(be, buf, m->span_bytes);
            return stw_error(STW_STATUS_CANCELLED, "weight upload to %s:%d cancelled after %" PRIu64 " of %" PRIu64 " bytes",
                             be->name, be->ordinal, done, m->span_bytes);
        }
    }
    *out = buf;
    return STW_STATUS_OK;
}

// ---- the CPU's load-time repack (R8) ---------------------------------------------------------

#if defined(MADV_POPULATE_WRITE)
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kMadvPopulateWrite = 23; // Linux's value; older headers lack the name
#endif

// STW_CPU_REPACK=0 keeps the zero-copy mapping for every weight (benchmarks before/after; an escape hatch).
bool repack_enabled() {
    const char *env = std::getenv("STW_CPU_REPACK");
    return !(env && std::strcmp(env, "0") == 0);
}

// The matrices the CPU repacks: matmul-only weights (never token_embd, which get_rows reads by row, nor
// an output head tied to it) of a type with an R8 form in the running build, whose bytes no other bound
// tensor shares (a hostile file may alias descriptors: rewriting shared bytes would change the other).
std::vector<const stw_weight *> repack_candidates(const stw_model *m) {
    struct range {
        uint64_t lo, hi;
        const stw_weight *w;
        bool candidate;
    };
    std::vector<range> all;
    for_each_weight(m, [&](const char *, const stw_weight &w) {
        if (w.data) all.push_back({w.rel, w.rel + w.row_bytes * (uint64_t)w.ne1, &w, false});
    });
    auto mark = [&](const stw_weight &w) {
        for (range &r : all)
            if (r.w == &w && w.data && w.rel != m->tok_embd.rel && stw_cpu_r8_type(w.type, w.ne1, w.ne0) != 0)
                r.candidate = true;
    };
    for (const stw_layer_weights &L : m->layers)
        for (const stw_weight *w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) mark(*w);
    if (m->output.data && m->output.rel != m->tok_embd.rel) mark(m->output);
    std::sort(all.begin(), all.end(), [](const range &a, const range &b) { return a.lo < b.lo; });
    std::vector<const stw_weight *> out;
    uint64_t max_hi = 0;
    for (size_t i = 0; i < all.size(); i++) {
        const bool overlaps = (i > 0 && max_hi > all[i].lo) || (i + 1 < all.size() && all[i + 1].lo < all[i].hi);
        max_hi = std::max(max_hi, all[i].hi);
        if (all[i].candidate && !overlaps) out.push_back(all[i].w);
    }
    return out;
}

// The first CPU buffer of the model: the weights CPU backends read (zero-copy, or the repacked private
// mapping). pool runs the repack (may be NULL). Takes buf_mu (held by the caller).
stw_status cpu_weights_create(stw_model *m, stw_threadpool *pool) {
    stw_cpu_weights &cw = m->cpu;
    if (!repack_enabled() || m->fd < 0) return STW_STATUS_OK;
    const std::vector<const stw_weight *> cand = repack_candidates(m);
    if (cand.empty()) return STW_STATUS_OK;
    const auto t0 = std::chrono::steady_clock::now();
    const long page_l = sysconf(_SC_PAGESIZE);
    const uint64_t page = page_l > 0 ? (uint64_t)page_l : 4096;
    const uint64_t off = m->span_start / page * page;
    const uint64_t len = m->span_start + m->span_bytes - off;
    void *p = mmap(nullptr, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE, m->fd, (off_t)off);
    if (p == MAP_FAILED)
        return stw_error(STW_STATUS_IO,
                         "cannot map the model's %" PRIu64 " weight bytes privately for the CPU repack: %s "
                         "(STW_CPU_REPACK=0 reads the shared mapping instead)",
                         len, strerror(errno));
    uint8_t *base = (uint8_t *)p + (m->span_start - off);
    std::vector<uint64_t> rels;
    uint64_t bytes = 0;
    try {
        rels.reserve(cand.size());
    } catch (const std::bad_alloc &) {
        munmap(p, (size_t)len);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot record the repacked matrices");
    }
    // Take the private copies of the matrices' pages in one call per matrix (Linux 5.14+; older kernels
    // say EINVAL and the repack's writes fault them in one by one): several times faster than faulting
    // 4 KiB at a time, and it keeps the pool's threads from contending on the faults.
    for (const stw_weight *w : cand) {
        const uint64_t lo = (m->span_start + w->rel) / page * page - off;
        const uint64_t hi = m->span_start + w->rel + w->row_bytes * (uint64_t)w->ne1 - off;
        madvise((uint8_t *)p + lo, (size_t)(hi - lo), kMadvPopulateWrite);
    }
    for (const stw_weight *w : cand) {
        const int rc = stw_cpu_repack_r8(w->type, base + w->rel, w->ne1, w->ne0, pool);
        if (rc < 0) {
            munmap(p, (size_t)len); // the file is untouched: only private pages were written
            return stw_error(STW_STATUS_INTERNAL, "CPU repack of a %s matrix [%" PRId64 ", %" PRId64 "] failed: %s",
                             stw_type_name(w->type), w->ne0, w->ne1, stw_cpu_last_error());
        }
        rels.push_back(w->rel);
        bytes += w->row_bytes * (uint64_t)w->ne1;
    }
    if (mprotect(p, (size_t)len, PROT_READ) != 0) {
        const int err = errno;
        munmap(p, (size_t)len);
        return stw_error(STW_STATUS_IO, "cannot make the repacked weights read-only: %s", strerror(err));
    }
    std::sort(rels.begin(), rels.end());
    // Pages of the span that reading the header mapped into the shared mapping (the kernel maps the
    // cached pages around a fault too) would hold repacked matrices' file pages a second time: drop them
    // there. They stay in the page cache; only an upload to another backend reads the shared mapping.
    madvise((void *)(m->map + off), (size_t)len, MADV_DONTNEED);
    cw.map = (uint8_t *)p;
    cw.bytes = (size_t)len;
    cw.delta = m->span_start - off;
    cw.r8_rels.swap(rels);
    cw.r8_bytes = bytes;
    cw.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return STW_STATUS_OK;
}

void cpu_weights_destroy(stw_model *m) {
    stw_cpu_weights &cw = m->cpu;
    if (cw.map) munmap(cw.map, cw.bytes);
    cw.map = nullptr;
    cw.bytes = 0;
    cw.delta = 0;
    cw.users = 0;
    cw.r8_rels.clear();
    cw.r8_bytes = 0;
}

stw_model_buffer *find_buffer(stw_model *m, const stw_backend *be) {
    for (stw_model_buffer &b : m->buffers)
        if (b.be == be) return &b;
    return nullptr;
}

} // namespace

stw_status stw_model_acquire(const stw_model *cm, stw_backend *be, stw_progress_fn progress, void *user,
                             const uint8_t **base) {
    stw_model *m = const_cast<stw_model *>(cm); // the buffers are the model's mutable, locked part
    std::lock_guard<std::mutex> lk(m->buf_mu);
    if (stw_model_buffer *b = find_buffer(m, be)) {
        b->refs++;
        *base = b->base;
        return STW_STATUS_OK;
    }
    stw_model_buffer nb{be, nullptr, m->span_bytes, false, 1};
    if (be->host_memory) {
        // the CPU reads the mapping (zero-copy), or the private one where the load-time repack rewrote
        // matrices; one for all CPU backends of the model
        if (m->cpu.users == 0) {
            const stw_status st = cpu_weights_create(m, stw_backend_cpu_pool(be));
            if (st) return st;
        }
        nb.base = m->cpu.map ? m->cpu.map + m->cpu.delta : m->map + m->span_start;
    } else {
        void *buf = nullptr;
        const stw_status st = upload_weights(m, be, progress, user, &buf);
        if (st) return st;
        nb.base = (const uint8_t *)buf;
        nb.owned = true;
    }
    try {
        m->buffers.push_back(nb);
    } catch (const std::bad_alloc &) {
        if (nb.owned) stw_backend_buffer_free(be, (void *)nb.base, nb.bytes);
        if (be->host_memory && m->cpu.users == 0) cpu_weights_destroy(m);
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot record the model's weight buffer");
    }
    if (be->host_memory) m->cpu.users++;
    be->users++;
    if (be->host_memory && progress) progress(m->span_bytes, m->span_bytes, user);
    *base = nb.base;
    return STW_STATUS_OK;
}

void stw_model_release(const stw_model *cm, stw_backend *be) {
    stw_model *m = const_cast<stw_model *>(cm);
    std::lock_guard<std::mutex> lk(m->buf_mu);
    for (size_t i = 0; i < m->buffers.size(); i++) {
        stw_model_buffer &b = m->buffers[i];
        if (b.be != be) continue;
        if (--b.refs == 0) {
            if (b.owned) stw_backend_buffer_free(be, (void *)b.base, b.bytes);
            if (be->host_memory && --m->cpu.users == 0) cpu_weights_destroy(m); // a reload repacks again
            be->users--;
            m->buffers.erase(m->buffers.begin() + (long)i);
        }
        return;
    }
}

extern "C" stw_status stw_model_load(stw_model *m, stw_backend *be, stw_progress_fn progress, void *user) {
    if (!m || !be) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model or backend is null");
    const uint8_t *base = nullptr;
    return stw_model_acquire(m, be, progress, user, &base);
}

extern "C" void stw_model_unload(stw_model *m, stw_backend *be) {
    if (m && be) stw_model_release(m, be);
}

extern "C" uint64_t stw_model_device_bytes(const stw_model *cm, const stw_backend *be) {
    if (!cm || !be) return 0;
    stw_model *m = const_cast<stw_model *>(cm);
    std::lock_guard<std::mutex> lk(m->buf_mu);
    const stw_model_buffer *b = find_buffer(m, be);
    return b ? b->bytes : 0;
}

extern "C" int32_t stw_model_device_refs(const stw_model *cm, const stw_backend *be) {
    if (!cm || !be) return 0;
    stw_model *m = const_cast<stw_model *>(cm);
    std::lock_guard<std::mutex> lk(m->buf_mu);
    const stw_model_buffer *b = find_buffer(m, be);
    return b ? b->refs : 0;
}

stw_status stw_model_init_mapped(stw_model *m, const stw_hparams *hp, const stw_tensor_desc *tensors,
                                 int32_t n_tensors) {
    stw_status st;
    if ((st = check_hparams(hp))) return st;
    m->hp = *hp;
    if (n_tensors < 1 || n_tensors > kMaxTensors)
        return stw_error(STW_STATUS_BAD_MODEL, "n_tensors is %d, expected 1..%d", n_tensors, kMaxTensors);
    if (!tensors) return stw_error(STW_STATUS_INVALID_ARGUMENT, "tensors is null");
    binder b{m, {}};
    b.by_name.reserve((size_t)n_tensors);
    m->weight_bytes = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int32_t i = 0; i < n_tensors; i++) {
        if ((st = check_desc(tensors[i], i, m->map_bytes))) return st;
        if (!b.by_name.emplace(tensors[i].name, &tensors[i]).second)
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' appears twice", tensors[i].name);
        m->weight_bytes += tensors[i].nbytes;
        lo = std::min(lo, tensors[i].offset);
        hi = std::max(hi, tensors[i].offset + tensors[i].nbytes); // checked against the file size above
    }
    // the span a device copy holds: every tensor, with the file's own alignment padding between them
    m->span_start = lo;
    m->span_bytes = hi - lo;

    const int64_t e = hp->n_embd, dk = hp->head_dim_k, dv = hp->head_dim_v;
    const int64_t q_w = (int64_t)hp->n_head * dk, k_w = (int64_t)hp->n_head_kv * dk, v_w = (int64_t)hp->n_head_kv * dv;
    const int64_t o_w = (int64_t)hp->n_head * dv;
    if ((st = b.bind("token_embd.weight", e, hp->n_vocab, true, &m->tok_embd))) return st;
    if ((st = b.bind("output_norm.weight", e, 0, true, &m->output_norm))) return st;
    if ((st = b.bind("output.weight", e, hp->n_vocab, false, &m->output))) return st;
    if (!m->output.data) m->output = m->tok_embd; // tied embeddings
    if ((st = b.bind("rope_freqs.weight", hp->rope_dim / 2, 0, false, &m->rope_freqs))) return st;
    if (m->rope_freqs.data) {
        // divisors of the RoPE frequencies: a zero or NaN would poison every attention score
        const float *f = (const float *)m->rope_freqs.data;
        for (int32_t k = 0; k < hp->rope_dim / 2; k++)
            if (!(std::isfinite(f[k]) && f[k] > 0))
                return stw_error(STW_STATUS_BAD_MODEL, "tensor 'rope_freqs.weight' has value %g at %d, expected > 0",
                                 (double)f[k], k);
    }
    m->layers.resize((size_t)hp->n_layer);
    const bool biases_required = hp->arch == STW_ARCH_QWEN2;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        stw_layer_weights &L = m->layers[(size_t)l];
        const std::string p = "blk." + std::to_string(l) + ".";
        if ((st = b.bind(p + "attn_norm.weight", e, 0, true, &L.attn_norm))) return st;
        if ((st = b.bind(p + "attn_q.weight", e, q_w, true, &L.wq))) return st;
        if ((st = b.bind(p + "attn_k.weight", e, k_w, true, &L.wk))) return st;
        if ((st = b.bind(p + "attn_v.weight", e, v_w, true, &L.wv))) return st;
        if ((st = b.bind(p + "attn_q.bias", q_w, 0, biases_required, &L.bq))) return st;
        if ((st = b.bind(p + "attn_k.bias", k_w, 0, biases_required, &L.bk))) return st;
        if ((st = b.bind(p + "attn_v.bias", v_w, 0, biases_required, &L.bv))) return st;
        if ((st = b.bind(p + "attn_output.weight", o_w, e, true, &L.wo))) return st;
        if ((st = b.bind(p + "ffn_norm.weight", e, 0, true, &L.ffn_norm))) return st;
        if ((st = b.bind(p + "ffn_gate.weight", e, hp->n_ff, true, &L.w_gate))) return st;
        if ((st = b.bind(p + "ffn_up.weight", e, hp->n_ff, true, &L.w_up))) return st;
        if ((st = b.bind(p + "ffn_down.weight", hp->n_ff, e, true, &L.w_down))) return st;
    }
    return STW_STATUS_OK;
}

extern "C" stw_status stw_model_init(const char *gguf_path, const stw_hparams *hp, const stw_tensor_desc *tensors,
                                     int32_t n_tensors, stw_model **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!hp) return stw_error(STW_STATUS_INVALID_ARGUMENT, "hparams is null");
    stw_model *m = new (std::nothrow) stw_model();
    if (!m) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the model struct");
    stw_status st;
    try {
        st = map_file(gguf_path, m);
        if (st == STW_STATUS_OK) st = stw_model_init_mapped(m, hp, tensors, n_tensors);
    } catch (const std::bad_alloc &) {
        st = stw_error(STW_STATUS_OUT_OF_MEMORY, "out of memory while loading '%s'", gguf_path);
    }
    if (st != STW_STATUS_OK) {
        stw_model_free(m);
        return st;
    }
    *out = m;
    return STW_STATUS_OK;
}

extern "C" stw_status stw_model_init_file(const char *gguf_path, stw_model **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    stw_model *m = new (std::nothrow) stw_model();
    if (!m) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the model struct");
    stw_status st;
    try {
        st = map_file(gguf_path, m);
        stw_hparams hp;
        stw_gguf_tensors tensors;
        if (st == STW_STATUS_OK) st = stw_gguf_parse(m->map, m->map_bytes, &hp, &tensors);
        if (st == STW_STATUS_OK)
            st = stw_model_init_mapped(m, &hp, tensors.descs.data(), (int32_t)std::min<size_t>(tensors.descs.size(), INT32_MAX));
    } catch (const std::bad_alloc &) {
        st = stw_error(STW_STATUS_OUT_OF_MEMORY, "out of memory while loading '%s'", gguf_path);
    }
    if (st != STW_STATUS_OK) {
        stw_model_free(m);
        return st;
    }
    *out = m;
    return STW_STATUS_OK;
}

extern "C" void stw_model_free(stw_model *m) {
    if (!m) return;
    // references still held mean the caller freed the model before its contexts or pools: release the
    // device copies anyway so the backends stay freeable
    for (stw_model_buffer &b : m->buffers) {
        if (b.owned) stw_backend_buffer_free(b.be, (void *)b.base, b.bytes);
        b.be->users--;
    }
    m->buffers.clear();
    cpu_weights_destroy(m);
    if (m->map) munmap((void *)m->map, m->map_bytes);
    if (m->fd >= 0) close(m->fd);
    delete m;
}

extern "C" stw_status stw_model_hparams(const stw_model *m, stw_hparams *out) {
    if (!m || !out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model or out is null");
    *out = m->hp;
    return STW_STATUS_OK;
}

extern "C" uint64_t stw_model_weight_bytes(const stw_model *m) { return m ? m->weight_bytes : 0; }

int32_t stw_model_matmul_type(const stw_model *m, const stw_weight &w, bool repacked) {
    if (!repacked || !std::binary_search(m->cpu.r8_rels.begin(), m->cpu.r8_rels.end(), w.rel)) return w.type;
    return stw_cpu_r8_type(w.type, w.ne1, w.ne0);
}

bool stw_model_base_repacked(const stw_model *m, const uint8_t *base) {
    return m->cpu.map != nullptr && base == m->cpu.map + m->cpu.delta;
}

extern "C" stw_status stw_model_repack_info(const stw_model *cm, uint64_t *bytes, int32_t *matrices, double *seconds) {
    if (!cm) return stw_error(STW_STATUS_INVALID_ARGUMENT, "model is null");
    stw_model *m = const_cast<stw_model *>(cm);
    std::lock_guard<std::mutex> lk(m->buf_mu);
    if (bytes) *bytes = m->cpu.map ? m->cpu.r8_bytes : 0;
    if (matrices) *matrices = m->cpu.map ? (int32_t)m->cpu.r8_rels.size() : 0;
    if (seconds) *seconds = m->cpu.map ? m->cpu.seconds : 0.0;
    return STW_STATUS_OK;
}

