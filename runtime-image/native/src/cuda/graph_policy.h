// graph_policy.h: the host-side decisions of the CUDA backend's step graphs (backend_cuda.cu), as plain C++ that g++
// compiles too, so that tests/cuda/test_cuda_graph_policy checks them on the CPU: which steps are captured, the
// STW_CUDA_GRAPHS switch, the two keys of a step, which cached executable graph a step replays as it is (same full
// key) or a new capture is applied to (update, same shape key) or instantiated into, what an update's outcome means,
// and the one-way switch to direct launches after a graph failure. No CUDA call is made here; the backend makes them
// and reports their outcome.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cstdio>
#include <cstring>

namespace stw_cuda {
namespace graph {

// Steps of at most this many tokens are captured, and only when every token is the one token of its sequence
// (replicas decoding together): such a step takes the mat-vec kernel and the split decode attention only, whose
// launches are all capturable. Prefill runs (the tiled kernels) are few and long; capturing them gains nothing.
constexpr int32_t kMaxTokens = 8;
// Executable graphs kept per backend. A model's decode steps need at most two (with and without the attention's
// combine pass, i.e. before and after its first split); the rest lets a few models share the GPU without
// re-instantiating on every switch.
constexpr int kSlots = 8;

inline bool step_capturable(int32_t n_tokens, int32_t n_seqs) {
    return n_tokens >= 1 && n_tokens <= kMaxTokens && n_seqs == n_tokens;
}

// STW_CUDA_GRAPHS: unset or empty, "1", "on", "true" turn graphs on (the default); "0", "off", "false" turn them
// off. Anything else is not understood: returns false and leaves *on alone.
inline bool parse_env(const char *v, bool *on) {
    if (v == nullptr || *v == 0 || std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0 || std::strcmp(v, "true") == 0) {
        *on = true;
        return true;
    }
    if (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0) {
        *on = false;
        return true;
    }
    return false;
}

// A step's two keys, FNV-1a over what its ops mix in as the forward calls them (backend_cuda.cu):
// - the full key: every argument of every backend op of the step (pointers, sizes, scalars) and the host-side launch
//   plan of the attention (its tiles and each decode token's split count): everything a kernel launch of the step
//   takes by value. Equal full keys mean the captured graph would be the same graph, so the cached one is launched
//   again as it is: the values that change every step (tokens, positions, block tables, sequence lengths) are read
//   by the kernels from the step buffer the descriptor upload has just refilled.
// - the shape key: the ops and their types and dimensions only, then the captured graph's node count. A capture with
//   the shape key of a cached graph is applied to it with cudaGraphExecUpdate (new pointers or grid sizes); the
//   driver checks every update and a rejected one is instantiated anew, so the shape key only saves work.
constexpr uint64_t kKeySeed = 0xcbf29ce484222325ull;
inline uint64_t key_mix(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

// A cached executable graph: the keys of the step it holds now.
struct slot {
    bool used = false;
    uint64_t shape_key = 0, full_key = 0;
    uint64_t last_use = 0;
};
// The slot holding exactly this step (full key), or -1.
inline int find_exact(const slot *slots, int n, uint64_t full_key) {
    for (int i = 0; i < n; i++)
        if (slots[i].used && slots[i].full_key == full_key) return i;
    return -1;
}
// Where a new capture goes: the slot with its shape key (update its executable graph), else the empty or least
// recently used slot (instantiate there, destroying what it held).
struct choice {
    int slot;
    bool update;
};
inline choice choose(const slot *slots, int n, uint64_t shape_key) {
    int victim = 0;
    for (int i = 0; i < n; i++) {
        if (slots[i].used && slots[i].shape_key == shape_key) return {i, true};
        if (!slots[victim].used) continue;
        if (!slots[i].used || slots[i].last_use < slots[victim].last_use) victim = i;
    }
    return {victim, false};
}

// After cudaGraphExecUpdate: applied (launch the slot's graph), rejected by the driver's update rules
// (cudaErrorGraphExecUpdateFailure: instantiate the capture anew in that slot) or failed (graphs off).
enum class after_update { launch, reinstantiate, disable };
inline after_update classify_update(bool succeeded, bool rejected_by_rules) {
    if (succeeded) return after_update::launch;
    return rejected_by_rules ? after_update::reinstantiate : after_update::disable;
}

// The stages a graph failure can come from (and a test hook can make fail once).
enum class stage : int32_t { none = 0, begin = 1, capture = 2, instantiate = 3, update = 4, launch = 5, reject_update = 6 };
inline const char *stage_name(stage s) {
    switch (s) {
        case stage::begin: return "cudaStreamBeginCapture";
        case stage::capture: return "capture";
        case stage::instantiate: return "cudaGraphInstantiate";
        case stage::update: return "cudaGraphExecUpdate";
        case stage::launch: return "cudaGraphLaunch";
        case stage::reject_update: return "cudaGraphExecUpdate (rejected)";
        default: return "none";
    }
}

// The backend's graph bookkeeping: the switch, the slots and the counters. Not thread-safe: the core calls the
// step hooks under the backend's step lock.
struct book {
    bool enabled = true;     // steps are captured (STW_CUDA_GRAPHS and no failure so far)
    char off_reason[256] = {0};  // why enabled went false ("" while on)
    slot slots[kSlots];
    uint64_t clock = 0;
    uint64_t captured = 0, instantiated = 0, updated = 0, replayed = 0, launched = 0, direct = 0, rerun = 0;

    // Whether this step is captured; counts the step as direct when not.
    bool begin(int32_t n_tokens, int32_t n_seqs) {
        if (enabled && step_capturable(n_tokens, n_seqs)) return true;
        direct++;
        return false;
    }
    // Turns graphs off; returns true only the first time (the caller logs one line then).
    bool disable(const char *reason) {
        if (!enabled) return false;
        enabled = false;
        std::snprintf(off_reason, sizeof off_reason, "%s", reason);
        return true;
    }
    // Turns graphs on or off by request (the switch, A/B runs); the slots stay for the backend to release.
    void set(bool on, const char *reason) {
        enabled = on;
        std::snprintf(off_reason, sizeof off_reason, "%s", on ? "" : reason);
    }
    // Marks slot i used now by the step of these keys (after an update or an instantiation into it, or a replay).
    void touch(int i, uint64_t shape_key, uint64_t full_key) {
        slots[i].used = true;
        slots[i].shape_key = shape_key;
        slots[i].full_key = full_key;
        slots[i].last_use = ++clock;
    }
    void forget(int i) { slots[i] = slot{}; }
};

// The end of a probe pass (its full key computed): launches the cached graph of exactly this step, if there is one.
// Driver as for apply() (launch only).
enum class replay_result { launched, miss, launch_failed };
template <class Driver>
replay_result replay(book &b, uint64_t full_key, Driver &d) {
    const int i = find_exact(b.slots, kSlots, full_key);
    if (i < 0) return replay_result::miss;
    if (!d.launch(i)) return replay_result::launch_failed;
    b.touch(i, b.slots[i].shape_key, full_key);
    b.replayed++;
    b.launched++;
    return replay_result::launched;
}

// Runs a whole capture (its keys computed): applies it to the slot choose() picks, by update or by instantiation, and
// launches that slot's executable graph. Driver (the CUDA calls in backend_cuda.cu; a fake in the test) provides
//   bool update(int slot, bool *rejected)  cudaGraphExecUpdate of the slot's graph with the capture; *rejected when
//                                          the driver's update rules refused it (then it is instantiated anew)
//   bool instantiate(int slot)             cudaGraphInstantiate of the capture into the (emptied) slot
//   bool launch(int slot)                  cudaGraphLaunch of the slot's graph on the backend's stream
//   void destroy(int slot)                 cudaGraphExecDestroy of the slot's graph, if any
// Returns stage::none when the step was launched, else the stage that failed (the caller turns graphs off; the
// failed slot is left empty or with its old graph, never launched).
template <class Driver>
stage apply(book &b, uint64_t shape_key, uint64_t full_key, Driver &d) {
    const choice ch = choose(b.slots, kSlots, shape_key);
    bool fresh = !ch.update;
    if (ch.update) {
        bool rejected = false;
        const bool ok = d.update(ch.slot, &rejected);
        switch (classify_update(ok, rejected)) {
            case after_update::launch:
                b.updated++;
                break;
            case after_update::reinstantiate:
                fresh = true;
                break;
            case after_update::disable:
                return stage::update;
        }
    }
    if (fresh) {
        d.destroy(ch.slot);
        b.forget(ch.slot);
        if (!d.instantiate(ch.slot)) return stage::instantiate;
        b.instantiated++;
    }
    b.touch(ch.slot, shape_key, full_key);
    if (!d.launch(ch.slot)) return stage::launch;
    b.launched++;
    return stage::none;
}

}  // namespace graph
}  // namespace stw_cuda
