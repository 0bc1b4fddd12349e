// AVX2 helpers shared by the GEMM paths (x86-64 only). Compiled for avx2+fma whatever the
// build's -march (SKEIN_NATIVE=OFF builds for baseline x86-64): callers enter them only after
// checking the CPU.
#pragma once

#if defined(__x86_64__)
#include <cstdint>

#include "kernels/intrinsics.h"

#define SKEIN_AVX2 __attribute__((target("avx2,fma")))

namespace skein {

// In-place transpose of the 8x8 block held in v[0..7] (v[r] = row r): unpack pairs of rows,
// shuffle 2x2 blocks of pairs, then swap 128-bit halves.
SKEIN_AVX2 inline void transpose_8x8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int i = 0; i < 2; ++i) {
    const int r = 4 * i;                                     // rows r..r+3
    u[r + 0] = _mm256_shuffle_ps(t[r], t[r + 2], 0x44);      // column 0 | column 4
    u[r + 1] = _mm256_shuffle_ps(t[r], t[r + 2], 0xEE);      // column 1 | column 5
    u[r + 2] = _mm256_shuffle_ps(t[r + 1], t[r + 3], 0x44);  // column 2 | column 6
    u[r + 3] = _mm256_shuffle_ps(t[r + 1], t[r + 3], 0xEE);  // column 3 | column 7
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x20);
    v[c + 4] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x31);
  }
}

// round_to_bf16 of 8 floats at once, bit for bit the same.
SKEIN_AVX2 inline __m256 round8_to_bf16(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i up = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  const __m256 high = _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(0xffff0000u)));
  const __m256 rounded = _mm256_and_ps(_mm256_castsi256_ps(up), high);
  // NaN: set the quiet bit and keep the high half, as round_to_bf16 does
  const __m256 quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x00400000));
  const __m256 nan = _mm256_and_ps(_mm256_or_ps(v, quiet), high);
  return _mm256_blendv_ps(rounded, nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// The epilogue of the 32-column AVX-512 kernels (avx512_12x32, avx512bf16_12x32, amx_bf16_32x32):
// one row of the C tile at cr = its product (two zmm halves) [+ C if load_c] [+ bias (32)], in
// every kernel's summation order, stored. Inlined into each kernel (their targets include
// avx512f).
__attribute__((target("avx512f"), always_inline)) inline void store_row_32(float* cr, __m512 v0,
                                                                           __m512 v1, bool load_c,
                                                                           const float* bias) {
  if (load_c) {
    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));
    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
  }
  if (bias) {
    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bias));
    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bias + 16));
  }
  _mm512_storeu_ps(cr, v0);
  _mm512_storeu_ps(cr + 16, v1);
}

}  // namespace skein

#endif  // __x86_64__
