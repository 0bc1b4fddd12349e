// sgemm's fp32 kernels (packing and microkernels for AVX2+FMA and AVX-512F), the kernel table,
// the dispatcher, and the Eigen fallback for CPUs without AVX2/FMA (also dgemm, the double
// version). The blocked loops around the kernels are gemm_driver.h's.
#include "kernels/gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "kernels/eigen_maps.h"
#include "kernels/gemm_common.h"
#include "kernels/gemm_driver.h"

#if defined(__x86_64__)
#define SKEIN_GEMM_X86 1
#include "kernels/simd_avx2.h"
#include "kernels/simd_avx512.h"
#endif

namespace skein {
namespace {

using gemm_detail::check_args;
using gemm_detail::scale_c;
using gemm_detail::View;

// The portable path: Eigen on strided maps, which folds the transposes into its own packing.
// round: operands rounded to bf16 (kBf16Rounded, float only).
template <typename F>
void gemm_eigen(bool round, bool trans_a, bool trans_b, int M, int N, int K, const F* A, int lda,
                const F* B, int ldb, F beta, F* C, int ldc, const F* bias) {
  check_args(trans_a, trans_b, M, N, K, lda, ldb, beta, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_c(M, N, beta, C, ldc, bias);
  using Stride = Eigen::OuterStride<>;
  StridedMap<F> c(C, M, N, Stride(ldc));
  ConstStridedMap<F> a(A, trans_a ? K : M, trans_a ? M : K, Stride(lda));
  ConstStridedMap<F> b(B, trans_b ? N : K, trans_b ? K : N, Stride(ldb));
  // beta 0 assigns, so C is never read
  auto product = [&](const auto& op_a, const auto& op_b) {
    if constexpr (std::is_same_v<F, float>) {
      if (round) {
        // Eigen evaluates the rounded operands into temporaries before its product
        const auto round = [](float x) { return round_to_bf16(x); };
        if (beta == 0)
          c.noalias() = op_a.unaryExpr(round) * op_b.unaryExpr(round);
        else
          c.noalias() += op_a.unaryExpr(round) * op_b.unaryExpr(round);
        return;
      }
    }
    if (beta == 0)
      c.noalias() = op_a * op_b;
    else
      c.noalias() += op_a * op_b;
  };
  if (trans_a && trans_b)
    product(a.transpose(), b.transpose());
  else if (trans_a)
    product(a.transpose(), b);
  else if (trans_b)
    product(a, b.transpose());
  else
    product(a, b);
  if (bias) c.rowwise() += ConstRowVecMap<F>(bias, N);
}

#ifdef SKEIN_GEMM_X86

// Two microkernels share the driver and the packing (templated on the tile):
// avx2_6x16: 6 rows x 16 columns = 12 ymm accumulators, plus 2 ymm for the B row and 1 for the
//   broadcast A value: 15 of the 16 ymm registers. Each k step issues 12 independent FMAs against
//   8 loads (2 B vectors, 6 broadcasts): Zen 3 retires 2 FMAs and up to 3 loads a cycle, so the
//   FMA ports stay the bottleneck, and 12 chains cover the 4-cycle FMA latency on 2 ports (8
//   needed). Alone, on L1/L2-resident panels, it reaches ~97% of the FMA peak at kc = 256.
// avx512_12x32: 12 rows x 32 columns = 24 zmm accumulators, 2 zmm for the B row, 1 for the
//   broadcast: 27 of the 32 zmm registers; 24 FMAs against 14 loads per k step. Twice the work
//   per instruction where the FMA units are 512 bits wide (Intel server cores, AMD Zen 5).
// Both sum every C element in the same order (K blocks of kKC, one FMA chain along k from zero,
//   then C, then the bias), so they give the same bits and the choice between them is one of
//   speed only.
constexpr int kMR = kSgemmMR;
constexpr int kNR = kSgemmNR;
static_assert(kMR == 6 && kNR == 16, "kernel_6x16 is written for 6x16");
constexpr int kMR512 = kSgemmBf16MR, kNR512 = kSgemmBf16NR;
static_assert(kMR512 == 12 && kNR512 == 32, "kernel_12x32 is written for 12x32");

// Software prefetch into L1. The packing routines read short row segments (kc or mc floats),
// too short for the hardware's stream prefetchers to lock on, so each fetches the next
// segments it will read while it works on the current ones (all but pack_b's transposing branch,
// which measured faster without: see there).
inline void prefetch(const float* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// What packing stores for a value of op(A) or op(B): the value, or with kRound its bf16 rounding
// (MatmulPrecision::kBf16Rounded), the vector version computing exactly round_to_bf16.
template <bool kRound>
inline float packed(float x) {
  if constexpr (kRound) return round_to_bf16(x);
  return x;
}
template <bool kRound>
SKEIN_AVX2 inline __m256 packed(__m256 v) {
  if constexpr (kRound) return round8_to_bf16(v);
  return v;
}

template <bool kRound>
SKEIN_AVX2 inline __m128 packed(__m128 v) {
  if constexpr (kRound) return _mm256_castps256_ps128(round8_to_bf16(_mm256_castps128_ps256(v)));
  return v;
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into ceil(mc / MR) micro-panels of MR x kc floats each:
// panel q holds, for p = 0..kc-1, the MR values op(A)[i0 + q*MR + r, p0 + p] (zero for rows
// past mc) one after another, the order in which the microkernel broadcasts them. Panels are
// written in order, and a panel may spill 2 floats into the next one (overwritten when that one
// is packed) or into the buffer's slack. MR is 6 or 12.
// The packing routines and the kernel stay out of line: the kernel is called from two places, and
// the hot loops keep a register allocation of their own (and their own rows in a profile).
template <int MR, bool kRound>
SKEIN_AVX2 __attribute__((noinline)) void pack_a(const View& a, int i0, int mc, int p0, int kc,
                                                 float* dst) {
  static_assert(MR == 6 || MR == 12);
  const float* src = a.data + i0 * a.rs + p0 * a.cs;
  if (a.cs != 1) {
    // op(A) columns contiguous (A stored transposed, so a.rs = 1): for 8 k (8 rows of A) at a
    // time, walk the rows forward and deal MR values to every panel. Reads stream instead of
    // striding down columns, and each panel gets whole cache lines at once: panels sit kc * MR
    // floats apart, so writing one k to all of them would keep ~24 lines in 2 L1 sets (4 KiB
    // aliasing).
    const int full = mc / MR * MR;
    for (int p = 0; p < kc; p += 8) {
      const int pb = std::min(8, kc - p);
      const int pb_next = std::max(0, std::min(8, kc - p - 8));
      for (int ir = 0; ir < full; ir += MR) {
        // MR = 6: one 8-wide load and store where the 2 extra floats may be read (inside the
        // block) and written (the next k's slot, rewritten right after; not at the panel's last
        // k, whose next slot belongs to the next panel, already packed). MR = 12: 8 + 4 wide.
        const bool wide = ir + 8 <= mc;
        for (int k = 0; k < pb; ++k) {
          if (k < pb_next) prefetch(src + (p + 8 + k) * a.cs + ir);
          const float* s = src + (p + k) * a.cs + ir;
          float* d = dst + ir * kc + (p + k) * MR;
          if constexpr (MR == 12) {
            _mm256_storeu_ps(d, packed<kRound>(_mm256_loadu_ps(s)));
            _mm_storeu_ps(d + 8, packed<kRound>(_mm_loadu_ps(s + 8)));
          } else if (wide && p + k + 1 < kc) {
            _mm256_storeu_ps(d, packed<kRound>(_mm256_loadu_ps(s)));
          } else {
            for (int r = 0; r < MR; ++r) d[r] = packed<kRound>(s[r]);
          }
        }
      }
      for (int k = 0; k < pb && full < mc; ++k) {
        const float* s = src + (p + k) * a.cs;
        float* d = dst + full * kc + (p + k) * MR;
        for (int r = 0; r < MR; ++r) d[r] = full + r < mc ? packed<kRound>(s[full + r]) : 0.0f;
      }
    }
    return;
  }
  // op(A) rows contiguous (A not transposed): 8 k at a time, load the panel's rows in groups of
  // 8 (the last group padded with zero rows), transpose each, and store each k's values; with
  // MR = 6 the 2 zero lanes are overwritten by the next k.
  for (int ir = 0; ir < mc; ir += MR, dst += MR * kc) {
    const int mr = std::min(MR, mc - ir);
    const float* s = src + ir * a.rs;
    int p = 0;
    const bool next_panel = ir + MR < mc;
    if (mr == MR) {
      for (; p + 8 <= kc; p += 8) {
        if (next_panel && p % 16 == 0)
          for (int r = 0; r < MR; ++r) prefetch(s + (MR + r) * a.rs + p);
        __m256 v[8];
        if constexpr (MR == 6) {
          for (int r = 0; r < 6; ++r) v[r] = _mm256_loadu_ps(s + r * a.rs + p);
          v[6] = v[7] = _mm256_setzero_ps();
          transpose_8x8(v);
          for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (p + k) * MR, packed<kRound>(v[k]));
        } else {
          for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(s + r * a.rs + p);
          transpose_8x8(v);
          for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (p + k) * MR, packed<kRound>(v[k]));
          for (int r = 0; r < 4; ++r) v[r] = _mm256_loadu_ps(s + (8 + r) * a.rs + p);
          v[4] = v[5] = v[6] = v[7] = _mm256_setzero_ps();
          transpose_8x8(v);
          for (int k = 0; k < 8; ++k)
            _mm_storeu_ps(dst + (p + k) * MR + 8, packed<kRound>(_mm256_castps256_ps128(v[k])));
        }
      }
    }
    for (; p < kc; ++p)
      for (int r = 0; r < MR; ++r)
        dst[p * MR + r] = r < mr ? packed<kRound>(s[r * a.rs + p]) : 0.0f;
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into ceil(nc / NR) micro-panels of kc x NR floats each:
// panel q holds, for p = 0..kc-1, the row op(B)[p0 + p, j0 + q*NR : +NR] (zero past column nc).
// NR is 16 or 32 (a multiple of 8).
template <int NR, bool kRound>
SKEIN_AVX2 __attribute__((noinline)) void pack_b(const View& b, int p0, int kc, int j0, int nc,
                                                 float* dst) {
  const float* src = b.data + p0 * b.rs + j0 * b.cs;
  const int full = nc / NR * NR;
  if (b.cs == 1) {
    // op(B) rows contiguous (B not transposed): for 8 k (8 rows of B) at a time, walk the rows
    // forward and deal NR values to every panel; as in pack_a, so that reads stream and each
    // panel (16 KiB apart, all in one L1 set) gets whole cache lines at once.
    for (int p = 0; p < kc; p += 8) {
      const int pb = std::min(8, kc - p);
      const int pb_next = std::max(0, std::min(8, kc - p - 8));
      for (int jr = 0; jr < full; jr += NR)
        for (int k = 0; k < pb; ++k) {
          if (k < pb_next) prefetch(src + (p + 8 + k) * b.rs + jr);
          const float* s = src + (p + k) * b.rs + jr;
          float* d = dst + jr * kc + (p + k) * NR;
#pragma GCC unroll 4
          for (int c = 0; c < NR; c += 8)
            _mm256_store_ps(d + c, packed<kRound>(_mm256_loadu_ps(s + c)));
        }
      for (int k = 0; k < pb && full < nc; ++k) {
        const float* s = src + (p + k) * b.rs;
        float* d = dst + full * kc + (p + k) * NR;
        for (int c = 0; c < NR; ++c) d[c] = full + c < nc ? packed<kRound>(s[full + c]) : 0.0f;
      }
    }
    return;
  }
  // op(B) columns contiguous (B stored transposed, so b.rs = 1): 8 k of 8 columns at a time,
  // transposed. No software prefetch here: fetching the next panel's NR rows into L1 while this
  // one is read and written (3 x 24 KiB at NR = 16 and kc = 384) overflows a 32 KiB L1; without
  // it this pack took 8% less of the time (perf samples relative to the kernel's, 3 alternating
  // rounds of bench_kernels linear_forward/gpt2 on a Zen 3: 0.121-0.133 vs 0.131-0.144).
  for (int jr = 0; jr < nc; jr += NR, dst += NR * kc) {
    const int nr = std::min(NR, nc - jr);
    const float* s = src + jr * b.cs;
    int p = 0;
    if (nr == NR) {
      for (; p + 8 <= kc; p += 8) {
        for (int half = 0; half < NR; half += 8) {
          __m256 v[8];
          for (int c = 0; c < 8; ++c) v[c] = _mm256_loadu_ps(s + (half + c) * b.cs + p);
          transpose_8x8(v);
          for (int k = 0; k < 8; ++k)
            _mm256_store_ps(dst + (p + k) * NR + half, packed<kRound>(v[k]));
        }
      }
    }
    for (; p < kc; ++p)
      for (int c = 0; c < NR; ++c)
        dst[p * NR + c] = c < nr ? packed<kRound>(s[c * b.cs + p * b.rs]) : 0.0f;
  }
}

// pack_b for the AVX-512 kernel (NR = 32) where op(B) columns are contiguous (B stored
// transposed: a layer's weight in its forward product): 16 k of 16 columns at a time through one
// 16 x 16 transpose of zmm registers, so each column's source cache line is read once, whole,
// where the 8 x 8 ymm transposes of pack_b read it half at a time on two visits. The same values
// in the same places as pack_b<32, kRound>. (pack_a<12>'s transposing branch done the same way
// measured no faster: it stays as it is.)
template <bool kRound>
SKEIN_AVX512 __attribute__((noinline)) void pack_b_transposed_32(const View& b, int p0, int kc,
                                                                 int j0, int nc, float* dst) {
  constexpr int NR = 32;
  const float* src = b.data + p0 * b.rs + j0 * b.cs;
  for (int jr = 0; jr < nc; jr += NR, dst += NR * kc) {
    const int nr = std::min(NR, nc - jr);
    const float* s = src + jr * b.cs;
    int p = 0;
    if (nr == NR) {
      for (; p < kc; p += 16) {
        // the last block may hold fewer than 16 k: a masked load reads only those
        const int kb = std::min(16, kc - p);
        const __mmask16 m = kb == 16 ? __mmask16(0xFFFF) : __mmask16((1u << kb) - 1);
        for (int half = 0; half < NR; half += 16) {
          __m512i v[16];
          for (int c = 0; c < 16; ++c)
            v[c] = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, s + (half + c) * b.cs + p));
          transpose_16x16(v);
          for (int k = 0; k < kb; ++k) {
            __m512 x = _mm512_castsi512_ps(v[k]);
            if constexpr (kRound) {
              const __m256 lo = round8_to_bf16(_mm512_castps512_ps256(x));
              const __m256 hi =
                  round8_to_bf16(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
              x = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                                      _mm256_castps_pd(hi), 1));
            }
            _mm512_store_ps(dst + (p + k) * NR + half, x);
          }
        }
      }
    }
    for (; p < kc; ++p)  // a partial panel (nr < NR)
      for (int c = 0; c < NR; ++c)
        dst[p * NR + c] = c < nr ? packed<kRound>(s[c * b.cs + p * b.rs]) : 0.0f;
  }
}

// C tile (kMR, kNR) at c with row stride ldc = [C if load_c] + a (kMR x kc, packed) @ b (kc x kNR,
// packed) [+ bias (kNR) on every row]. a and b as laid out by pack_a / pack_b.
// kDirect: a is not a packed panel but the top-left of the kMR rows of op(A) themselves (unit
// stride along k, row stride lda), read in place (the driver's direct A, gemm_driver.h); the same
// products in the same order.
template <bool kDirect>
SKEIN_AVX2 __attribute__((noinline)) void kernel_6x16(int kc, const float* __restrict a, long lda,
                                                      const float* __restrict b,
                                                      float* __restrict c, long ldc, bool load_c,
                                                      const float* __restrict bias) {
  // rows 3i..3i+2 from base[i] (i = 0, 1), at 0, lda and 2 lda: two base registers and lda
  // address all six
  const float* base[2] = {a, a + 3 * lda};
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    // The C tile is touched only after kc steps: start fetching it now (without this, the
    // products at the training shapes ran ~15% slower, waiting on C in the epilogue).
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(kDirect ? base[r / 3] + (r % 3) * lda : a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    if constexpr (kDirect) {
      for (const float*& p_i : base) ++p_i;
    } else {
      a += kMR;
    }
    b += kNR;
  }
  // Same summation order as write_edge_tile: product, then C, then bias.
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
    }
    if (bias) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(bias));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(bias + 8));
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}

// C tile (12, 32) at c with row stride ldc = [C if load_c] + a (12 x kc, packed) @ b (kc x 32,
// packed) [+ bias (32) on every row]: kernel_6x16's arithmetic on zmm registers.
// kDirect as for kernel_6x16: rows 3i..3i+2 from base a_i (i = 0..3), at 0, lda and 2 lda.
template <bool kDirect>
SKEIN_AVX512 __attribute__((noinline)) void kernel_12x32(int kc, const float* __restrict a,
                                                         long lda, const float* __restrict b,
                                                         float* __restrict c, long ldc, bool load_c,
                                                         const float* __restrict bias) {
  const float* base[4] = {a, a + 3 * lda, a + 6 * lda, a + 9 * lda};
  __m512 acc[kMR512][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR512; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int r = 0; r < kMR512; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR512 - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kMR512; ++r) {
      const __m512 ar = _mm512_set1_ps(kDirect ? base[r / 3][(r % 3) * lda] : a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    if constexpr (kDirect) {
      for (const float*& p_i : base) ++p_i;
    } else {
      a += kMR512;
    }
    b += kNR512;
  }
#pragma GCC unroll 12
  for (int r = 0; r < kMR512; ++r) store_row_32(c + r * ldc, acc[r][0], acc[r][1], load_c, bias);
}

// The 12 x 32 tile (row stride 32) written transposed: tile (i, j) to c[j * ldc + i], plus C
// (load_c) and bias[i], in write_tile_transposed's order. Two 16 x 16 transposes (rows 12-15
// zero), each column of the tile a 12-float row of C.
SKEIN_AVX512 __attribute__((noinline)) void write_transposed_12x32(const float* tile, float* c,
                                                                   long ldc, bool load_c,
                                                                   const float* bias) {
  constexpr __mmask16 k12 = (1u << kMR512) - 1;
  const __m512 b = bias ? _mm512_maskz_loadu_ps(k12, bias) : _mm512_setzero_ps();
  for (int half = 0; half < kNR512; half += 16) {
    __m512i v[16];
    for (int i = 0; i < 16; ++i)
      v[i] = i < kMR512 ? _mm512_castps_si512(_mm512_loadu_ps(tile + i * kNR512 + half))
                        : _mm512_setzero_si512();
    transpose_16x16(v);
    for (int j = 0; j < 16; ++j) {
      float* cr = c + (half + j) * ldc;
      __m512 x = _mm512_castsi512_ps(v[j]);
      if (load_c) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k12, cr));
      if (bias) x = _mm512_add_ps(x, b);
      _mm512_mask_storeu_ps(cr, k12, x);
    }
  }
}

// An fp32 kernel for the driver (gemm_driver.h): a microkernel with its tile and packing; kRound
// packs bf16-rounded operands (kBf16Rounded).
using MicroKernel = void (*)(int, const float*, long, const float*, float*, long, bool,
                             const float*);
template <int MR_, int NR_, MicroKernel kKernel, MicroKernel kDirectKernel, bool kRound>
struct Fp32Kernel {
  using Packed = float;
  static constexpr int MR = MR_, NR = NR_;
  static constexpr int kKAlign = 8;
  static int depth(int kc) { return kc; }
  static void pack_a(const View& a, int i0, int mc, int p0, int kc, float* dst) {
    skein::pack_a<MR, kRound>(a, i0, mc, p0, kc, dst);
  }
  static void pack_b(const View& b, int p0, int kc, int j0, int nc, float* dst) {
    if constexpr (NR == 32) {  // the AVX-512 kernel's
      if (b.rs == 1 && b.cs != 1) return pack_b_transposed_32<kRound>(b, p0, kc, j0, nc, dst);
    }
    skein::pack_b<NR, kRound>(b, p0, kc, j0, nc, dst);
  }
  static void run(int kc, const float* a, const float* b, float* c, long ldc, bool load_c,
                  const float* bias) {
    kKernel(kc, a, 0, b, c, ldc, load_c, bias);
  }
  // op(A) rows contiguous, values as they are (no bf16 rounding): the kernel reads them in place.
  static bool direct_a(const View& a) { return !kRound && a.cs == 1; }
  // A full tile of a transposed product (the driver's transposed_c): the AVX-512 kernel has a
  // vector one, and only it runs the transposed form (run_fp32)
  static constexpr bool kWritesTransposed = MR == 12 && NR == 32;
  static void write_transposed(const float* tile, float* c, long ldc, bool load_c,
                               const float* bias) requires(kWritesTransposed) {
    write_transposed_12x32(tile, c, ldc, load_c, bias);
  }
  static void run_direct(int kc, const float* a, long lda, const float* b, float* c, long ldc,
                         bool load_c, const float* bias) {
    kDirectKernel(kc, a, lda, b, c, ldc, load_c, bias);
  }
};

template <int MR, int NR, MicroKernel kKernel, MicroKernel kDirectKernel>
void run_fp32(bool round, const View& a, const View& b, int M, int N, int K, float beta, float* C,
              long ldc, const float* bias) {
  // A few rows of activations times a large weight W (op(B) = W^T, W's rows contiguous: a forward
  // product at a small batch, or the logits): packing op(B) costs about as much per call as the
  // products at M rows do per 2 M FLOPs, ~20% of gpt2's forward at 128 rows. Computed as
  // C^T = W op(A)^T instead, W is the direct A, read in place, and only the M rows are packed; the
  // C tiles are written transposed. Each C value is the same sum in the same order (K blocks
  // depend on K alone, and the products commute), so the bits do not change. Deep K only: the
  // transposed write costs a fixed amount per tile and K block.
  using Plain = Fp32Kernel<MR, NR, kKernel, kDirectKernel, false>;
  if constexpr (Plain::kWritesTransposed) {
    if (!round && b.rs == 1 && b.cs != 1 && M <= 256 && N >= 4 * M && K >= 256) {
      const View wt{b.data, b.cs, b.rs}, at{a.data, a.cs, a.rs};
      return gemm_detail::blocked<Plain>(wt, at, N, M, K, beta, C, ldc, bias,
                                         /*transposed_c=*/true);
    }
  }
  if (round)
    return gemm_detail::blocked<Fp32Kernel<MR, NR, kKernel, kDirectKernel, true>>(
        a, b, M, N, K, beta, C, ldc, bias);
  gemm_detail::blocked<Plain>(a, b, M, N, K, beta, C, ldc, bias);
}

bool cpu_has_avx2_fma() {
#if defined(__AVX2__) && defined(__FMA__)
  return true;  // the build already targets it
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
}

bool cpu_has_avx512f() {
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
}

#endif  // SKEIN_GEMM_X86

using gemm_detail::BlockedFn;
struct KernelEntry {
  SgemmKernel info;
  BlockedFn run;
};

constexpr MatmulPrecision kFp32 = MatmulPrecision::kFp32;
constexpr MatmulPrecision kBf16 = MatmulPrecision::kBf16;

// The table: every microkernel of the driver, whether or not this CPU runs it (the tests and
// the benchmarks walk it; the dispatcher picks from it).
#ifdef SKEIN_GEMM_X86
const KernelEntry kKernels[] = {
    {{"avx2_6x16", kFp32, kMR, kNR, cpu_has_avx2_fma, "AVX2 and FMA", true},
     run_fp32<kMR, kNR, kernel_6x16<false>, kernel_6x16<true>>},
    {{"avx512_12x32", kFp32, kMR512, kNR512, cpu_has_avx512f, "AVX-512F", true},
     run_fp32<kMR512, kNR512, kernel_12x32<false>, kernel_12x32<true>>},
    {{"avx512bf16_12x32", kBf16, 12, 32, gemm_detail::cpu_runs_bf16_kernel,
      "AVX-512 BF16 (vdpbf16ps)", true},
     gemm_detail::blocked_bf16_avx512},
    {{"bf16_portable_12x32", kBf16, 12, 32, gemm_detail::cpu_runs_anything, "", true},
     gemm_detail::blocked_bf16_portable},
    {{"amx_bf16_32x32", kBf16, 32, 32, gemm_detail::cpu_runs_amx_kernel,
      "AMX-BF16 usable by this process (CPU, and Linux 5.16+ granting the tile state)", false},
     gemm_detail::blocked_bf16_amx},
};
#else
bool cpu_none() {
  return false;
}
const KernelEntry kKernels[] = {
    {{"avx2_6x16", kFp32, 6, 16, cpu_none, "an x86-64 CPU with AVX2 and FMA", true}, nullptr},
    {{"avx512_12x32", kFp32, 12, 32, cpu_none, "an x86-64 CPU with AVX-512F", true}, nullptr},
    {{"avx512bf16_12x32", kBf16, 12, 32, cpu_none, "an x86-64 CPU with AVX-512 BF16", true},
     nullptr},
    {{"bf16_portable_12x32", kBf16, 12, 32, gemm_detail::cpu_runs_anything, "", true},
     gemm_detail::blocked_bf16_portable},
    {{"amx_bf16_32x32", kBf16, 32, 32, cpu_none, "an x86-64 CPU with AMX-BF16", false}, nullptr},
};
#endif
constexpr int kNumKernels = int(sizeof(kKernels) / sizeof(kKernels[0]));

// Median seconds of one product at a training-like shape (K = kKC, so each C tile is written
// once) on kernel i.
double time_kernel(int i) {
  constexpr int M = gemm_detail::kMC, N = 384, K = gemm_detail::kKC;
  std::vector<float> A(size_t(M) * K, 0.5f), B(size_t(K) * N, 0.25f), C(size_t(M) * N, 0.0f);
  const View a = View::of(A.data(), K, false), b = View::of(B.data(), N, false);
  double t[5];
  for (double& ti : t) {
    const auto t0 = std::chrono::steady_clock::now();
    kKernels[i].run(false, a, b, M, N, K, 0.0f, C.data(), N, nullptr);
    ti = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t, t + 5);
  return t[2];
}

// The fp32 family's kernel, chosen once: SKEIN_SGEMM_KERNEL=name when set (and an fp32 kernel
// this CPU runs), else the fastest runnable one on a short timing at start-up (a few ms; the
// kernels give the same bits, so the choice never changes a result); -1 when none runs here
// (Eigen then).
int choose_fp32_kernel(std::string* why) {
  auto runnable = [](int i) {
    return kKernels[i].info.family == kFp32 && kKernels[i].info.supported();
  };
  if (const char* want = std::getenv("SKEIN_SGEMM_KERNEL"); want && *want) {
    for (int i = 0; i < kNumKernels; ++i)
      if (std::strcmp(kKernels[i].info.name, want) == 0 && runnable(i)) {
        *why = "SKEIN_SGEMM_KERNEL";
        return i;
      }
    *why = std::string("SKEIN_SGEMM_KERNEL=") + want + " is not an fp32 kernel this CPU runs; ";
  }
  int count = 0, best = -1;
  for (int i = 0; i < kNumKernels; ++i) count += runnable(i);
  double best_t = 0;
  for (int i = 0; i < kNumKernels; ++i) {
    if (!runnable(i)) continue;
    const double t = count > 1 ? time_kernel(i) : 0;
    if (best < 0 || t < best_t) best = i, best_t = t;
  }
  *why += count > 1 ? "fastest at start-up" : "the only one this CPU runs";
  return best;
}

struct Choice {
  int index;
  std::string why;
};
const Choice& fp32_choice() {
  static const Choice c = [] {
    Choice r;
    r.index = choose_fp32_kernel(&r.why);
    return r;
  }();
  return c;
}

int find_kernel(const char* name) {
  for (int i = 0; i < kNumKernels; ++i)
    if (std::strcmp(kKernels[i].info.name, name) == 0) return i;
  SKEIN_CHECK(false, "gemm: no such kernel in the table");
  return -1;
}

// The bf16 family's kernel: SKEIN_SGEMM_KERNEL when it names a bf16 kernel this CPU runs; else
// AMX, then vdpbf16ps, the first that runs here and passes its check against the portable twin;
// else the portable twin. why: what was tried.
struct Bf16Choice {
  int index;
  std::string why;     // for sgemm_bf16_choice()
  std::string failed;  // "" when a hardware kernel was chosen; else why none (bf16_self_check)
};
// How a hardware bf16 kernel's products compare with the fp32 kernel's on this CPU, timed at
// start-up (a few ms): a bf16 kernel need not be faster (the vdpbf16ps kernel on an Intel core
// with two 512-bit FMA pipes measured 0.6x), and a user who asked for BF16 to go faster should
// read so in the first lines. Only words: the choice of kernel does not depend on it.
std::string bf16_speed_note(int i) {
  const int f = fp32_choice().index;
  if (f < 0) return "";
  const double ratio = time_kernel(f) / time_kernel(i);
  char buf[200];
  std::snprintf(buf, sizeof buf, "; %.2fx the speed of the fp32 kernel %s at start-up%s", ratio,
                kKernels[f].info.name,
                ratio < 1 ? ": BF16 trains slower than FP32 on this CPU" : "");
  return buf;
}

Bf16Choice choose_bf16_kernel() {
  Bf16Choice r{find_kernel("bf16_portable_12x32"), "", ""};
  if (const char* want = std::getenv("SKEIN_SGEMM_KERNEL"); want && *want) {
    for (int i = 0; i < kNumKernels; ++i)
      if (std::strcmp(kKernels[i].info.name, want) == 0 && kKernels[i].info.family == kBf16 &&
          kKernels[i].info.supported()) {
        r.index = i;
        r.why = "SKEIN_SGEMM_KERNEL";
        return r;
      }
  }
  std::string tried;
  for (const char* name : {"amx_bf16_32x32", "avx512bf16_12x32"}) {
    const int i = find_kernel(name);
    std::string why_not;
    if (!kKernels[i].info.supported())
      why_not = std::string("this CPU has no ") + kKernels[i].info.needs;
    else
      why_not = gemm_detail::bf16_kernel_check(kKernels[i].run, name);
    if (why_not.empty()) {
      r.index = i;
      r.why = tried.empty() ? "the fastest bf16 kernel, checked at start-up"
                            : "checked at start-up; " + tried;
      return r;
    }
    tried += (tried.empty() ? "" : "; ") + std::string(name) + ": " + why_not;
  }
  r.why = tried + "; the portable twin (slow)";
  // the caller's message says why vdpbf16ps, the widest-spread instruction, cannot run
  const int vdp = find_kernel("avx512bf16_12x32");
  r.failed = kKernels[vdp].info.supported()
                 ? gemm_detail::bf16_kernel_check(kKernels[vdp].run, "avx512bf16_12x32")
                 : "this CPU has no avx512_bf16 (the vdpbf16ps instruction)";
  return r;
}

const Bf16Choice& bf16_choice() {
  static const Bf16Choice c = [] {
    Bf16Choice r = choose_bf16_kernel();
    if (r.index != find_kernel("bf16_portable_12x32")) r.why += bf16_speed_note(r.index);
    return r;
  }();
  return c;
}

}  // namespace

namespace gemm_detail {
// The packing buffers of gemm_driver.h: 1.6 MiB of static TLS per thread (glibc carves it out of
// each thread's stack, 8 MiB by default).
alignas(64) static thread_local unsigned char t_a_pack[kAPackBytes];
alignas(64) static thread_local unsigned char t_b_pack[kBPackBytes];
void* a_pack_buffer() {
  return t_a_pack;
}
void* b_pack_buffer() {
  return t_b_pack;
}
bool cpu_runs_anything() {
  return true;
}
}  // namespace gemm_detail

std::span<const SgemmKernel> sgemm_kernels() {
  static const std::vector<SgemmKernel> infos = [] {
    std::vector<SgemmKernel> v;
    for (const KernelEntry& e : kKernels) v.push_back(e.info);
    return v;
  }();
  return infos;
}

bool sgemm_kernel_computes(int index, MatmulPrecision p) {
  if (index < 0 || index >= kNumKernels) return false;
  return kKernels[index].info.family == kFp32 ? p != kBf16 : p == kBf16;
}

int sgemm_chosen_kernel(MatmulPrecision p) {
  return p == kBf16 ? bf16_choice().index : fp32_choice().index;
}

std::string sgemm_bf16_choice() {
  return std::string(kKernels[bf16_choice().index].info.name) + " (" + bf16_choice().why + ")";
}

std::string bf16_self_check() {
  return bf16_choice().failed;
}

const char* sgemm_path() {
  const int i = fp32_choice().index;
  return i < 0 ? "portable" : kKernels[i].info.name;
}

std::string sgemm_choice() {
  const int i = fp32_choice().index;
  if (i < 0) return "portable (Eigen): this CPU has neither AVX2+FMA nor AVX-512";
  return std::string(kKernels[i].info.name) + " (" + fp32_choice().why + ")";
}

bool cpu_has_avx512_bf16() {
#ifdef SKEIN_GEMM_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool sgemm_runs_blocked(const MatmulContext& mm) {
  return mm.kernel >= 0 || sgemm_chosen_kernel(mm.precision) >= 0;
}

void sgemm(const MatmulContext& mm, bool trans_a, bool trans_b, int M, int N, int K, const float* A,
           int lda, const float* B, int ldb, float beta, float* C, int ldc, const float* bias) {
  int index = mm.kernel;
  if (index >= 0) {
    SKEIN_CHECK(index < kNumKernels && kKernels[index].info.supported(),
                "sgemm: MatmulContext::kernel is not a kernel this CPU runs");
    SKEIN_CHECK(sgemm_kernel_computes(index, mm.precision),
                "sgemm: MatmulContext::kernel computes another precision");
  } else {
    index = sgemm_chosen_kernel(mm.precision);
  }
  if (index < 0)
    return sgemm_portable(mm, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  check_args(trans_a, trans_b, M, N, K, lda, ldb, beta, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_c(M, N, beta, C, ldc, bias);
  const View a = View::of(A, lda, trans_a), b = View::of(B, ldb, trans_b);
  kKernels[index].run(mm.precision == MatmulPrecision::kBf16Rounded, a, b, M, N, K, beta, C, ldc,
                      bias);
}

void sgemm_portable(const MatmulContext& mm, bool trans_a, bool trans_b, int M, int N, int K,
                    const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc,
                    const float* bias) {
  gemm_eigen(mm.precision != kFp32, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

void dgemm(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
           const double* B, int ldb, double beta, double* C, int ldc, const double* bias) {
  gemm_eigen(false, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

}  // namespace skein
