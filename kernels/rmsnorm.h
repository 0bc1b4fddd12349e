// RMSNorm over the last dimension (Llama's norm): y = x / sqrt(mean(x^2) + eps) * weight, no
// centring, no bias. Dimensions: N rows (= B*T), C channels.
#pragma once

namespace skein {

// inp (N,C), weight (C) -> out (N,C); rstd (N) = 1 / sqrt(mean(x^2) + eps), kept for backward
template <typename F>
void rmsnorm_forward(F* out, F* rstd, const F* inp, const F* weight, int N, int C, F eps);

// dout (N,C) -> dinp (N,C) +=, row by row (rows may be split among threads). dinp overlaps no
// input.
template <typename F>
void rmsnorm_backward_input(F* dinp, const F* dout, const F* inp, const F* weight, const F* rstd,
                            int N, int C);

// dout (N,C) -> dweight[c] += sum over all N rows (in row order) of dout * x * rstd, for channels
// [c_begin, c_end) (channels may be split among threads; rows not, so the sums keep their order).
template <typename F>
void rmsnorm_backward_params(F* dweight, const F* dout, const F* inp, const F* rstd, int N, int C,
                             int c_begin, int c_end);

}  // namespace skein
