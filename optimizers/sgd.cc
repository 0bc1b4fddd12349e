#include "optimizers/sgd.h"

#include "base/multiversion.h"

namespace skein {

// One clone per x86-64 level (base/multiversion.h): the loop is the whole function.
SKEIN_MULTIVERSION void sgd_update(float* p, const float* g, float* momentum_buf, long n,
                                   const SgdHyper& h, bool decay, float grad_scale) {
  const float wd = decay ? h.weight_decay : 0.0f;
  for (long i = 0; i < n; ++i) {
    float d = g[i] * grad_scale;
    if (wd != 0.0f) d += wd * p[i];
    if (h.momentum != 0.0f) {
      // A zero-initialised buffer makes step 1 give buf = d, as PyTorch does.
      float b = h.momentum * momentum_buf[i] + d;
      momentum_buf[i] = b;
      d = h.nesterov ? d + h.momentum * b : b;
    }
    p[i] -= h.lr * d;
  }
}

}  // namespace skein
