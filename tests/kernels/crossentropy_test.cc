#include "kernels/crossentropy.h"

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

struct Shape {
  int N, V;
};
class CrossEntropyTest : public ::testing::TestWithParam<Shape> {};

std::vector<int32_t> targets_for(int N, int V) {
  std::vector<int32_t> y(N);
  for (int i = 0; i < N; ++i) y[i] = (i % 4 == 2) ? kIgnoreTarget : (i * 5 + 1) % V;
  return y;
}

TEST_P(CrossEntropyTest, ForwardMatchesReference) {
  const auto [N, V] = GetParam();
  auto z = random_vec(N * V, 1, 4.0);
  auto y = targets_for(N, V);
  std::vector<double> probs_ref(N * V);
  const double loss_ref =
      ref::softmax_crossentropy_forward(probs_ref.data(), z.data(), y.data(), N, V);

  auto zf = to_float(z);
  std::vector<float> probs(N * V), losses(N);
  const double sum =
      softmax_crossentropy_forward(losses.data(), probs.data(), zf.data(), y.data(), N, V);
  const int count = count_targets(y.data(), N);
  EXPECT_NEAR(count ? sum / count : 0.0, loss_ref, 1e-5 * std::max(1.0, loss_ref));
  EXPECT_LE(rel_error(probs, probs_ref), 1e-5);
  for (int i = 0; i < N; ++i) {
    if (y[i] == kIgnoreTarget) {
      EXPECT_EQ(losses[i], 0.0f);
    }
  }
}

TEST_P(CrossEntropyTest, BackwardMatchesFiniteDifferences) {
  const auto [N, V] = GetParam();
  auto z = random_vec(N * V, 2, 2.0);
  auto y = targets_for(N, V);
  const int count = count_targets(y.data(), N);
  std::vector<double> dz(z.size()), probs(z.size()), losses(N);
  // the output checked is the mean loss, a single number
  auto forward = [&] {
    double s = softmax_crossentropy_forward(losses.data(), probs.data(), z.data(), y.data(), N, V);
    return std::vector<double>{count ? s / count : 0.0};
  };
  auto backward = [&](const std::vector<double>& dout) {
    std::vector<double> d(z.size());
    softmax_crossentropy_backward(d.data(), probs.data(), y.data(), N, V,
                                  count ? dout[0] / count : 0.0);
    for (size_t i = 0; i < d.size(); ++i) dz[i] += d[i];
  };
  check_gradients(forward, {{"logits", &z, &dz}}, backward);
}

TEST(CrossEntropy, StableForHugeLogits) {
  const int V = 3;
  const float z[V] = {1000.0f, -1000.0f, 999.0f};
  const int32_t y[1] = {1};
  float probs[V], loss[1];
  softmax_crossentropy_forward(loss, probs, z, y, 1, V);
  EXPECT_TRUE(std::isfinite(loss[0]));
  EXPECT_NEAR(loss[0], 2000.0f + std::log1p(std::exp(-1.0f)), 1e-2);
  EXPECT_NEAR(probs[0] + probs[2], 1.0f, 1e-6);
}

TEST(CrossEntropy, AllIgnoredGivesZero) {
  const float z[4] = {1, 2, 3, 4};
  const int32_t y[2] = {kIgnoreTarget, kIgnoreTarget};
  float probs[4], loss[2], d[4] = {9, 9, 9, 9};
  EXPECT_EQ(softmax_crossentropy_forward(loss, probs, z, y, 2, 2), 0.0);
  EXPECT_EQ(count_targets(y, 2), 0);
  softmax_crossentropy_backward(d, probs, y, 2, 2, 1.0f);
  for (float v : d) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyTest,
                         ::testing::Values(Shape{1, 2}, Shape{3, 7}, Shape{8, 16}, Shape{9, 33},
                                           Shape{5, 257}));

}  // namespace
}  // namespace skein
