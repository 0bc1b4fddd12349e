#include "kernels/linear.h"

#include <type_traits>

#include "kernels/eigen_maps.h"
#include "kernels/gemm.h"

namespace skein {

// float (training) runs on sgemm; double (the finite-difference tests) stays on Eigen.

template <typename F>
void linear_forward(F* out, const F* inp, const F* weight, const F* bias, int N, int C, int OC) {
  if constexpr (std::is_same_v<F, float>) {
    // out (N,OC) = inp (N,C) @ weight^T (C,OC), bias added in the kernel's final pass over out
    sgemm(false, true, N, OC, C, inp, C, weight, C, 0.0f, out, OC, bias);
  } else {
    ConstRowMap<F> x(inp, N, C);
    ConstRowMap<F> w(weight, OC, C);
    RowMap<F> y(out, N, OC);
    y.noalias() = x * w.transpose();
    if (bias) y.rowwise() += ConstRowVecMap<F>(bias, OC);
  }
}

template <typename F>
void linear_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                     int N, int C, int OC) {
  if constexpr (std::is_same_v<F, float>) {
    // dinp (N,C) += dout (N,OC) @ weight (OC,C)
    if (dinp) sgemm(false, false, N, C, OC, dout, OC, weight, C, 1.0f, dinp, C);
    // dweight (OC,C) += dout^T (OC,N) @ inp (N,C)
    sgemm(true, false, OC, C, N, dout, OC, inp, C, 1.0f, dweight, C);
  } else {
    ConstRowMap<F> dy(dout, N, OC);
    ConstRowMap<F> x(inp, N, C);
    ConstRowMap<F> w(weight, OC, C);
    if (dinp) RowMap<F>(dinp, N, C).noalias() += dy * w;        // (N,OC) @ (OC,C)
    RowMap<F>(dweight, OC, C).noalias() += dy.transpose() * x;  // (OC,N) @ (N,C)
  }
  // dbias (OC) += column sums of dout (N,OC)
  if (dbias) RowVecMap<F>(dbias, OC) += ConstRowMap<F>(dout, N, OC).colwise().sum();
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int, int,
                                    int);
template void linear_forward<double>(double*, const double*, const double*, const double*, int, int,
                                     int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, int, int, int);
template void linear_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, int, int, int);

}  // namespace skein
