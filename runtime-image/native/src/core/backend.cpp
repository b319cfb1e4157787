// backend.cpp: the backend object of stowage.h (one per device): creation by kind, accounted buffers,
// the one workspace shared by every context on the device, and the step buffer.
#include <cinttypes>
#include <cstring>
#include <new>
#include <string>

#include "core.h"

namespace {

constexpr int32_t kMaxThreads = 512;

stw_status finish_create(stw_backend *be, stw_status st, stw_backend **out) {
    if (st != STW_STATUS_OK) {
        delete be;
        return st;
    }
    *out = be;
    return STW_STATUS_OK;
}

stw_status check_threads(int32_t n_threads) {
    if (n_threads < 1 || n_threads > kMaxThreads)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "n_threads is %d, expected 1..%d", n_threads, kMaxThreads);
    return STW_STATUS_OK;
}

} // namespace

stw_status stw_backend_buffer_alloc(stw_backend *be, uint64_t bytes, const char *what, void **out) {
    *out = nullptr;
    if (bytes == 0) bytes = 1; // a real buffer, so free_buffer and the accounting stay uniform
    void *buf = nullptr;
    const int rc = bytes > SIZE_MAX ? -1 : be->alloc(be, (size_t)bytes, &buf);
    if (rc != 0 || !buf) {
        uint64_t free_b = 0, total_b = 0;
        const bool known = be->memory_info && be->memory_info(be, &free_b, &total_b) == 0;
        if (known)
            return stw_error(STW_STATUS_OUT_OF_MEMORY,
                             "%s:%d cannot allocate %s of %" PRIu64 " bytes: the device has %" PRIu64 " of %" PRIu64
                             " bytes free and this backend holds %" PRIu64,
                             be->name, be->ordinal, what, bytes, free_b, total_b, be->allocated.load());
        return stw_error(STW_STATUS_OUT_OF_MEMORY, "%s:%d cannot allocate %s of %" PRIu64 " bytes (this backend holds %" PRIu64 ")",
                         be->name, be->ordinal, what, bytes, be->allocated.load());
    }
    be->allocated += bytes;
    *out = buf;
    return STW_STATUS_OK;
}

void stw_backend_buffer_free(stw_backend *be, void *buf, uint64_t bytes) {
    if (!buf) return;
    if (bytes == 0) bytes = 1;
    be->free_buffer(be, buf);
    be->allocated -= bytes;
}

// The workspace follows the largest registered A_m: freed before the new one is allocated, so a device
// near its budget never holds both; when the larger one cannot be had, the old size is restored.
static stw_status workspace_resize_locked(stw_backend *be, uint64_t want) {
    if (want == be->ws_bytes && (be->workspace || want == 0)) return STW_STATUS_OK;
    const uint64_t old = be->ws_bytes;
    stw_backend_buffer_free(be, be->workspace, be->ws_bytes);
    be->workspace = nullptr;
    be->ws_bytes = 0;
    if (want == 0) return STW_STATUS_OK;
    void *buf = nullptr;
    const stw_status st = stw_backend_buffer_alloc(be, want, "the shared compute workspace", &buf);
    if (st == STW_STATUS_OK) {
        be->workspace = buf;
        be->ws_bytes = want;
        return STW_STATUS_OK;
    }
    const std::string msg = stw_last_error();
    if (old > 0 && stw_backend_buffer_alloc(be, old, "the shared compute workspace", &buf) == STW_STATUS_OK) {
        be->workspace = buf;
        be->ws_bytes = old;
    }
    return stw_error(st, "%s", msg.c_str());
}

stw_status stw_backend_workspace_add_locked(stw_backend *be, uint64_t bytes) {
    const uint64_t cur = be->ws_wanted.empty() ? 0 : *be->ws_wanted.rbegin();
    if (bytes > cur || !be->workspace) {
        const stw_status st = workspace_resize_locked(be, bytes > cur ? bytes : cur);
        if (st) return st;
    }
    be->ws_wanted.insert(bytes);
    return STW_STATUS_OK;
}

void stw_backend_workspace_remove_locked(stw_backend *be, uint64_t bytes) {
    auto it = be->ws_wanted.find(bytes);
    if (it == be->ws_wanted.end()) return;
    be->ws_wanted.erase(it);
    const uint64_t want = be->ws_wanted.empty() ? 0 : *be->ws_wanted.rbegin();
    // shrinking cannot fail for want 0; otherwise a failed smaller allocation leaves none, and the next
    // step of a context on this backend retries (stw_decode reports OUT_OF_MEMORY if it fails again)
    if (want != be->ws_bytes) (void)workspace_resize_locked(be, want);
    if (be->ws_wanted.empty()) {
        stw_backend_buffer_free(be, be->step_buf, be->step_buf_bytes);
        be->step_buf = nullptr;
        be->step_buf_bytes = 0;
    }
}

stw_status stw_backend_workspace_ensure_locked(stw_backend *be) {
    const uint64_t want = be->ws_wanted.empty() ? 0 : *be->ws_wanted.rbegin();
    return workspace_resize_locked(be, want);
}

stw_status stw_backend_step_buffer_locked(stw_backend *be, uint64_t bytes) {
    if (bytes <= be->step_buf_bytes) return STW_STATUS_OK;
    // grow by half again so a slowly growing block table does not reallocate every step
    uint64_t want = bytes + bytes / 2;
    stw_backend_buffer_free(be, be->step_buf, be->step_buf_bytes);
    be->step_buf = nullptr;
    be->step_buf_bytes = 0;
    void *buf = nullptr;
    const stw_status st = stw_backend_buffer_alloc(be, want, "the step descriptor buffer", &buf);
    if (st) return st;
    be->step_buf = buf;
    be->step_buf_bytes = want;
    return STW_STATUS_OK;
}

bool stw_backend_compatible(const stw_backend *a, const stw_backend *b) {
    return a == b || (a->host_memory && b->host_memory);
}

stw_backend *stw_backend_default_cpu(void) {
    static stw_backend *shared = [] {
        stw_backend *be = new (std::nothrow) stw_backend();
        if (be && stw_backend_cpu_create(be, 1, false) != STW_STATUS_OK) {
            delete be;
            be = nullptr;
        }
        return be;
    }();
    return shared;
}

stw_status stw_backend_init_emulated(int32_t n_threads, stw_backend **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    stw_status st = check_threads(n_threads);
    if (st) return st;
    stw_backend *be = new (std::nothrow) stw_backend();
    if (!be) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the backend struct");
    return finish_create(be, stw_backend_cpu_create(be, n_threads, true), out);
}

extern "C" int32_t stw_backend_kind_built(stw_backend_kind kind) {
    if (kind == STW_BACKEND_KIND_CPU) return 1;
#if defined(STW_HAVE_CUDA)
    if (kind == STW_BACKEND_KIND_CUDA) return 1;
#endif
    return 0;
}

extern "C" stw_status stw_backend_init(stw_backend_kind kind, int32_t ordinal, int32_t n_threads, stw_backend **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (kind != STW_BACKEND_KIND_CPU && kind != STW_BACKEND_KIND_CUDA)
        return stw_error(STW_STATUS_INVALID_ARGUMENT, "backend kind %d is not one of 0 (cpu), 1 (cuda)", (int)kind);
    if (ordinal < 0) return stw_error(STW_STATUS_INVALID_ARGUMENT, "device ordinal is %d, expected >= 0", ordinal);
    if (kind == STW_BACKEND_KIND_CPU) {
        if (ordinal != 0) return stw_error(STW_STATUS_INVALID_ARGUMENT, "cpu device ordinal is %d; the CPU is device 0", ordinal);
        stw_status st = check_threads(n_threads);
        if (st) return st;
    }
    stw_backend *be = new (std::nothrow) stw_backend();
    if (!be) return stw_error(STW_STATUS_OUT_OF_MEMORY, "cannot allocate the backend struct");
    stw_status st;
    try {
        st = kind == STW_BACKEND_KIND_CPU ? stw_backend_cpu_create(be, n_threads, false) : stw_backend_cuda_create(be, ordinal);
    } catch (const std::bad_alloc &) {
        st = stw_error(STW_STATUS_OUT_OF_MEMORY, "out of memory while creating the %s backend",
                       kind == STW_BACKEND_KIND_CPU ? "cpu" : "cuda");
    }
    return finish_create(be, st, out);
}

extern "C" stw_status stw_backend_init_uuid(const char *uuid, int32_t n_threads, stw_backend **out) {
    if (!out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    if (!uuid || !uuid[0]) return stw_error(STW_STATUS_INVALID_ARGUMENT, "GPU UUID is null or empty");
    // a host pod sees the one GPU it was given, so trying the visible devices in order is cheap
    for (int32_t ordinal = 0; ordinal < 64; ordinal++) {
        stw_backend *be = nullptr;
        const stw_status st = stw_backend_init(STW_BACKEND_KIND_CUDA, ordinal, n_threads, &be);
        if (st == STW_STATUS_INVALID_ARGUMENT && ordinal > 0)
            return stw_error(STW_STATUS_INVALID_ARGUMENT, "no visible CUDA device has UUID %s (%d devices checked)", uuid,
                             ordinal);
        if (st) return st;
        stw_device_info info;
        if (be->device_info(be, &info) == 0 && std::strcmp(info.uuid, uuid) == 0) {
            *out = be;
            return STW_STATUS_OK;
        }
        stw_backend_free(be);
    }
    return stw_error(STW_STATUS_INVALID_ARGUMENT, "no visible CUDA device has UUID %s", uuid);
}

extern "C" stw_status stw_backend_free(stw_backend *be) {
    if (!be) return STW_STATUS_OK;
    {
        std::lock_guard<std::mutex> lk(be->step_mu);
        if (be->users.load() > 0)
            return stw_error(STW_STATUS_INVALID_ARGUMENT,
                             "backend %s:%d still has %d contexts, KV pools or weight buffers (%" PRIu64
                             " bytes allocated); free them first",
                             be->name, be->ordinal, be->users.load(), be->allocated.load());
        stw_backend_buffer_free(be, be->workspace, be->ws_bytes);
        stw_backend_buffer_free(be, be->step_buf, be->step_buf_bytes);
        be->workspace = be->step_buf = nullptr;
        be->ws_bytes = be->step_buf_bytes = 0;
    }
    if (be->free) be->free(be);
    delete be;
    return STW_STATUS_OK;
}

extern "C" stw_status stw_backend_device_info(const stw_backend *be, stw_device_info *out) {
    if (!be || !out) return stw_error(STW_STATUS_INVALID_ARGUMENT, "backend or out is null");
    std::memset(out, 0, sizeof *out);
    if (be->device_info(be, out) != 0)
        return stw_error(STW_STATUS_INTERNAL, "%s:%d could not report its device", be->name, be->ordinal);
    return STW_STATUS_OK;
}

extern "C" stw_status stw_backend_memory_info(stw_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (!be || !free_bytes || !total_bytes) return stw_error(STW_STATUS_INVALID_ARGUMENT, "backend or an out pointer is null");
    *free_bytes = *total_bytes = 0;
    const int rc = be->memory_info(be, free_bytes, total_bytes);
    if (rc == STW_BACKEND_ERROR_SET) return STW_STATUS_INTERNAL;
    if (rc != 0) return stw_error(STW_STATUS_INTERNAL, "%s:%d could not report its memory (code %d)", be->name, be->ordinal, rc);
    return STW_STATUS_OK;
}

extern "C" int32_t stw_backend_supports_type(const stw_backend *be, int32_t type, int32_t use) {
    return be && be->supports_type(be, type, use) ? 1 : 0;
}

extern "C" uint64_t stw_backend_allocated_bytes(const stw_backend *be) { return be ? be->allocated.load() : 0; }

extern "C" uint64_t stw_backend_workspace_bytes(const stw_backend *be) { return be ? be->ws_bytes.load() : 0; }

extern "C" uint64_t stw_backend_step_buffer_bytes(const stw_backend *be) { return be ? be->step_buf_bytes.load() : 0; }
