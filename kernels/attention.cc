#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "kernels/gemm.h"

namespace skein {

// Per head, q, k, v and dq, dk, dv are (T,HS) views with row stride 3C inside qkv / dqkv, and
// out_h, dout_h (T,HS) views with row stride C; their products run on gemm (sgemm for float,
// Eigen for double).

template <typename F>
void attention_forward(F* out, F* att, const F* qkv, int B, int T, int C, int NH) {
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
      // scores (T,T) = q (T,HS) @ k^T
      gemm(false, true, T, T, HS, q, C3, k, C3, F(0), a, T);
      // Causal, numerically stable softmax of the scaled scores, row by row.
      for (int t = 0; t < T; ++t) {
        F* row = a + static_cast<long>(t) * T;
        F mx = row[0] * scale;
        for (int j = 1; j <= t; ++j) mx = std::max(mx, row[j] * scale);
        F sum = 0;
        for (int j = 0; j <= t; ++j) {
          row[j] = std::exp(row[j] * scale - mx);
          sum += row[j];
        }
        F inv = F(1) / sum;
        for (int j = 0; j <= t; ++j) row[j] *= inv;
        for (int j = t + 1; j < T; ++j) row[j] = 0;
      }
      // out_h (T,HS) = P (T,T) @ v (T,HS)
      gemm(false, false, T, HS, T, a, T, v, C3, F(0), out_h, C);
    }
  }
}

template <typename F>
void attention_backward(F* dqkv, F* scratch, const F* dout, const F* qkv, const F* att, int B,
                        int T, int C, int NH) {
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
      // out = P V: dV += P^T dout, dP = dout V^T
      gemm(true, false, T, HS, T, p, T, dout_h, C, F(1), dv, C3);
      gemm(false, true, T, T, HS, dout_h, C, v, C3, F(0), dp, T);
      // softmax backward, row-wise: dS = P * (dP - sum_j P dP), then the 1/sqrt(HS) scale.
      for (int t = 0; t < T; ++t) {
        const F* prow = p + static_cast<long>(t) * T;
        F* drow = dp + static_cast<long>(t) * T;
        F dot = 0;
        for (int j = 0; j <= t; ++j) dot += prow[j] * drow[j];
        for (int j = 0; j <= t; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
        for (int j = t + 1; j < T; ++j) drow[j] = 0;
      }
      // S = Q K^T: dQ += dS K, dK += dS^T Q
      gemm(false, false, T, HS, T, dp, T, k, C3, F(1), dq, C3);
      gemm(true, false, T, HS, T, dp, T, q, C3, F(1), dk, C3);
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, int, int, int, int);
template void attention_forward<double>(double*, double*, const double*, int, int, int, int);
template void attention_backward<float>(float*, float*, const float*, const float*, const float*,
                                        int, int, int, int);
template void attention_backward<double>(double*, double*, const double*, const double*,
                                         const double*, int, int, int, int);

}  // namespace skein
