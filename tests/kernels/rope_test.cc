#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::check_gradients;
using testing::random_vec;
using testing::rel_error;
using testing::to_float;

// heads turned of NH + NKV, row stride (NH + 2 NKV) HS as in a grouped-query qkv row
struct Shape {
  int B, T, turned, HS, stride;
};
class RopeTest : public ::testing::TestWithParam<Shape> {};

TEST_P(RopeTest, ForwardMatchesReference) {
  const auto [B, T, turned, HS, stride] = GetParam();
  const double theta = 500.0;  // small, so that every pair turns by a sizeable angle
  auto x = random_vec(size_t(B) * T * stride, 1);
  std::vector<double> expect(x.size());
  ref::rope_forward(expect.data(), x.data(), B, T, turned, HS, stride, theta);

  std::vector<float> table(size_t(T) * HS);
  rope_table(table.data(), T, HS, theta);
  auto xf = to_float(x);
  // in two row ranges, as two threads would
  rope_forward(xf.data(), table.data(), 0, B * T / 2, T, turned, HS, stride);
  rope_forward(xf.data(), table.data(), B * T / 2, B * T, T, turned, HS, stride);
  EXPECT_LE(rel_error(xf, expect), 1e-6);
}

TEST_P(RopeTest, BackwardMatchesFiniteDifferences) {
  const auto [B, T, turned, HS, stride] = GetParam();
  const double theta = 500.0;
  auto x = random_vec(size_t(B) * T * stride, 2);
  std::vector<double> table(size_t(T) * HS), out(x.size()), dx(x.size());
  rope_table(table.data(), T, HS, theta);
  auto forward = [&] {
    out = x;
    rope_forward(out.data(), table.data(), 0, B * T, T, turned, HS, stride);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    std::vector<double> d = dout;
    rope_backward(d.data(), table.data(), 0, B * T, T, turned, HS, stride);
    for (size_t i = 0; i < d.size(); ++i) dx[i] += d[i];
  };
  check_gradients(forward, {{"inp", &x, &dx}}, backward);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeTest,
                         ::testing::Values(Shape{1, 1, 1, 2, 2}, Shape{2, 3, 2, 4, 12},
                                           Shape{1, 7, 3, 6, 24}, Shape{3, 5, 6, 10, 80}));

// Position 0 does not turn; the turn keeps each pair's length; the inverse undoes it.
TEST(Rope, IsARotationByPosition) {
  const int T = 6, HS = 8;
  std::vector<float> table(T * HS);
  rope_table(table.data(), T, HS, 10000.0);
  for (int i = 0; i < HS / 2; ++i) {
    EXPECT_EQ(table[2 * i], 1.0f);
    EXPECT_EQ(table[2 * i + 1], 0.0f);
  }
  // pair 0 turns by t radians exactly
  for (int t = 0; t < T; ++t) EXPECT_FLOAT_EQ(table[t * HS + 1], std::sin(float(t)));
  auto x = to_float(random_vec(T * HS, 3));
  auto y = x;
  rope_forward(y.data(), table.data(), 0, T, T, 1, HS, HS);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < HS / 2; ++i) {
      auto len = [&](const std::vector<float>& v) {
        return std::hypot(v[t * HS + i], v[t * HS + HS / 2 + i]);
      };
      EXPECT_NEAR(len(y), len(x), 1e-5f);
    }
  rope_backward(y.data(), table.data(), 0, T, T, 1, HS, HS);
  EXPECT_LE(rel_error(y, x), 1e-6);
}

}  // namespace
}  // namespace skein
