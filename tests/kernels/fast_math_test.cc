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
  double worst = 0;
  for (float u = -12.0f; u <= 12.0f; u += 0.00113f) {
    worst = std::max(worst, std::abs(double(tanh_approx(u)) - std::tanh(double(u))));
    ASSERT_EQ(tanh_approx(-u), -tanh_approx(u)) << u;
    ASSERT_LE(std::abs(tanh_approx(u)), 1.0f) << u;
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(tanh_approx(50.0f), 1.0f);
  EXPECT_EQ(tanh_approx(-50.0f), -1.0f);
  EXPECT_TRUE(std::isnan(tanh_approx(std::nanf(""))));
}

}  // namespace
}  // namespace skein
