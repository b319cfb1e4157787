// The Q4_0 R8 layout (see quants.h r8_fn): 8 rows of Q4_0 as one panel of the same size.
//
// Per 32-column block b the panel holds 144 bytes (8 x 18, the 8 rows' blocks b): first the 8 rows'
// fp16 scales (16 bytes, row r at 2r), then their nibble bytes in 4-byte chunks, chunk v (0..3) of
// rows 0..7 (32 bytes: row r's qs[4v..4v+3] at 4r). A Q4_0 byte qs[k] holds element k in its low
// nibble and element k + 16 in its high one, so one 32-byte load of chunk v, masked, is the 8 rows'
// elements 4v..4v+3 (row r in int32 lane r), and shifted by 4 and masked their elements 16+4v..19+4v:
// an int8 dot against one 4-byte activation broadcast leaves each row's partial sum in its own lane.
// The nibbles keep their GGUF values (0..15, offset 8): the kernels subtract 8 * sum(x) per block.
#include "quants.h"

namespace stw_cpu {

namespace {
constexpr size_t kQ4PanelBlock = 8 * sizeof(block_q4_0);  // 144 bytes per block column
}  // namespace

void pack_q4_0_r8(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const int64_t nb = cols / QK;
    const size_t rb = (size_t)nb * sizeof(block_q4_0);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *o = dst + (size_t)b * kQ4PanelBlock;
        for (int r = 0; r < 8; r++) {
            const uint8_t *blk = src + (size_t)r * rb + (size_t)b * sizeof(block_q4_0);
            memcpy(o + 2 * r, blk, 2);
            for (int v = 0; v < 4; v++) memcpy(o + 16 + 32 * v + 4 * r, blk + 2 + 4 * v, 4);
        }
    }
}

void unpack_q4_0_r8(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const int64_t nb = cols / QK;
    const size_t rb = (size_t)nb * sizeof(block_q4_0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = src + (size_t)b * kQ4PanelBlock;
        for (int r = 0; r < 8; r++) {
            uint8_t *blk = dst + (size_t)r * rb + (size_t)b * sizeof(block_q4_0);
            memcpy(blk, p + 2 * r, 2);
            for (int v = 0; v < 4; v++) memcpy(blk + 2 + 4 * v, p + 16 + 32 * v + 4 * r, 4);
        }
    }
}

}  // namespace stw_cpu
