// The bf16 family of sgemm's kernels (MatmulPrecision::kBf16: bf16 operands, fp32 accumulation,
// vdpbf16ps), run by the same driver as the fp32 ones (gemm_driver.h), with bf16 packing:
//   - operands are rounded to bf16 as they are packed, and stored as pairs: one uint32 holds the
//     bf16 of k = 2q (low half) and k = 2q + 1 (high half), which is what vdpbf16ps multiplies;
//   - A panels: kMR rows, for each pair q the kMR rows' pairs one after another (broadcast);
//     B panels: kNR columns, for each pair q the kNR columns' pairs (two 512-bit loads);
//   - the microkernel: 12 x 32 accumulators in 24 zmm registers, one vdpbf16ps per zmm and pair.
// Two microkernels read the same packed panels: the AVX-512 BF16 one, and a portable one that
// computes what vdpbf16ps computes (per lane: acc += odd product, then acc += even product; both
// products exact in fp32), used where the CPU lacks the instruction (tests) and as the reference
// of bf16_kernel_check(). The AMX kernel (below) reads B panels packed the same way and A
// panels packed row-major.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "base/aligned.h"
#include "base/check.h"
#include "kernels/gemm.h"
#include "kernels/gemm_common.h"
#include "kernels/gemm_driver.h"

#if defined(__x86_64__)
#define SKEIN_BF16_X86 1
#include "kernels/simd_avx2.h"
#include "kernels/simd_avx512.h"
#define SKEIN_AVX512BF16 __attribute__((target("avx512f,avx512bf16")))
#endif

namespace skein {
namespace {

constexpr int kMR = kSgemmBf16MR;
constexpr int kNR = kSgemmBf16NR;
static_assert(kMR == 12 && kNR == 32, "the kernels and the packing are written for 12 x 32");
// With the driver's blocks (kSgemmKC = 384), a B micro-panel is 192 pairs x 32 x 4 B = 24 KiB and
// an A micro-panel 9 KiB: about a 32 KiB L1d together. K blocks of 256 for the bf16 kernels only
// (16 + 6 KiB) measured no faster on a Zen 4 (bench_kernels, 2 alternating rounds: within 1-4%,
// mostly slower), so they share the fp32 kernels' blocks.

using gemm_detail::View;

// How the full panels are packed: scalar code (any CPU), AVX2, or AVX-512 BF16 (for the vdpbf16ps
// kernel only; see pack_a_panel_avx512bf16).
enum Pack : int { kPackScalar, kPackAvx2, kPackAvx512Bf16 };

uint32_t bf16_bits(float x) {
  const float r = round_to_bf16(x);
  uint32_t u;
  std::memcpy(&u, &r, sizeof u);
  return u >> 16;
}

float bf16_value(uint32_t h) {
  const uint32_t u = h << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// One packed pair from two values (k even, k odd) of op(A) or op(B).
uint32_t pair_of(float even, float odd) {
  return bf16_bits(even) | bf16_bits(odd) << 16;
}

#ifdef SKEIN_BF16_X86
// Pairs from two rows of 8 (k and k + 1 in the same lanes): lane i = bf16(even[i]) | bf16(odd[i])
// << 16.
SKEIN_AVX2 inline __m256i pairs_across(__m256 even, __m256 odd) {
  const __m256i lo = _mm256_srli_epi32(_mm256_castps_si256(round8_to_bf16(even)), 16);
  const __m256i hi = _mm256_castps_si256(round8_to_bf16(odd));  // low half already zero
  return _mm256_or_si256(lo, hi);
}

// Pairs from 16 consecutive k (p[0..15]): lane i = bf16(p[2i]) | bf16(p[2i+1]) << 16, i.e. the
// 16 bf16 values in order.
SKEIN_AVX2 inline __m256 pairs_along(const float* p) {
  const __m256i lo = _mm256_srli_epi32(_mm256_castps_si256(round8_to_bf16(_mm256_loadu_ps(p))), 16);
  const __m256i hi =
      _mm256_srli_epi32(_mm256_castps_si256(round8_to_bf16(_mm256_loadu_ps(p + 8))), 16);
  // packus works per 128-bit lane: [lo0-3 hi0-3 | lo4-7 hi4-7]; the permute restores the order
  const __m256i packed = _mm256_packus_epi32(lo, hi);
  return _mm256_castsi256_ps(_mm256_permute4x64_epi64(packed, 0xD8));
}
#endif

#ifdef SKEIN_BF16_X86
// The AVX2 parts of the packing, for one full panel (kMR rows of op(A), or kNR columns of
// op(B)); each packs the pairs it can from the first and returns how many, the caller packs the
// rest. Separate functions, so that only they are compiled for AVX2 (the scalar packing must run
// on any x86-64).
SKEIN_AVX2 __attribute__((noinline)) int pack_a_panel_avx2(const View& a, long row0, int p0, int kc,
                                                           uint32_t* dst) {
  int q = 0;
  if (a.cs == 1) {
    // rows contiguous in k: 8 pairs of each row at a time, transposed to pair-major
    for (; 2 * q + 16 <= kc; q += 8) {
      __m256 v[8], w[8];
      for (int r = 0; r < 8; ++r) v[r] = pairs_along(&a.data[(row0 + r) * a.rs + p0 + 2 * q]);
      for (int r = 0; r < 4; ++r) w[r] = pairs_along(&a.data[(row0 + 8 + r) * a.rs + p0 + 2 * q]);
      for (int r = 4; r < 8; ++r) w[r] = _mm256_setzero_ps();
      transpose_8x8(v);
      transpose_8x8(w);
      for (int i = 0; i < 8; ++i) {
        uint32_t* d = dst + long(q + i) * kMR;
        _mm256_storeu_ps(reinterpret_cast<float*>(d), v[i]);
        _mm_storeu_ps(reinterpret_cast<float*>(d + 8), _mm256_castps256_ps128(w[i]));
      }
    }
  } else if (a.rs == 1) {
    // for one k, the rows contiguous: pairs across two k, 8 + 4 rows (masked: no read past row 12)
    const __m256i four = _mm256_setr_epi32(-1, -1, -1, -1, 0, 0, 0, 0);
    for (; 2 * q + 2 <= kc; ++q) {
      const float* s0 = a.data + (p0 + 2 * q) * a.cs + row0;
      const float* s1 = s0 + a.cs;
      uint32_t* d = dst + long(q) * kMR;
      const __m256i head = pairs_across(_mm256_loadu_ps(s0), _mm256_loadu_ps(s1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), head);
      const __m256i tail =
          pairs_across(_mm256_maskload_ps(s0 + 8, four), _mm256_maskload_ps(s1 + 8, four));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 8), _mm256_castsi256_si128(tail));
    }
  }
  return q;
}

SKEIN_AVX2 __attribute__((noinline)) int pack_b_panel_avx2(const View& b, int p0, int kc, long col0,
                                                           uint32_t* dst) {
  int q = 0;
  if (b.cs == 1) {
    // rows of op(B) contiguous in j: pairs across two rows, 8 columns at a time
    for (; 2 * q + 2 <= kc; ++q) {
      const float* s0 = b.data + (p0 + 2 * q) * b.rs + col0;
      const float* s1 = s0 + b.rs;
      for (int h = 0; h < kNR; h += 8)
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + long(q) * kNR + h),
                           pairs_across(_mm256_loadu_ps(s0 + h), _mm256_loadu_ps(s1 + h)));
    }
  } else if (b.rs == 1) {
    // columns contiguous in k (B stored transposed): 8 pairs of 8 columns, transposed
    for (; 2 * q + 16 <= kc; q += 8)
      for (int h = 0; h < kNR; h += 8) {
        __m256 v[8];
        for (int c = 0; c < 8; ++c)
          v[c] = pairs_along(&b.data[(p0 + 2 * q) + (col0 + h + c) * b.cs]);
        transpose_8x8(v);
        for (int i = 0; i < 8; ++i)
          _mm256_store_ps(reinterpret_cast<float*>(dst + long(q + i) * kNR + h), v[i]);
      }
  }
  return q;
}

// The AVX-512 BF16 parts of the packing, for the vdpbf16ps and the AMX kernels (run_bf16 and
// blocked_bf16_amx check the CPU has AVX-512 BF16 and BW): the same panels as the AVX2 parts, 16
// pairs per vcvtne2ps2bf16. The instruction rounds to nearest even and quiets NaN as
// round_to_bf16 does, but turns every subnormal input into a zero of its sign, while
// round_to_bf16 rounds the largest ones (from 0x007f8000) up to bf16's smallest normal, which
// vdpbf16ps reads as a number. So a group of 16 with a subnormal goes through the AVX2 parts'
// rounding (pairs_along, pairs_across) instead, and the panels are the AVX2 parts' bit for bit
// (VectorAndScalarPackingGiveTheSameBits). Each packs the whole 16-pair groups it can and hands
// the rest of the panel to the AVX2 part.
#define SKEIN_AVX512BF16_PACK __attribute__((target("avx2,fma,avx512f,avx512bw,avx512bf16")))

// The lanes of v that hold a subnormal (exponent 0, mantissa not 0).
SKEIN_AVX512BF16_PACK inline __mmask16 subnormal_lanes(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  return _mm512_mask_test_epi32_mask(~_mm512_test_epi32_mask(u, _mm512_set1_epi32(0x7f800000)), u,
                                     _mm512_set1_epi32(0x007fffff));
}

// 16 pairs from 32 consecutive k (p[0..31]): word i = bf16(p[i]).
SKEIN_AVX512BF16_PACK inline __m512i pairs_along_16(const float* p) {
  const __m512 lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
  if (!(subnormal_lanes(lo) | subnormal_lanes(hi))) return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(pairs_along(p))),
                            _mm256_castps_si256(pairs_along(p + 16)), 1);
}

// 16 pairs from two rows (k and k + 1 in the same lanes): dword i = bf16(even[i]) |
// bf16(odd[i]) << 16.
SKEIN_AVX512BF16_PACK inline __m512i pairs_across_16(__m512 even, __m512 odd) {
  if (subnormal_lanes(even) | subnormal_lanes(odd)) {
    const __m512i e = _mm512_castps_si512(even), o = _mm512_castps_si512(odd);
    const __m256i lo = pairs_across(_mm256_castsi256_ps(_mm512_castsi512_si256(e)),
                                    _mm256_castsi256_ps(_mm512_castsi512_si256(o)));
    const __m256i hi = pairs_across(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(e, 1)),
                                    _mm256_castsi256_ps(_mm512_extracti64x4_epi64(o, 1)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  // words [even 0..15 | odd 0..15], interleaved to even 0, odd 0, even 1, ...
  const __m512i words = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
  const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(order, words);
}

SKEIN_AVX512BF16_PACK __attribute__((noinline)) int pack_a_panel_avx512bf16(const View& a,
                                                                            long row0, int p0,
                                                                            int kc, uint32_t* dst) {
  int q = 0;
  constexpr __mmask16 kRows = (1u << kMR) - 1;
  if (a.cs == 1) {
    // rows contiguous in k: 16 pairs of each row at a time, transposed to pair-major
    for (; 2 * q + 32 <= kc; q += 16) {
      __m512i v[16];
      for (int r = 0; r < kMR; ++r) v[r] = pairs_along_16(&a.data[(row0 + r) * a.rs + p0 + 2 * q]);
      for (int r = kMR; r < 16; ++r) v[r] = _mm512_setzero_si512();
      transpose_16x16(v);
      for (int i = 0; i < 16; ++i) _mm512_mask_storeu_epi32(dst + long(q + i) * kMR, kRows, v[i]);
    }
  } else if (a.rs == 1) {
    // for one k, the rows contiguous: pairs across two k, 12 rows (masked: no read past row 12)
    for (; 2 * q + 2 <= kc; ++q) {
      const float* s0 = a.data + (p0 + 2 * q) * a.cs + row0;
      const __m512 even = _mm512_maskz_loadu_ps(kRows, s0);
      const __m512 odd = _mm512_maskz_loadu_ps(kRows, s0 + a.cs);
      _mm512_mask_storeu_epi32(dst + long(q) * kMR, kRows, pairs_across_16(even, odd));
    }
  }
  return q + pack_a_panel_avx2(a, row0, p0 + 2 * q, kc - 2 * q, dst + long(q) * kMR);
}

// The full panels of op(A)[i0:i0+mc, p0:p0+kc] where its rows are contiguous for one k (A stored
// transposed, a.rs == 1: dY^T in a weight gradient), their whole pairs (kc / 2, returned), the
// same pairs as pack_a_panel_avx512bf16's. Panel by panel, each k would read a 48-byte piece of a
// row kc rows apart, page after page, faster than the hardware fetches it (in a weight gradient
// at the char shapes this pack took 28% of the kernel's time); here 8 pairs at a time are
// packed across all the panels, so each source row is read as one stream, and the next 8 pairs'
// rows are fetched meanwhile.
SKEIN_AVX512BF16_PACK __attribute__((noinline)) int pack_a_block_transposed_avx512bf16(
    const View& a, int i0, int mc, int p0, int kc, uint32_t* dst) {
  constexpr __mmask16 kRows = (1u << kMR) - 1;
  constexpr int kStep = 8;  // pairs per visit of a panel: 8 x 48 B of it written together
  const int kq = (kc + 1) / 2, whole = kc / 2, panels = mc / kMR;
  const float* src = a.data + long(p0) * a.cs + i0;
  for (int q0 = 0; q0 < whole; q0 += kStep) {
    const int qn = std::min(kStep, whole - q0);
    const int next = std::min(kStep, whole - q0 - qn);  // pairs of the next visit
    for (int t = 0; t < panels; ++t) {
      const float* s = src + long(2 * q0) * a.cs + t * kMR;
      for (int k = 0; k < 2 * next; ++k)
        _mm_prefetch(reinterpret_cast<const char*>(s + (2 * kStep + k) * a.cs), _MM_HINT_T0);
      uint32_t* d = dst + long(t) * kMR * kq + long(q0) * kMR;
      for (int q = 0; q < qn; ++q) {
        const __m512 even = _mm512_maskz_loadu_ps(kRows, s + long(2 * q) * a.cs);
        const __m512 odd = _mm512_maskz_loadu_ps(kRows, s + long(2 * q + 1) * a.cs);
        _mm512_mask_storeu_epi32(d + q * kMR, kRows, pairs_across_16(even, odd));
      }
    }
  }
  return whole;
}

SKEIN_AVX512BF16_PACK __attribute__((noinline)) int pack_b_panel_avx512bf16(const View& b, int p0,
                                                                            int kc, long col0,
                                                                            uint32_t* dst) {
  int q = 0;
  if (b.cs == 1) {
    // rows of op(B) contiguous in j: pairs across two rows, 16 columns at a time
    // The rows are read 128 bytes at a time, too little for the hardware to see streams: fetch
    // the rows 4 pairs ahead (past the panel's last k: the next panel's first rows).
    for (; 2 * q + 2 <= kc; ++q) {
      const float* s0 = b.data + (p0 + 2 * q) * b.rs + col0;
      const float* s1 = s0 + b.rs;
      const int ahead = 2 * q + 8;
      const float* f =
          ahead + 1 < kc ? s0 + 8 * b.rs : b.data + (p0 + ahead - kc) * b.rs + col0 + kNR;
      for (int r = 0; r < 2; ++r)
        for (int h = 0; h < kNR; h += 16)
          _mm_prefetch(reinterpret_cast<const char*>(f + r * b.rs + h), _MM_HINT_T0);
      for (int h = 0; h < kNR; h += 16)
        _mm512_storeu_si512(dst + long(q) * kNR + h,
                            pairs_across_16(_mm512_loadu_ps(s0 + h), _mm512_loadu_ps(s1 + h)));
    }
  } else if (b.rs == 1) {
    // columns contiguous in k (B stored transposed): 16 pairs of 16 columns, transposed; the
    // columns' next 32 k are fetched meanwhile (after the panel's last: the next panel's first)
    for (; 2 * q + 32 <= kc; q += 16)
      for (int h = 0; h < kNR; h += 16) {
        __m512i v[16];
        const bool last = 2 * q + 64 > kc;
        const float* f = last ? b.data + p0 + (col0 + kNR + h) * b.cs
                              : b.data + p0 + 2 * q + 32 + (col0 + h) * b.cs;
        for (int c = 0; c < 16; ++c) {
          _mm_prefetch(reinterpret_cast<const char*>(f + c * b.cs), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(f + c * b.cs + 16), _MM_HINT_T0);
        }
        for (int c = 0; c < 16; ++c)
          v[c] = pairs_along_16(&b.data[(p0 + 2 * q) + (col0 + h + c) * b.cs]);
        transpose_16x16(v);
        for (int i = 0; i < 16; ++i) _mm512_storeu_si512(dst + long(q + i) * kNR + h, v[i]);
      }
  }
  return q + pack_b_panel_avx2(b, p0 + 2 * q, kc - 2 * q, col0, dst + long(q) * kNR);
}
#endif

// Packs op(A)[i0:i0+mc, p0:p0+kc] into ceil(mc / kMR) panels of kMR x kq pairs (kq = ceil(kc / 2)):
// panel t, pair q, row r at dst[t * kMR * kq + q * kMR + r]; zero past row mc and past k = kc.
// kPack: how the full panels are packed (Pack), the rest is scalar.
template <int kPack>
void pack_a(const View& a, int i0, int mc, int p0, int kc, uint32_t* dst) {
  const int kq = (kc + 1) / 2;
  int block_q = 0;  // whole pairs of the full panels already packed, all panels at once
#ifdef SKEIN_BF16_X86
  if (kPack == kPackAvx512Bf16 && a.rs == 1 && a.cs != 1)
    block_q = pack_a_block_transposed_avx512bf16(a, i0, mc, p0, kc, dst);
#endif
  for (int ir = 0; ir < mc; ir += kMR, dst += long(kMR) * kq) {
    const int mr = std::min(kMR, mc - ir);
    const long row0 = i0 + ir;
    int q = 0;
#ifdef SKEIN_BF16_X86
    if (kPack == kPackAvx512Bf16 && mr == kMR)
      q = block_q + pack_a_panel_avx512bf16(a, row0, p0 + 2 * block_q, kc - 2 * block_q,
                                            dst + long(block_q) * kMR);
    if (kPack == kPackAvx2 && mr == kMR) q = pack_a_panel_avx2(a, row0, p0, kc, dst);
#endif
    for (; q < kq; ++q)
      for (int r = 0; r < kMR; ++r) {
        const int k = 2 * q;
        const float even = r < mr ? a.at(row0 + r, p0 + k) : 0.0f;
        const float odd = r < mr && k + 1 < kc ? a.at(row0 + r, p0 + k + 1) : 0.0f;
        dst[long(q) * kMR + r] = pair_of(even, odd);
      }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into ceil(nc / kNR) panels of depth x kNR pairs (depth >= kq =
// ceil(kc / 2)): panel t, pair q, column j at dst[t * kNR * depth + q * kNR + j]; zero past column
// nc, past k = kc and in the pairs from kq to depth (the AMX kernel's padding to whole tiles).
template <int kPack>
void pack_b(const View& b, int p0, int kc, int j0, int nc, int depth, uint32_t* dst) {
  const int kq = (kc + 1) / 2;
  for (int jr = 0; jr < nc; jr += kNR, dst += long(kNR) * depth) {
    const int nr = std::min(kNR, nc - jr);
    const long col0 = j0 + jr;
    int q = 0;
#ifdef SKEIN_BF16_X86
    if (kPack == kPackAvx512Bf16 && nr == kNR) q = pack_b_panel_avx512bf16(b, p0, kc, col0, dst);
    if (kPack == kPackAvx2 && nr == kNR) q = pack_b_panel_avx2(b, p0, kc, col0, dst);
#endif
    for (; q < kq; ++q)
      for (int j = 0; j < kNR; ++j) {
        const int k = 2 * q;
        const float even = j < nr ? b.at(p0 + k, col0 + j) : 0.0f;
        const float odd = j < nr && k + 1 < kc ? b.at(p0 + k + 1, col0 + j) : 0.0f;
        dst[long(q) * kNR + j] = pair_of(even, odd);
      }
    std::fill(dst + long(kq) * kNR, dst + long(depth) * kNR, 0u);
  }
}

// The microkernels: C tile (kMR, kNR) at c (row stride ldc) = [C if load_c] + the kq pairs of
// a (packed panel) times b (packed panel) [+ bias (kNR)], summed in that order, as sgemm does.
using Kernel = void (*)(int kq, const uint32_t* a, const uint32_t* b, float* c, long ldc,
                        bool load_c, const float* bias);

// vdpbf16ps in portable code: per accumulator, the odd pair's product, then the even one's,
// each added with one rounding (a product of two bf16 is exact in fp32). Unlike the
// instruction, subnormal inputs and results are not flushed to zero.
void kernel_portable(int kq, const uint32_t* a, const uint32_t* b, float* c, long ldc, bool load_c,
                     const float* bias) {
  float acc[kMR][kNR] = {};
  for (int q = 0; q < kq; ++q, a += kMR, b += kNR) {
    float b_even[kNR], b_odd[kNR];
    for (int j = 0; j < kNR; ++j) {
      b_even[j] = bf16_value(b[j] & 0xffffu);
      b_odd[j] = bf16_value(b[j] >> 16);
    }
    for (int r = 0; r < kMR; ++r) {
      const float a_even = bf16_value(a[r] & 0xffffu), a_odd = bf16_value(a[r] >> 16);
      for (int j = 0; j < kNR; ++j) {
        const float t = acc[r][j] + a_odd * b_odd[j];
        acc[r][j] = t + a_even * b_even[j];
      }
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < kNR; ++j) {
      float v = acc[r][j];
      if (load_c) v += c[r * ldc + j];
      if (bias) v += bias[j];
      c[r * ldc + j] = v;
    }
}

#ifdef SKEIN_BF16_X86
// 12 rows x 2 zmm of accumulators (24 of the 32 registers), two B loads per pair, the A pair
// broadcast from memory.
SKEIN_AVX512BF16 __attribute__((noinline)) void kernel_avx512bf16(int kq, const uint32_t* a,
                                                                  const uint32_t* b, float* c,
                                                                  long ldc, bool load_c,
                                                                  const float* bias) {
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    // the C tile is touched only after the kq steps: start fetching it now, as the fp32 kernel does
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR / 2), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int q = 0; q < kq; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int32_t(a[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
    }
    a += kMR;
    b += kNR;
  }
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) store_row_32(c + r * ldc, acc[r][0], acc[r][1], load_c, bias);
}
#endif

bool cpu_has_avx2() {
#ifdef SKEIN_BF16_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

bool cpu_has_avx512bw() {
#ifdef SKEIN_BF16_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}

// A bf16 kernel for the driver (gemm_driver.h), its full panels packed as kPack says.
template <Kernel kKernel, int kPack>
struct Bf16Kernel {
  using Packed = uint32_t;
  static constexpr int MR = kMR, NR = kNR;
  static constexpr int kKAlign = 2;  // whole pairs
  static int depth(int kc) { return (kc + 1) / 2; }
  static void pack_a(const View& a, int i0, int mc, int p0, int kc, uint32_t* dst) {
    skein::pack_a<kPack>(a, i0, mc, p0, kc, dst);
  }
  static void pack_b(const View& b, int p0, int kc, int j0, int nc, uint32_t* dst) {
    skein::pack_b<kPack>(b, p0, kc, j0, nc, depth(kc), dst);
  }
  static void run(int kq, const uint32_t* a, const uint32_t* b, float* c, long ldc, bool load_c,
                  const float* bias) {
    kKernel(kq, a, b, c, ldc, load_c, bias);
  }
};

// kFastestPack: the AVX-512 BF16 packing where the CPU has it (for the vdpbf16ps kernel); else
// AVX2 where the CPU has it (the portable twin, whose packing must run wherever it does), else
// scalar.
// The CPU runs the AVX-512 BF16 packing (the vdpbf16ps and the AMX kernels use it where so).
bool cpu_packs_avx512bf16() {
  static const bool wide = cpu_has_avx512_bf16() && cpu_has_avx512bw();
  return wide;
}

template <Kernel kKernel, bool kFastestPack = false>
void run_bf16(const View& a, const View& b, int M, int N, int K, float beta, float* C, long ldc,
              const float* bias) {
  static const bool vector = cpu_has_avx2();
  if (kFastestPack && cpu_packs_avx512bf16())
    gemm_detail::blocked<Bf16Kernel<kKernel, kPackAvx512Bf16>>(a, b, M, N, K, beta, C, ldc, bias);
  else if (vector)
    gemm_detail::blocked<Bf16Kernel<kKernel, kPackAvx2>>(a, b, M, N, K, beta, C, ldc, bias);
  else
    gemm_detail::blocked<Bf16Kernel<kKernel, kPackScalar>>(a, b, M, N, K, beta, C, ldc, bias);
}

// ---- The AMX kernel (amx_bf16_32x32): tdpbf16ps on 16 x 16 tiles, a 32 x 32 C tile in four ----
// accumulator tiles (tmm0-3), two A tiles (tmm4-5: 16 rows x 16 pairs) and two B tiles (tmm6-7:
// 16 pairs x 16 columns). A panels are row-major here (row r, pair q at r * depth + q: a tile row
// is 16 consecutive pairs of one row), B panels as for vdpbf16ps (pair q, column j at q * 32 + j:
// a tile row is one pair of 16 columns). K blocks are padded with zero pairs to whole tiles. The
// order in which the hardware adds the products of one tile step is its own (it is not
// vdpbf16ps's, and Intel documents only that the sums are fp32): deterministic on one CPU, equal
// to the portable twin where every partial sum is exact (bf16_kernel_check), close elsewhere.
constexpr int kAmxMR = 32, kAmxNR = 32, kAmxPairs = 16;  // pairs per tile step
static_assert(kAmxNR == kNR, "the AMX kernel reads B panels packed as for vdpbf16ps");

#ifdef SKEIN_BF16_X86
// Row-major A panels, the AVX2 part for one full panel: the pairs of every row that whole 8-pair
// groups cover (returned; the caller packs the rest).
SKEIN_AVX2 __attribute__((noinline)) int pack_a_rows_avx2(const View& a, long row0, int p0, int kc,
                                                          int depth, uint32_t* dst) {
  int q = 0;
  if (a.cs == 1) {
    // rows contiguous in k: 16 k (8 pairs) of a row at a time, already in row-major order
    for (; 2 * q + 16 <= kc; q += 8)
      for (int r = 0; r < kAmxMR; ++r)
        _mm256_storeu_ps(reinterpret_cast<float*>(dst + long(r) * depth + q),
                         pairs_along(&a.data[(row0 + r) * a.rs + p0 + 2 * q]));
  } else if (a.rs == 1) {
    // for one k, the rows contiguous: pairs across two k for 8 rows, 8 pairs, transposed
    for (; 2 * q + 16 <= kc; q += 8)
      for (int rb = 0; rb < kAmxMR; rb += 8) {
        __m256 v[8];
        for (int i = 0; i < 8; ++i) {
          const float* s0 = a.data + (p0 + 2 * (q + i)) * a.cs + row0 + rb;
          v[i] = _mm256_castsi256_ps(pairs_across(_mm256_loadu_ps(s0), _mm256_loadu_ps(s0 + a.cs)));
        }
        transpose_8x8(v);  // v[l] = pairs q..q+7 of row rb + l
        for (int l = 0; l < 8; ++l)
          _mm256_storeu_ps(reinterpret_cast<float*>(dst + long(rb + l) * depth + q), v[l]);
      }
  }
  return q;
}

// The same with the AVX-512 BF16 parts (16 pairs per vcvtne2ps2bf16, subnormals as there): the
// pairs that whole 16-pair groups cover, the rest of them by the AVX2 part (returned: all the
// pairs those two cover).
SKEIN_AVX512BF16_PACK __attribute__((noinline)) int pack_a_rows_avx512bf16(const View& a, long row0,
                                                                           int p0, int kc,
                                                                           int depth,
                                                                           uint32_t* dst) {
  int q = 0;
  if (a.cs == 1) {
    // rows contiguous in k: 32 k (16 pairs) of a row at a time, already in row-major order
    for (; 2 * q + 32 <= kc; q += 16)
      for (int r = 0; r < kAmxMR; ++r)
        _mm512_storeu_si512(dst + long(r) * depth + q,
                            pairs_along_16(&a.data[(row0 + r) * a.rs + p0 + 2 * q]));
  } else if (a.rs == 1) {
    // for one k, the rows contiguous: pairs across two k for 16 rows, 16 pairs, transposed
    for (; 2 * q + 32 <= kc; q += 16)
      for (int rb = 0; rb < kAmxMR; rb += 16) {
        __m512i v[16];
        for (int i = 0; i < 16; ++i) {
          const float* s0 = a.data + (p0 + 2 * (q + i)) * a.cs + row0 + rb;
          v[i] = pairs_across_16(_mm512_loadu_ps(s0), _mm512_loadu_ps(s0 + a.cs));
        }
        transpose_16x16(v);  // v[l] = pairs q..q+15 of row rb + l
        for (int l = 0; l < 16; ++l) _mm512_storeu_si512(dst + long(rb + l) * depth + q, v[l]);
      }
  }
  return q + pack_a_rows_avx2(a, row0, p0 + 2 * q, kc - 2 * q, depth, dst + q);
}
#endif

// Packs op(A)[i0:i0+mc, p0:p0+kc] into ceil(mc / 32) row-major panels of 32 x depth pairs; zero
// past row mc, past k = kc and from pair kq to depth.
// kPack: how the full panels are packed (Pack; kPackScalar is not used: AMX CPUs have AVX2).
template <int kPack>
void pack_a_rows(const View& a, int i0, int mc, int p0, int kc, int depth, uint32_t* dst) {
  const int kq = (kc + 1) / 2;
  for (int ir = 0; ir < mc; ir += kAmxMR, dst += long(kAmxMR) * depth) {
    const int mr = std::min(kAmxMR, mc - ir);
    const long row0 = i0 + ir;
    int q0 = 0;
#ifdef SKEIN_BF16_X86
    if (kPack == kPackAvx512Bf16 && mr == kAmxMR)
      q0 = pack_a_rows_avx512bf16(a, row0, p0, kc, depth, dst);
    if (kPack == kPackAvx2 && mr == kAmxMR) q0 = pack_a_rows_avx2(a, row0, p0, kc, depth, dst);
#endif
    for (int r = 0; r < kAmxMR; ++r) {
      uint32_t* d = dst + long(r) * depth;
      for (int q = r < mr ? q0 : 0; q < kq; ++q) {
        const int k = 2 * q;
        const float even = r < mr ? a.at(row0 + r, p0 + k) : 0.0f;
        const float odd = r < mr && k + 1 < kc ? a.at(row0 + r, p0 + k + 1) : 0.0f;
        d[q] = pair_of(even, odd);
      }
      std::fill(d + kq, d + depth, 0u);
    }
  }
}

#ifdef SKEIN_BF16_X86
#define SKEIN_AMX __attribute__((target("avx512f,amx-tile,amx-bf16")))

// Every tile 16 rows of 64 bytes (palette 1). In static storage: GCC's _tile_loadconfig tells
// the compiler that it reads only the first 8 bytes, so a configuration built on the stack could
// lose the stores to the rest.
struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
constexpr TileConfig kTileConfig = {
    1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};
static_assert(sizeof(TileConfig) == 64);
// The tile configuration is per thread (saved and restored with the thread's state).
thread_local bool t_tiles_configured = false;

SKEIN_AMX __attribute__((noinline)) void kernel_amx(int depth, const uint32_t* a, const uint32_t* b,
                                                    float* c, long ldc, bool load_c,
                                                    const float* bias) {
  if (!t_tiles_configured) {
    _tile_loadconfig(&kTileConfig);
    t_tiles_configured = true;
  }
  // the tile loads are asm without memory operands: make the packed panels' stores visible
  __asm__ volatile("" ::: "memory");
  // The C tile is touched only after the tile steps: start fetching its 32 rows now (as the
  // other kernels do; without it the epilogue's stores waited on C's cache lines).
  for (int r = 0; r < kAmxMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kAmxNR - 1), _MM_HINT_T0);
  }
  const long a_stride = long(depth) * 4, b_stride = kAmxNR * 4;
  const uint32_t* a1 = a + 16L * depth;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int q = 0; q < depth; q += kAmxPairs) {
    _tile_loadd(4, a + q, a_stride);
    _tile_loadd(5, a1 + q, a_stride);
    _tile_loadd(6, b + long(q) * kAmxNR, b_stride);
    _tile_loadd(7, b + long(q) * kAmxNR + 16, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float t[kAmxMR][kAmxNR];
  _tile_stored(0, &t[0][0], kAmxNR * 4);
  _tile_stored(1, &t[0][16], kAmxNR * 4);
  _tile_stored(2, &t[16][0], kAmxNR * 4);
  _tile_stored(3, &t[16][16], kAmxNR * 4);
  // product, then C, then bias, as every kernel
  for (int r = 0; r < kAmxMR; ++r)
    store_row_32(c + r * ldc, _mm512_load_ps(&t[r][0]), _mm512_load_ps(&t[r][16]), load_c, bias);
}

// kPack: kPackAvx512Bf16 where the CPU has AVX-512 BF16 (every AMX CPU so far), else kPackAvx2.
template <int kPack>
struct AmxKernel {
  using Packed = uint32_t;
  static constexpr int MR = kAmxMR, NR = kAmxNR;
  static constexpr int kKAlign = 2;  // whole pairs: the same K blocks as vdpbf16ps's kernels
  static int depth(int kc) { return ((kc + 1) / 2 + kAmxPairs - 1) / kAmxPairs * kAmxPairs; }
  static void pack_a(const View& a, int i0, int mc, int p0, int kc, uint32_t* dst) {
    pack_a_rows<kPack>(a, i0, mc, p0, kc, depth(kc), dst);
  }
  static void pack_b(const View& b, int p0, int kc, int j0, int nc, uint32_t* dst) {
    skein::pack_b<kPack>(b, p0, kc, j0, nc, depth(kc), dst);
  }
  static void run(int depth, const uint32_t* a, const uint32_t* b, float* c, long ldc, bool load_c,
                  const float* bias) {
    kernel_amx(depth, a, b, c, ldc, load_c, bias);
  }
};

// CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE; and Linux must let the process use the
// tile data state (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, kernel 5.16+).
bool amx_usable() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  if (!(edx & (1u << 22)) || !(edx & (1u << 24))) return false;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2")) return false;
#ifdef __linux__
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif  // SKEIN_BF16_X86

// A whole product on one kernel (the checks call them directly).
void product(gemm_detail::BlockedFn kernel, bool trans_a, bool trans_b, int M, int N, int K,
             const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc,
             const float* bias) {
  gemm_detail::check_args(trans_a, trans_b, M, N, K, lda, ldb, beta, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) return gemm_detail::scale_c(M, N, beta, C, ldc, bias);
  const View a = View::of(A, lda, trans_a), b = View::of(B, ldb, trans_b);
  kernel(false, a, b, M, N, K, beta, C, ldc, bias);
}

}  // namespace

namespace gemm_detail {

bool cpu_runs_bf16_kernel() {
  return cpu_has_avx512_bf16();
}

void blocked_bf16_avx512(bool, const View& a, const View& b, int M, int N, int K, float beta,
                         float* C, long ldc, const float* bias) {
#ifdef SKEIN_BF16_X86
  SKEIN_CHECK(cpu_has_avx512_bf16(), "sgemm: this CPU has no avx512_bf16");
  run_bf16<kernel_avx512bf16, true>(a, b, M, N, K, beta, C, ldc, bias);
#else
  SKEIN_CHECK(false, "sgemm: no avx512_bf16 kernel on this architecture");
#endif
}

bool cpu_runs_amx_kernel() {
#ifdef SKEIN_BF16_X86
  static const bool usable = amx_usable();
  return usable;
#else
  return false;
#endif
}

void blocked_bf16_amx(bool, const View& a, const View& b, int M, int N, int K, float beta, float* C,
                      long ldc, const float* bias) {
#ifdef SKEIN_BF16_X86
  SKEIN_CHECK(cpu_runs_amx_kernel(), "sgemm: this CPU (or OS) does not run AMX-BF16");
  if (cpu_packs_avx512bf16())
    gemm_detail::blocked<AmxKernel<kPackAvx512Bf16>>(a, b, M, N, K, beta, C, ldc, bias);
  else
    gemm_detail::blocked<AmxKernel<kPackAvx2>>(a, b, M, N, K, beta, C, ldc, bias);
#else
  SKEIN_CHECK(false, "sgemm: no AMX kernel on this architecture");
#endif
}

void blocked_bf16_portable(bool, const View& a, const View& b, int M, int N, int K, float beta,
                           float* C, long ldc, const float* bias) {
  run_bf16<kernel_portable>(a, b, M, N, K, beta, C, ldc, bias);
}

}  // namespace gemm_detail

namespace gemm_detail {

std::string bf16_kernel_check(BlockedFn kernel, const char* name) {
  // Shapes around the tiles (12 x 32, 32 x 32), the K block, the M and N blocks and a padded C,
  // every transpose, with C and bias. The values are multiples of 1/16 in [-2, 2] (exact in
  // bf16), so every product is a multiple of 2^-8 and every partial sum (below 2^11) is exact in
  // fp32: any correct kernel, whatever its order of additions or rounding of a pair's sum, gives
  // the same bits as the portable one, and anything else (layout, edges, C, bias) shows.
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{12, 32, 16},  {13, 33, 17}, {32, 32, 32}, {33, 65, 47},
                          {25, 70, 300}, {200, 40, 9}, {7, 1600, 20}};
  double worst = 0;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return float(int64_t(state >> 33) % 65 - 32) / 16.0f;
  };
  for (const Shape& s : shapes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      std::vector<float> A(size_t(s.M) * s.K), B(size_t(s.K) * s.N), bias(s.N);
      for (float& x : A) x = next();
      for (float& x : B) x = next();
      for (float& x : bias) x = next();
      const int ldc = s.N + 3;  // padding that must stay untouched
      std::vector<float> hw(size_t(s.M) * ldc), sw(hw.size());
      for (size_t i = 0; i < hw.size(); ++i) hw[i] = sw[i] = next();
      const int lda = ta ? s.M : s.K, ldb = tb ? s.K : s.N;
      product(kernel, ta, tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, 1.0f, hw.data(), ldc,
              bias.data());
      product(blocked_bf16_portable, ta, tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, 1.0f,
              sw.data(), ldc, bias.data());
      for (size_t i = 0; i < hw.size(); ++i) {
        const double d = std::abs(double(hw[i]) - double(sw[i]));
        worst = std::max(worst, std::isnan(d) ? 1e30 : d);
      }
    }
  if (worst == 0) return "";
  char why[200];
  std::snprintf(why, sizeof why, "the %s kernel disagrees with its reference (max difference %.3g)",
                name, worst);
  return why;
}

}  // namespace gemm_detail

}  // namespace skein
