#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "optimizers/adamw.h"
#include "optimizers/clip.h"
#include "optimizers/schedule.h"
#include "optimizers/sgd.h"

namespace skein {
namespace {

// The update rules are checked against the textbook formulas written out in double, step by step.

TEST(Sgd, PlainMomentumAndNesterov) {
  for (int variant = 0; variant < 3; ++variant) {
    SgdHyper h;
    h.lr = 0.1f;
    h.momentum = variant == 0 ? 0.0f : 0.9f;
    h.nesterov = variant == 2;
    h.weight_decay = 0.01f;
    std::vector<float> p = {1.0f, -2.0f, 0.5f}, buf(3, 0.0f);
    std::vector<double> pd = {1.0, -2.0, 0.5}, bd(3, 0.0);
    for (int step = 0; step < 3; ++step) {
      std::vector<float> g = {0.3f * (step + 1), -0.1f, 0.7f};
      sgd_update(p.data(), g.data(), buf.data(), 3, h, true, 0.5f);
      for (int i = 0; i < 3; ++i) {
        double d = 0.5 * g[i] + 0.01 * pd[i];
        if (variant > 0) {
          bd[i] = 0.9 * bd[i] + d;
          d = variant == 2 ? d + 0.9 * bd[i] : bd[i];
        }
        pd[i] -= 0.1 * d;
      }
    }
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], pd[i], 1e-6) << "variant " << variant;
  }
}

TEST(Sgd, NoDecayWhereMaskIsOff) {
  SgdHyper h;
  h.lr = 0.1f;
  h.weight_decay = 0.5f;
  float p = 2.0f, buf = 0, g = 0;
  sgd_update(&p, &g, &buf, 1, h, false, 1.0f);
  EXPECT_EQ(p, 2.0f);
  sgd_update(&p, &g, &buf, 1, h, true, 1.0f);
  EXPECT_NEAR(p, 2.0f - 0.1f * 0.5f * 2.0f, 1e-7);
}

TEST(AdamW, MatchesFormula) {
  AdamWHyper h;
  h.lr = 0.01f;
  h.weight_decay = 0.1f;
  for (bool decay : {false, true}) {
    std::vector<float> p = {0.5f, -1.0f, 2.0f, 0.0f}, m(4, 0.0f), v(4, 0.0f);
    std::vector<double> pd = {0.5, -1.0, 2.0, 0.0}, md(4, 0.0), vd(4, 0.0);
    for (int t = 1; t <= 4; ++t) {
      std::vector<float> g = {0.1f * t, -0.2f, 1e-3f, 0.0f};
      adamw_update(p.data(), g.data(), m.data(), v.data(), 4, h, t, decay, 0.8f);
      for (int i = 0; i < 4; ++i) {
        double gi = 0.8 * g[i];
        if (decay) pd[i] *= 1 - 0.01 * 0.1;
        md[i] = 0.9 * md[i] + 0.1 * gi;
        vd[i] = 0.999 * vd[i] + 0.001 * gi * gi;
        double mhat = md[i] / (1 - std::pow(0.9, t)), vhat = vd[i] / (1 - std::pow(0.999, t));
        pd[i] -= 0.01 * mhat / (std::sqrt(vhat) + 1e-8);
      }
    }
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(p[i], pd[i], 1e-6) << "decay " << decay << " i " << i;
  }
}

TEST(Schedule, ConstantWithWarmup) {
  Schedule s{ScheduleKind::kConstant, 1.0f, 0.0f, 4, 100};
  EXPECT_FLOAT_EQ(learning_rate(s, 0), 0.25f);
  EXPECT_FLOAT_EQ(learning_rate(s, 3), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(s, 50), 1.0f);
}

TEST(Schedule, CosineDecaysToMinimum) {
  Schedule s{ScheduleKind::kCosine, 1.0f, 0.1f, 10, 110};
  EXPECT_FLOAT_EQ(learning_rate(s, 4), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(s, 10), 1.0f);
  EXPECT_NEAR(learning_rate(s, 60), 0.55f, 1e-6);  // half way: mean of peak and floor
  EXPECT_NEAR(learning_rate(s, 110), 0.1f, 1e-7);
  EXPECT_NEAR(learning_rate(s, 1000), 0.1f, 1e-7);
  for (long t = 11; t < 110; ++t) EXPECT_LE(learning_rate(s, t), learning_rate(s, t - 1));
}

TEST(Clip, FactorAndNorm) {
  std::vector<float> g = {3.0f, 4.0f};
  const double norm = std::sqrt(squared_norm(g.data(), 2));
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_NEAR(clip_factor(norm, 1.0f), 0.2f, 1e-7);
  EXPECT_EQ(clip_factor(norm, 10.0f), 1.0f);
  EXPECT_EQ(clip_factor(norm, 0.0f), 1.0f);  // disabled
}

}  // namespace
}  // namespace skein
