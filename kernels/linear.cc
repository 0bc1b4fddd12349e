#include "kernels/linear.h"

#include "kernels/eigen_maps.h"

namespace skein {

template <typename F>
void linear_forward(F* out, const F* inp, const F* weight, const F* bias, int N, int C, int OC) {
  ConstRowMap<F> x(inp, N, C);
  ConstRowMap<F> w(weight, OC, C);
  RowMap<F> y(out, N, OC);
  y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstRowVecMap<F>(bias, OC);
}

template <typename F>
void linear_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                     int N, int C, int OC) {
  ConstRowMap<F> dy(dout, N, OC);
  ConstRowMap<F> x(inp, N, C);
  ConstRowMap<F> w(weight, OC, C);
  if (dinp) RowMap<F>(dinp, N, C).noalias() += dy * w;        // (N,OC) @ (OC,C)
  RowMap<F>(dweight, OC, C).noalias() += dy.transpose() * x;  // (OC,N) @ (N,C)
  if (dbias) RowVecMap<F>(dbias, OC) += dy.colwise().sum();
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
