#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "base/multiversion.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/lane_reduce.h"

namespace skein {

// Per head, q, k, v and dq, dk, dv are (T,HS) views with row stride qkv_width (3C in multi-head
// attention) inside qkv / dqkv, and out_h, dout_h (T,HS) views with row stride C; their products
// run on gemm (sgemm for float, Eigen for double).
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
// One probability's exponent, in one place so that forward and the rebuild in backward round it
// alike.
template <typename F>
inline F shifted_exp(F score, F scale, F mx) {
  return exp_of(score * scale - mx);
}

// a (T,T) scores -> causal, numerically stable softmax of a * scale, in place, row by row;
// st (T,2): each row's max(score) * scale and 1/sum
template <typename F>
void causal_softmax_forward(F* a, F* st, int T, F scale) {
  for (int t = 0; t < T; ++t) {
    F* row = a + static_cast<long>(t) * T;
    // max(row) * scale == max(row * scale): scale > 0 and rounding is monotonic
    const F mx = lane_max(row, t + 1) * scale;
    for (int j = 0; j <= t; ++j) row[j] = shifted_exp(row[j], scale, mx);
    const F sum = lane_sum<F>(t + 1, [=](long j) { return row[j]; });
    const F inv = F(1) / sum;
    for (int j = 0; j <= t; ++j) row[j] *= inv;
    for (int j = t + 1; j < T; ++j) row[j] = 0;
    st[2 * t] = mx;
    st[2 * t + 1] = inv;
  }
}
SKEIN_MULTIVERSION void causal_softmax_forward(float* a, float* st, int T, float scale) {
  causal_softmax_forward<float>(a, st, T, scale);
}

// a (T,T) the same scores -> the same probabilities, from forward's st
template <typename F>
void causal_softmax_rebuild(F* a, const F* st, int T, F scale) {
  for (int t = 0; t < T; ++t) {
    F* row = a + static_cast<long>(t) * T;
    const F mx = st[2 * t], inv = st[2 * t + 1];
    for (int j = 0; j <= t; ++j) row[j] = shifted_exp(row[j], scale, mx) * inv;
    for (int j = t + 1; j < T; ++j) row[j] = 0;
  }
}
SKEIN_MULTIVERSION void causal_softmax_rebuild(float* a, const float* st, int T, float scale) {
  causal_softmax_rebuild<float>(a, st, T, scale);
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

// a (T,T) = q (T,HS) @ k^T with row stride ld (3C), for keys up to the end of each query block
template <typename F>
void causal_scores(const MatmulContext& mm, F* a, const F* q, const F* k, int T, int HS, int ld) {
  for (int t0 = 0; t0 < T; t0 += kRows) {
    const int m = std::min(kRows, T - t0);
    gemm(mm, false, true, m, t0 + m, HS, q + static_cast<long>(t0) * ld, ld, k, ld, F(0),
         a + static_cast<long>(t0) * T, T);
  }
}
}  // namespace

template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv, int B,
                       int T, int C, int NH) {
  SKEIN_CHECK(C % NH == 0);
  attention_forward(mm, out, stats, scratch, qkv, B, T, AttentionHeads{NH, NH, C / NH});
}

template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv, int B,
                       int T, AttentionHeads heads) {
  attention_forward_tasks(mm, out, stats, scratch, qkv, T, heads, 0, B * heads.kv);
}

template <typename F>
void attention_forward_tasks(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv,
                             int T, AttentionHeads heads, int task_begin, int task_end) {
  const int NH = heads.q, NKV = heads.kv, HS = heads.size;
  SKEIN_CHECK(NKV > 0 && NH % NKV == 0, "key/value heads must divide the query heads");
  const int group = NH / NKV;
  const int C = NH * HS, ld = heads.qkv_width();
  const F scale = F(1) / std::sqrt(F(HS));
  F* a = scratch;  // (T,T): one head's scores, then its probabilities
  for (int task = task_begin; task < task_end; ++task) {
    const int b = task / NKV, g = task % NKV;
    const F* base = qkv + static_cast<long>(b) * T * ld;
    const F* k = base + C + g * HS;
    const F* v = base + C + NKV * HS + g * HS;
    for (int h = g * group; h < (g + 1) * group; ++h) {
      const F* q = base + h * HS;
      F* out_h = out + static_cast<long>(b) * T * C + h * HS;
      F* st = stats + (static_cast<long>(b) * NH + h) * 2 * T;
      causal_scores(mm, a, q, k, T, HS, ld);
      causal_softmax_forward(a, st, T, scale);
      // out_h (T,HS) = P (T,T) @ v (T,HS)
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, false, m, HS, t0 + m, a + t0 * T, T, v, ld, F(0), out_h + t0 * C, C);
      }
    }
  }
}

template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* stats, int B, int T, int C, int NH) {
  SKEIN_CHECK(C % NH == 0);
  attention_backward(mm, dqkv, scratch, dout, qkv, stats, B, T, AttentionHeads{NH, NH, C / NH});
}

template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* stats, int B, int T, AttentionHeads heads) {
  attention_backward_tasks(mm, dqkv, scratch, dout, qkv, stats, T, heads, 0, B * heads.kv);
}

template <typename F>
void attention_backward_tasks(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout,
                              const F* qkv, const F* stats, int T, AttentionHeads heads,
                              int task_begin, int task_end) {
  const int NH = heads.q, NKV = heads.kv, HS = heads.size;
  SKEIN_CHECK(NKV > 0 && NH % NKV == 0, "key/value heads must divide the query heads");
  const int group = NH / NKV;
  const int C = NH * HS, ld = heads.qkv_width();
  const F scale = F(1) / std::sqrt(F(HS));
  F* p = scratch;                              // (T,T): P, rebuilt
  F* dp = scratch + static_cast<long>(T) * T;  // (T,T): dP, then dS
  for (int task = task_begin; task < task_end; ++task) {
    const int b = task / NKV, g = task % NKV;
    const F* base = qkv + static_cast<long>(b) * T * ld;
    F* dbase = dqkv + static_cast<long>(b) * T * ld;
    const F* k = base + C + g * HS;
    const F* v = base + C + NKV * HS + g * HS;
    F* dk = dbase + C + g * HS;
    F* dv = dbase + C + NKV * HS + g * HS;
    for (int h = g * group; h < (g + 1) * group; ++h) {
      const F* q = base + h * HS;
      F* dq = dbase + h * HS;
      const F* dout_h = dout + static_cast<long>(b) * T * C + h * HS;
      causal_scores(mm, p, q, k, T, HS, ld);
      causal_softmax_rebuild(p, stats + (static_cast<long>(b) * NH + h) * 2 * T, T, scale);
      // out = P V: dV += P^T dout, dP = dout V^T. Keys j0..j0+m-1 get dV from queries j0..T-1.
      for (int j0 = 0; j0 < T; j0 += kRows) {
        const int m = std::min(kRows, T - j0);
        gemm(mm, true, false, m, HS, T - j0, p + j0 * T + j0, T, dout_h + j0 * C, C, F(1),
             dv + j0 * ld, ld);
      }
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, true, m, t0 + m, HS, dout_h + t0 * C, C, v, ld, F(0), dp + t0 * T, T);
      }
      causal_softmax_backward(dp, p, T, scale);
      // S = Q K^T: dQ += dS K, dK += dS^T Q
      for (int t0 = 0; t0 < T; t0 += kRows) {
        const int m = std::min(kRows, T - t0);
        gemm(mm, false, false, m, HS, t0 + m, dp + t0 * T, T, k, ld, F(1), dq + t0 * ld, ld);
        gemm(mm, true, false, m, HS, T - t0, dp + t0 * T + t0, T, q + t0 * ld, ld, F(1),
             dk + t0 * ld, ld);
      }
    }
  }
}

#define SKEIN_ATTENTION_INSTANCES(F)                                                              \
  template void attention_forward<F>(const MatmulContext&, F*, F*, F*, const F*, int, int, int,   \
                                     int);                                                        \
  template void attention_forward<F>(const MatmulContext&, F*, F*, F*, const F*, int, int,        \
                                     AttentionHeads);                                             \
  template void attention_forward_tasks<F>(const MatmulContext&, F*, F*, F*, const F*, int,       \
                                           AttentionHeads, int, int);                             \
  template void attention_backward<F>(const MatmulContext&, F*, F*, const F*, const F*, const F*, \
                                      int, int, int, int);                                        \
  template void attention_backward<F>(const MatmulContext&, F*, F*, const F*, const F*, const F*, \
                                      int, int, AttentionHeads);                                  \
  template void attention_backward_tasks<F>(const MatmulContext&, F*, F*, const F*, const F*,     \
                                            const F*, int, AttentionHeads, int, int);
SKEIN_ATTENTION_INSTANCES(float)
SKEIN_ATTENTION_INSTANCES(double)
#undef SKEIN_ATTENTION_INSTANCES

}  // namespace skein
