// Vectorisable float exp and tanh for the elementwise kernels. glibc's expf/tanhf are scalar
// calls (tanhf measured ~30 ns per element here), and -ffast-math is off limits, so these are
// written as plain arithmetic that GCC turns into SIMD code inside loops.
// Accuracy: exp_approx within 2 ulp on [-87, 88]; tanh_approx within 3.5e-7 absolute.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace skein {

// e^x: x = k ln2 + r with |r| <= ln2/2, e^r by a degree-6 Taylor-Horner polynomial, 2^k by
// building the exponent bits. Inputs are clamped to the finite range (no inf, no denormals).
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = (x * kLog2e + kRound) - kRound;
  // ln2 split into a part exact in float and the remainder (Cody-Waite)
  const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t k = static_cast<int32_t>(kf);
  return p * std::bit_cast<float>((k + 127) << 23);
}

// tanh(u) = u P(u^2) / Q(u^2) on |u| <= 9, P and Q of degree 4: a rational approximation fitted
// here (a Lawson-weighted least-squares fit of the double error, then the coefficients rounded to
// float one at a time from the highest order, the others refitted after each). Past 9, tanh rounds
// to 1 in float, and the clamp gives exactly that. Odd exactly: u^2, P and Q are the same for -u,
// and u P / Q changes sign only. One division and 10 multiply-adds, where 1 - 2 / (e^{2|u|} + 1)
// took an exp (16 operations in a chain) and the sign moved by bit operations: GELU's loops ran
// faster on a Zen 3 (bench_kernels gelu_forward 1.5x, gelu_backward 1.3x). Absolute error 2.8e-7
// with FMA, 3.3e-7 without (the fit itself 2.5e-8: the rest is float rounding, 4-5 ulps of 1 where
// tanh is near 1); relative error 2.2e-7 near 0, where 1 - 2 / (e^{2|u|} + 1) cancelled to 1e-3.
inline float tanh_approx(float u) {
  const float a = std::min(std::max(u, -9.0f), 9.0f);  // NaN stays NaN
  const float s = a * a;
  float p = 1.3339303e-08f;
  p = p * s + 2.05969827e-05f;
  p = p * s + 0.00349481334f;
  p = p * s + 0.133803636f;
  p = p * s + 1.0f;
  float q = 7.76996785e-07f;
  q = q * s + 0.000328439404f;
  q = q * s + 0.0258740019f;
  q = q * s + 0.4671368f;
  q = q * s + 1.0f;
  const float t = a * p / q;
  return std::min(std::max(t, -1.0f), 1.0f);
}

// The kernels' element functions: the approximations in float (training), the exact libm calls
// in double (the finite-difference checks, which need full precision).
template <typename F>
F exp_of(F x) {
  if constexpr (std::is_same_v<F, float>) {
    return exp_approx(x);
  } else {
    return std::exp(x);
  }
}
template <typename F>
F tanh_of(F u) {
  if constexpr (std::is_same_v<F, float>) {
    return tanh_approx(u);
  } else {
    return std::tanh(u);
  }
}

}  // namespace skein
