// kernels_fallback.cpp: scalar reference kernels and a small thread pool behind the src/cpu/kernels.h
// interface, linked only while the optimised kernels library is absent.
#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "../fp16.h"

namespace {

constexpr int kTypeF32 = 0, kTypeF16 = 1, kTypeQ4_0 = 2, kTypeQ8_0 = 8, kTypeQ4_K = 12, kTypeQ6_K = 14,
              kTypeBF16 = 30;

int block_size(int type) {
    switch (type) {
        case kTypeF32:
        case kTypeF16:
        case kTypeBF16:
            return 1;
        case kTypeQ4_0:
        case kTypeQ8_0:
            return 32;
        case kTypeQ4_K:
        case kTypeQ6_K:
            return 256;
        default:
            return 0;
    }
}

size_t block_bytes(int type) {
    switch (type) {
        case kTypeF32:
            return 4;
        case kTypeF16:
        case kTypeBF16:
            return 2;
        case kTypeQ4_0:
            return 18;
        case kTypeQ8_0:
            return 34;
        case kTypeQ4_K:
            return 144;
        case kTypeQ6_K:
            return 210;
        default:
            return 0;
    }
}

// Dequantizes one block (block_size(type) values) starting at src.
void dequantize_block(int type, const uint8_t *src, float *y) {
    switch (type) {
        case kTypeF32:
            std::memcpy(y, src, 4);
            return;
        case kTypeF16:
            y[0] = stw_fp16_to_fp32(stw_load_u16(src));
            return;
        case kTypeBF16:
            y[0] = stw_bf16_to_fp32(stw_load_u16(src));
            return;
        case kTypeQ4_0: {
            const float d = stw_fp16_to_fp32(stw_load_u16(src));
            const uint8_t *qs = src + 2;
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((qs[j] & 0x0f) - 8) * d;
                y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
            }
            return;
        }
        case kTypeQ8_0: {
            const float d = stw_fp16_to_fp32(stw_load_u16(src));
            const int8_t *qs = (const int8_t *)(src + 2);
            for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
            return;
        }
        case kTypeQ4_K: {
            // half d, half dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
            const float d = stw_fp16_to_fp32(stw_load_u16(src));
            const float dmin = stw_fp16_to_fp32(stw_load_u16(src + 2));
            const uint8_t *sc = src + 4;
            const uint8_t *q = src + 16;
            for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
                uint8_t s[2], m[2];
                for (int k = 0; k < 2; k++) {
                    const int i = is + k;
                    if (i < 4) {
                        s[k] = sc[i] & 63;
                        m[k] = sc[i + 4] & 63;
                    } else {
                        s[k] = (uint8_t)((sc[i + 4] & 0x0f) | ((sc[i - 4] >> 6) << 4));
                        m[k] = (uint8_t)((sc[i + 4] >> 4) | ((sc[i] >> 6) << 4));
                    }
                }
                for (int l = 0; l < 32; l++) y[j + l] = d * s[0] * (q[l] & 0x0f) - dmin * m[0];
                for (int l = 0; l < 32; l++) y[j + 32 + l] = d * s[1] * (q[l] >> 4) - dmin * m[1];
                q += 32;
            }
            return;
        }
        case kTypeQ6_K: {
            // 128 bytes low nibbles, 64 bytes high bits, 16 int8 scales, half d
            const uint8_t *ql = src;
            const uint8_t *qh = src + 128;
            const int8_t *sc = (const int8_t *)(src + 192);
            const float d = stw_fp16_to_fp32(stw_load_u16(src + 208));
            for (int n = 0; n < 256; n += 128) {
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = (int)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = (int)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[n + l] = d * sc[is + 0] * q1;
                    y[n + l + 32] = d * sc[is + 2] * q2;
                    y[n + l + 64] = d * sc[is + 4] * q3;
                    y[n + l + 96] = d * sc[is + 6] * q4;
                }
                ql += 64;
                qh += 32;
                sc += 8;
            }
            return;
        }
        default:
            return;
    }
}

struct matmul_job {
    int type;
    const uint8_t *w;
    int64_t rows, cols, n;
    size_t row_bytes;
    const float *x;
    float *y;
    int n_tasks;
};

void matmul_task(void *ctx, int task, int /*thread*/) {
    const matmul_job *j = (const matmul_job *)ctx;
    const int64_t per = (j->rows + j->n_tasks - 1) / j->n_tasks;
    const int64_t r0 = per * task;
    const int64_t r1 = std::min(j->rows, r0 + per);
    const int bs = block_size(j->type);
    const size_t bb = block_bytes(j->type);
    float buf[256];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = j->w + (size_t)r * j->row_bytes;
        for (int64_t i = 0; i < j->n; i++) {
            const float *x = j->x + i * j->cols;
            float sum = 0.0f;
            if (j->type == kTypeF32) {
                const float *wr = (const float *)row;
                for (int64_t c = 0; c < j->cols; c++) sum += wr[c] * x[c];
            } else {
                for (int64_t b = 0; b < j->cols / bs; b++) {
                    dequantize_block(j->type, row + b * bb, buf);
                    for (int k = 0; k < bs; k++) sum += buf[k] * x[b * bs + k];
                }
            }
            j->y[i * j->rows + r] = sum;
        }
    }
}

} // namespace

struct stw_threadpool {
    std::vector<std::thread> workers;
    std::mutex mu;
    std::condition_variable cv_start, cv_done;
    uint64_t generation = 0;
    bool stop = false;
    void (*fn)(void *, int, int) = nullptr;
    void *ctx = nullptr;
    int n_tasks = 0;
    std::atomic<int> next{0};
    int active = 0;
};

static void threadpool_work(stw_threadpool *p, int thread) {
    for (;;) {
        const int t = p->next.fetch_add(1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void threadpool_worker(stw_threadpool *p, int thread) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(p->mu);
            p->cv_start.wait(lk, [&] { return p->stop || p->generation != seen; });
            if (p->stop) return;
            seen = p->generation;
        }
        threadpool_work(p, thread);
        std::lock_guard<std::mutex> lk(p->mu);
        if (--p->active == 0) p->cv_done.notify_one();
    }
}

stw_threadpool *stw_threadpool_init(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    stw_threadpool *p = new (std::nothrow) stw_threadpool();
    if (!p) return nullptr;
    try {
        for (int i = 1; i < n_threads; i++) p->workers.emplace_back(threadpool_worker, p, i);
    } catch (...) {
        stw_threadpool_free(p);
        return nullptr;
    }
    return p;
}

void stw_threadpool_free(stw_threadpool *p) {
    if (!p) return;
    {
        std::lock_guard<std::mutex> lk(p->mu);
        p->stop = true;
    }
    p->cv_start.notify_all();
    for (auto &t : p->workers) t.join();
    delete p;
}

int stw_threadpool_size(const stw_threadpool *p) { return p ? (int)p->workers.size() + 1 : 1; }

void stw_threadpool_run(stw_threadpool *p, int n_tasks, void (*fn)(void *, int, int), void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->workers.empty() || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    {
        std::lock_guard<std::mutex> lk(p->mu);
        p->fn = fn;
        p->ctx = ctx;
        p->n_tasks = n_tasks;
        p->next.store(0);
        p->active = (int)p->workers.size();
        p->generation++;
    }
    p->cv_start.notify_all();
    threadpool_work(p, 0);
    std::unique_lock<std::mutex> lk(p->mu);
    p->cv_done.wait(lk, [&] { return p->active == 0; });
}

size_t stw_cpu_row_bytes(int type, int64_t cols) {
    const int bs = block_size(type);
    if (bs == 0 || cols <= 0 || cols % bs != 0) return 0;
    return (size_t)(cols / bs) * block_bytes(type);
}

int stw_cpu_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    const size_t rb = stw_cpu_row_bytes(type, n);
    if (rb == 0) return -1;
    const int bs = block_size(type);
    const size_t bb = block_bytes(type);
    for (int64_t b = 0; b < n / bs; b++) dequantize_block(type, (const uint8_t *)src + b * bb, dst + b * bs);
    return 0;
}

int stw_cpu_matmul(int type, const void *w, int64_t rows, int64_t cols, const float *x, int64_t n, float *y,
                   void * /*qscratch*/, stw_threadpool *pool) {
    const size_t rb = stw_cpu_row_bytes(type, cols);
    if (rb == 0 || rows <= 0 || n <= 0 || !w || !x || !y) return -1;
    matmul_job j{type, (const uint8_t *)w, rows, cols, n, rb, x, y, 1};
    const int threads = stw_threadpool_size(pool);
    j.n_tasks = (int)std::min<int64_t>(rows, (int64_t)threads * 4);
    stw_threadpool_run(pool, j.n_tasks, matmul_task, &j);
    return 0;
}

const char *stw_cpu_kernel_set(void) { return "scalar-fallback"; }
