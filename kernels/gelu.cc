#include "kernels/gelu.h"

#include <algorithm>
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

// 0.5 x (1 + tanh u) = x sigmoid(2u). With t = e^{-2|u|} in [0, 1]: sigmoid(2u) = 1 / (1 + t) for
// u >= 0 and t / (1 + t) for u < 0, and 1 - sigmoid(2u) the other one. One exp that cannot
// overflow, one division, and no cancellation: 1 + tanh u, for x below about -3, kept only what
// lies above float's rounding of 1 (the output was 0 from x = -5.16, 8e-4 relative error between
// -4 and -3; now within 1e-5 down to x = -9.98). Past exp_approx's floor (-2|u| < -87, from
// |x| = 9.99) t is 0, not the clamped e^-87: the forward is then exactly x or 0 (values under
// 2e-37 in the negative tail come out as 0), and the backward exactly 1 or 0 for every finite x,
// where a t held at the old floor gave x e^-80 and a gradient growing with x^3. -inf gives NaN,
// as +inf gives inf: a non-finite activation never comes out finite.
template <typename F>
F exp_minus_2abs(F u) {
  const F a = F(-2) * std::abs(u);
  const F t = exp_of(a);
  if constexpr (std::is_same_v<F, float>) {
    return a < F(-87) ? F(0) : t;
  } else {
    return t;
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

// 2 du/dx = 2 sqrt(2/pi) (1 + 3 c x^2), from min(|x|, 16) in float: the same bits wherever t > 0
// (|x| < 9.99), and finite everywhere else, where s (1 - s) = 0 makes its value irrelevant (from
// x itself, (3 c x) x overflowed from |x| = 5.04e19, and 0 * inf gave a NaN gradient). NaN stays
// NaN. In double x itself (t only reaches 0 from |x| = 21.5, and the finite-difference checks
// need the exact function). The 2 is folded in here, off the loop's dependency chain: doubling is
// exact, so x (s (1 - s) 2 du) has the bits of (2 x) (s (1 - s) du), and a finite x times the
// zero term past the floor stays 0, where 2 x overflows from |x| = 1.7e38.
template <typename F>
F twice_du_dx(F x) {
  F a = x;
  if constexpr (std::is_same_v<F, float>) a = std::min(std::abs(x), F(16));
  return F(2 * kSqrt2OverPi) * (F(1) + F(3 * kCubic) * a * a);
}

// d/dx [x s] = s + 2 x s (1 - s) du/dx, s = sigmoid(2u), both s and 1 - s from t as above;
// s (1 - s) multiplies 2 du/dx before x does.
template <typename F>
void gelu_backward_loop(F* dinp, const F* inp, const F* dout, long n) {
  for (long i = 0; i < n; ++i) {
    const F x = inp[i];
    const F u = F(kSqrt2OverPi) * (x + F(kCubic) * x * x * x);
    const F t = exp_minus_2abs(u);
    const F q = F(1) / (F(1) + t);
    const F s = (u >= F(0) ? F(1) : t) * q, c = (u >= F(0) ? t : F(1)) * q;
    dinp[i] = (s + x * ((s * c) * twice_du_dx(x))) * dout[i];
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
