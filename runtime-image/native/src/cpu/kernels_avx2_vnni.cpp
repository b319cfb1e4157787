// The "avx2-vnni" kernel set: kernels_avx2.cpp compiled once more with AVX-VNNI, whose dpbusd
// replaces each maddubs + madd pair of the int8 block dots (one instruction instead of two, and no
// int16 intermediate). The integers are the same, so the set agrees with "avx2" bit for bit. Only
// reached through kernel_set_avx2_vnni after cpuid confirmed AVX2, FMA, F16C and AVX-VNNI.
#define STW_CPU_VNNI 1
#define STW_CPU_SET_SYMBOL kernel_set_avx2_vnni
#define STW_CPU_SET_NAME "avx2-vnni"
#include "kernels_avx2.cpp"
