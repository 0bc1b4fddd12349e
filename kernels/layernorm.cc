#include "kernels/layernorm.h"

#include <cmath>

#include "base/multiversion.h"
#include "kernels/lane_reduce.h"

namespace skein {

// The row loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
template <typename F>
void layernorm_forward_rows(F* out, F* mean, F* rstd, const F* inp, const F* weight, const F* bias,
                            int N, int C) {
  for (int i = 0; i < N; ++i) {
    const F* x = inp + static_cast<long>(i) * C;
    F* o = out + static_cast<long>(i) * C;
    // Two passes: the centred variance avoids the cancellation of E[x^2] - E[x]^2.
    const F m = lane_sum<F>(C, [=](long c) { return x[c]; }) / C;
    const F v = lane_sum<F>(C, [=](long c) { return (x[c] - m) * (x[c] - m); }) / C;
    F s = F(1) / std::sqrt(v + F(kLayerNormEps));
    for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[i] = m;
    rstd[i] = s;
  }
}
SKEIN_MULTIVERSION void layernorm_forward_rows(float* out, float* mean, float* rstd,
                                               const float* inp, const float* weight,
                                               const float* bias, int N, int C) {
  layernorm_forward_rows<float>(out, mean, rstd, inp, weight, bias, N, C);
}

// The element-wise part of one row's input gradient. The output overlaps no input (the header's
// contract); __restrict says so, so that the loop vectorises without run-time checks.
template <typename F>
void layernorm_backward_row(F* __restrict dx, const F* __restrict d, const F* __restrict x,
                            const F* __restrict weight, F m, F s, F dnorm_mean, F dnorm_norm_mean,
                            int C) {
  for (int c = 0; c < C; ++c) {
    F norm = (x[c] - m) * s;
    F dnorm = d[c] * weight[c];
    F g = dnorm;                  // term 1: direct path
    g -= dnorm_mean;              // term 2: through the mean
    g -= norm * dnorm_norm_mean;  // term 3: through the variance
    dx[c] += g * s;               // final scale
  }
}

template <typename F>
void layernorm_backward_input_rows(F* dinp, const F* dout, const F* inp, const F* weight,
                                   const F* mean, const F* rstd, int N, int C) {
  for (int i = 0; i < N; ++i) {
    const F* d = dout + static_cast<long>(i) * C;
    const F* x = inp + static_cast<long>(i) * C;
    F* dx = dinp + static_cast<long>(i) * C;
    const F m = mean[i];
    const F s = rstd[i];
    // Two reductions over the row: mean(dnorm) and mean(dnorm * norm), dnorm = dout * weight.
    const F dnorm_mean = lane_sum<F>(C, [=](long c) { return d[c] * weight[c]; }) / C;
    const F dnorm_norm_mean =
        lane_sum<F>(C, [=](long c) { return d[c] * weight[c] * ((x[c] - m) * s); }) / C;
    layernorm_backward_row(dx, d, x, weight, m, s, dnorm_mean, dnorm_norm_mean, C);
  }
}
SKEIN_MULTIVERSION void layernorm_backward_input_rows(float* dinp, const float* dout,
                                                      const float* inp, const float* weight,
                                                      const float* mean, const float* rstd, int N,
                                                      int C) {
  layernorm_backward_input_rows<float>(dinp, dout, inp, weight, mean, rstd, N, C);
}

// dweight[c] += sum_i norm[i][c] d[i][c], dbias[c] += sum_i d[i][c] for c in [0, n) of the
// channel window starting at c0 of each row, rows in order.
template <typename F>
void layernorm_backward_param_rows(F* __restrict dweight, F* __restrict dbias,
                                   const F* __restrict dout, const F* __restrict inp, const F* mean,
                                   const F* rstd, int N, int C, int c0, int n) {
  for (int i = 0; i < N; ++i) {
    const F* __restrict d = dout + static_cast<long>(i) * C + c0;
    const F* __restrict x = inp + static_cast<long>(i) * C + c0;
    const F m = mean[i], s = rstd[i];
    for (int c = 0; c < n; ++c) {
      F norm = (x[c] - m) * s;
      dbias[c] += d[c];
      dweight[c] += norm * d[c];
    }
  }
}
SKEIN_MULTIVERSION void layernorm_backward_param_rows(float* dweight, float* dbias,
                                                      const float* dout, const float* inp,
                                                      const float* mean, const float* rstd, int N,
                                                      int C, int c0, int n) {
  layernorm_backward_param_rows<float>(dweight, dbias, dout, inp, mean, rstd, N, C, c0, n);
}
}  // namespace

template <typename F>
void layernorm_forward(F* out, F* mean, F* rstd, const F* inp, const F* weight, const F* bias,
                       int N, int C) {
  layernorm_forward_rows(out, mean, rstd, inp, weight, bias, N, C);
}

template <typename F>
void layernorm_backward_input(F* dinp, const F* dout, const F* inp, const F* weight, const F* mean,
                              const F* rstd, int N, int C) {
  layernorm_backward_input_rows(dinp, dout, inp, weight, mean, rstd, N, C);
}

template <typename F>
void layernorm_backward_params(F* dweight, F* dbias, const F* dout, const F* inp, const F* mean,
                               const F* rstd, int N, int C, int c_begin, int c_end) {
  if (c_end <= c_begin) return;
  layernorm_backward_param_rows(dweight + c_begin, dbias + c_begin, dout, inp, mean, rstd, N, C,
                                c_begin, c_end - c_begin);
}

template <typename F>
void layernorm_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                        const F* mean, const F* rstd, int N, int C) {
  layernorm_backward_input(dinp, dout, inp, weight, mean, rstd, N, C);
  layernorm_backward_params(dweight, dbias, dout, inp, mean, rstd, N, C, 0, C);
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, int, int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, int, int);

template void layernorm_backward_input<float>(float*, const float*, const float*, const float*,
                                              const float*, const float*, int, int);
template void layernorm_backward_input<double>(double*, const double*, const double*, const double*,
                                               const double*, const double*, int, int);
template void layernorm_backward_params<float>(float*, float*, const float*, const float*,
                                               const float*, const float*, int, int, int, int);
template void layernorm_backward_params<double>(double*, double*, const double*, const double*,
                                                const double*, const double*, int, int, int, int);

}  // namespace skein
