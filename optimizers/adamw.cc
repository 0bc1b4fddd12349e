#include "optimizers/adamw.h"

#include <cmath>

#include "base/check.h"
#include "base/multiversion.h"

namespace skein {

// One clone per x86-64 level (base/multiversion.h): the loop is the whole function.
SKEIN_MULTIVERSION void adamw_update(float* p, const float* g, float* m, float* v, long n,
                                     const AdamWHyper& h, long step, bool decay, float grad_scale) {
  SKEIN_CHECK(step >= 1);
  const double bc1 = 1.0 - std::pow(double(h.beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(h.beta2), double(step));
  const float step_size = static_cast<float>(h.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float shrink = decay ? 1.0f - h.lr * h.weight_decay : 1.0f;
  const float b1 = h.beta1, b2 = h.beta2;
  for (long i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bc2_sqrt + h.eps;
    p[i] = p[i] * shrink - step_size * (mi / denom);
  }
}

}  // namespace skein
