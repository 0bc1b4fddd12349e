#include "kernels/gelu.h"

#include "base/multiversion.h"
#include "kernels/fast_math.h"

namespace skein {

// The loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kCubic = 0.044715;

template <typename F>
void gelu_forward_loop(F* out, const F* inp, long n) {
  for (long i = 0; i < n; ++i) {
    F x = inp[i];
    F u = F(kSqrt2OverPi) * (x + F(kCubic) * x * x * x);
    out[i] = F(0.5) * x * (F(1) + tanh_of(u));
  }
}
SKEIN_MULTIVERSION void gelu_forward_loop(float* out, const float* inp, long n) {
  gelu_forward_loop<float>(out, inp, n);
}

template <typename F>
void gelu_backward_loop(F* dinp, const F* inp, const F* dout, long n) {
  for (long i = 0; i < n; ++i) {
    F x = inp[i];
    F u = F(kSqrt2OverPi) * (x + F(kCubic) * x * x * x);
    F th = tanh_of(u);
    F du = F(kSqrt2OverPi) * (F(1) + F(3 * kCubic) * x * x);
    // d/dx [0.5 x (1 + tanh u)] = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx
    F g = F(0.5) * (F(1) + th) + F(0.5) * x * (F(1) - th * th) * du;
    dinp[i] += g * dout[i];
  }
}
SKEIN_MULTIVERSION void gelu_backward_loop(float* dinp, const float* inp, const float* dout,
                                           long n) {
  gelu_backward_loop<float>(dinp, inp, dout, n);
}
}  // namespace

template <typename F>
void gelu_forward(F* out, const F* inp, long n) {
  gelu_forward_loop(out, inp, n);
}

template <typename F>
void gelu_backward(F* dinp, const F* inp, const F* dout, long n) {
  gelu_backward_loop(dinp, inp, dout, n);
}

template void gelu_forward<float>(float*, const float*, long);
template void gelu_forward<double>(double*, const double*, long);
template void gelu_backward<float>(float*, const float*, const float*, long);
template void gelu_backward<double>(double*, const double*, const double*, long);

}  // namespace skein
