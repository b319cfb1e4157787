// test_cuda_graph_policy: the host side of the CUDA backend's step graphs, on the CPU (no GPU needed). The decisions
// of src/cuda/graph_policy.h (which steps are captured, the STW_CUDA_GRAPHS switch, the step keys, the executable-graph
// cache, graph::replay and graph::apply's replay / update / re-instantiate / fail paths against a fake driver), and the
// core's side of the step hooks (backend.h step_begin / step_end) on an emulated-device backend whose hooks script
// what a graph backend does: take a pass, drop a cancelled step, or ask for another pass, with unchanged results.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core.h"
#include "graph_policy.h"
#include "test_util.h"

using namespace stw_cuda::graph;

namespace {

void test_capturable_steps() {
    CHECK(step_capturable(1, 1));                      // batch-1 decode
    CHECK(step_capturable(kMaxTokens, kMaxTokens));    // replicas decoding together
    CHECK(!step_capturable(kMaxTokens + 1, kMaxTokens + 1));
    CHECK(!step_capturable(2, 1));                     // two tokens of one sequence: a prefill run
    CHECK(!step_capturable(16, 1));
    CHECK(!step_capturable(0, 0));
}

void test_env_switch() {
    bool on = false;
    CHECK(parse_env(nullptr, &on) && on);
    on = false;
    CHECK(parse_env("", &on) && on);
    on = false;
    CHECK(parse_env("1", &on) && on);
    CHECK(parse_env("0", &on) && !on);
    CHECK(parse_env("off", &on) && !on);
    on = true;
    CHECK(parse_env("false", &on) && !on);
    // not understood: refused, the value left alone
    on = true;
    CHECK(!parse_env("yes please", &on) && on);
    CHECK(!parse_env("00", &on) && on);
}

void test_keys() {
    const uint64_t a = key_mix(key_mix(kKeySeed, 1), 2), b = key_mix(key_mix(kKeySeed, 2), 1);
    CHECK(a != b);                                        // the order of the ops counts
    CHECK(a == key_mix(key_mix(kKeySeed, 1), 2));         // and the same ops give the same key
    CHECK(key_mix(a, 5) != key_mix(a, 6));                // a different node count: another key
    CHECK(key_mix(kKeySeed, (uint64_t)1 << 40) != key_mix(kKeySeed, 1));  // every byte of a value counts
}

void test_slot_choice() {
    book b;
    CHECK(find_exact(b.slots, kSlots, 0) == -1);  // an empty slot holds no step, whatever its zero keys
    choice c = choose(b.slots, kSlots, 100);
    CHECK(c.slot == 0 && !c.update);  // empty cache: instantiate into the first slot
    b.touch(0, 100, 1000);
    CHECK(find_exact(b.slots, kSlots, 1000) == 0 && find_exact(b.slots, kSlots, 100) == -1);
    c = choose(b.slots, kSlots, 100);
    CHECK(c.slot == 0 && c.update);   // the same shape again: update
    c = choose(b.slots, kSlots, 200);
    CHECK(c.slot == 1 && !c.update);  // a new shape takes an empty slot
    for (int i = 1; i < kSlots; i++) b.touch(i, 200 + (uint64_t)i, 2000 + (uint64_t)i);
    b.touch(0, 100, 1000);            // slot 0 used last; slot 1 is now the least recently used
    c = choose(b.slots, kSlots, 999);
    CHECK_MSG(c.slot == 1 && !c.update, "slot %d update %d", c.slot, (int)c.update);
    c = choose(b.slots, kSlots, 205);
    CHECK(c.slot == 5 && c.update);
    b.forget(3);
    c = choose(b.slots, kSlots, 999);
    CHECK(c.slot == 3 && !c.update);  // an emptied slot before any eviction
}

void test_update_outcomes() {
    CHECK(classify_update(true, false) == after_update::launch);
    CHECK(classify_update(false, true) == after_update::reinstantiate);
    CHECK(classify_update(false, false) == after_update::disable);
}

// A driver standing in for the CUDA calls: an update succeeds only when the capture has the slot's node count (as
// the driver rejects a topology change); every call can be made to fail.
struct fake_driver {
    size_t nodes = 0;  // the current capture's
    size_t slot_nodes[kSlots] = {};
    bool has[kSlots] = {};
    bool fail_update = false, fail_instantiate = false, fail_launch = false;
    int updates = 0, instantiations = 0, launches = 0, destroys = 0;
    int launched_slot = -1;
    bool update(int s, bool *rejected) {
        *rejected = false;
        if (fail_update) return false;
        if (!has[s] || slot_nodes[s] != nodes) {
            *rejected = true;
            return false;
        }
        updates++;
        return true;
    }
    bool instantiate(int s) {
        if (fail_instantiate) return false;
        CHECK(!has[s]);  // apply empties a slot before instantiating into it
        has[s] = true;
        slot_nodes[s] = nodes;
        instantiations++;
        return true;
    }
    bool launch(int s) {
        if (fail_launch) return false;
        CHECK(has[s]);
        launched_slot = s;
        launches++;
        return true;
    }
    void destroy(int s) {
        if (has[s]) destroys++;
        has[s] = false;
    }
};

// One step as the backend runs it: the probe's replay, else a capture applied.
stage run_step(book &b, fake_driver &d, uint64_t shape_ops, uint64_t full_key, size_t nodes) {
    d.nodes = nodes;
    const replay_result r = replay(b, full_key, d);
    if (r == replay_result::launched) return stage::none;
    if (r == replay_result::launch_failed) return stage::launch;
    return apply(b, key_mix(shape_ops, nodes), full_key, d);
}

// A decode run of one sequence as the backend sees it: 300 steps of one token. Nothing a launch takes by value changes
// from step to step (the positions are in the step buffer), so the graph is replayed as it is, except: at step 100
// the step buffer grows (new pointers: the same shape, an update), at position 256 the attention's first split adds
// its combine kernel (one more node per layer: a new shape, an instantiation).
void test_decode_run() {
    book b;
    fake_driver d;
    const uint64_t shape_ops = key_mix(kKeySeed, 1);
    for (int pos = 0; pos < 300; pos++) {
        const uint64_t splits = pos < 256 ? 1 : 2, step_buf = pos < 100 ? 0x1000 : 0x8000;
        const uint64_t full = key_mix(key_mix(shape_ops, splits), step_buf);
        CHECK(run_step(b, d, shape_ops, full, splits == 1 ? 100 : 105) == stage::none);
    }
    std::printf("  decode run: %llu replays, %llu updates, %llu instantiations, %llu launches\n",
                (unsigned long long)b.replayed, (unsigned long long)b.updated, (unsigned long long)b.instantiated,
                (unsigned long long)b.launched);
    CHECK(b.instantiated == 2 && d.instantiations == 2);
    CHECK(b.updated == 1 && d.updates == 1);
    CHECK(b.replayed == 297);
    CHECK(b.launched == 300 && d.launches == 300);
    // a second model (other shapes) alternating with the first: each keeps its own graph, both replayed
    const uint64_t other_ops = key_mix(kKeySeed, 7), other_full = key_mix(other_ops, 0x5000);
    const uint64_t first_full = key_mix(key_mix(shape_ops, 2), 0x8000);
    for (int i = 0; i < 10; i++) {
        CHECK(run_step(b, d, shape_ops, first_full, 105) == stage::none);
        CHECK(run_step(b, d, other_ops, other_full, 90) == stage::none);
    }
    CHECK_MSG(b.instantiated == 3 && b.updated == 1 && b.replayed == 316, "%llu instantiations, %llu updates, %llu replays",
              (unsigned long long)b.instantiated, (unsigned long long)b.updated, (unsigned long long)b.replayed);
}

// An update the driver rejects although the key matched (e.g. a change the key does not see) is instantiated anew in
// the same slot and launched; graphs stay on.
void test_apply_rejected_update() {
    book b;
    fake_driver d;
    d.nodes = 10;
    CHECK(apply(b, 42, 1, d) == stage::none);
    d.nodes = 11;  // same shape key, other topology
    CHECK(apply(b, 42, 2, d) == stage::none);
    CHECK(b.instantiated == 2 && b.updated == 0 && b.launched == 2);
    CHECK(d.destroys == 1 && d.launched_slot == 0);
    CHECK(b.enabled);
}

// Each failing call is reported by its stage, nothing is launched, and the book says what graph::apply had done.
void test_apply_failures() {
    {
        book b;
        fake_driver d;
        d.fail_instantiate = true;
        CHECK(apply(b, 1, 1, d) == stage::instantiate);
        CHECK(d.launches == 0 && b.launched == 0 && !b.slots[0].used);
    }
    {
        book b;
        fake_driver d;
        CHECK(apply(b, 1, 1, d) == stage::none);
        d.fail_update = true;
        CHECK(apply(b, 1, 2, d) == stage::update);
        CHECK(d.launches == 1 && b.launched == 1);
        d.fail_launch = true;  // a replay whose launch fails
        CHECK(replay(b, 1, d) == replay_result::launch_failed && b.replayed == 0);
        CHECK(replay(b, 3, d) == replay_result::miss);
    }
    {
        book b;
        fake_driver d;
        d.fail_launch = true;
        CHECK(apply(b, 1, 1, d) == stage::launch);
        CHECK(b.launched == 0);
    }
}

void test_switch_off_once() {
    book b;
    CHECK(b.begin(1, 1));
    CHECK(!b.begin(4, 1) && b.direct == 1);  // a prefill step runs directly
    CHECK(b.disable("cudaGraphInstantiate: cudaErrorNotSupported: operation not supported"));
    CHECK(!b.disable("a second failure"));   // logged once: only the first switch-off reports
    CHECK(std::strstr(b.off_reason, "cudaGraphInstantiate") != nullptr);
    CHECK(!b.begin(1, 1) && b.direct == 2);  // off for good
    b.set(true, "");
    CHECK(b.begin(1, 1) && b.off_reason[0] == 0);
    b.set(false, "STW_CUDA_GRAPHS=0");
    CHECK(!b.begin(1, 1) && std::strcmp(b.off_reason, "STW_CUDA_GRAPHS=0") == 0);
}

// ---- the core's side of the step hooks, on an emulated device ----

struct hook_script {
    int begins = 0, recorded = 0, ends = 0, ends_not_ok = 0, forwards = 0;
    bool always_rerun = false;  // every step_end asks for another pass
    int rerun_at = -1;      // step_end of this recorded step asks for a rerun
    int fail_at = -1;       // step_end of this recorded step returns an error
    int cancel_at = -1;     // step_begin of this recorded step cancels the step
    stw_context *ctx = nullptr;
    int (*get_rows)(stw_backend *, int32_t, const void *, size_t, int64_t, const int32_t *, int64_t, int64_t, float *) = nullptr;
};
hook_script g_hooks;

int fake_begin(stw_backend *, const stw_step *st) {
    g_hooks.begins++;
    if (st->n_tokens != 1) return 0;
    if (g_hooks.recorded == g_hooks.cancel_at) stw_context_cancel(g_hooks.ctx);
    return 1;
}
int fake_end(stw_backend *, bool ok) {
    const int i = g_hooks.recorded++;
    g_hooks.ends++;
    if (!ok) g_hooks.ends_not_ok++;
    if (i == g_hooks.rerun_at || g_hooks.always_rerun) return STW_BACKEND_STEP_RERUN;
    if (i == g_hooks.fail_at) return -7;
    return 0;
}
// get_rows is every forward's first op: counting it counts the forwards
int counting_get_rows(stw_backend *be, int32_t type, const void *table, size_t row_bytes, int64_t n_table,
                      const int32_t *ids, int64_t n, int64_t dim, float *out) {
    g_hooks.forwards++;
    return g_hooks.get_rows(be, type, table, row_bytes, n_table, ids, n, dim, out);
}

// prompt then n greedy steps; every step's logits appended to all
std::vector<int32_t> run(stw_context *c, stw_seq *s, int32_t n_vocab, const std::vector<int32_t> &prompt, int n,
                         std::vector<float> *all) {
    std::vector<float> l((size_t)n_vocab);
    std::vector<stw_seq *> seqs(prompt.size(), s);
    std::vector<uint8_t> want(prompt.size() - 1, 0);
    want.push_back(1);
    REQUIRE_OK(stw_decode(c, (int32_t)prompt.size(), prompt.data(), seqs.data(), want.data(), l.data()));
    all->insert(all->end(), l.begin(), l.end());
    std::vector<int32_t> out = {argmax(l.data(), n_vocab)};
    for (int i = 0; i < n; i++) {
        const uint8_t w = 1;
        REQUIRE_OK(stw_decode(c, 1, &out.back(), &s, &w, l.data()));
        all->insert(all->end(), l.begin(), l.end());
        out.push_back(argmax(l.data(), n_vocab));
    }
    return out;
}

void test_core_step_hooks() {
    stw_model *m;
    REQUIRE_OK(stw_model_init_file(test_data_path("stories260K-f32.gguf").c_str(), &m));
    stw_hparams hp;
    REQUIRE_OK(stw_model_hparams(m, &hp));
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
    const int n = 24;
    const uint64_t kv = stw_kv_bytes_per_token(m, STW_TYPE_F32) * 64;

    // reference: the emulated device without hooks (the CPU path's behaviour)
    std::vector<float> ref_logits;
    std::vector<int32_t> ref;
    {
        stw_backend *be;
        REQUIRE_OK(stw_backend_init_emulated(1, &be));
        CHECK(be->step_begin == nullptr && be->step_end == nullptr);
        stw_kv_pool *p;
        stw_context *c;
        stw_seq *s;
        REQUIRE_OK(stw_kv_pool_init_on(be, m, STW_TYPE_F32, kv, &p));
        REQUIRE_OK(stw_context_init_on(be, m, 8, 1, &c));
        REQUIRE_OK(stw_seq_init(p, 64, &s));
        ref = run(c, s, hp.n_vocab, prompt, n, &ref_logits);
        stw_seq_free(s);
        stw_context_free(c);
        stw_kv_pool_free(p);
        CHECK_OK(stw_backend_free(be));
    }

    stw_backend *be;
    REQUIRE_OK(stw_backend_init_emulated(1, &be));
    be->step_begin = fake_begin;
    be->step_end = fake_end;
    g_hooks.get_rows = be->get_rows;
    be->get_rows = counting_get_rows;
    stw_kv_pool *p;
    stw_context *c;
    stw_seq *s;
    REQUIRE_OK(stw_kv_pool_init_on(be, m, STW_TYPE_F32, kv, &p));
    REQUIRE_OK(stw_context_init_on(be, m, 8, 1, &c));
    REQUIRE_OK(stw_seq_init(p, 64, &s));
    g_hooks.ctx = c;

    // single-token steps take a pass through the hooks; the 5th pass asks for another: the core calls step_begin and
    // runs the forward once more; results unchanged
    g_hooks.rerun_at = 4;
    std::vector<float> logits;
    const std::vector<int32_t> got = run(c, s, hp.n_vocab, prompt, n, &logits);
    CHECK(got == ref);
    CHECK_MSG(logits == ref_logits, "logits with step hooks differ from the reference");
    CHECK_MSG(g_hooks.begins == n + 2 && g_hooks.recorded == n + 1 && g_hooks.ends == n + 1 && g_hooks.ends_not_ok == 0,
              "begins %d, recorded %d, ends %d (%d not ok)", g_hooks.begins, g_hooks.recorded, g_hooks.ends,
              g_hooks.ends_not_ok);
    CHECK_MSG(g_hooks.forwards == n + 2, "%d forwards for %d steps and one rerun", g_hooks.forwards, n + 1);

    // a step cancelled while recorded: step_end(ok = false), CANCELLED, the sequence unchanged
    const int32_t len = stw_seq_length(s);
    g_hooks.cancel_at = g_hooks.recorded;
    const int32_t tok = got.back();
    const uint8_t w = 1;
    std::vector<float> l((size_t)hp.n_vocab);
    stw_status st = stw_decode(c, 1, &tok, &s, &w, l.data());
    CHECK_MSG(st == STW_STATUS_CANCELLED, "status %d: %s", (int)st, stw_last_error());
    CHECK(g_hooks.ends_not_ok == 1 && stw_seq_length(s) == len);

    // step_end failing: the step fails with the core's message, nothing changes
    g_hooks.fail_at = g_hooks.recorded;
    st = stw_decode(c, 1, &tok, &s, &w, l.data());
    CHECK_MSG(st == STW_STATUS_INTERNAL && std::strstr(stw_last_error(), "step end") != nullptr, "status %d: %s", (int)st,
              stw_last_error());
    CHECK(stw_seq_length(s) == len);
    // and the next step computes what it would have
    CHECK_OK(stw_decode(c, 1, &tok, &s, &w, l.data()));
    CHECK(stw_seq_length(s) == len + 1);

    // a backend that asks for another pass every time: the core stops after 3 passes with hooks and runs the
    // forward once without them; the step succeeds with the same result
    std::vector<float> once = l;
    CHECK_OK(stw_seq_truncate(s, len));
    g_hooks.always_rerun = true;
    const int f0 = g_hooks.forwards, b0 = g_hooks.begins;
    CHECK_OK(stw_decode(c, 1, &tok, &s, &w, l.data()));
    g_hooks.always_rerun = false;
    CHECK_MSG(g_hooks.forwards - f0 == 4 && g_hooks.begins - b0 == 3, "%d forwards, %d begins", g_hooks.forwards - f0,
              g_hooks.begins - b0);
    CHECK(l == once && stw_seq_length(s) == len + 1);

    stw_seq_free(s);
    stw_context_free(c);
    stw_kv_pool_free(p);
    CHECK_OK(stw_backend_free(be));
    stw_model_free(m);
}

}  // namespace

int main() {
    test_capturable_steps();
    test_env_switch();
    test_keys();
    test_slot_choice();
    test_update_outcomes();
    test_decode_run();
    test_apply_rejected_update();
    test_apply_failures();
    test_switch_off_once();
    test_core_step_hooks();
    return test_finish("test_cuda_graph_policy");
}
