// gguf.cpp: the core's own GGUF header parser; every count, length and offset is checked against
// the mapped file size before it is used.
#include <cinttypes>
#include <cstring>
#include <string>
#include <vector>

#include "core.h"

namespace {

enum gguf_type : uint32_t {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6,
    GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
};

constexpr uint64_t kMaxStringBytes = 1u << 20; // one key or value string
constexpr uint64_t kMaxNameBytes = 256; // a tensor name
constexpr int kMaxArrayDepth = 3;

const char *gguf_type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
                                  "f64"};
    return t <= GGUF_F64 ? names[t] : "unknown";
}

size_t gguf_scalar_size(uint32_t t) {
    switch (t) {
        case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
        case GGUF_U16: case GGUF_I16: return 2;
        case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
        case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
        default: return 0;
    }
}

// A metadata value the model loader may need: integers and floats as numbers, strings as text,
// arrays by element type and count.
struct gguf_kv {
    std::string key;
    uint32_t type = 0;
    int64_t ival = 0;
    bool ival_ok = false; // integer that fits int64
    double fval = 0;
    std::string sval;
    uint32_t arr_type = 0;
    uint64_t arr_count = 0;
};

struct reader {
    const uint8_t *data;
    size_t size;
    size_t pos = 0;

    bool need(uint64_t n) const { return n <= size - pos; }

    stw_status truncated(const char *what, uint64_t n) const {
        return stw_error(STW_STATUS_BAD_MODEL,
                         "GGUF truncated: %s needs %" PRIu64 " bytes at offset %zu but the file is %zu bytes", what,
                         n, pos, size);
    }

    template <typename T>
    stw_status read(T *out, const char *what) {
        if (!need(sizeof(T))) return truncated(what, sizeof(T));
        std::memcpy(out, data + pos, sizeof(T));
        pos += sizeof(T);
        return STW_STATUS_OK;
    }

    stw_status read_string(std::string *out, uint64_t max_len, const char *what) {
        uint64_t len = 0;
        stw_status st = read(&len, what);
        if (st) return st;
        if (len > max_len)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF %s at offset %zu has length %" PRIu64 ", limit %" PRIu64, what,
                             pos - 8, len, max_len);
        if (!need(len)) return truncated(what, len);
        if (out) out->assign((const char *)data + pos, (size_t)len);
        pos += (size_t)len;
        return STW_STATUS_OK;
    }

    stw_status skip_value(uint32_t type, const std::string &key, int depth) {
        const size_t sz = gguf_scalar_size(type);
        if (sz) {
            if (!need(sz)) return truncated(key.c_str(), sz);
            pos += sz;
            return STW_STATUS_OK;
        }
        if (type == GGUF_STRING) return read_string(nullptr, kMaxStringBytes, key.c_str());
        if (type == GGUF_ARRAY) {
            uint32_t et = 0;
            uint64_t n = 0;
            stw_status st = read(&et, key.c_str());
            if (st) return st;
            if ((st = read(&n, key.c_str()))) return st;
            return skip_array(et, n, key, depth + 1);
        }
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' has value type %u at offset %zu; known types are 0..12",
                         key.c_str(), type, pos);
    }

    stw_status skip_array(uint32_t et, uint64_t n, const std::string &key, int depth) {
        if (depth > kMaxArrayDepth)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' nests arrays %d deep, limit %d", key.c_str(), depth,
                             kMaxArrayDepth);
        const size_t sz = gguf_scalar_size(et);
        if (sz) {
            if (n > (size - pos) / sz) return truncated(key.c_str(), n * sz);
            pos += (size_t)(n * sz);
            return STW_STATUS_OK;
        }
        if (et != GGUF_STRING && et != GGUF_ARRAY)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' is an array of unknown type %u", key.c_str(), et);
        // every element takes at least 8 bytes (a length or a type + count)
        if (n > (size - pos) / 8) return truncated(key.c_str(), n * 8);
        for (uint64_t i = 0; i < n; i++) {
            stw_status st = skip_value(et, key, depth);
            if (st) return st;
        }
        return STW_STATUS_OK;
    }
};

const gguf_kv *find_kv(const std::vector<gguf_kv> &kvs, const std::string &key) {
    for (const gguf_kv &kv : kvs)
        if (kv.key == key) return &kv;
    return nullptr;
}

// Reads an integer key into an int32 > 0 (or >= 0 when allow_zero). Missing: keeps *out, unless required.
stw_status get_i32(const std::vector<gguf_kv> &kvs, const std::string &key, bool required, int32_t *out) {
    const gguf_kv *kv = find_kv(kvs, key);
    if (!kv) {
        if (required) return stw_error(STW_STATUS_BAD_MODEL, "GGUF metadata key '%s' is missing", key.c_str());
        return STW_STATUS_OK;
    }
    if (kv->type == GGUF_ARRAY)
        return stw_error(STW_STATUS_UNSUPPORTED, "GGUF key '%s' is a per-layer array; only one value for all layers is supported",
                         key.c_str());
    if (!kv->ival_ok)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' has type %s, expected an integer", key.c_str(),
                         gguf_type_name(kv->type));
    if (kv->ival <= 0 || kv->ival > INT32_MAX)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' is %" PRId64 ", expected 1..%d", key.c_str(), kv->ival,
                         INT32_MAX);
    *out = (int32_t)kv->ival;
    return STW_STATUS_OK;
}

stw_status get_f32(const std::vector<gguf_kv> &kvs, const std::string &key, float *out) {
    const gguf_kv *kv = find_kv(kvs, key);
    if (!kv) return STW_STATUS_OK;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' has type %s, expected f32", key.c_str(),
                         gguf_type_name(kv->type));
    *out = (float)kv->fval;
    return STW_STATUS_OK;
}

} // namespace

stw_status stw_gguf_parse(const uint8_t *data, size_t size, stw_hparams *hp, stw_gguf_tensors *out) {
    reader r{data, size};
    uint32_t magic = 0, version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    stw_status st;
    if (size < 24)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF file is %zu bytes, shorter than the 24-byte header", size);
    r.read(&magic, "magic");
    if (magic != 0x46554747u)
        return stw_error(STW_STATUS_BAD_MODEL, "not a GGUF file: magic is 0x%08x, expected 0x46554747 ('GGUF')", magic);
    r.read(&version, "version");
    if (version != 2 && version != 3)
        return stw_error(STW_STATUS_UNSUPPORTED, "GGUF version %u is not supported (2 or 3)", version);
    r.read(&n_tensors, "tensor count");
    r.read(&n_kv, "metadata count");
    // a tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes, a metadata entry at least 8 + 4 + 1
    if (n_tensors > (size - r.pos) / 32)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF tensor count %" PRIu64 " cannot fit in a %zu-byte file", n_tensors,
                         size);
    if (n_kv > (size - r.pos) / 13)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF metadata count %" PRIu64 " cannot fit in a %zu-byte file", n_kv,
                         size);

    std::vector<gguf_kv> kvs;
    kvs.reserve((size_t)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv kv;
        if ((st = r.read_string(&kv.key, kMaxStringBytes, "metadata key"))) return st;
        if ((st = r.read(&kv.type, kv.key.c_str()))) return st;
        const size_t sz = gguf_scalar_size(kv.type);
        if (sz) {
            if (!r.need(sz)) return r.truncated(kv.key.c_str(), sz);
            const uint8_t *p = data + r.pos;
            switch (kv.type) {
                case GGUF_U8: kv.ival = p[0]; kv.ival_ok = true; break;
                case GGUF_I8: kv.ival = (int8_t)p[0]; kv.ival_ok = true; break;
                case GGUF_BOOL: kv.ival = p[0] != 0; break;
                case GGUF_U16: { uint16_t v; std::memcpy(&v, p, 2); kv.ival = v; kv.ival_ok = true; break; }
                case GGUF_I16: { int16_t v; std::memcpy(&v, p, 2); kv.ival = v; kv.ival_ok = true; break; }
                case GGUF_U32: { uint32_t v; std::memcpy(&v, p, 4); kv.ival = v; kv.ival_ok = true; break; }
                case GGUF_I32: { int32_t v; std::memcpy(&v, p, 4); kv.ival = v; kv.ival_ok = true; break; }
                case GGUF_U64: {
                    uint64_t v;
                    std::memcpy(&v, p, 8);
                    kv.ival = (int64_t)v;
                    kv.ival_ok = v <= (uint64_t)INT64_MAX;
                    break;
                }
                case GGUF_I64: { int64_t v; std::memcpy(&v, p, 8); kv.ival = v; kv.ival_ok = true; break; }
                case GGUF_F32: { float v; std::memcpy(&v, p, 4); kv.fval = v; break; }
                case GGUF_F64: { double v; std::memcpy(&v, p, 8); kv.fval = v; break; }
            }
            r.pos += sz;
        } else if (kv.type == GGUF_STRING) {
            if ((st = r.read_string(&kv.sval, kMaxStringBytes, kv.key.c_str()))) return st;
        } else if (kv.type == GGUF_ARRAY) {
            if ((st = r.read(&kv.arr_type, kv.key.c_str()))) return st;
            if ((st = r.read(&kv.arr_count, kv.key.c_str()))) return st;
            if ((st = r.skip_array(kv.arr_type, kv.arr_count, kv.key, 1))) return st;
        } else {
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF key '%s' has value type %u; known types are 0..12",
                             kv.key.c_str(), kv.type);
        }
        kvs.push_back(std::move(kv));
    }

    uint64_t alignment = 32;
    if (const gguf_kv *a = find_kv(kvs, "general.alignment")) {
        if (!a->ival_ok || a->ival <= 0 || a->ival > 65536 || (a->ival & (a->ival - 1)) != 0)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF general.alignment is %" PRId64 ", expected a power of two <= 65536",
                             a->ival);
        alignment = (uint64_t)a->ival;
    }

    out->names.resize((size_t)n_tensors);
    out->descs.resize((size_t)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        stw_tensor_desc &d = out->descs[(size_t)i];
        std::string &name = out->names[(size_t)i];
        if ((st = r.read_string(&name, kMaxNameBytes, "tensor name"))) return st;
        uint32_t n_dims = 0, type = 0;
        if ((st = r.read(&n_dims, name.c_str()))) return st;
        if (n_dims < 1 || n_dims > 4)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF tensor '%s' has %u dimensions, expected 1..4", name.c_str(),
                             n_dims);
        d.n_dims = (int32_t)n_dims;
        for (int k = 0; k < 4; k++) d.ne[k] = 1;
        for (uint32_t k = 0; k < n_dims; k++) {
            uint64_t ne = 0;
            if ((st = r.read(&ne, name.c_str()))) return st;
            if (ne < 1 || ne > ((uint64_t)1 << 40))
                return stw_error(STW_STATUS_BAD_MODEL, "GGUF tensor '%s' has ne[%u] = %" PRIu64 ", expected 1..2^40",
                                 name.c_str(), k, ne);
            d.ne[k] = (int64_t)ne;
        }
        if ((st = r.read(&type, name.c_str()))) return st;
        d.type = (int32_t)type;
        if ((st = r.read(&d.offset, name.c_str()))) return st;
        if (d.offset % alignment != 0)
            return stw_error(STW_STATUS_BAD_MODEL, "GGUF tensor '%s' has data offset %" PRIu64 ", not a multiple of the alignment %" PRIu64,
                             name.c_str(), d.offset, alignment);
    }
    const uint64_t data_start = (r.pos + alignment - 1) / alignment * alignment;
    if (data_start > size)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF data section starts at %" PRIu64 ", past the end of the %zu-byte file",
                         data_start, size);
    for (uint64_t i = 0; i < n_tensors; i++) {
        stw_tensor_desc &d = out->descs[(size_t)i];
        d.name = out->names[(size_t)i].c_str();
        const int64_t bs = stw_type_block_size(d.type);
        if (bs == 0)
            return stw_error(STW_STATUS_UNSUPPORTED, "tensor '%s' has ggml type %d, which this engine does not know", d.name,
                             d.type);
        if (d.ne[0] % bs != 0)
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has row length %" PRId64 ", not a multiple of the %s block size %" PRId64,
                             d.name, d.ne[0], stw_type_name(d.type), bs);
        // ne values are <= 2^40 each; the product is bounded before it can overflow
        uint64_t rows = 1;
        for (int k = 1; k < 4; k++) {
            if ((uint64_t)d.ne[k] > (UINT64_MAX >> 1) / rows)
                return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has too many elements", d.name);
            rows *= (uint64_t)d.ne[k];
        }
        const uint64_t row_bytes = (uint64_t)(d.ne[0] / bs) * (uint64_t)stw_type_block_bytes(d.type);
        if (row_bytes != 0 && rows > UINT64_MAX / row_bytes)
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' has too many elements", d.name);
        d.nbytes = rows * row_bytes;
        if (d.offset > UINT64_MAX - data_start)
            return stw_error(STW_STATUS_BAD_MODEL, "tensor '%s' offset %" PRIu64 " overflows", d.name, d.offset);
        d.offset += data_start;
    }

    // hyperparameters
    const gguf_kv *arch = find_kv(kvs, "general.architecture");
    if (!arch || arch->type != GGUF_STRING)
        return stw_error(STW_STATUS_BAD_MODEL, "GGUF metadata key 'general.architecture' is missing or not a string");
    std::memset(hp, 0, sizeof *hp);
    if (arch->sval == "llama" || arch->sval == "mistral") {
        hp->arch = STW_ARCH_LLAMA;
        hp->rope_type = STW_ROPE_TYPE_NORM;
    } else if (arch->sval == "qwen2") {
        hp->arch = STW_ARCH_QWEN2;
        hp->rope_type = STW_ROPE_TYPE_NEOX;
    } else {
        return stw_error(STW_STATUS_UNSUPPORTED, "architecture '%.64s' is not supported (llama, mistral, qwen2)",
                         arch->sval.c_str());
    }
    const std::string a = arch->sval + ".";
    if ((st = get_i32(kvs, a + "block_count", true, &hp->n_layer))) return st;
    if ((st = get_i32(kvs, a + "embedding_length", true, &hp->n_embd))) return st;
    if ((st = get_i32(kvs, a + "feed_forward_length", true, &hp->n_ff))) return st;
    if ((st = get_i32(kvs, a + "attention.head_count", true, &hp->n_head))) return st;
    hp->n_head_kv = hp->n_head;
    if ((st = get_i32(kvs, a + "attention.head_count_kv", false, &hp->n_head_kv))) return st;
    hp->head_dim_k = hp->n_embd / hp->n_head;
    if ((st = get_i32(kvs, a + "attention.key_length", false, &hp->head_dim_k))) return st;
    hp->head_dim_v = hp->head_dim_k;
    if ((st = get_i32(kvs, a + "attention.value_length", false, &hp->head_dim_v))) return st;
    hp->n_ctx_train = 2048;
    if ((st = get_i32(kvs, a + "context_length", false, &hp->n_ctx_train))) return st;
    hp->rope_dim = hp->head_dim_k;
    if ((st = get_i32(kvs, a + "rope.dimension_count", false, &hp->rope_dim))) return st;
    hp->rope_freq_base = 10000.0f;
    if ((st = get_f32(kvs, a + "rope.freq_base", &hp->rope_freq_base))) return st;
    hp->rms_eps = 1e-5f;
    if ((st = get_f32(kvs, a + "attention.layer_norm_rms_epsilon", &hp->rms_eps))) return st;
    // the logits width is the embedding's row count (converters pad it past the tokenizer's list)
    hp->n_vocab = 0;
    if (const gguf_kv *tok = find_kv(kvs, "tokenizer.ggml.tokens"))
        if (tok->type == GGUF_ARRAY && tok->arr_count > 0 && tok->arr_count <= INT32_MAX)
            hp->n_vocab = (int32_t)tok->arr_count;
    for (const stw_tensor_desc &d : out->descs)
        if (std::strcmp(d.name, "token_embd.weight") == 0 && d.ne[1] <= INT32_MAX) hp->n_vocab = (int32_t)d.ne[1];
    if ((st = get_i32(kvs, a + "vocab_size", false, &hp->n_vocab))) return st;
    return STW_STATUS_OK;
}
