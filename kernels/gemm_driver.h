// The one blocked GEMM driver that every microkernel of sgemm_kernels() runs in (the loop
// structure of Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008).
// Internal to kernels/: gemm.cc (fp32 kernels, table, dispatch) and gemm_bf16.cc (bf16 kernels).
//
// Loops, outermost first (sizes in elements of op(A) / op(B)):
//   jc: N in steps of kNC   op(B)[pc:pc+kc, jc:jc+nc] packed once into b_pack (lives in L3)
//   pc: K in steps of at most kKC
//   ic: M in steps of kMC   op(A)[ic:ic+mc, pc:pc+kc] packed into a_pack (lives in L2), or
//                           read in place where the kernel can (direct A, below)
//   jr: nc in steps of NR   one micro-panel of b_pack, stays in L1 across the ir loop
//   ir: mc in steps of MR   microkernel: C[MR x NR] += a micro-panel @ b micro-panel
// Packing lays each micro-panel out in the exact order the microkernel reads it (unit stride,
// zero-padded to full MR / NR), so the kernel never sees transposes, leading dimensions or
// ragged edges; only the final write of an edge tile is special.
//
// A kernel description K says everything that differs between kernels:
//   using Packed            the packed element: float (fp32), uint32_t (a pair of bf16 along k)
//   MR, NR                  the microkernel's tile
//   kKAlign                 K blocks are a multiple of it (8 fp32: the packing's 8-k steps;
//                           2 bf16: whole pairs)
//   depth(kc)               packed elements per row of an A panel (and column of a B panel)
//   pack_a(a, i0, mc, p0, kc, dst)      MR-row panels of op(A)[i0:i0+mc, p0:p0+kc]
//   pack_b(b, p0, kc, j0, nc, dst)      NR-column panels of op(B)[p0:p0+kc, j0:j0+nc]
//   run(depth, a, b, c, ldc, load_c, bias)   C tile = [C] + a @ b [+ bias], in that order
// and optionally (the fp32 kernels), for an op(A) whose rows are contiguous:
//   direct_a(a)             whether the kernel reads op(A)'s full MR-row panels in place
//   run_direct(kc, a, lda, b, c, ldc, load_c, bias)   run's product with a the panel's first
//                           row in op(A) itself (row stride lda): the same sums in the same order
// All kernels share the block sizes below, so the K blocks (and with them the order of every
// sum) depend on K only: kernels of one arithmetic give the same bits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/gemm.h"
#include "kernels/gemm_common.h"

namespace skein::gemm_detail {

// kKC: the depth of a K block, so how often a C tile is loaded and stored again: 384 makes K = 384
// (the char config's width) one block and K = 768 two, where 256 made them 2 and 3. A kc x 32
// fp32 micro-panel of B is then 48 KiB, streamed from L2 (a 6 x 16 kernel's 24 KiB + 9 KiB of A
// about fill a 32 KiB L1d). On a Zen 4, side by side with 256: the 12x32 kernel's products
// +2% and a char training step 2.8-7.3% faster (3 alternating rounds of bench_step). (On an
// earlier machine 256, 384 and 512 measured the same within noise.)
constexpr int kKC = kSgemmKC;
// kMC: the packed fp32 A block (192 * 384 * 4 B = 288 KiB) sits in a 512 KiB L2 with room for
// the B micro-panels streaming through it; a multiple of every MR (6, 12, 32). (72 to 240
// measured within noise.)
constexpr int kMC = kSgemmMC;
// kNC: the packed fp32 B panel (384 * 1536 * 4 B = 2.25 MiB) lives in L3. 1536 = 4C of the char
// config, so at every one of its training shapes each block of A is packed exactly once; a
// multiple of every NR (16, 32).
constexpr int kNC = kSgemmNC;
static_assert(kMC % 6 == 0 && kMC % 12 == 0 && kMC % 32 == 0 && kNC % 16 == 0 && kNC % 32 == 0);

// The calling thread's packing buffers (gemm.cc), fixed-size, sized for fp32 (the widest packed
// element): no allocation per call, no sharing between threads. a_pack has 32 floats of slack
// for the fp32 pack_a's overlapping stores.
constexpr long kAPackBytes = (long(kMC) * kKC + 32) * 4;
constexpr long kBPackBytes = long(kKC) * kNC * 4;
void* a_pack_buffer();
void* b_pack_buffer();

// A product on one kernel with its arguments checked and M, N, K > 0; round: kBf16Rounded
// (fp32 kernels only).
using BlockedFn = void (*)(bool round, const View& a, const View& b, int M, int N, int K,
                           float beta, float* C, long ldc, const float* bias);

// transposed_c: the product computed is C^T = op(A) op(B) with C^T (M x N) stored as C (N x M,
// row stride ldc), and bias (M) added along C^T's rows (sgemm's swapped form for a few rows of
// activations times a large weight, gemm.cc). Full tiles go through Kern::write_transposed where
// the kernel has one, edge tiles (and every tile otherwise) through write_edge_tile.
template <class Kern>
void blocked(const View& a, const View& b, int M, int N, int K, float beta, float* C, long ldc,
             const float* bias, bool transposed_c = false) {
  using P = typename Kern::Packed;
  constexpr int MR = Kern::MR, NR = Kern::NR;
  static_assert(kMC % MR == 0 && kNC % NR == 0);
  static_assert(long(kMC) * kKC * sizeof(P) <= kAPackBytes &&
                long(kKC) * kNC * sizeof(P) <= kBPackBytes);
  // A kernel may read op(A) in place where its rows are contiguous (Kern::direct_a): the fp32
  // kernels, whose packing of such an A was ~4% of a char training step's time and only
  // reordered the values.
  constexpr bool kHasDirect = requires(const View& v) {
    Kern::direct_a(v);
  };
  bool direct = false;
  if constexpr (kHasDirect) direct = Kern::direct_a(a);
  P* a_pack = static_cast<P*>(a_pack_buffer());
  P* b_pack = static_cast<P*>(b_pack_buffer());
  alignas(64) float tile[MR * NR];
  // K blocks of equal depth (a multiple of kKAlign, at most kKC) rather than kKC and a thin
  // rest: K = 384 runs as 2 x 192, not 256 + 128, whose C tiles would do half the work per visit.
  static_assert(kKC % Kern::kKAlign == 0);
  const int k_blocks = (K + kKC - 1) / kKC;
  const int kc_step =
      ((K + k_blocks - 1) / k_blocks + Kern::kKAlign - 1) / Kern::kKAlign * Kern::kKAlign;
  for (int jc = 0; jc < N; jc += kNC) {
    const int nc = std::min(kNC, N - jc);
    for (int pc = 0; pc < K; pc += kc_step) {
      const int kc = std::min(kc_step, K - pc), depth = Kern::depth(kc);
      // Only the first K block sees the caller's beta and adds the bias; later ones accumulate.
      const bool load_c = pc > 0 || beta != 0;
      const float* bias_jc = (pc == 0 && bias && !transposed_c) ? bias + jc : nullptr;
      const float* bias_rows = (pc == 0 && bias && transposed_c) ? bias : nullptr;
      Kern::pack_b(b, pc, kc, jc, nc, b_pack);
      for (int ic = 0; ic < M; ic += kMC) {
        const int mc = std::min(kMC, M - ic);
        // Direct A: the full MR-row panels are read in place; only an edge panel is packed, at
        // the start of a_pack.
        const int direct_rows = direct ? mc / MR * MR : 0;
        if (direct_rows < mc) Kern::pack_a(a, ic + direct_rows, mc - direct_rows, pc, kc, a_pack);
        const float* a_rows = direct ? a.data + ic * a.rs + pc : nullptr;
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          const P* bp = b_pack + long(jr) * depth;
          const float* bias_j = bias_jc ? bias_jc + jr : nullptr;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir);
            const P* ap = ir < direct_rows ? a_pack : a_pack + long(ir - direct_rows) * depth;
            // the microkernel on this tile's A panel, in place or packed
            auto micro = [&](float* out, long ld_out, bool lc, const float* bj) {
              if constexpr (kHasDirect) {
                if (ir < direct_rows)
                  return Kern::run_direct(depth, a_rows + ir * a.rs, a.rs, bp, out, ld_out, lc, bj);
              }
              Kern::run(depth, ap, bp, out, ld_out, lc, bj);
            };
            if (transposed_c) {
              // through the tile: the kernel's own store writes rows of C
              float* ct = C + long(jc + jr) * ldc + ic + ir;
              const float* bias_t = bias_rows ? bias_rows + ic + ir : nullptr;
              micro(tile, NR, false, nullptr);
              if constexpr (requires { Kern::write_transposed(tile, ct, ldc, load_c, bias_t); }) {
                if (mr == MR && nr == NR) {
                  Kern::write_transposed(tile, ct, ldc, load_c, bias_t);
                  continue;
                }
              }
              write_edge_tile(tile, NR, mr, nr, ct, ldc, load_c, bias_t, /*transposed=*/true);
              continue;
            }
            float* c = C + (ic + ir) * ldc + jc + jr;
            const bool full = mr == MR && nr == NR;
            micro(full ? c : tile, full ? ldc : NR, full && load_c, full ? bias_j : nullptr);
            if (!full) write_edge_tile(tile, NR, mr, nr, c, ldc, load_c, bias_j);
          }
        }
      }
    }
  }
}

// The bf16 family (gemm_bf16.cc): the vdpbf16ps kernel, its portable twin, the AMX kernel.
bool cpu_runs_bf16_kernel();
bool cpu_runs_amx_kernel();
bool cpu_runs_anything();
void blocked_bf16_amx(bool round, const View& a, const View& b, int M, int N, int K, float beta,
                      float* C, long ldc, const float* bias);
void blocked_bf16_avx512(bool round, const View& a, const View& b, int M, int N, int K, float beta,
                         float* C, long ldc, const float* bias);
void blocked_bf16_portable(bool round, const View& a, const View& b, int M, int N, int K,
                           float beta, float* C, long ldc, const float* bias);
// "" when kernel gives the portable twin's bits on data where every partial sum is exact (so any
// correct order of additions agrees); else what differs, naming the kernel.
std::string bf16_kernel_check(BlockedFn kernel, const char* name);

}  // namespace skein::gemm_detail
