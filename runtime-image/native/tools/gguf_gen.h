// gguf_gen.h: writes a Llama-shaped GGUF with random weights of one ggml type (F32, F16, BF16, Q8_0, Q4_0, Q4_K,
// Q6_K) for the CUDA benchmark and tests. Quantized blocks are random bytes with their scales set so that every
// projection keeps activations near unit size; float weights are uniform with variance 1/cols. Norm weights are 1.
// A SentencePiece-style vocabulary of placeholder tokens ("<unk>", "<s>", "</s>", "t3", ...) makes the file one that
// llama.cpp (llama-bench) also loads, so both engines can run the same bytes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "stowage.h"

namespace stw_gen {

struct shape {
    int n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab;
};
// TinyLlama 1.1B and Llama 3 8B (vocabulary cut to 32000: the output matrix is not what the benchmark is about).
constexpr shape kShape1B{22, 2048, 5632, 32, 4, 32000};
constexpr shape kShape8B{32, 4096, 14336, 32, 8, 32000};

struct rng {
    uint64_t s;
    uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    float uniform() { return (float)((next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }  // [-1, 1)
};

inline uint16_t half_bits(float f) {  // IEEE half, rounded to nearest (subnormals included)
    uint16_t h = 0;
    stw_cpu_quantize_row(STW_TYPE_F16, &f, &h, 1);
    return h;
}

class writer {
  public:
    explicit writer(FILE *f) : f_(f) {}
    bool ok() const { return ok_; }
    void raw(const void *p, size_t n) {
        if (ok_ && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void str(const std::string &s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void kv_u32(const std::string &k, uint32_t v) {
        str(k);
        u32(4);
        u32(v);
    }
    void kv_f32(const std::string &k, float v) {
        str(k);
        u32(6);
        raw(&v, 4);
    }
    void kv_str(const std::string &k, const std::string &v) {
        str(k);
        u32(8);
        str(v);
    }

  private:
    FILE *f_;
    bool ok_ = true;
};

struct tensor {
    std::string name;
    int32_t type;
    int64_t cols, rows;  // rows 0: a vector
    uint64_t bytes() const { return stw_cpu_row_bytes(type, cols) * (uint64_t)(rows ? rows : 1); }
};

// Fills one row of `type` with random weights (see the header comment).
inline void random_row(int32_t type, int64_t cols, rng &r, std::vector<uint8_t> &row, std::vector<float> &tmp) {
    const size_t rb = stw_cpu_row_bytes(type, cols);
    row.resize(rb);
    const float isq = 1.0f / std::sqrt((float)cols);
    if (type == STW_TYPE_F32 || type == STW_TYPE_F16 || type == STW_TYPE_BF16) {
        tmp.resize((size_t)cols);
        for (float &v : tmp) v = r.uniform() * 1.732f * isq;
        stw_cpu_quantize_row(type, tmp.data(), row.data(), cols);
        return;
    }
    for (size_t j = 0; j + 8 <= rb; j += 8) {
        const uint64_t v = r.next();
        std::memcpy(row.data() + j, &v, 8);
    }
    for (size_t j = rb - rb % 8; j < rb; j++) row[j] = (uint8_t)r.next();
    // scales: the standard deviation of one dequantized value times sqrt(cols) near 1
    if (type == STW_TYPE_Q8_0) {
        const uint16_t d = half_bits(isq / 74.0f);
        for (size_t b = 0; b < rb / 34; b++) std::memcpy(row.data() + b * 34, &d, 2);
    } else if (type == STW_TYPE_Q4_0) {
        const uint16_t d = half_bits(isq / 4.6f);
        for (size_t b = 0; b < rb / 18; b++) std::memcpy(row.data() + b * 18, &d, 2);
    } else if (type == STW_TYPE_Q4_K) {
        const uint16_t d = half_bits(isq / (4.6f * 36.0f)), dmin = half_bits(isq / (36.0f * 36.0f));
        for (size_t b = 0; b < rb / 144; b++) {
            std::memcpy(row.data() + b * 144, &d, 2);
            std::memcpy(row.data() + b * 144 + 2, &dmin, 2);
        }
    } else if (type == STW_TYPE_Q6_K) {
        const uint16_t d = half_bits(isq / (18.0f * 74.0f));
        for (size_t b = 0; b < rb / 210; b++) std::memcpy(row.data() + b * 210 + 208, &d, 2);
    }
}

// Writes the model; false with a message in *err on failure (an unsupported type or shape, an I/O error).
inline bool generate(const std::string &path, int32_t type, const shape &s, uint64_t seed, std::string *err) {
    const int hd = s.n_embd / s.n_head;
    const int64_t bs = stw_cpu_block_size(type);
    if (bs == 0 || s.n_embd % s.n_head != 0 || s.n_embd % bs != 0 || s.n_ff % bs != 0) {
        *err = "weight type " + std::to_string(type) + " cannot hold rows of " + std::to_string(s.n_embd) + " and " +
               std::to_string(s.n_ff) + " values";
        return false;
    }
    std::vector<tensor> ts;
    ts.push_back({"token_embd.weight", type, s.n_embd, s.n_vocab});
    ts.push_back({"output_norm.weight", STW_TYPE_F32, s.n_embd, 0});
    ts.push_back({"output.weight", type, s.n_embd, s.n_vocab});
    for (int l = 0; l < s.n_layer; l++) {
        const std::string p = "blk." + std::to_string(l) + ".";
        ts.push_back({p + "attn_norm.weight", STW_TYPE_F32, s.n_embd, 0});
        ts.push_back({p + "attn_q.weight", type, s.n_embd, s.n_embd});
        ts.push_back({p + "attn_k.weight", type, s.n_embd, (int64_t)s.n_head_kv * hd});
        ts.push_back({p + "attn_v.weight", type, s.n_embd, (int64_t)s.n_head_kv * hd});
        ts.push_back({p + "attn_output.weight", type, s.n_embd, s.n_embd});
        ts.push_back({p + "ffn_norm.weight", STW_TYPE_F32, s.n_embd, 0});
        ts.push_back({p + "ffn_gate.weight", type, s.n_embd, s.n_ff});
        ts.push_back({p + "ffn_up.weight", type, s.n_embd, s.n_ff});
        ts.push_back({p + "ffn_down.weight", type, s.n_ff, s.n_embd});
    }
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) {
        *err = "cannot create " + path;
        return false;
    }
    writer w(f);
    w.u32(0x46554747);  // "GGUF"
    w.u32(3);
    w.u64(ts.size());
    w.u64(14);  // key-value pairs below
    w.kv_str("general.architecture", "llama");
    w.kv_str("general.name", "stowage-generated");
    w.kv_u32("llama.block_count", (uint32_t)s.n_layer);
    w.kv_u32("llama.embedding_length", (uint32_t)s.n_embd);
    w.kv_u32("llama.feed_forward_length", (uint32_t)s.n_ff);
    w.kv_u32("llama.attention.head_count", (uint32_t)s.n_head);
    w.kv_u32("llama.attention.head_count_kv", (uint32_t)s.n_head_kv);
    w.kv_u32("llama.context_length", 8192);
    w.kv_u32("llama.rope.dimension_count", (uint32_t)hd);
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.kv_str("tokenizer.ggml.model", "llama");
    // tokens, scores and types: placeholder SentencePiece vocabulary of n_vocab entries
    w.str("tokenizer.ggml.tokens");
    w.u32(9);
    w.u32(8);
    w.u64((uint64_t)s.n_vocab);
    for (int i = 0; i < s.n_vocab; i++)
        w.str(i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "t" + std::to_string(i));
    w.str("tokenizer.ggml.scores");
    w.u32(9);
    w.u32(6);
    w.u64((uint64_t)s.n_vocab);
    for (int i = 0; i < s.n_vocab; i++) {
        const float sc = -(float)i;
        w.raw(&sc, 4);
    }
    w.str("tokenizer.ggml.token_type");
    w.u32(9);
    w.u32(5);
    w.u64((uint64_t)s.n_vocab);
    for (int i = 0; i < s.n_vocab; i++) w.u32(i == 0 ? 2u : i < 3 ? 3u : 1u);
    uint64_t off = 0;
    for (const tensor &t : ts) {
        w.str(t.name);
        w.u32(t.rows ? 2 : 1);
        w.u64((uint64_t)t.cols);
        if (t.rows) w.u64((uint64_t)t.rows);
        w.u32((uint32_t)t.type);
        w.u64(off);
        off += (t.bytes() + 31) / 32 * 32;
    }
    const long pos = std::ftell(f);
    const uint8_t zeros[32] = {0};
    w.raw(zeros, (size_t)((32 - pos % 32) % 32));
    rng r{seed * 0x9e3779b97f4a7c15ull + 1};
    std::vector<uint8_t> row;
    std::vector<float> tmp;
    for (const tensor &t : ts) {
        for (int64_t i = 0; i < (t.rows ? t.rows : 1); i++) {
            if (t.rows == 0) {  // norm weights
                row.resize((size_t)t.cols * 4);
                const float one = 1.0f;
                for (int64_t j = 0; j < t.cols; j++) std::memcpy(row.data() + 4 * j, &one, 4);
            } else {
                random_row(t.type, t.cols, r, row, tmp);
            }
            w.raw(row.data(), row.size());
        }
        w.raw(zeros, (size_t)((32 - t.bytes() % 32) % 32));
    }
    const bool ok = w.ok() && std::fclose(f) == 0;
    if (!ok) *err = "cannot write " + path + " (disk full?)";
    return ok;
}

}  // namespace stw_gen
