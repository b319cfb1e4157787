// The portable Q4_K R8 kernel (r8_fn): plain C++ over the panel layout of repack_q4_K.cpp,
// included by kernels_portable.cpp. Each activation vector is computed on its own in one fixed
// order, so its result does not depend on nx. Per sub-block s of 32 columns and row r:
//   d[r] * sc[s][r] * dx_s * sum(q * x) - dmin[r] * m[s][r] * dx_s * sum(x)
// with the two terms summed separately over the row and subtracted at the end.
#pragma once

#include "quants.h"

namespace stw_cpu {

namespace {

void q4_K_r8_portable(int64_t cols, const uint8_t *w, const uint8_t *x, size_t xs, int nx, float *out, int64_t os) {
    const int64_t nb = cols / QK_K;
    for (int j = 0; j < nx; j++) {
        const block_q8_x *xb = (const block_q8_x *)(x + (size_t)j * xs);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, macc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *p = w + (size_t)b * 8 * sizeof(block_q4_K);
            float d[8], dmin[8];
            uint8_t sc[8][8], m[8][8];  // [sub-block][row]
            for (int r = 0; r < 8; r++) {
                uint16_t h;
                memcpy(&h, p + 2 * r, 2);
                d[r] = fp16_to_fp32(h);
                memcpy(&h, p + 16 + 2 * r, 2);
                dmin[r] = fp16_to_fp32(h);
            }
            for (int i = 0; i < 32; i++) {
                const int s = i / 8, r = i % 8;
                const uint8_t hb = p[96 + i];
                sc[s][r] = (uint8_t)((p[32 + i] & 0xF) | (hb & 3) << 4);
                sc[s + 4][r] = (uint8_t)((p[32 + i] >> 4) | ((hb >> 2) & 3) << 4);
                m[s][r] = (uint8_t)((p[64 + i] & 0xF) | ((hb >> 4) & 3) << 4);
                m[s + 4][r] = (uint8_t)((p[64 + i] >> 4) | ((hb >> 6) & 3) << 4);
            }
            for (int s = 0; s < 8; s++) {
                const block_q8_x &xq = xb[b * 8 + s];
                const uint8_t *q = p + 128 + 128 * s;
                int32_t dot[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int32_t sx = 0;
                for (int k = 0; k < 32; k++) sx += xq.qs[k];
                for (int v = 0; v < 4; v++) {
                    for (int r = 0; r < 8; r++) {
                        for (int k = 0; k < 4; k++) {
                            const uint8_t qb = q[32 * v + 4 * r + k];
                            dot[r] += (qb & 0xF) * xq.qs[4 * v + k] + (qb >> 4) * xq.qs[16 + 4 * v + k];
                        }
                    }
                }
                const float dxs = xq.d * (float)sx;
                for (int r = 0; r < 8; r++) {
                    acc[r] += (float)dot[r] * (d[r] * (float)sc[s][r] * xq.d);
                    macc[r] += dmin[r] * (float)m[s][r] * dxs;
                }
            }
        }
        for (int r = 0; r < 8; r++) out[r + j * os] = acc[r] - macc[r];
    }
}

}  // namespace

}  // namespace stw_cpu
