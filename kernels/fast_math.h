// Vectorisable float exp and tanh for the elementwise kernels. glibc's expf/tanhf are scalar
// calls (tanhf measured ~30 ns per element here), and -ffast-math is off limits, so these are
// written as plain arithmetic that GCC turns into SIMD code inside loops.
// Accuracy: exp_approx within 2 ulp on [-87, 88]; tanh_approx within 2e-7 absolute.
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
  const float y = x * kLog2e + kRound;
  const float kf = y - kRound;
  // ln2 split into a part exact in float and the remainder (Cody-Waite)
  const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^k's exponent bits from y's low bits (y = 1.5 * 2^23 + k exactly, one unit per integer),
  // in unsigned arithmetic: no float-to-int conversion, which a NaN x (kf NaN) made undefined
  const uint32_t e = std::bit_cast<uint32_t>(y) - std::bit_cast<uint32_t>(kRound) + 127u;
  return p * std::bit_cast<float>(e << 23);
}

// tanh(u) = 1 - 2 / (e^{2u} + 1), odd-symmetrised so that tanh(-u) == -tanh(u) exactly.
// The sign is moved with bit operations so that the loop has no branch and vectorises.
inline float tanh_approx(float u) {
  const uint32_t bits = std::bit_cast<uint32_t>(u);
  const float a = std::bit_cast<float>(bits & 0x7fffffffu);
  const float t = 1.0f - 2.0f / (exp_approx(2.0f * a) + 1.0f);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(t) | (bits & 0x80000000u));
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
