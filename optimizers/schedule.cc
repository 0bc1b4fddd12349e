#include "optimizers/schedule.h"

#include <algorithm>
#include <cmath>

namespace skein {

float learning_rate(const Schedule& s, long step) {
  if (step < s.warmup_steps) return s.lr * static_cast<float>(step + 1) / s.warmup_steps;
  if (s.kind == ScheduleKind::kConstant) return s.lr;
  const long span = std::max(1L, s.total_steps - s.warmup_steps);
  const double progress = std::min(1.0, double(step - s.warmup_steps) / double(span));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return static_cast<float>(s.min_lr + cosine * (double(s.lr) - s.min_lr));
}

}  // namespace skein
