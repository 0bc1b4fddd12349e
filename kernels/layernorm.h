// LayerNorm over the last dimension, eps = 1e-5 (PyTorch's default).
// Dimensions: N rows (= B*T), C channels.
#pragma once

namespace skein {

constexpr double kLayerNormEps = 1e-5;

// inp (N,C), weight (C), bias (C) -> out (N,C); mean, rstd (N) kept for backward
template <typename F>
void layernorm_forward(F* out, F* mean, F* rstd, const F* inp, const F* weight, const F* bias,
                       int N, int C);

// dout (N,C) -> dinp (N,C) +=, dweight (C) +=, dbias (C) +=. The three outputs overlap neither
// each other nor the inputs.
template <typename F>
void layernorm_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                        const F* mean, const F* rstd, int N, int C);

}  // namespace skein
