#include "kernels/swiglu.h"

#include "base/multiversion.h"
#include "kernels/fast_math.h"

namespace skein {

namespace {
template <typename F>
void swiglu_forward_rows(F* __restrict out, const F* __restrict inp, long N, int Fd) {
  for (long r = 0; r < N; ++r) {
    const F* g = inp + r * 2 * Fd;
    const F* u = g + Fd;
    F* o = out + r * Fd;
    // g u / (1 + e^-g): with -fno-trapping-math, GCC 12 compiles g * (1 / (1 + e^-g)) * u into
    // a loop 11x slower on Sapphire Rapids (7.5 vs 0.68 ms for 512 x 1536), this form not
    for (int i = 0; i < Fd; ++i) {
      const F x = g[i], e = exp_of(-x);
      o[i] = x * u[i] / (F(1) + e);
    }
  }
}
SKEIN_MULTIVERSION void swiglu_forward_rows(float* out, const float* inp, long N, int Fd) {
  swiglu_forward_rows<float>(out, inp, N, Fd);
}

// with s = sigmoid(g): d silu / dg = s (1 + g (1 - s))
template <typename F>
void swiglu_backward_rows(F* __restrict dinp, const F* __restrict inp, const F* __restrict dout,
                          long N, int Fd) {
  for (long r = 0; r < N; ++r) {
    const F* g = inp + r * 2 * Fd;
    const F* u = g + Fd;
    const F* d = dout + r * Fd;
    F* dg = dinp + r * 2 * Fd;
    F* du = dg + Fd;
    for (int i = 0; i < Fd; ++i) {
      const F s = F(1) / (F(1) + exp_of(-g[i]));
      dg[i] = d[i] * u[i] * (s * (F(1) + g[i] * (F(1) - s)));
      du[i] = d[i] * (g[i] * s);
    }
  }
}
SKEIN_MULTIVERSION void swiglu_backward_rows(float* dinp, const float* inp, const float* dout,
                                             long N, int Fd) {
  swiglu_backward_rows<float>(dinp, inp, dout, N, Fd);
}
}  // namespace

template <typename F>
void swiglu_forward(F* out, const F* inp, long N, int Fd) {
  swiglu_forward_rows(out, inp, N, Fd);
}

template <typename F>
void swiglu_backward(F* dinp, const F* inp, const F* dout, long N, int Fd) {
  swiglu_backward_rows(dinp, inp, dout, N, Fd);
}

template void swiglu_forward<float>(float*, const float*, long, int);
template void swiglu_forward<double>(double*, const double*, long, int);
template void swiglu_backward<float>(float*, const float*, const float*, long, int);
template void swiglu_backward<double>(double*, const double*, const double*, long, int);

}  // namespace skein
