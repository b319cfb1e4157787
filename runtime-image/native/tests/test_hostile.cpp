// test_hostile.cpp: truncated files, corrupted descriptors and header bytes must give BAD_MODEL or
// UNSUPPORTED with a message naming what is wrong, never a crash (run under ASan with STW_SANITIZE).
#include <algorithm>
#include <cstdint>

#include "core.h"
#include "test_util.h"

namespace {

std::string g_tmp;
std::vector<uint8_t> g_file;
std::string g_path;

std::string tmp_file(const char *name) { return g_tmp + "/" + name; }

stw_status load_bytes(const uint8_t *data, size_t n, const char *name) {
    const std::string p = tmp_file(name);
    write_bytes(p, data, n);
    stw_model *m = nullptr;
    const stw_status st = stw_model_init_file(p.c_str(), &m);
    if (st == STW_STATUS_OK) {
        // a harmless corruption (a token string, say) loads: it must also run a step
        stw_kv_pool *pool;
        stw_context *c;
        stw_seq *s;
        REQUIRE_OK(stw_kv_pool_init(m, STW_TYPE_F32, 1 << 20, &pool));
        REQUIRE_OK(stw_context_init(m, 1, 4, 1, &c));
        REQUIRE_OK(stw_seq_init(pool, 16, &s));
        const int32_t toks[2] = {1, 2};
        stw_seq *ss[2] = {s, s};
        const uint8_t want[2] = {0, 1};
        std::vector<float> logits(512 * 4);
        stw_hparams hp;
        stw_model_hparams(m, &hp);
        logits.resize((size_t)hp.n_vocab);
        CHECK_OK(stw_decode(c, 2, toks, ss, want, logits.data()));
        stw_seq_free(s);
        stw_context_free(c);
        stw_kv_pool_free(pool);
        stw_model_free(m);
    } else {
        CHECK(m == nullptr);
        CHECK(std::strlen(stw_last_error()) > 0);
    }
    return st;
}

void test_truncated() {
    stw_hparams hp;
    stw_gguf_tensors t;
    REQUIRE_OK(stw_gguf_parse(g_file.data(), g_file.size(), &hp, &t));
    uint64_t data_start = UINT64_MAX;
    for (const auto &d : t.descs) data_start = std::min<uint64_t>(data_start, d.offset);
    std::vector<size_t> cuts = {0, 1, 4, 8, 23, 24, 25};
    for (size_t n = 31; n < data_start + 64; n += 37) cuts.push_back(n);
    for (int i = 1; i < 20; i++) cuts.push_back(data_start + (g_file.size() - data_start) * (size_t)i / 20);
    cuts.push_back(g_file.size() - 1);
    int bad = 0;
    for (size_t n : cuts) {
        const stw_status st = load_bytes(g_file.data(), n, "truncated.gguf");
        CHECK_MSG(st == STW_STATUS_BAD_MODEL, "truncated at %zu bytes gave status %d (%s)", n, (int)st, stw_last_error());
        bad += st == STW_STATUS_BAD_MODEL;
    }
    std::printf("truncated copies: %d/%zu gave BAD_MODEL (header %llu bytes, file %zu)\n", bad, cuts.size(),
                (unsigned long long)data_start, g_file.size());
    load_bytes(g_file.data(), 3000, "truncated.gguf");
    std::printf("  e.g. %s\n", stw_last_error());
}

// Corrupts one copy of the descriptors and expects a status whose message contains `needle`.
template <typename F>
void expect_desc(const char *what, stw_status want, const char *needle, F corrupt) {
    stw_hparams hp;
    stw_gguf_tensors t;
    REQUIRE_OK(stw_gguf_parse(g_file.data(), g_file.size(), &hp, &t));
    std::vector<stw_tensor_desc> d = t.descs;
    corrupt(hp, d);
    stw_model *m = nullptr;
    const stw_status st = stw_model_init(g_path.c_str(), &hp, d.data(), (int32_t)d.size(), &m);
    CHECK_MSG(st == want && m == nullptr, "%s: status %d, expected %d (%s)", what, (int)st, (int)want, stw_last_error());
    CHECK_MSG(std::strstr(stw_last_error(), needle) != nullptr, "%s: message '%s' lacks '%s'", what, stw_last_error(),
              needle);
    if (m) stw_model_free(m);
}

stw_tensor_desc *find(std::vector<stw_tensor_desc> &d, const char *name) {
    for (auto &x : d)
        if (std::strcmp(x.name, name) == 0) return &x;
    std::fprintf(stderr, "no tensor %s\n", name);
    std::exit(1);
}

void test_descriptors() {
    const uint64_t size = g_file.size();
    using H = stw_hparams;
    using D = std::vector<stw_tensor_desc>;
    expect_desc("offset past the end", STW_STATUS_BAD_MODEL, "blk.0.attn_q.weight",
                [&](H &, D &d) { find(d, "blk.0.attn_q.weight")->offset = size + 64; });
    expect_desc("end past the file", STW_STATUS_BAD_MODEL, "but the file is", [&](H &, D &d) {
        stw_tensor_desc *x = find(d, "blk.4.ffn_norm.weight");
        x->offset = size - x->nbytes + 4;
    });
    expect_desc("offset overflow", STW_STATUS_BAD_MODEL, "output.weight",
                [&](H &, D &d) { find(d, "output.weight")->offset = UINT64_MAX - 8; });
    expect_desc("nbytes disagrees", STW_STATUS_BAD_MODEL, "declares 65540 bytes",
                [&](H &, D &d) { find(d, "blk.1.attn_output.weight")->nbytes += 49156; });
    expect_desc("misaligned", STW_STATUS_BAD_MODEL, "not aligned",
                [&](H &, D &d) { find(d, "token_embd.weight")->offset += 2; });
    expect_desc("huge dimension", STW_STATUS_BAD_MODEL, "ne[1]",
                [&](H &, D &d) { find(d, "blk.2.ffn_up.weight")->ne[1] = (int64_t)1 << 41; });
    expect_desc("negative dimension", STW_STATUS_BAD_MODEL, "ne[0] = -64",
                [&](H &, D &d) { find(d, "blk.2.ffn_up.weight")->ne[0] = -64; });
    expect_desc("unknown type", STW_STATUS_UNSUPPORTED, "type 99",
                [&](H &, D &d) { find(d, "blk.0.attn_k.weight")->type = 99; });
    expect_desc("unsupported type", STW_STATUS_UNSUPPORTED, "'blk.3.attn_q.weight' has type Q4_1", [&](H &, D &d) {
        stw_tensor_desc *x = find(d, "blk.3.attn_q.weight");
        x->type = 3; // Q4_1: 20 bytes per 32 values
        x->nbytes = 64 / 32 * 20 * 64;
    });
    expect_desc("norm not f32", STW_STATUS_UNSUPPORTED, "must be F32", [&](H &, D &d) {
        stw_tensor_desc *x = find(d, "output_norm.weight");
        x->type = STW_TYPE_F16;
        x->nbytes = 128;
    });
    expect_desc("missing tensor", STW_STATUS_BAD_MODEL, "required tensor 'blk.3.ffn_up.weight' is missing",
                [&](H &, D &d) { d.erase(d.begin() + (find(d, "blk.3.ffn_up.weight") - d.data())); });
    expect_desc("wrong shape", STW_STATUS_BAD_MODEL, "'blk.1.attn_k.weight' has shape [32, 64]", [&](H &, D &d) {
        std::swap(find(d, "blk.1.attn_k.weight")->ne[0], find(d, "blk.1.attn_k.weight")->ne[1]);
    });
    expect_desc("duplicate", STW_STATUS_BAD_MODEL, "appears twice", [&](H &, D &d) { d.push_back(d[5]); });
    expect_desc("null name", STW_STATUS_INVALID_ARGUMENT, "tensors[7].name", [&](H &, D &d) { d[7].name = nullptr; });
    expect_desc("n_dims", STW_STATUS_BAD_MODEL, "n_dims 9", [&](H &, D &d) { d[3].n_dims = 9; });
    expect_desc("vocab mismatch", STW_STATUS_BAD_MODEL, "token_embd.weight", [&](H &hp, D &) { hp.n_vocab = 513; });
    expect_desc("gqa ratio", STW_STATUS_BAD_MODEL, "n_head_kv", [&](H &hp, D &) { hp.n_head_kv = 3; });
    expect_desc("head dim", STW_STATUS_BAD_MODEL, "head_dim_k is 0", [&](H &hp, D &) { hp.head_dim_k = 0; });
    expect_desc("rope dim", STW_STATUS_BAD_MODEL, "rope_dim", [&](H &hp, D &) { hp.rope_dim = 7; });
    expect_desc("rope layout", STW_STATUS_BAD_MODEL, "architecture llama uses 0",
                [&](H &hp, D &) { hp.rope_type = STW_ROPE_TYPE_NEOX; });
    expect_desc("arch", STW_STATUS_UNSUPPORTED, "hparams.arch is 7", [&](H &hp, D &) { hp.arch = 7; });
    expect_desc("eps", STW_STATUS_BAD_MODEL, "rms_eps", [&](H &hp, D &) { hp.rms_eps = -1; });
    expect_desc("layers", STW_STATUS_BAD_MODEL, "blk.5.attn_norm.weight", [&](H &hp, D &) { hp.n_layer = 6; });

    stw_model *m = nullptr;
    CHECK(stw_model_init("/nonexistent/x.gguf", nullptr, nullptr, 0, &m) == STW_STATUS_INVALID_ARGUMENT);
    CHECK(stw_model_init_file("/nonexistent/x.gguf", &m) == STW_STATUS_IO);
    CHECK(std::strstr(stw_last_error(), "/nonexistent/x.gguf") != nullptr);
    CHECK(stw_model_init_file(g_tmp.c_str(), &m) == STW_STATUS_IO); // a directory
}

// Writes a u32/u64 at a byte offset of a copy and loads it.
stw_status load_patched(size_t at, const void *v, size_t n) {
    std::vector<uint8_t> b = g_file;
    std::memcpy(b.data() + at, v, n);
    return load_bytes(b.data(), b.size(), "patched.gguf");
}

size_t find_bytes(const std::string &s) {
    auto it = std::search(g_file.begin(), g_file.end(), s.begin(), s.end());
    if (it == g_file.end()) {
        std::fprintf(stderr, "pattern %s not found\n", s.c_str());
        std::exit(1);
    }
    return (size_t)(it - g_file.begin());
}

void test_header_fields() {
    const uint32_t v1 = 1, bad_magic = 0x46554746;
    const uint64_t huge = UINT64_MAX / 2;
    CHECK(load_patched(0, &bad_magic, 4) == STW_STATUS_BAD_MODEL);
    CHECK(std::strstr(stw_last_error(), "magic") != nullptr);
    CHECK(load_patched(4, &v1, 4) == STW_STATUS_UNSUPPORTED);
    CHECK(load_patched(8, &huge, 8) == STW_STATUS_BAD_MODEL); // tensor count
    CHECK(load_patched(16, &huge, 8) == STW_STATUS_BAD_MODEL); // metadata count
    CHECK(load_patched(24, &huge, 8) == STW_STATUS_BAD_MODEL); // first key length
    // unknown architecture: "llama" -> "llamb" in the value of general.architecture
    const size_t arch = find_bytes("general.architecture") + 20 + 4 + 8;
    CHECK(load_patched(arch + 4, "b", 1) == STW_STATUS_UNSUPPORTED);
    CHECK(std::strstr(stw_last_error(), "architecture 'llamb'") != nullptr);
    // a tensor's n_dims, its first ne and its type (the tensor info follows its name)
    const size_t info = find_bytes("blk.0.attn_q.weight") + 19;
    const uint32_t dims7 = 7, type99 = 99, type13 = 13;
    const uint64_t ne0 = 0;
    CHECK(load_patched(info, &dims7, 4) == STW_STATUS_BAD_MODEL);
    CHECK(load_patched(info + 4, &ne0, 8) == STW_STATUS_BAD_MODEL);
    CHECK(load_patched(info + 20, &type99, 4) == STW_STATUS_UNSUPPORTED);
    CHECK(std::strstr(stw_last_error(), "blk.0.attn_q.weight") != nullptr);
    CHECK(load_patched(info + 20, &type13, 4) == STW_STATUS_BAD_MODEL); // Q5_K rows of 64: not whole blocks
    // a required key's type: block_count as a string
    const size_t bc = find_bytes("llama.block_count") + 17;
    const uint32_t t_string = 8;
    CHECK(load_patched(bc, &t_string, 4) != STW_STATUS_OK);
}

// Random byte flips in the header: any status but a crash; a load that succeeds must also decode.
void test_header_fuzz() {
    stw_hparams hp;
    stw_gguf_tensors t;
    REQUIRE_OK(stw_gguf_parse(g_file.data(), g_file.size(), &hp, &t));
    uint64_t header = UINT64_MAX;
    for (const auto &d : t.descs) header = std::min<uint64_t>(header, d.offset);
    uint64_t rng = 0x5eed;
    auto next = [&] {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    };
    int counts[9] = {0};
    const int rounds = 300;
    for (int r = 0; r < rounds; r++) {
        std::vector<uint8_t> b(g_file.begin(), g_file.begin() + (long)header);
        const int flips = 1 + (int)(next() % 4);
        for (int f = 0; f < flips; f++) b[next() % header] ^= (uint8_t)(1u << (next() % 8));
        std::vector<uint8_t> full = b;
        full.insert(full.end(), g_file.begin() + (long)header, g_file.end());
        const stw_status st = load_bytes(full.data(), full.size(), "fuzz.gguf");
        CHECK_MSG(st == STW_STATUS_OK || st == STW_STATUS_BAD_MODEL || st == STW_STATUS_UNSUPPORTED,
                  "fuzz round %d: status %d (%s)", r, (int)st, stw_last_error());
        if ((int)st < 9) counts[(int)st]++;
    }
    std::printf("header fuzz, %d rounds: %d loaded and decoded, %d BAD_MODEL, %d UNSUPPORTED\n", rounds, counts[0],
                counts[STW_STATUS_BAD_MODEL], counts[STW_STATUS_UNSUPPORTED]);
}

} // namespace

int main() {
    const char *tmp = std::getenv("STW_TEST_TMP");
    g_tmp = tmp ? tmp : ".";
    g_path = test_data_path("stories260K-f32.gguf");
    g_file = read_bytes(g_path);
    test_truncated();
    test_descriptors();
    test_header_fields();
    test_header_fuzz();
    return test_finish("test_hostile");
}
