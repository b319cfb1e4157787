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

    // One run's work; written by the caller before the run is published in `state`.
    void (*fn)(void *, int, int) = nullptr;
    void *ctx = nullptr;
    int n_tasks = 0;
    // Each counter on its own cache line: workers hammer next_task while the caller polls state.
    alignas(64) std::atomic<int> next_task{0};
    // The run's generation (high 32 bits), a "closed" bit and the number of workers inside the run
    // (low 31 bits). A worker joins only an open run of the generation it saw; the caller closes
    // the run once it has run out of tasks and then waits only for the workers that joined. So a
    // worker that is asleep or descheduled (a busy machine) never holds up a run it took no part
    // in, and it can never touch next_task of a run it did not join.
    alignas(64) std::atomic<uint64_t> state{0};
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

constexpr uint64_t kClosed = (uint64_t)1 << 31;
constexpr uint64_t kActiveMask = kClosed - 1;
inline unsigned gen_of(uint64_t s) { return (unsigned)(s >> 32); }

void worker_main(stw_threadpool *pool, int thread) {
    unsigned seen = 0;
    for (;;) {
        uint64_t s = pool->state.load(std::memory_order_acquire);
        for (int spin = 0; gen_of(s) == seen && spin < kSpinIterations; spin++) {
            STW_CPU_RELAX();
            s = pool->state.load(std::memory_order_acquire);
        }
        if (gen_of(s) == seen) {
            // Dekker-style handshake with stw_threadpool_run: we announce that we sleep, then
            // re-check the generation under the mutex; the caller publishes the run, then looks at
            // `sleeping` (both seq_cst), so one of the two always sees the other.
            pool->sleeping.fetch_add(1);
            std::unique_lock<std::mutex> lock(pool->sleep_mutex);
            pool->wake.wait(lock, [&] { return gen_of(pool->state.load()) != seen; });
            pool->sleeping.fetch_sub(1);
            s = pool->state.load(std::memory_order_acquire);
        }
        if (pool->stop.load(std::memory_order_acquire)) return;
        seen = gen_of(s);
        // Join the run unless the caller already closed it (or a newer one was published).
        bool joined = false;
        while (gen_of(s) == seen && (s & kClosed) == 0) {
            if (pool->state.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
                joined = true;
                break;
            }
        }
        if (!joined) continue;
        {
            in_task_scope scope(thread);
            run_tasks(pool, thread);
        }
        pool->state.fetch_sub(1, std::memory_order_acq_rel);
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
    pool->state.fetch_add((uint64_t)1 << 32);
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
    // No worker is inside a run here (the previous run waited for its joiners), so the state is
    // (generation, open, 0 active): the next generation, seq_cst, publishes the fields above.
    const unsigned gen = gen_of(pool->state.load(std::memory_order_relaxed)) + 1;
    pool->state.store((uint64_t)gen << 32);
    notify_workers(pool);
    {
        in_task_scope scope(0);
        run_tasks(pool, 0);
    }
    // Every task is taken: close the run, then wait for the workers that joined it to finish
    // theirs; only then may the next run rewrite fn/ctx.
    uint64_t s = pool->state.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
    int spin = 0;
    while ((s & kActiveMask) != 0) {
        if (++spin < kSpinIterations) {
            STW_CPU_RELAX();
        } else {
            std::this_thread::yield();
        }
        s = pool->state.load(std::memory_order_acquire);
    }
}

}  // extern "C"
