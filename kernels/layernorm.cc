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

// The element-wise part of one row. The outputs overlap neither the inputs nor each other (the
// header's contract); __restrict says so, so that the loop vectorises without run-time checks.
template <typename F>
void layernorm_backward_row(F* __restrict dx, F* __restrict dweight, F* __restrict dbias,
                            const F* __restrict d, const F* __restrict x,
                            const F* __restrict weight, F m, F s, F dnorm_mean, F dnorm_norm_mean,
                            int C) {
  for (int c = 0; c < C; ++c) {
    F norm = (x[c] - m) * s;
    F dnorm = d[c] * weight[c];
    dbias[c] += d[c];
    dweight[c] += norm * d[c];
    F g = dnorm;                  // term 1: direct path
    g -= dnorm_mean;              // term 2: through the mean
    g -= norm * dnorm_norm_mean;  // term 3: through the variance
    dx[c] += g * s;               // final scale
  }
}

template <typename F>
void layernorm_backward_rows(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp,
                             const F* weight, const F* mean, const F* rstd, int N, int C) {
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
    layernorm_backward_row(dx, dweight, dbias, d, x, weight, m, s, dnorm_mean, dnorm_norm_mean, C);
  }
}
SKEIN_MULTIVERSION void layernorm_backward_rows(float* dinp, float* dweight, float* dbias,
                                                const float* dout, const float* inp,
                                                const float* weight, const float* mean,
                                                const float* rstd, int N, int C) {
  layernorm_backward_rows<float>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
}  // namespace

template <typename F>
void layernorm_forward(F* out, F* mean, F* rstd, const F* inp, const F* weight, const F* bias,
                       int N, int C) {
  layernorm_forward_rows(out, mean, rstd, inp, weight, bias, N, C);
}

template <typename F>
void layernorm_backward(F* dinp, F* dweight, F* dbias, const F* dout, const F* inp, const F* weight,
                        const F* mean, const F* rstd, int N, int C) {
  layernorm_backward_rows(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, int, int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, int, int);

}  // namespace skein
