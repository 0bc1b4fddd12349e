#include "optimizers/clip.h"

namespace skein {

double squared_norm(const float* g, long n) {
  double s = 0;
  for (long i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
  return s;
}

float clip_factor(double norm, float max_norm) {
  if (max_norm <= 0) return 1.0f;
  const float coef = static_cast<float>(max_norm / (norm + 1e-6));
  return coef < 1.0f ? coef : 1.0f;
}

}  // namespace skein
