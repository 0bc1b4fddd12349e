// Helpers shared by the kernel tests: random data, float/double conversion, error measures, and
// the one gradient checker that every backward is tested with (central finite differences in
// double precision).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "base/rng.h"

namespace skein::testing {

inline std::vector<double> random_vec(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

inline std::vector<float> to_float(const std::vector<double>& v) {
  return {v.begin(), v.end()};
}
inline std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// max |a - b| / (max |b| + tiny): the error relative to the tensor's scale.
template <typename A, typename B>
double rel_error(const A& a, const B& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / (scale + 1e-30);
}

struct GradInput {
  std::string name;
  std::vector<double>* value;  // perturbed in place by the checker (restored afterwards)
  std::vector<double>* grad;   // where backward accumulates d(loss)/d(value)
};

// Checks backward against central differences of L = sum_i w_i out_i, w fixed random weights.
//   forward(): recomputes and returns the outputs from the current input values;
//   backward(dout): accumulates dL/d(input) into each GradInput::grad (zeroed by the checker).
// Every element of every input is checked; |analytic - numeric| <= tol * max(1, |numeric|).
inline void check_gradients(const std::function<std::vector<double>()>& forward,
                            const std::vector<GradInput>& inputs,
                            const std::function<void(const std::vector<double>&)>& backward,
                            double tol = 1e-7, double eps = 1e-5) {
  const std::vector<double> out0 = forward();
  const std::vector<double> w = random_vec(out0.size(), 12345);
  auto loss = [&] {
    std::vector<double> out = forward();
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += w[i] * out[i];
    return s;
  };
  for (const auto& in : inputs) std::fill(in.grad->begin(), in.grad->end(), 0.0);
  forward();
  backward(w);
  for (const auto& in : inputs) {
    int bad = 0;
    for (size_t i = 0; i < in.value->size(); ++i) {
      const double saved = (*in.value)[i];
      (*in.value)[i] = saved + eps;
      const double lp = loss();
      (*in.value)[i] = saved - eps;
      const double lm = loss();
      (*in.value)[i] = saved;
      const double numeric = (lp - lm) / (2 * eps);
      const double analytic = (*in.grad)[i];
      if (std::abs(analytic - numeric) > tol * std::max(1.0, std::abs(numeric)) && bad++ < 5) {
        ADD_FAILURE() << "d/d " << in.name << "[" << i << "]: analytic " << analytic << ", numeric "
                      << numeric;
      }
    }
  }
}

}  // namespace skein::testing
