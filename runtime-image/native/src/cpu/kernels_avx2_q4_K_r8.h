// The AVX2 / AVX-VNNI Q4_K R8 kernel (r8_fn) over the panel layout of repack_q4_K.cpp. Included
// by kernels_avx2.cpp just before its kernel set, so kernels_avx2_vnni.cpp (STW_CPU_VNNI) gets its
// own copy with dpbusd; both sets compute the same integers and the same float operations in the
// same order, so they agree bit for bit.
//
// One 32-byte load of a sub-block's nibbles holds 4 columns of each of the 8 rows per nibble
// half (row r in bytes 4r..4r+3), so against a 4-byte activation broadcast the int8 dot leaves
// row r's sum in int32 lane r: no horizontal sums, and one activation load feeds 8 rows. Per
// activation vector and sub-block s the float work is two FMAs for all 8 rows into one
// accumulator: acc += float(dot) * (d * sc_s) * dx_s, then acc -= (dmin * m_s) * (dx_s * sum(x_s))
// (one accumulator per vector keeps the 8 x 4 tile in registers: with a separate one for the mins
// it spilled them, and prefill ran ~10% slower). The activation block sums are taken once per
// super-block and vector (in the kernel: the caller passes plain quantize_x output). A tile is
// 8 rows x up to 4 vectors sharing each nibble load and the scale decoding; every vector runs
// the same operations in the same order whatever the tile, so a vector's result does not depend
// on nx.
//
// Included inside namespace stw_cpu, after kernels_avx2.cpp's helpers (load32, mul_sum_us8,
// hsum8_epi32); not a standalone header.
#pragma once

namespace {

constexpr size_t kQ4KR8Block = 8 * sizeof(block_q4_K);  // one 256-column super-block of a panel
// Software prefetch distance of the decode tile (nx = 1). stw_bench_kernels --q4k-r8, 2048x5632
// from DRAM, one thread, Zen 5, a shared machine (GB/s, best of 2-4 runs): none 30.7, 512 B 27.2,
// 1 KiB 29.8, 2 KiB 32.3, 4 KiB 34.6, 6 KiB 36.4, 8 KiB 37.9, 12 KiB 36.6, 16 KiB 35.7; in cache
// no change (38-40 either way). Short distances lose, as the row kernels' 1 KiB prefetch did.
constexpr int kQ4KR8Prefetch = 8192;

inline __m256i q4kr8_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// The 8 rows' 6-bit scales and mins of one super-block as bytes: out[8s + r] the scale of
// sub-block s of row r, out[64 + 8s + r] its min (see repack_q4_K.cpp for the packed form).
inline void q4kr8_scales(const uint8_t *p, uint8_t *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i l0 = load32(p + 32), l1 = load32(p + 64), h = load32(p + 96);
    // 16-bit shifts: the masks drop the bits that cross into the neighbouring byte.
    const __m256i sa = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
    const __m256i sb = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                       _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
    const __m256i ma = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(h, m30));
    const __m256i mb = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
    _mm256_store_si256((__m256i *)out, sa);
    _mm256_store_si256((__m256i *)(out + 32), sb);
    _mm256_store_si256((__m256i *)(out + 64), ma);
    _mm256_store_si256((__m256i *)(out + 96), mb);
}

// 8 rows x NX activation vectors. PRE: the activation scales dx and the products dx * sum(x) of
// each block come from the caller's table (dot_pre_fn's layout: per vector pre + j * ps, per
// super-block 8 scales then 8 products), built once per activation vector and task instead of
// once per panel; the products are the same float multiplications the kernel does without it, so
// both forms give the same bits.
template <int NX, bool PRE>
void q4kr8_tile(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, const float *pre, int64_t ps,
                float *out, int64_t os) {
    const int64_t nb = cols / QK_K;
    const block_q8_x *xb[NX];
    for (int j = 0; j < NX; j++) xb[j] = (const block_q8_x *)(x + (size_t)j * xs);
    __m256 acc[NX];
    for (int j = 0; j < NX; j++) acc[j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones8 = _mm256_set1_epi8(1);
    alignas(32) uint8_t scm[128];
    alignas(32) float sx[NX][8];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = w + (size_t)b * kQ4KR8Block;
        const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        const __m256 dmv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)));
        q4kr8_scales(p, scm);
        for (int j = 0; j < NX && !PRE; j++) {
            const block_q8_x *xq = xb[j] + 8 * b;
            __m256i t[8];
            for (int s = 0; s < 8; s++) t[s] = mul_sum_us8(ones8, load32(xq[s].qs));
            _mm256_store_ps(sx[j], _mm256_cvtepi32_ps(hsum8_epi32(t)));  // exact: |sum| <= 32 * 128
        }
        for (int s = 0; s < 8; s++) {
            const uint8_t *q = p + 128 + 128 * s;
            if (NX == 1) {
                // Decode: each of the super-block's 18 cache lines is prefetched kQ4KR8Prefetch
                // bytes ahead (into the next panels, which a decode walks next).
                if (s == 0) {
                    _mm_prefetch((const char *)p + kQ4KR8Prefetch, _MM_HINT_T0);
                    _mm_prefetch((const char *)p + kQ4KR8Prefetch + 64, _MM_HINT_T0);
                }
                _mm_prefetch((const char *)q + kQ4KR8Prefetch, _MM_HINT_T0);
                _mm_prefetch((const char *)q + kQ4KR8Prefetch + 64, _MM_HINT_T0);
            }
            const int8_t *xs8[NX];
            for (int j = 0; j < NX; j++) xs8[j] = xb[j][8 * b + s].qs;
            __m256i id[NX];
#if defined(STW_CPU_VNNI)
            // Two dpbusd chains per vector where registers allow (decode), one in the 8 x 4 tile.
            constexpr bool kTwo = NX <= 2;
            __m256i id2[NX];
            for (int j = 0; j < NX; j++) id[j] = id2[j] = _mm256_setzero_si256();
            for (int v = 0; v < 4; v++) {
                const __m256i qv = load32(q + 32 * v);
                const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                for (int j = 0; j < NX; j++) {
                    id[j] = _mm256_dpbusd_avx_epi32(id[j], lo, q4kr8_bcast4(xs8[j] + 4 * v));
                    if (kTwo) id2[j] = _mm256_dpbusd_avx_epi32(id2[j], hi, q4kr8_bcast4(xs8[j] + 16 + 4 * v));
                    else id[j] = _mm256_dpbusd_avx_epi32(id[j], hi, q4kr8_bcast4(xs8[j] + 16 + 4 * v));
                }
            }
            if (kTwo) {
                for (int j = 0; j < NX; j++) id[j] = _mm256_add_epi32(id[j], id2[j]);
            }
#else
            // The 8 maddubs of a sub-block summed in int16: each lane is at most 8 * 2 * 15 * 128
            // = 30720 in magnitude, so nothing saturates and the integers equal dpbusd's.
            __m256i s16[NX];
            for (int j = 0; j < NX; j++) s16[j] = _mm256_setzero_si256();
            for (int v = 0; v < 4; v++) {
                const __m256i qv = load32(q + 32 * v);
                const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                for (int j = 0; j < NX; j++) {
                    const __m256i a = _mm256_maddubs_epi16(lo, q4kr8_bcast4(xs8[j] + 4 * v));
                    const __m256i c = _mm256_maddubs_epi16(hi, q4kr8_bcast4(xs8[j] + 16 + 4 * v));
                    s16[j] = _mm256_add_epi16(s16[j], _mm256_add_epi16(a, c));
                }
            }
            for (int j = 0; j < NX; j++) id[j] = _mm256_madd_epi16(s16[j], _mm256_set1_epi16(1));
#endif
            const __m128i sc8 = _mm_loadl_epi64((const __m128i *)(scm + 8 * s));
            const __m128i m8 = _mm_loadl_epi64((const __m128i *)(scm + 64 + 8 * s));
            const __m256 dsc = _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc8)));
            const __m256 mdf = _mm256_mul_ps(dmv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m8)));
            for (int j = 0; j < NX; j++) {
                if (PRE) {
                    const float *pj = pre + j * ps + 16 * b;
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(id[j]), _mm256_mul_ps(dsc, _mm256_broadcast_ss(pj + s)),
                                             acc[j]);
                    acc[j] = _mm256_fnmadd_ps(mdf, _mm256_broadcast_ss(pj + 8 + s), acc[j]);
                } else {
                    const __m256 dx = _mm256_set1_ps(xb[j][8 * b + s].d);
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(id[j]), _mm256_mul_ps(dsc, dx), acc[j]);
                    acc[j] = _mm256_fnmadd_ps(mdf, _mm256_mul_ps(dx, _mm256_broadcast_ss(&sx[j][s])), acc[j]);
                }
            }
        }
    }
    for (int j = 0; j < NX; j++) _mm256_storeu_ps(out + j * os, acc[j]);
}

template <bool PRE>
void q4kr8_tiles(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, const float *pre, int64_t ps,
                 float *out, int64_t os) {
    int j = 0;
    for (; j + 4 <= nx; j += 4) q4kr8_tile<4, PRE>(cols, w, x + (size_t)j * xs, xs, pre + j * ps, ps, out + j * os, os);
    switch (nx - j) {
        case 3: q4kr8_tile<3, PRE>(cols, w, x + (size_t)j * xs, xs, pre + j * ps, ps, out + j * os, os); break;
        case 2: q4kr8_tile<2, PRE>(cols, w, x + (size_t)j * xs, xs, pre + j * ps, ps, out + j * os, os); break;
        case 1: q4kr8_tile<1, PRE>(cols, w, x + (size_t)j * xs, xs, pre + j * ps, ps, out + j * os, os); break;
        default: break;
    }
}

void q4_K_r8_avx2(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    q4kr8_tiles<false>(cols, w, x, xs, nx, nullptr, 0, out, os);
}

// r8_pre_fn: the same with the activation table from the caller (decode: once per matmul; prefill:
// once per task and vector).
void q4_K_r8_pre_avx2(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, const float *pre,
                      int64_t ps, float *out, int64_t os) {
    q4kr8_tiles<true>(cols, w, x, xs, nx, pre, ps, out, os);
}

}  // namespace
