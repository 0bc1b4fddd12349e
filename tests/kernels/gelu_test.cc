#include "kernels/gelu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::check_gradients;
using testing::random_vec;
using testing::rel_error;
using testing::to_float;

class GeluTest : public ::testing::TestWithParam<int> {};

TEST_P(GeluTest, ForwardMatchesReference) {
  const int n = GetParam();
  auto x = random_vec(n, 1, 3.0);
  std::vector<double> expect(n);
  ref::gelu_forward(expect.data(), x.data(), n);
  auto xf = to_float(x);
  std::vector<float> out(n);
  gelu_forward(out.data(), xf.data(), n);
  EXPECT_LE(rel_error(out, expect), 1e-6);
}

TEST_P(GeluTest, BackwardMatchesFiniteDifferences) {
  const int n = GetParam();
  auto x = random_vec(n, 2, 3.0);
  std::vector<double> dx(n), out(n);
  auto forward = [&] {
    gelu_forward(out.data(), x.data(), n);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    gelu_backward(dx.data(), x.data(), dout.data(), n);
  };
  check_gradients(forward, {{"inp", &x, &dx}}, backward);
}

TEST(Gelu, KnownValues) {
  // GELU-tanh at a few points (values from the closed form, computed independently).
  const float x[] = {0.0f, 1.0f, -1.0f, 3.0f};
  const float expect[] = {0.0f, 0.8411920f, -0.1588080f, 2.9963627f};
  float out[4];
  gelu_forward(out, x, 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], expect[i], 1e-6) << x[i];
}

// Element by element against the double reference, tails included: for x below about -3,
// 0.5 x (1 + tanh u) in float cancels (it gave 0 from x = -5.16); x sigmoid(2u) does not.
// From -5.25 up, 1 + tanh u is above 1e-11, so the double reference itself has 1e-5 to spare.
TEST(Gelu, AccurateInBothTailsInFloat) {
  std::vector<float> x;
  for (double v = -5.25; v <= 8.0; v += 1.0 / 64) x.push_back(static_cast<float>(v));
  const long n = static_cast<long>(x.size());
  std::vector<double> xd(x.begin(), x.end()), ref_out(n), up(n), down(n);
  ref::gelu_forward(ref_out.data(), xd.data(), n);
  std::vector<float> out(n), dx(n, 0.0f), ones(n, 1.0f);
  gelu_forward(out.data(), x.data(), n);
  gelu_backward(dx.data(), x.data(), ones.data(), n);
  // the reference's derivative by central differences in double
  const double h = 1e-5;
  std::vector<double> xu(xd), xl(xd);
  for (long i = 0; i < n; ++i) xu[i] += h, xl[i] -= h;
  ref::gelu_forward(up.data(), xu.data(), n);
  ref::gelu_forward(down.data(), xl.data(), n);
  for (long i = 0; i < n; ++i) {
    EXPECT_LE(std::abs(out[i] - ref_out[i]), 1e-5 * std::abs(ref_out[i])) << "x = " << x[i];
    const double want = (up[i] - down[i]) / (2 * h);
    EXPECT_LE(std::abs(dx[i] - want), 1e-5 * std::abs(want) + 3e-7) << "x = " << x[i];
  }
}

TEST(Gelu, NonFiniteInputsStayNonFinite) {
  const float x[] = {std::nanf(""), std::numeric_limits<float>::infinity()};
  float out[2], dx[2] = {0, 0};
  const float ones[2] = {1, 1};
  gelu_forward(out, x, 2);
  gelu_backward(dx, x, ones, 2);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(dx[0]));
  EXPECT_EQ(out[1], std::numeric_limits<float>::infinity());
  EXPECT_FALSE(std::isfinite(dx[1]));
}

INSTANTIATE_TEST_SUITE_P(Sizes, GeluTest, ::testing::Values(1, 7, 16, 33, 100));

}  // namespace
}  // namespace skein
