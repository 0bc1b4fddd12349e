#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "base/multiversion.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/lane_reduce.h"

namespace skein {

// Per head, q, k, v and dq, dk, dv are (T,HS) views with row stride 3C inside qkv / dqkv, and
// out_h, dout_h (T,HS) views with row stride C; their products run on gemm (sgemm for float,
// Eigen for double).
//
// Causal blocking: P and dS are lower triangular, so each product runs in blocks of kRows rows
// (queries) or columns (keys) and stops at the diagonal block: queries t0..t0+m-1 only meet keys
// 0..t0+m-1. This skips most of the masked half (at T = 256, 59% of the full products' FLOPs are
// done). Entries above the diagonal inside a diagonal block are computed and then zeroed by the
// softmax; those past it are never computed, only zeroed. kRows = 48, a multiple of sgemm's 6x16
// tile, measured best of 32, 48, 64 and 96 at T = 256 and T = 64.
constexpr int kRows = 48;

// The softmax row loops of one head: templates for any F, and float overloads compiled for each
// x86-64 level (base/multiversion.h), which the calls in the kernels pick for float.
namespace {
// a (T,T) scores -> causal, numerically stable softmax of a * scale, in place, row by row
template <typename F>
void causal_softmax_forward(F* a, int T, F scale) {
  for (int t = 0; t < T; ++t) {
    F* row = a + static_cast<long>(t) * T;
    // max(row) * scale == max(row * scale): scale > 0 and rounding is monotonic
    const F mx = lane_max(row, t + 1) * scale;
    for (int j = 0; j <= t; ++j) row[j] = exp_of(row[j] * scale - mx);
    const F sum = lane_sum<F>(t + 1, [=](long j) { return row[j]; });
    F inv = F(1) / sum;
    for (int j = 0; j <= t; ++j) row[j] *= inv;
    for (int j = t + 1; j < T; ++j) row[j] = 0;
  }
}
SKEIN_MULTIVERSION void causal_softmax_forward(float* a, int T, float scale) {
  causal_softmax_forward<float>(a, T, scale);
}

// dp (T,T) = dP, p (T,T) = P -> dp = dS = P * (dP - sum_j P dP) * scale, in place, row by row
template <typename F>
void causal_softmax_backward(F* dp, const F* p, int T, F scale) {
  for (int t = 0; t < T; ++t) {
    const F* prow = p + static_cast<long>(t) * T;
    F* drow = dp + static_cast<long>(t) * T;
    const F dot = lane_sum<F>(t + 1, [=](long j) { return prow[j] * drow[j]; });
    for (int j = 0; j <= t; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
    for (int j = t + 1; j < T; ++j) drow[j] = 0;
  }
}
SKEIN_MULTIVERSION void causal_softmax_backward(float* dp, const float* p, int T, float scale) {
  causal_softmax_backward<float>(dp, p, T, scale);
}
}  // namespace

template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* att, const F* qkv, int B, int T, int C,
                       int NH) {
  SKEIN_CHECK(C % NH == 0);
  const int HS = C / NH;
  const int C3 = 3 * C;
  const F scale = F(1) / std::sqrt(F(HS));
  for (int b = 0; b < B; ++b) {
    const F* base = qkv + static_cast<long>(b) * T * C3;
    for (int h = 0; h < NH; ++h) {
      const F* q = base + h * HS;
      const F* k = base + C + h * HS;
      const F* v = base + 2 * C + h * HS;
      F* out_h = out + static_cast<long>(b) * T * C + h * HS;
      F* a = att + (static_cast<long>(b) * NH + h) * T * T;
      // scores (T,T) = q (T,HS) @ k^T, for keys up to the end of each query block
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, true, m, t0 + m, HS, q + t0 * C3, C3, k, C3, F(0), a + t0 * T, T);
      }
      causal_softmax_forward(a, T, scale);
      // out_h (T,HS) = P (T,T) @ v (T,HS)
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, false, m, HS, t0 + m, a + t0 * T, T, v, C3, F(0), out_h + t0 * C, C);
      }
    }
  }
}

template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* att, int B, int T, int C, int NH) {
  SKEIN_CHECK(C % NH == 0);
  const int HS = C / NH;
  const int C3 = 3 * C;
  const F scale = F(1) / std::sqrt(F(HS));
  for (int b = 0; b < B; ++b) {
    const F* base = qkv + static_cast<long>(b) * T * C3;
    F* dbase = dqkv + static_cast<long>(b) * T * C3;
    for (int h = 0; h < NH; ++h) {
      const F* q = base + h * HS;
      const F* k = base + C + h * HS;
      const F* v = base + 2 * C + h * HS;
      F* dq = dbase + h * HS;
      F* dk = dbase + C + h * HS;
      F* dv = dbase + 2 * C + h * HS;
      const F* dout_h = dout + static_cast<long>(b) * T * C + h * HS;
      const F* p = att + (static_cast<long>(b) * NH + h) * T * T;
      F* dp = scratch;  // (T,T)
      // out = P V: dV += P^T dout, dP = dout V^T. Keys j0..j0+m-1 get dV from queries j0..T-1.
      for (int j0 = 0; j0 < T; j0 += kRows) {
        const int m = std::min(kRows, T - j0);
        gemm(mm, true, false, m, HS, T - j0, p + j0 * T + j0, T, dout_h + j0 * C, C, F(1),
             dv + j0 * C3, C3);
      }
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, true, m, t0 + m, HS, dout_h + t0 * C, C, v, C3, F(0), dp + t0 * T, T);
      }
      causal_softmax_backward(dp, p, T, scale);
      // S = Q K^T: dQ += dS K, dK += dS^T Q
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, false, m, HS, t0 + m, dp + t0 * T, T, k, C3, F(1), dq + t0 * C3, C3);
        gemm(mm, true, false, m, HS, T - t0, dp + t0 * T + t0, T, q + t0 * C3, C3, F(1),
             dk + t0 * C3, C3);
      }
    }
  }
}

template void attention_forward<float>(const MatmulContext&, float*, float*, const float*, int, int,
                                       int, int);
template void attention_forward<double>(const MatmulContext&, double*, double*, const double*, int,
                                        int, int, int);
template void attention_backward<float>(const MatmulContext&, float*, float*, const float*,
                                        const float*, const float*, int, int, int, int);
template void attention_backward<double>(const MatmulContext&, double*, double*, const double*,
                                         const double*, const double*, int, int, int, int);

}  // namespace skein
