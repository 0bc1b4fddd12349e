#include "optimizers/clip.h"

#include "base/multiversion.h"
#include "kernels/lane_reduce.h"

namespace skein {

// One clone per x86-64 level (base/multiversion.h).
SKEIN_MULTIVERSION double squared_norm(const float* g, long n) {
  // in lanes: a left-to-right sum in double is one dependent chain of adds, ~50 ms per step on
  // gpt2's 124 M parameters. 32 lanes (8 registers of 4 doubles): with lane_sum's default 8 the
  // two chains of adds bound it at 6.3 floats/ns on one Zen 3 thread on data in cache (where the
  // trainer takes it, right after each block's sum), with 32 at 10.2.
  return lane_sum<double, 32>(n, [g](long i) { return double(g[i]) * double(g[i]); });
}

float clip_factor(double norm, float max_norm) {
  if (max_norm <= 0) return 1.0f;
  const float coef = static_cast<float>(max_norm / (norm + 1e-6));
  return coef < 1.0f ? coef : 1.0f;
}

}  // namespace skein
