#include "kernels/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>

namespace skein {
namespace {

TEST(FastMath, ExpIsAccurateOverTheFiniteRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::abs(exp_approx(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // a few float ulps
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(exp_approx(1000.0f)));
  EXPECT_GE(exp_approx(-1000.0f), 0.0f);
}

TEST(FastMath, TanhIsAccurateAndOdd) {
  double worst = 0, worst_small = 0;  // absolute; relative for |u| < 0.5
  for (float u = -12.0f; u <= 12.0f; u += 0.00113f) {
    const double want = std::tanh(double(u)), err = std::abs(double(tanh_approx(u)) - want);
    worst = std::max(worst, err);
    if (std::abs(u) < 0.5f && u != 0.0f) worst_small = std::max(worst_small, err / std::abs(want));
    ASSERT_EQ(tanh_approx(-u), -tanh_approx(u)) << u;
    ASSERT_LE(std::abs(tanh_approx(u)), 1.0f) << u;
  }
  EXPECT_LT(worst, 3.5e-7);  // 4-5 float ulps of 1 where tanh is near 1
  EXPECT_LT(worst_small, 5e-7);
  EXPECT_EQ(tanh_approx(1e-30f), 1e-30f);  // tanh(u) = u to float precision, down to tiny u
  EXPECT_EQ(tanh_approx(50.0f), 1.0f);
  EXPECT_EQ(tanh_approx(-50.0f), -1.0f);
  EXPECT_TRUE(std::isnan(tanh_approx(std::nanf(""))));
}

}  // namespace
}  // namespace skein
