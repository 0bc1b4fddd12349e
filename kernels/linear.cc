#include "kernels/linear.h"

#include "kernels/gemm.h"

namespace skein {

// The products run on gemm: sgemm for float (training), Eigen for double (the finite-difference
// tests).

template <typename F>
void linear_forward(const MatmulContext& mm, F* out, const F* inp, const F* weight, const F* bias,
                    int N, int C, int OC) {
  // out (N,OC) = inp (N,C) @ weight^T (C,OC) + bias, the bias added in the product's final pass
  gemm(mm, false, true, N, OC, C, inp, C, weight, C, F(0), out, OC, bias);
}

template <typename F>
void linear_backward(const MatmulContext& mm, F* dinp, F* dweight, F* dbias, const F* dout,
                     const F* inp, const F* weight, int N, int C, int OC, F dinp_beta,
                     F dweight_beta) {
  // dinp (N,C) = dinp_beta * dinp + dout (N,OC) @ weight (OC,C)
  if (dinp) gemm(mm, false, false, N, C, OC, dout, OC, weight, C, dinp_beta, dinp, C);
  // dweight (OC,C) = dweight_beta * dweight + dout^T (OC,N) @ inp (N,C)
  gemm(mm, true, false, OC, C, N, dout, OC, inp, C, dweight_beta, dweight, C);
  // dbias (OC) += column sums of dout (N,OC), row after row: the order of the sums does not
  // depend on how the buffers happen to be aligned (Eigen's colwise sum did).
  if (dbias)
    for (int n = 0; n < N; ++n) {
      const F* d = dout + static_cast<long>(n) * OC;
      for (int oc = 0; oc < OC; ++oc) dbias[oc] += d[oc];
    }
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

}  // namespace skein
