// Learning-rate schedules as pure functions of the step, so resuming needs only the step.
#pragma once

namespace skein {

enum class ScheduleKind { kConstant, kCosine };

struct Schedule {
  ScheduleKind kind = ScheduleKind::kConstant;
  float lr = 1e-3f;       // peak learning rate
  float min_lr = 0.0f;    // cosine floor
  long warmup_steps = 0;  // linear ramp from lr/warmup to lr over the first warmup_steps
  long total_steps = 1;   // cosine reaches min_lr here and stays there
};

// Learning rate for the 0-based optimizer step `step`.
float learning_rate(const Schedule& s, long step);

}  // namespace skein
