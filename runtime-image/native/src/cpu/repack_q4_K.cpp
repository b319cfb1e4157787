// The Q4_K R8 layout: 8 consecutive Q4_K rows interleaved into one panel of the same size, so that
// one 32-byte load feeds all 8 rows of the AVX2 kernel (kernels_avx2_q4_K_r8.h) and each int32
// lane of its int8 dot belongs to one row. Plain C++: it runs once per tensor at load time.
//
// Per 256 columns (super-block b) the panel holds 8 x 144 = 1152 bytes at b * 1152:
//   [0, 16)      d of rows 0..7 (fp16, as in the source blocks)
//   [16, 32)     dmin of rows 0..7
//   [32, 64)     scales, low 4 bits: byte 8s + r (s < 4) = lo4(sc[s][r]) | lo4(sc[s + 4][r]) << 4
//   [64, 96)     mins, low 4 bits, the same way
//   [96, 128)    the top 2 bits: byte 8s + r (s < 4) = hi2(sc[s][r]) | hi2(sc[s + 4][r]) << 2 |
//                hi2(m[s][r]) << 4 | hi2(m[s + 4][r]) << 6
//   [128, 1152)  nibbles: sub-block s (32 columns) at 128 + 128 s, four 32-byte groups v; in group
//                v, byte 4r + k holds column 4v + k of row r in its low nibble and column
//                16 + 4v + k in its high nibble
// where sc[s][r] and m[s][r] are the 6-bit scale and min of sub-block s of row r. Every bit of
// the 8 source blocks is kept (their 12 scale bytes are 16 six-bit fields), so unpack restores
// the source bytes exactly, whatever they hold.
#include "quants.h"

namespace stw_cpu {

namespace {

constexpr int kRows = 8;
constexpr size_t kPanelBlock = kRows * sizeof(block_q4_K);  // 1152

// Nibble of column c (0..255) of a Q4_K block: per 64 columns 32 bytes, low nibbles first.
inline int q4k_nibble(const uint8_t *qs, int c) {
    return (qs[32 * (c / 64) + c % 32] >> (4 * ((c % 64) / 32))) & 0xF;
}

// ORs v into the (zeroed) nibble of column c.
inline void q4k_or_nibble(uint8_t *qs, int c, int v) {
    qs[32 * (c / 64) + c % 32] |= (uint8_t)(v << (4 * ((c % 64) / 32)));
}

}  // namespace

void pack_q4_K_r8(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const int64_t nb = cols / QK_K;
    const size_t row_bytes = (size_t)nb * sizeof(block_q4_K);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *p = dst + (size_t)b * kPanelBlock;
        uint8_t sc[8][kRows], m[8][kRows];
        for (int r = 0; r < kRows; r++) {
            const block_q4_K *blk = (const block_q4_K *)(src + r * row_bytes) + b;
            memcpy(p + 2 * r, &blk->d, 2);
            memcpy(p + 16 + 2 * r, &blk->dmin, 2);
            for (int s = 0; s < 8; s++) q4k_scale_min(s, blk->scales, &sc[s][r], &m[s][r]);
            for (int s = 0; s < 8; s++) {
                for (int v = 0; v < 4; v++) {
                    for (int k = 0; k < 4; k++) {
                        const int lo = q4k_nibble(blk->qs, 32 * s + 4 * v + k);
                        const int hi = q4k_nibble(blk->qs, 32 * s + 16 + 4 * v + k);
                        p[128 + 128 * s + 32 * v + 4 * r + k] = (uint8_t)(lo | hi << 4);
                    }
                }
            }
        }
        for (int s = 0; s < 4; s++) {
            for (int r = 0; r < kRows; r++) {
                const int i = 8 * s + r;
                p[32 + i] = (uint8_t)((sc[s][r] & 0xF) | (sc[s + 4][r] & 0xF) << 4);
                p[64 + i] = (uint8_t)((m[s][r] & 0xF) | (m[s + 4][r] & 0xF) << 4);
                p[96 + i] = (uint8_t)((sc[s][r] >> 4) | (sc[s + 4][r] >> 4) << 2 | (m[s][r] >> 4) << 4 |
                                      (m[s + 4][r] >> 4) << 6);
            }
        }
    }
}

void unpack_q4_K_r8(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const int64_t nb = cols / QK_K;
    const size_t row_bytes = (size_t)nb * sizeof(block_q4_K);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = src + (size_t)b * kPanelBlock;
        for (int r = 0; r < kRows; r++) {
            block_q4_K *blk = (block_q4_K *)(dst + r * row_bytes) + b;
            memcpy(&blk->d, p + 2 * r, 2);
            memcpy(&blk->dmin, p + 16 + 2 * r, 2);
            memset(blk->qs, 0, sizeof blk->qs);
            uint8_t sc[8], m[8];
            for (int s = 0; s < 4; s++) {
                const int i = 8 * s + r;
                const uint8_t h = p[96 + i];
                sc[s] = (uint8_t)((p[32 + i] & 0xF) | (h & 3) << 4);
                sc[s + 4] = (uint8_t)((p[32 + i] >> 4) | ((h >> 2) & 3) << 4);
                m[s] = (uint8_t)((p[64 + i] & 0xF) | ((h >> 4) & 3) << 4);
                m[s + 4] = (uint8_t)((p[64 + i] >> 4) | ((h >> 6) & 3) << 4);
            }
            // The inverse of get_scale_min_k4 (q4k_scale_min): sub-blocks 0-3 in the low 6 bits
            // of bytes 0-7, 4-7 split over bytes 8-11 and the top 2 bits of bytes 0-7.
            for (int j = 0; j < 4; j++) {
                blk->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
                blk->scales[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
                blk->scales[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
            }
            for (int s = 0; s < 8; s++) {
                for (int v = 0; v < 4; v++) {
                    for (int k = 0; k < 4; k++) {
                        const uint8_t q = p[128 + 128 * s + 32 * v + 4 * r + k];
                        q4k_or_nibble(blk->qs, 32 * s + 4 * v + k, q & 0xF);
                        q4k_or_nibble(blk->qs, 32 * s + 16 + 4 * v + k, q >> 4);
                    }
                }
            }
        }
    }
}

}  // namespace stw_cpu
