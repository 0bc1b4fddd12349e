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
// each other nor the inputs. Computed as the two parts below over all rows and channels.
template <typename F>
void layernorm_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                        const F* mean, const F* rstd, int N, int C);

// The two parts of layernorm_backward, for threads that share one: the input's gradient row by
// row (rows may be split among threads), and the parameters' gradient for channels
// [c_begin, c_end), each summed over all N rows in row order (channels may be split; rows not,
// so the sums have the same order for any split).
template <typename F>
void layernorm_backward_input(F* dinp, const F* dout, const F* inp, const F* weight, const F* mean,
                              const F* rstd, int N, int C);
template <typename F>
void layernorm_backward_params(F* dweight, F* dbias, const F* dout, const F* inp, const F* mean,
                               const F* rstd, int N, int C, int c_begin, int c_end);

}  // namespace skein
