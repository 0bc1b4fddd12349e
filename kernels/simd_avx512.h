// AVX-512 helpers shared by the GEMM paths (x86-64 only). Compiled for avx512f whatever the
// build's -march: callers enter them only after checking the CPU.
#pragma once

#if defined(__x86_64__)
#include "kernels/intrinsics.h"

#define SKEIN_AVX512 __attribute__((target("avx2,fma,avx512f")))

namespace skein {

// In-place transpose of the 16 x 16 dwords in v[0..15] (v[r] = row r).
SKEIN_AVX512 inline void transpose_16x16(__m512i v[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {  // 2x2 blocks of dwords
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // 4x4 blocks: pairs of dwords
    for (int h = 0; h < 2; ++h) {
      v[4 * i + 2 * h] = _mm512_unpacklo_epi64(t[4 * i + h], t[4 * i + 2 + h]);
      v[4 * i + 2 * h + 1] = _mm512_unpackhi_epi64(t[4 * i + h], t[4 * i + 2 + h]);
    }
  }
  // now v[4g + c] holds in its 128-bit lane l column 4l + c of rows 4g..4g+3: transpose the 4 x 4
  // lanes of v[c], v[4 + c], v[8 + c], v[12 + c], first between rows 4 apart, then 8 apart
  for (int i = 0; i < 16; ++i) t[i] = v[i];
  for (int g = 0; g < 16; g += 8)
    for (int i = 0; i < 4; ++i) {
      v[g + i] = _mm512_shuffle_i32x4(t[g + i], t[g + i + 4], 0x88);      // lanes 0, 2 | 0, 2
      v[g + i + 4] = _mm512_shuffle_i32x4(t[g + i], t[g + i + 4], 0xDD);  // lanes 1, 3 | 1, 3
    }
  for (int i = 0; i < 16; ++i) t[i] = v[i];
  for (int i = 0; i < 8; ++i) {
    v[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
  }
}

}  // namespace skein

#endif
