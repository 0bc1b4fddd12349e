// Linear layer (matmul + bias), weight in PyTorch's [out, in] layout.
// Dimensions: N rows (= B*T), C input channels, OC output channels.
#pragma once

#include "kernels/gemm.h"

namespace skein {

// mm: the products' precision and kernel (ignored for double, which computes in double); the
// overloads without it compute in fp32.

// inp (N,C), weight (OC,C), bias (OC) or nullptr -> out (N,OC) = inp @ weight^T + bias
template <typename F>
void linear_forward(const MatmulContext& mm, F* out, const F* inp, const F* weight, const F* bias,
                    int N, int C, int OC);
template <typename F>
void linear_forward(F* out, const F* inp, const F* weight, const F* bias, int N, int C, int OC) {
  linear_forward(MatmulContext{}, out, inp, weight, bias, N, C, OC);
}

// dout (N,OC) -> dinp (N,C) +=, dweight (OC,C) +=, dbias (OC) += (dbias may be nullptr).
// dinp may be nullptr when the input's gradient is not needed. dinp_beta / dweight_beta 0
// (instead of the default 1) write dinp / dweight instead of adding to them: their previous
// content is never read (it may be garbage).
template <typename F>
void linear_backward(const MatmulContext& mm, F* dinp, F* dweight, F* dbias, const F* dout,
                     const F* inp, const F* weight, int N, int C, int OC, F dinp_beta = F(1),
                     F dweight_beta = F(1));
template <typename F>
void linear_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                     int N, int C, int OC, F dinp_beta = F(1), F dweight_beta = F(1)) {
  linear_backward(MatmulContext{}, dinp, dweight, dbias, dout, inp, weight, N, C, OC, dinp_beta,
                  dweight_beta);
}

}  // namespace skein
