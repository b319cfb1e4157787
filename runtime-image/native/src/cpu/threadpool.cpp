// A persistent thread pool: workers pick task indices from a shared counter, spin for a short
// while after each run (decode issues many small runs back to back) and then sleep.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STW_CPU_RELAX() _mm_pause()
#else
#define STW_CPU_RELAX() std::this_thread::yield()
#endif

#include "kernels.h"

namespace {

// About 0.1-1 ms of polling (pause is 10-140 cycles depending on the core) before a worker
// sleeps: long enough to bridge the gap between two matmuls of one token, short enough not to
// burn a core while the engine is idle.
constexpr int kSpinIterations = 1 << 13;

}  // namespace

struct stw_threadpool {
    int n_threads = 1;
    std::vector<std::thread> workers;
    std::mutex run_mutex;  // serialises concurrent callers of stw_threadpool_run

    // One run's work; written by the caller before `generation` is bumped.
    void (*fn)(void *, int, int) = nullptr;
    void *ctx = nullptr;
    int n_tasks = 0;
    // Each counter on its own cache line: workers hammer next_task while the caller polls pending.
    alignas(64) std::atomic<int> next_task{0};
    alignas(64) std::atomic<int> pending{0};      // workers still inside the current run
    alignas(64) std::atomic<unsigned> generation{0};  // bumped once per run
    alignas(64) std::atomic<int> sleeping{0};
    std::atomic<bool> stop{false};
    std::mutex sleep_mutex;
    std::condition_variable wake;
};

namespace {

// Set while this thread executes pool tasks: a task that itself calls stw_threadpool_run would
// otherwise deadlock on run_mutex (or wait for workers that are busy running it).
thread_local bool t_in_pool_task = false;
thread_local int t_thread_index = 0;  // this thread's index in the run it is executing

void run_tasks(stw_threadpool *pool, int thread) {
    const int n = pool->n_tasks;
    for (;;) {
        const int t = pool->next_task.fetch_add(1, std::memory_order_relaxed);
        if (t >= n) break;
        pool->fn(pool->ctx, t, thread);
    }
}

struct in_task_scope {
    explicit in_task_scope(int thread) {
        t_in_pool_task = true;
        t_thread_index = thread;
    }
    ~in_task_scope() { t_in_pool_task = false; }
};

void worker_main(stw_threadpool *pool, int thread) {
    unsigned seen = 0;
    for (;;) {
        unsigned gen = pool->generation.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < kSpinIterations; spin++) {
            STW_CPU_RELAX();
            gen = pool->generation.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            // Dekker-style handshake with stw_threadpool_run: we announce that we sleep, then
            // re-check the generation under the mutex; the caller bumps the generation, then
            // looks at `sleeping` (both seq_cst), so one of the two always sees the other.
            pool->sleeping.fetch_add(1);
            std::unique_lock<std::mutex> lock(pool->sleep_mutex);
            pool->wake.wait(lock, [&] { return pool->generation.load() != seen; });
            pool->sleeping.fetch_sub(1);
            gen = pool->generation.load(std::memory_order_acquire);
        }
        seen = gen;
        if (pool->stop.load(std::memory_order_acquire)) return;
        {
            in_task_scope scope(thread);
            run_tasks(pool, thread);
        }
        pool->pending.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void notify_workers(stw_threadpool *pool) {
    if (pool->sleeping.load() > 0) {
        std::lock_guard<std::mutex> lock(pool->sleep_mutex);
        pool->wake.notify_all();
    }
}

}  // namespace

extern "C" {

stw_threadpool *stw_threadpool_init(int n_threads) {
    if (n_threads < 1 || n_threads > 512) return nullptr;
    stw_threadpool *pool = new (std::nothrow) stw_threadpool();
    if (pool == nullptr) return nullptr;
    pool->n_threads = n_threads;
    try {
        pool->workers.reserve((size_t)n_threads - 1);
        for (int i = 1; i < n_threads; i++) pool->workers.emplace_back(worker_main, pool, i);
    } catch (...) {
        // A thread that cannot start leaves a smaller pool we would silently mis-size; stop the
        // ones that did start and report failure.
        pool->n_threads = (int)pool->workers.size() + 1;
        stw_threadpool_free(pool);
        return nullptr;
    }
    return pool;
}

void stw_threadpool_free(stw_threadpool *pool) {
    if (pool == nullptr) return;
    pool->stop.store(true, std::memory_order_release);
    pool->generation.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(pool->sleep_mutex);
        pool->wake.notify_all();
    }
    for (std::thread &t : pool->workers) t.join();
    delete pool;
}

int stw_threadpool_size(const stw_threadpool *pool) { return pool == nullptr ? 1 : pool->n_threads; }

void stw_threadpool_run(stw_threadpool *pool, int n_tasks, void (*fn)(void *ctx, int task, int thread), void *ctx) {
    if (fn == nullptr || n_tasks <= 0) return;
    if (t_in_pool_task) {
        // A nested run executes inline under the thread index this thread already holds, which
        // no other thread of the outer run uses.
        const int thread = t_thread_index < stw_threadpool_size(pool) ? t_thread_index : 0;
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, thread);
        return;
    }
    if (pool == nullptr || pool->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    std::lock_guard<std::mutex> guard(pool->run_mutex);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    pool->next_task.store(0, std::memory_order_relaxed);
    pool->pending.store((int)pool->workers.size(), std::memory_order_relaxed);
    pool->generation.fetch_add(1);  // seq_cst: publishes the fields above to the workers
    notify_workers(pool);
    {
        in_task_scope scope(0);
        run_tasks(pool, 0);
    }
    // Wait for every worker to leave run_tasks: only then may the next run rewrite fn/ctx.
    int spin = 0;
    while (pool->pending.load(std::memory_order_acquire) != 0) {
        if (++spin < kSpinIterations) {
            STW_CPU_RELAX();
        } else {
            std::this_thread::yield();
        }
    }
}

}  // extern "C"
