#include "kernels/attention.h"

#include <cmath>
#include <type_traits>

#include "base/check.h"
#include "kernels/eigen_maps.h"
#include "kernels/gemm.h"

namespace skein {

template <typename F>
void attention_forward(F* out, F* att, const F* qkv, int B, int T, int C, int NH) {
  SKEIN_CHECK(C % NH == 0);
  const int HS = C / NH;
  const long C3 = 3L * C;
  const F scale = F(1) / std::sqrt(F(HS));
  for (int b = 0; b < B; ++b) {
    const F* base = qkv + b * T * C3;
    for (int h = 0; h < NH; ++h) {
      ConstStridedMap<F> q(base + h * HS, T, HS, Eigen::OuterStride<>(C3));
      ConstStridedMap<F> k(base + C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      ConstStridedMap<F> v(base + 2 * C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      F* a = att + (static_cast<long>(b) * NH + h) * T * T;
      RowMap<F> p(a, T, T);
      // scores (T,T) = q (T,HS) @ k^T; float on sgemm, double on Eigen (as in linear.cc)
      if constexpr (std::is_same_v<F, float>)
        sgemm(false, true, T, T, HS, q.data(), C3, k.data(), C3, 0.0f, a, T);
      else
        p.noalias() = q * k.transpose();
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
      StridedMap<F> o(out + static_cast<long>(b) * T * C + h * HS, T, HS, Eigen::OuterStride<>(C));
      // out_h (T,HS) = P (T,T) @ v (T,HS)
      if constexpr (std::is_same_v<F, float>)
        sgemm(false, false, T, HS, T, a, T, v.data(), C3, 0.0f, o.data(), C);
      else
        o.noalias() = p * v;
    }
  }
}

template <typename F>
void attention_backward(F* dqkv, F* scratch, const F* dout, const F* qkv, const F* att, int B,
                        int T, int C, int NH) {
  SKEIN_CHECK(C % NH == 0);
  const int HS = C / NH;
  const long C3 = 3L * C;
  const F scale = F(1) / std::sqrt(F(HS));
  for (int b = 0; b < B; ++b) {
    const F* base = qkv + b * T * C3;
    F* dbase = dqkv + b * T * C3;
    for (int h = 0; h < NH; ++h) {
      ConstStridedMap<F> q(base + h * HS, T, HS, Eigen::OuterStride<>(C3));
      ConstStridedMap<F> k(base + C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      ConstStridedMap<F> v(base + 2 * C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      StridedMap<F> dq(dbase + h * HS, T, HS, Eigen::OuterStride<>(C3));
      StridedMap<F> dk(dbase + C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      StridedMap<F> dv(dbase + 2 * C + h * HS, T, HS, Eigen::OuterStride<>(C3));
      ConstStridedMap<F> dout_h(dout + static_cast<long>(b) * T * C + h * HS, T, HS,
                                Eigen::OuterStride<>(C));
      ConstRowMap<F> p(att + (static_cast<long>(b) * NH + h) * T * T, T, T);
      RowMap<F> dp(scratch, T, T);
      // out = P V: dV += P^T dout, dP = dout V^T
      if constexpr (std::is_same_v<F, float>) {
        sgemm(true, false, T, HS, T, p.data(), T, dout_h.data(), C, 1.0f, dv.data(), C3);
        sgemm(false, true, T, T, HS, dout_h.data(), C, v.data(), C3, 0.0f, scratch, T);
      } else {
        dv.noalias() += p.transpose() * dout_h;
        dp.noalias() = dout_h * v.transpose();
      }
      // softmax backward, row-wise: dS = P * (dP - sum_j P dP), then the 1/sqrt(HS) scale.
      for (int t = 0; t < T; ++t) {
        const F* prow = att + ((static_cast<long>(b) * NH + h) * T + t) * T;
        F* drow = scratch + static_cast<long>(t) * T;
        F dot = 0;
        for (int j = 0; j <= t; ++j) dot += prow[j] * drow[j];
        for (int j = 0; j <= t; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
        for (int j = t + 1; j < T; ++j) drow[j] = 0;
      }
      // S = Q K^T: dQ += dS K, dK += dS^T Q
      if constexpr (std::is_same_v<F, float>) {
        sgemm(false, false, T, HS, T, scratch, T, k.data(), C3, 1.0f, dq.data(), C3);
        sgemm(true, false, T, HS, T, scratch, T, q.data(), C3, 1.0f, dk.data(), C3);
      } else {
        dq.noalias() += dp * k;
        dk.noalias() += dp.transpose() * q;
      }
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
