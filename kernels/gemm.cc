// sgemm: packed, cache-blocked GEMM with an AVX2+FMA register-blocked microkernel (the loop
// structure of Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008),
// and an Eigen fallback for CPUs without AVX2/FMA (also dgemm, the double version).
//
// Loops, outermost first (all sizes in floats):
//   jc: N in steps of kNC   op(B)[pc:pc+kc, jc:jc+nc] packed once into b_pack (lives in L3)
//   pc: K in steps of at most kKC
//   ic: M in steps of kMC   op(A)[ic:ic+mc, pc:pc+kc] packed into a_pack (lives in L2)
//   jr: nc in steps of kNR  one kc x kNR micro-panel of b_pack, stays in L1 across the ir loop
//   ir: mc in steps of kMR  microkernel: C[kMR x kNR] += a micro-panel @ b micro-panel
// Packing lays each micro-panel out in the exact order the microkernel reads it (unit stride,
// zero-padded to full kMR / kNR), so the kernel itself never sees transposes, leading dimensions
// or ragged edges; only the final write of an edge tile is special.
#include "kernels/gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "kernels/eigen_maps.h"
#include "kernels/gemm_common.h"

#if defined(__x86_64__)
#define SKEIN_GEMM_X86 1
#include "kernels/simd_avx2.h"
#endif

namespace skein {
namespace {

using gemm_detail::check_args;
using gemm_detail::scale_c;
using gemm_detail::View;

thread_local MatmulPrecision t_precision = MatmulPrecision::kFp32;

bool rounds_to_bf16() {
  return t_precision != MatmulPrecision::kFp32;
}

// The portable path: Eigen on strided maps, which folds the transposes into its own packing.
template <typename F>
void gemm_eigen(bool trans_a, bool trans_b, int M, int N, int K, const F* A, int lda, const F* B,
                int ldb, F beta, F* C, int ldc, const F* bias) {
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
      if (rounds_to_bf16()) {
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
constexpr int kMR512 = 12, kNR512 = 32;
// kKC: one kc x kNR micro-panel of B (256 * 16 * 4 B = 16 KiB) plus one kMR x kc micro-panel of
// A (6 KiB) and the C tile fit the 32 KiB L1d together, while 256 k steps per C tile make the
// C load/store in the kernel's epilogue small. (384 and 512 measured the same within noise.)
// The same for both kernels: it decides the order of the sums.
constexpr int kKC = kSgemmKC;
static_assert(kKC % 8 == 0, "sgemm_blocked rounds K blocks up to a multiple of 8, at most kKC");
// kMC: the packed A block (144 * 256 * 4 B = 144 KiB) sits in the 512 KiB L2 with room for the
// B micro-panels streaming through it; a multiple of both kMRs. (72 to 240 measured within
// noise.)
constexpr int kMC = kSgemmMC;
static_assert(kMC % kMR == 0 && kMC % kMR512 == 0);
// kNC: the packed B panel (256 * 1536 * 4 B = 1.5 MiB) lives in L3. 1536 = 4C of the char
// config, so at every one of its training shapes each block of A is packed exactly once.
constexpr int kNC = kSgemmNC;
static_assert(kNC % kNR == 0 && kNC % kNR512 == 0);

// Per-thread packing buffers, fixed-size: no allocation per call and no sharing between the
// threads that call kernels concurrently. 1.6 MiB of static TLS per thread (glibc carves it out
// of each thread's stack, 8 MiB by default). a_pack has 16 floats of slack for pack_a's
// overlapping stores.
alignas(64) static thread_local float t_a_pack[kMC * kKC + 32];
alignas(64) static thread_local float t_b_pack[kKC * kNC];

// Software prefetch into L1. The packing routines read short row segments (kc or mc floats),
// too short for the hardware's stream prefetchers to lock on, so each fetches the next
// segments it will read while it works on the current ones.
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
  // transposed.
  for (int jr = 0; jr < nc; jr += NR, dst += NR * kc) {
    const int nr = std::min(NR, nc - jr);
    const float* s = src + jr * b.cs;
    int p = 0;
    const bool next_panel = jr + NR < nc;
    if (nr == NR) {
      for (; p + 8 <= kc; p += 8) {
        if (next_panel && p % 16 == 0)
          for (int c = 0; c < NR; ++c) prefetch(s + (NR + c) * b.cs + p);
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

// C tile (kMR, kNR) at c with row stride ldc = [C if load_c] + a (kMR x kc, packed) @ b (kc x kNR,
// packed) [+ bias (kNR) on every row]. a and b as laid out by pack_a / pack_b.
SKEIN_AVX2 __attribute__((noinline)) void kernel_6x16(int kc, const float* __restrict a,
                                                      const float* __restrict b,
                                                      float* __restrict c, long ldc, bool load_c,
                                                      const float* __restrict bias) {
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
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += kMR;
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

#define SKEIN_AVX512 __attribute__((target("avx2,fma,avx512f")))

// C tile (12, 32) at c with row stride ldc = [C if load_c] + a (12 x kc, packed) @ b (kc x 32,
// packed) [+ bias (32) on every row]: kernel_6x16's arithmetic on zmm registers.
SKEIN_AVX512 __attribute__((noinline)) void kernel_12x32(int kc, const float* __restrict a,
                                                         const float* __restrict b,
                                                         float* __restrict c, long ldc, bool load_c,
                                                         const float* __restrict bias) {
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
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += kMR512;
    b += kNR512;
  }
#pragma GCC unroll 12
  for (int r = 0; r < kMR512; ++r) {
    float* cr = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(cr));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(cr + 16));
    }
    if (bias) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(bias));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(bias + 16));
    }
    _mm512_storeu_ps(cr, acc[r][0]);
    _mm512_storeu_ps(cr + 16, acc[r][1]);
  }
}

// A microkernel with its tile, for the driver.
using MicroKernel = void (*)(int, const float*, const float*, float*, long, bool, const float*);
template <int MR_, int NR_, MicroKernel kKernel>
struct Tile {
  static constexpr int MR = MR_, NR = NR_;
  static void run(int kc, const float* a, const float* b, float* c, long ldc, bool load_c,
                  const float* bias) {
    kKernel(kc, a, b, c, ldc, load_c, bias);
  }
};
using Tile6x16 = Tile<kMR, kNR, kernel_6x16>;
using Tile12x32 = Tile<kMR512, kNR512, kernel_12x32>;

// The blocked loops (gemm.cc's header) around one microkernel.
template <class T, bool kRound>
SKEIN_AVX2 void sgemm_blocked(const View& a, const View& b, int M, int N, int K, float beta,
                              float* C, long ldc, const float* bias) {
  float* a_pack = t_a_pack;
  float* b_pack = t_b_pack;
  constexpr int kMR = T::MR, kNR = T::NR;
  alignas(64) float tile[kMR * kNR];
  for (int jc = 0; jc < N; jc += kNC) {
    const int nc = std::min(kNC, N - jc);
    // K blocks of equal depth (a multiple of 8, at most kKC) rather than kKC and a thin rest:
    // K = 384 runs as 2 x 192, not 256 + 128, whose C tiles would do half the work per visit.
    const int k_blocks = (K + kKC - 1) / kKC;
    const int kc_step = ((K + k_blocks - 1) / k_blocks + 7) / 8 * 8;
    for (int pc = 0; pc < K; pc += kc_step) {
      const int kc = std::min(kc_step, K - pc);
      // Only the first K block sees the caller's beta and adds the bias; later ones accumulate.
      const bool load_c = pc > 0 || beta != 0;
      const float* bias_jc = (pc == 0 && bias) ? bias + jc : nullptr;
      pack_b<kNR, kRound>(b, pc, kc, jc, nc, b_pack);
      for (int ic = 0; ic < M; ic += kMC) {
        const int mc = std::min(kMC, M - ic);
        pack_a<kMR, kRound>(a, ic, mc, pc, kc, a_pack);
        for (int jr = 0; jr < nc; jr += kNR) {
          const int nr = std::min(kNR, nc - jr);
          const float* bp = b_pack + long(jr) * kc;
          const float* bias_j = bias_jc ? bias_jc + jr : nullptr;
          for (int ir = 0; ir < mc; ir += kMR) {
            const int mr = std::min(kMR, mc - ir);
            const float* ap = a_pack + long(ir) * kc;
            float* c = C + (ic + ir) * ldc + jc + jr;
            if (mr == kMR && nr == kNR) {
              T::run(kc, ap, bp, c, ldc, load_c, bias_j);
            } else {
              T::run(kc, ap, bp, tile, kNR, false, nullptr);
              gemm_detail::write_edge_tile(tile, kNR, mr, nr, c, ldc, load_c, bias_j);
            }
          }
        }
      }
    }
  }
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

template <class T>
void run_blocked(bool round, const View& a, const View& b, int M, int N, int K, float beta,
                 float* C, long ldc, const float* bias) {
  if (round) return sgemm_blocked<T, true>(a, b, M, N, K, beta, C, ldc, bias);
  sgemm_blocked<T, false>(a, b, M, N, K, beta, C, ldc, bias);
}

#endif  // SKEIN_GEMM_X86

using BlockedFn = void (*)(bool, const View&, const View&, int, int, int, float, float*, long,
                           const float*);
struct KernelEntry {
  SgemmKernel info;
  BlockedFn run;
};

// The table: every fp32 microkernel, whether or not this CPU runs it (the tests and the
// benchmarks walk it; the dispatcher picks from it).
#ifdef SKEIN_GEMM_X86
const KernelEntry kKernels[] = {
    {{"avx2_6x16", kMR, kNR, cpu_has_avx2_fma, "AVX2 and FMA"}, run_blocked<Tile6x16>},
    {{"avx512_12x32", kMR512, kNR512, cpu_has_avx512f, "AVX-512F"}, run_blocked<Tile12x32>},
};
#else
bool cpu_none() {
  return false;
}
const KernelEntry kKernels[] = {
    {{"avx2_6x16", 6, 16, cpu_none, "an x86-64 CPU with AVX2 and FMA"}, nullptr},
    {{"avx512_12x32", 12, 32, cpu_none, "an x86-64 CPU with AVX-512F"}, nullptr},
};
#endif
constexpr int kNumKernels = int(sizeof(kKernels) / sizeof(kKernels[0]));

// Median seconds of one product at a training-like shape (K = kKC, so each C tile is written
// once) on kernel i.
double time_kernel(int i) {
  constexpr int M = kMC, N = 384, K = kKC;
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

// sgemm's kernel, chosen once: SKEIN_SGEMM_KERNEL=name when set (and runnable here), else the
// fastest runnable kernel on a short timing at start-up (a few ms; the kernels give the same
// bits, so the choice never changes a result); -1 when none runs here (Eigen then).
int choose_kernel(std::string* why) {
  if (const char* want = std::getenv("SKEIN_SGEMM_KERNEL"); want && *want) {
    for (int i = 0; i < kNumKernels; ++i)
      if (std::strcmp(kKernels[i].info.name, want) == 0 && kKernels[i].info.supported()) {
        *why = "SKEIN_SGEMM_KERNEL";
        return i;
      }
    *why = std::string("SKEIN_SGEMM_KERNEL=") + want + " is not a kernel this CPU runs; ";
  }
  int runnable = 0, best = -1;
  for (int i = 0; i < kNumKernels; ++i) runnable += kKernels[i].info.supported();
  double best_t = 0;
  for (int i = 0; i < kNumKernels; ++i) {
    if (!kKernels[i].info.supported()) continue;
    const double t = runnable > 1 ? time_kernel(i) : 0;
    if (best < 0 || t < best_t) best = i, best_t = t;
  }
  *why += runnable > 1 ? "fastest at start-up" : "the only one this CPU runs";
  return best;
}

struct Choice {
  int index;
  std::string why;
};
const Choice& chosen() {
  static const Choice c = [] {
    Choice r;
    r.index = choose_kernel(&r.why);
    return r;
  }();
  return c;
}

void sgemm_on(int index, bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc, const float* bias) {
  check_args(trans_a, trans_b, M, N, K, lda, ldb, beta, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_c(M, N, beta, C, ldc, bias);
  const View a = View::of(A, lda, trans_a), b = View::of(B, ldb, trans_b);
  kKernels[index].run(rounds_to_bf16(), a, b, M, N, K, beta, C, ldc, bias);
}

}  // namespace

std::span<const SgemmKernel> sgemm_kernels() {
  static const std::vector<SgemmKernel> infos = [] {
    std::vector<SgemmKernel> v;
    for (const KernelEntry& e : kKernels) v.push_back(e.info);
    return v;
  }();
  return infos;
}

void sgemm_with_kernel(int index, bool trans_a, bool trans_b, int M, int N, int K, const float* A,
                       int lda, const float* B, int ldb, float beta, float* C, int ldc,
                       const float* bias) {
  SKEIN_CHECK(index >= 0 && index < kNumKernels && kKernels[index].info.supported(),
              "sgemm_with_kernel: not a kernel this CPU runs");
  sgemm_on(index, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

const char* sgemm_path() {
  const int i = chosen().index;
  return i < 0 ? "portable" : kKernels[i].info.name;
}

std::string sgemm_choice() {
  const int i = chosen().index;
  if (i < 0) return "portable (Eigen): this CPU has neither AVX2+FMA nor AVX-512";
  return std::string(kKernels[i].info.name) + " (" + chosen().why + ")";
}

MatmulPrecision matmul_precision() {
  return t_precision;
}

ScopedMatmulPrecision::ScopedMatmulPrecision(MatmulPrecision p) : previous_(t_precision) {
  t_precision = p;
}

ScopedMatmulPrecision::~ScopedMatmulPrecision() {
  t_precision = previous_;
}

bool cpu_has_avx512_bf16() {
#ifdef SKEIN_GEMM_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
           int ldb, float beta, float* C, int ldc, const float* bias) {
  if (t_precision == MatmulPrecision::kBf16) {
    // the hardware kernel only once it has passed its check (else its portable twin)
    static const bool hardware = bf16_self_check().empty();
    return sgemm_bf16(hardware, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  }
  if (const int i = chosen().index; i >= 0)
    return sgemm_on(i, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  sgemm_portable(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

void sgemm_portable(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc, const float* bias) {
  gemm_eigen(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

void dgemm(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
           const double* B, int ldb, double beta, double* C, int ldc, const double* bias) {
  gemm_eigen(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

}  // namespace skein
