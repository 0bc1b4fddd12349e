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

// The pieces of linear_forward / linear_backward for threads that share one layer, each split
// along an output dimension, never along the sum (K), so every element is computed as the whole
// product computes it. The GEMM's tiles must fall as they do in the whole product: column bounds
// at multiples of kLinearColumnAlign (or N / OC / C), row bounds at multiples of
// kLinearRowAlign (or the end). Bounds elsewhere give the same values up to rounding.
inline constexpr int kLinearColumnAlign = 32;  // a multiple of every kernel's NR (16, 32)
inline constexpr int kLinearRowAlign = 96;     // a multiple of every kernel's MR (6, 12, 32)

// out[:, j0:j1] = inp @ weight[j0:j1]^T + bias[j0:j1]
template <typename F>
void linear_forward_columns(const MatmulContext& mm, F* out, const F* inp, const F* weight,
                            const F* bias, int N, int C, int OC, int j0, int j1);
// dinp[:, c0:c1] = dinp_beta * dinp[:, c0:c1] + dout @ weight[:, c0:c1]
template <typename F>
void linear_backward_input_columns(const MatmulContext& mm, F* dinp, const F* dout, const F* weight,
                                   int N, int C, int OC, int c0, int c1, F dinp_beta);
// dweight[o0:o1, c0:c1] = dweight_beta * dweight[...] + dout[:, o0:o1]^T @ inp[:, c0:c1]
template <typename F>
void linear_backward_weight_block(const MatmulContext& mm, F* dweight, const F* dout, const F* inp,
                                  int N, int C, int OC, int o0, int o1, int c0, int c1,
                                  F dweight_beta);
// dbias[o0:o1] += column sums of dout[:, o0:o1], row after row
template <typename F>
void linear_backward_bias_columns(F* dbias, const F* dout, int N, int OC, int o0, int o1);

}  // namespace skein
