#include "kernels/rmsnorm.h"

#include <cmath>

#include "base/multiversion.h"
#include "kernels/lane_reduce.h"

namespace skein {

// The row loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
template <typename F>
void rmsnorm_forward_rows(F* __restrict out, F* __restrict rstd, const F* __restrict inp,
                          const F* __restrict weight, int N, int C, F eps) {
  for (int i = 0; i < N; ++i) {
    const F* x = inp + static_cast<long>(i) * C;
    F* o = out + static_cast<long>(i) * C;
    const F ms = lane_sum<F>(C, [=](long c) { return x[c] * x[c]; }) / C;
    const F s = F(1) / std::sqrt(ms + eps);
    for (int c = 0; c < C; ++c) o[c] = x[c] * s * weight[c];
    rstd[i] = s;
  }
}
SKEIN_MULTIVERSION void rmsnorm_forward_rows(float* out, float* rstd, const float* inp,
                                             const float* weight, int N, int C, float eps) {
  rmsnorm_forward_rows<float>(out, rstd, inp, weight, N, C, eps);
}

// y = x s w with s = (mean(x^2) + eps)^-1/2: with g = dout w and xhat = x s,
// dx = s (g - xhat mean(g xhat)).
template <typename F>
void rmsnorm_backward_input_rows(F* __restrict dinp, const F* __restrict dout,
                                 const F* __restrict inp, const F* __restrict weight,
                                 const F* __restrict rstd, int N, int C) {
  for (int i = 0; i < N; ++i) {
    const F* d = dout + static_cast<long>(i) * C;
    const F* x = inp + static_cast<long>(i) * C;
    F* dx = dinp + static_cast<long>(i) * C;
    const F s = rstd[i];
    const F dot = lane_sum<F>(C, [=](long c) { return d[c] * weight[c] * (x[c] * s); }) / C;
    for (int c = 0; c < C; ++c) dx[c] += (d[c] * weight[c] - x[c] * s * dot) * s;
  }
}
SKEIN_MULTIVERSION void rmsnorm_backward_input_rows(float* dinp, const float* dout,
                                                    const float* inp, const float* weight,
                                                    const float* rstd, int N, int C) {
  rmsnorm_backward_input_rows<float>(dinp, dout, inp, weight, rstd, N, C);
}

// dweight[c] += sum_i x[i][c] s_i d[i][c] for c in [0, n) of the window at c0, rows in order
template <typename F>
void rmsnorm_backward_param_rows(F* __restrict dweight, const F* __restrict dout,
                                 const F* __restrict inp, const F* __restrict rstd, int N, int C,
                                 int c0, int n) {
  for (int i = 0; i < N; ++i) {
    const F* __restrict d = dout + static_cast<long>(i) * C + c0;
    const F* __restrict x = inp + static_cast<long>(i) * C + c0;
    const F s = rstd[i];
    for (int c = 0; c < n; ++c) dweight[c] += x[c] * s * d[c];
  }
}
SKEIN_MULTIVERSION void rmsnorm_backward_param_rows(float* dweight, const float* dout,
                                                    const float* inp, const float* rstd, int N,
                                                    int C, int c0, int n) {
  rmsnorm_backward_param_rows<float>(dweight, dout, inp, rstd, N, C, c0, n);
}
}  // namespace

template <typename F>
void rmsnorm_forward(F* out, F* rstd, const F* inp, const F* weight, int N, int C, F eps) {
  rmsnorm_forward_rows(out, rstd, inp, weight, N, C, eps);
}

template <typename F>
void rmsnorm_backward_input(F* dinp, const F* dout, const F* inp, const F* weight, const F* rstd,
                            int N, int C) {
  rmsnorm_backward_input_rows(dinp, dout, inp, weight, rstd, N, C);
}

template <typename F>
void rmsnorm_backward_params(F* dweight, const F* dout, const F* inp, const F* rstd, int N, int C,
                             int c_begin, int c_end) {
  if (c_end <= c_begin) return;
  rmsnorm_backward_param_rows(dweight + c_begin, dout, inp, rstd, N, C, c_begin, c_end - c_begin);
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int, int, float);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int, int,
                                      double);
template void rmsnorm_backward_input<float>(float*, const float*, const float*, const float*,
                                            const float*, int, int);
template void rmsnorm_backward_input<double>(double*, const double*, const double*, const double*,
                                             const double*, int, int);
template void rmsnorm_backward_params<float>(float*, const float*, const float*, const float*, int,
                                             int, int, int);
template void rmsnorm_backward_params<double>(double*, const double*, const double*, const double*,
                                              int, int, int, int);

}  // namespace skein
