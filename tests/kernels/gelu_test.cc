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

// Element by element against x sigmoid(2u) in double (the same function as ref::gelu_forward's
// 0.5 x (1 + tanh u), which in double still cancels below x = -5.25), tails included: for x below
// about -3, 0.5 x (1 + tanh u) in float cancels (it gave 0 from x = -5.16); x sigmoid(2u) does
// not. From x = -9.99 the float kernel returns 0 for values under 2e-37 (hence the 1e-36 slack).
double gelu_sigmoid_form(double x) {
  const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x / (1 + std::exp(-2 * u));
}

TEST(Gelu, AccurateInBothTailsInFloat) {
  std::vector<float> x;
  for (double v = -12.0; v <= 12.0; v += 1.0 / 64) x.push_back(static_cast<float>(v));
  const long n = static_cast<long>(x.size());
  std::vector<double> xd(x.begin(), x.end()), ref_out(n);
  ref::gelu_forward(ref_out.data(), xd.data(), n);
  std::vector<float> out(n), dx(n, 0.0f), ones(n, 1.0f);
  gelu_forward(out.data(), x.data(), n);
  gelu_backward(dx.data(), x.data(), ones.data(), n);
  const double h = 1e-5;
  for (long i = 0; i < n; ++i) {
    const double want = gelu_sigmoid_form(xd[i]);
    if (xd[i] >= -5.25) {  // the two double forms agree where the tanh one does not cancel
      EXPECT_LE(std::abs(ref_out[i] - want), 1e-7 * std::abs(want)) << "x = " << x[i];
    }
    EXPECT_LE(std::abs(out[i] - want), 1e-5 * std::abs(want) + 1e-36) << "x = " << x[i];
    // the derivative by central differences in double, relative to the size of its two terms
    // s and 2 x s (1 - s) du (float rounding of each, and of the sum where they nearly cancel,
    // as they do at the minimum near x = -0.75), so that the tails, where both are tiny, are
    // checked relative to their own size too; past the floor (x <= -9.99) the kernel's exact 0
    // is within 5e-36 of derivatives there
    const double dwant = (gelu_sigmoid_form(xd[i] + h) - gelu_sigmoid_form(xd[i] - h)) / (2 * h);
    const double u = 0.7978845608028654 * (xd[i] + 0.044715 * xd[i] * xd[i] * xd[i]);
    const double sg = 1 / (1 + std::exp(-2 * u));
    const double terms = sg + std::abs(2 * xd[i] * sg * (1 - sg) * 0.7978845608028654 *
                                       (1 + 3 * 0.044715 * xd[i] * xd[i]));
    EXPECT_LE(std::abs(dx[i] - dwant), 1e-5 * std::abs(dwant) + 1e-6 * terms + 1e-35)
        << "x = " << x[i];
  }
}

// Far out the function is x or 0 and its derivative 1 or 0, exactly, out to the largest floats.
// The exp's floor once held t = e^{-2|u|} at e^-80 instead of 0 there: the backward gave 1.004 at
// x = 1e11, 4.86 at 1e12, and inf from 1.2e13, the forward x e^-80 (-1.8e-5 at -1e30); with t = 0
// but du/dx from x itself the gradient was NaN from |x| = 5e19 (0 * inf).
TEST(Gelu, ExactFarFromZero) {
  const float x[] = {20.0f,  1e6f,  1e11f,  1e12f,  1e13f,  1e18f,  1e20f,  1e30f, 3e38f,
                     -20.0f, -1e6f, -1e12f, -1e13f, -1e18f, -1e20f, -1e30f, -3e38f};
  const int n = sizeof(x) / sizeof(x[0]);
  float out[n], dx[n], ones[n];
  for (int i = 0; i < n; ++i) dx[i] = 0, ones[i] = 1;
  gelu_forward(out, x, n);
  gelu_backward(dx, x, ones, n);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(out[i], x[i] > 0 ? x[i] : 0.0f) << "x = " << x[i];
    EXPECT_EQ(dx[i], x[i] > 0 ? 1.0f : 0.0f) << "x = " << x[i];
  }
}

// A non-finite activation never comes out finite (the trainer's check then reports it).
TEST(Gelu, NonFiniteInputsStayNonFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  const float x[] = {std::nanf(""), inf, -inf};
  float out[3], dx[3] = {0, 0, 0};
  const float ones[3] = {1, 1, 1};
  gelu_forward(out, x, 3);
  gelu_backward(dx, x, ones, 3);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(dx[0]));
  EXPECT_EQ(out[1], inf);
  EXPECT_FALSE(std::isfinite(dx[1]));
  EXPECT_FALSE(std::isfinite(out[2]));
  EXPECT_FALSE(std::isfinite(dx[2]));
}

INSTANTIATE_TEST_SUITE_P(Sizes, GeluTest, ::testing::Values(1, 7, 16, 33, 100));

}  // namespace
}  // namespace skein
