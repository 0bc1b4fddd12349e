#include "kernels/gelu.h"

#include <cmath>
#include <type_traits>

#include "base/multiversion.h"
#include "kernels/fast_math.h"

namespace skein {

// The loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kCubic = 0.044715;

// 0.5 x (1 + tanh u) = x sigmoid(2u). With t = e^{-2|u|} in (0, 1]: sigmoid(2u) = 1 / (1 + t) for
// u >= 0 and t / (1 + t) for u < 0, and 1 - sigmoid(2u) the other one. One exp that cannot
// overflow, one division, and no cancellation: 1 + tanh u, for x below about -3, kept only what
// lies above float's rounding of 1 (the output was 0 from x = -5.16, 8e-4 relative error between
// -4 and -3; now within 1e-5 for x >= -8.9). The exp's floor is -80: past it (|x| > 9.67) t stays
// at e^-80 instead of going to 0, so the forward returns x e^-80 there and the backward's
// 2 x du t term grows with x^3 (wrong from about |x| = 1e10): to be cut to t = 0 past the floor.
template <typename F>
F exp_minus_2abs(F u) {
  if constexpr (std::is_same_v<F, float>) {
    return exp_approx_in(F(-2) * std::abs(u), -80.0f, 0.0f);
  } else {
    return std::exp(F(-2) * std::abs(u));
  }
}

template <typename F>
void gelu_forward_loop(F* out, const F* inp, long n) {
  for (long i = 0; i < n; ++i) {
    const F x = inp[i];
    const F u = F(kSqrt2OverPi) * (x + F(kCubic) * x * x * x);
    const F t = exp_minus_2abs(u);
    out[i] = x * ((u >= F(0) ? F(1) : t) / (F(1) + t));
  }
}
SKEIN_MULTIVERSION void gelu_forward_loop(float* out, const float* inp, long n) {
  gelu_forward_loop<float>(out, inp, n);
}

// d/dx [x s] = s + 2 x s (1 - s) du/dx, s = sigmoid(2u), both s and 1 - s from t as above.
template <typename F>
void gelu_backward_loop(F* dinp, const F* inp, const F* dout, long n) {
  for (long i = 0; i < n; ++i) {
    const F x = inp[i];
    const F u = F(kSqrt2OverPi) * (x + F(kCubic) * x * x * x);
    const F t = exp_minus_2abs(u);
    const F q = F(1) / (F(1) + t);
    const F s = (u >= F(0) ? F(1) : t) * q, c = (u >= F(0) ? t : F(1)) * q;
    const F du = F(kSqrt2OverPi) * (F(1) + F(3 * kCubic) * x * x);
    dinp[i] += (s + (F(2) * x * du) * (s * c)) * dout[i];
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
