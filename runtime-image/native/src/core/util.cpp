// util.cpp: the error channel, version, CPU feature report and the ggml type table.
#include <cstdarg>
#include <cstdio>
#include <string>

#include "core.h"
#include "kernels.h"

static thread_local char g_last_error[1024];

stw_status stw_error(stw_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return status;
}

extern "C" const char *stw_last_error(void) { return g_last_error; }

extern "C" const char *stw_version(void) { return "stowage-native 0.1.0"; }

extern "C" const char *stw_cpu_features(void) {
    static const std::string features = [] {
        std::string s;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) s += "avx2 ";
        if (__builtin_cpu_supports("fma")) s += "fma ";
        if (__builtin_cpu_supports("avx512f")) s += "avx512f ";
        if (__builtin_cpu_supports("f16c")) s += "f16c ";
#endif
        if (s.empty()) s = "none ";
        s.pop_back();
        s += "; kernels=";
        s += stw_cpu_kernel_set();
        return s;
    }();
    return features.c_str();
}

const char *stw_type_name(int32_t type) {
    switch (type) {
        case 0: return "F32";
        case 1: return "F16";
        case 2: return "Q4_0";
        case 3: return "Q4_1";
        case 6: return "Q5_0";
        case 7: return "Q5_1";
        case 8: return "Q8_0";
        case 9: return "Q8_1";
        case 10: return "Q2_K";
        case 11: return "Q3_K";
        case 12: return "Q4_K";
        case 13: return "Q5_K";
        case 14: return "Q6_K";
        case 15: return "Q8_K";
        case 16: return "IQ2_XXS";
        case 17: return "IQ2_XS";
        case 18: return "IQ3_XXS";
        case 19: return "IQ1_S";
        case 20: return "IQ4_NL";
        case 21: return "IQ3_S";
        case 22: return "IQ2_S";
        case 23: return "IQ4_XS";
        case 24: return "I8";
        case 25: return "I16";
        case 26: return "I32";
        case 27: return "I64";
        case 28: return "F64";
        case 29: return "IQ1_M";
        case 30: return "BF16";
        case 34: return "TQ1_0";
        case 35: return "TQ2_0";
        default: return "unknown";
    }
}

int64_t stw_type_block_size(int32_t type) {
    switch (type) {
        case 0: case 1: case 24: case 25: case 26: case 27: case 28: case 30: return 1;
        case 2: case 3: case 6: case 7: case 8: case 9: case 20: return 32;
        case 10: case 11: case 12: case 13: case 14: case 15: case 16: case 17: case 18:
        case 19: case 21: case 22: case 23: case 29: case 34: case 35: return 256;
        default: return 0;
    }
}

int64_t stw_type_block_bytes(int32_t type) {
    switch (type) {
        case 0: return 4;
        case 1: return 2;
        case 2: return 18;
        case 3: return 20;
        case 6: return 22;
        case 7: return 24;
        case 8: return 34;
        case 9: return 36;
        case 10: return 84;
        case 11: return 110;
        case 12: return 144;
        case 13: return 176;
        case 14: return 210;
        case 15: return 292;
        case 16: return 66;
        case 17: return 74;
        case 18: return 98;
        case 19: return 50;
        case 20: return 18;
        case 21: return 110;
        case 22: return 82;
        case 23: return 136;
        case 24: return 1;
        case 25: return 2;
        case 26: return 4;
        case 27: return 8;
        case 28: return 8;
        case 29: return 56;
        case 30: return 2;
        case 34: return 54;
        case 35: return 66;
        default: return 0;
    }
}

bool stw_type_supported_weight(int32_t type) {
    switch (type) {
        case STW_TYPE_F32: case STW_TYPE_F16: case STW_TYPE_BF16: case STW_TYPE_Q8_0:
        case STW_TYPE_Q4_0: case STW_TYPE_Q4_K: case STW_TYPE_Q6_K:
            return true;
        default:
            return false;
    }
}

size_t stw_kv_row_bytes(int32_t kv_type, int64_t w) {
    if (w <= 0) return 0;
    switch (kv_type) {
        case STW_TYPE_F32: return (size_t)(4 * w);
        case STW_TYPE_F16: return (size_t)(2 * w);
        case STW_TYPE_Q8_0: return w % 32 == 0 ? (size_t)(w / 32 * 34) : 0;
        default: return 0;
    }
}
