// test_gguf_gen: the benchmark's model generator (tools/gguf_gen.h) writes, for every weight type, a file the core
// accepts, whose hyperparameters are the asked shape and whose logits stay finite (runs on the CPU everywhere).
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

#include "gguf_gen.h"
#include "test_util.h"

int main() {
    const char *tmp = std::getenv("STW_TEST_TMP");
    const std::string dir = tmp ? tmp : "/tmp";
    const int32_t types[] = {STW_TYPE_F32, STW_TYPE_F16, STW_TYPE_BF16, STW_TYPE_Q8_0, STW_TYPE_Q4_0, STW_TYPE_Q4_K,
                             STW_TYPE_Q6_K};
    const stw_gen::shape s{2, 256, 768, 4, 2, 300};
    for (int32_t t : types) {
        const std::string path = dir + "/gguf_gen_" + std::to_string(t) + ".gguf";
        std::string err;
        CHECK_MSG(stw_gen::generate(path, t, s, 1, &err), "type %d: %s", t, err.c_str());
        stw_model *m = nullptr;
        CHECK_OK(stw_model_init_file(path.c_str(), &m));
        if (!m) continue;
        stw_hparams hp;
        CHECK_OK(stw_model_hparams(m, &hp));
        CHECK(hp.n_layer == 2 && hp.n_embd == 256 && hp.n_ff == 768 && hp.n_head == 4 && hp.n_head_kv == 2 &&
              hp.n_vocab == 300 && hp.head_dim_k == 64);
        stw_kv_pool *p;
        stw_context *c;
        stw_seq *q;
        REQUIRE_OK(stw_kv_pool_init(m, STW_TYPE_F16, stw_kv_bytes_per_token(m, STW_TYPE_F16) * 64, &p));
        REQUIRE_OK(stw_context_init(m, 1, 8, 1, &c));
        REQUIRE_OK(stw_seq_init(p, 64, &q));
        const int32_t toks[3] = {1, 100, 299};
        stw_seq *seqs[3] = {q, q, q};
        const uint8_t want[3] = {0, 0, 1};
        std::vector<float> logits(300);
        CHECK_OK(stw_decode(c, 3, toks, seqs, want, logits.data()));
        double ss = 0;
        bool finite = true;
        for (float v : logits) {
            finite = finite && std::isfinite(v);
            ss += (double)v * v;
        }
        const double rms = std::sqrt(ss / 300.0);
        CHECK_MSG(finite && rms > 1e-3 && rms < 1e3, "type %d: logits rms %g (finite %d)", t, rms, (int)finite);
        stw_seq_free(q);
        stw_context_free(c);
        stw_kv_pool_free(p);
        stw_model_free(m);
        unlink(path.c_str());
    }
    return test_finish("test_gguf_gen");
}
