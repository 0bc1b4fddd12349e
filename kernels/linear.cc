#include "kernels/linear.h"

#include "kernels/gemm.h"

namespace skein {

// The products run on gemm: sgemm for float (training), Eigen for double (the finite-difference
// tests).

template <typename F>
void linear_forward_columns(const MatmulContext& mm, F* out, const F* inp, const F* weight,
                            const F* bias, int N, int C, int OC, int j0, int j1) {
  if (j1 <= j0) return;
  // out (N,OC) = inp (N,C) @ weight^T (C,OC) + bias, the bias added in the product's final pass
  gemm(mm, false, true, N, j1 - j0, C, inp, C, weight + static_cast<long>(j0) * C, C, F(0),
       out + j0, OC, bias ? bias + j0 : nullptr);
}

template <typename F>
void linear_backward_input_columns(const MatmulContext& mm, F* dinp, const F* dout, const F* weight,
                                   int N, int C, int OC, int c0, int c1, F dinp_beta) {
  if (c1 <= c0) return;
  // dinp (N,C) = dinp_beta * dinp + dout (N,OC) @ weight (OC,C)
  gemm(mm, false, false, N, c1 - c0, OC, dout, OC, weight + c0, C, dinp_beta, dinp + c0, C);
}

template <typename F>
void linear_backward_weight_block(const MatmulContext& mm, F* dweight, const F* dout, const F* inp,
                                  int N, int C, int OC, int o0, int o1, int c0, int c1,
                                  F dweight_beta) {
  if (o1 <= o0 || c1 <= c0) return;
  // dweight (OC,C) = dweight_beta * dweight + dout^T (OC,N) @ inp (N,C)
  gemm(mm, true, false, o1 - o0, c1 - c0, N, dout + o0, OC, inp + c0, C, dweight_beta,
       dweight + static_cast<long>(o0) * C + c0, C);
}

template <typename F>
void linear_backward_bias_columns(F* dbias, const F* dout, int N, int OC, int o0, int o1) {
  // column sums row after row: the order of the sums does not depend on how the buffers happen
  // to be aligned (Eigen's colwise sum did), nor on how the columns are split
  for (int n = 0; n < N; ++n) {
    const F* d = dout + static_cast<long>(n) * OC;
    for (int oc = o0; oc < o1; ++oc) dbias[oc] += d[oc];
  }
}

template <typename F>
void linear_forward(const MatmulContext& mm, F* out, const F* inp, const F* weight, const F* bias,
                    int N, int C, int OC) {
  linear_forward_columns(mm, out, inp, weight, bias, N, C, OC, 0, OC);
}

template <typename F>
void linear_backward(const MatmulContext& mm, F* dinp, F* dweight, F* dbias, const F* dout,
                     const F* inp, const F* weight, int N, int C, int OC, F dinp_beta,
                     F dweight_beta) {
  if (dinp) linear_backward_input_columns(mm, dinp, dout, weight, N, C, OC, 0, C, dinp_beta);
  linear_backward_weight_block(mm, dweight, dout, inp, N, C, OC, 0, OC, 0, C, dweight_beta);
  if (dbias) linear_backward_bias_columns(dbias, dout, N, OC, 0, OC);
}

template void linear_forward<float>(const MatmulContext&, float*, const float*, const float*,
                                    const float*, int, int, int);
template void linear_forward<double>(const MatmulContext&, double*, const double*, const double*,
                                     const double*, int, int, int);
template void linear_backward<float>(const MatmulContext&, float*, float*, float*, const float*,
                                     const float*, const float*, int, int, int, float, float);
template void linear_backward<double>(const MatmulContext&, double*, double*, double*,
                                      const double*, const double*, const double*, int, int, int,
                                      double, double);

template void linear_forward_columns<float>(const MatmulContext&, float*, const float*,
                                            const float*, const float*, int, int, int, int, int);
template void linear_forward_columns<double>(const MatmulContext&, double*, const double*,
                                             const double*, const double*, int, int, int, int, int);
template void linear_backward_input_columns<float>(const MatmulContext&, float*, const float*,
                                                   const float*, int, int, int, int, int, float);
template void linear_backward_input_columns<double>(const MatmulContext&, double*, const double*,
                                                    const double*, int, int, int, int, int, double);
template void linear_backward_weight_block<float>(const MatmulContext&, float*, const float*,
                                                  const float*, int, int, int, int, int, int, int,
                                                  float);
template void linear_backward_weight_block<double>(const MatmulContext&, double*, const double*,
                                                   const double*, int, int, int, int, int, int, int,
                                                   double);
template void linear_backward_bias_columns<float>(float*, const float*, int, int, int, int);
template void linear_backward_bias_columns<double>(double*, const double*, int, int, int, int);

}  // namespace skein
