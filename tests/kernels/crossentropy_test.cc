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
  std::vector<float> stats(N * kCrossEntropyStats), losses(N);
  const double sum =
      softmax_crossentropy_forward(losses.data(), stats.data(), zf.data(), y.data(), N, V);
  const int count = count_targets(y.data(), N);
  EXPECT_NEAR(count ? sum / count : 0.0, loss_ref, 1e-5 * std::max(1.0, loss_ref));
  for (int i = 0; i < N; ++i) {
    if (y[i] == kIgnoreTarget) {
      EXPECT_EQ(losses[i], 0.0f);
    }
  }
  // the probabilities backward rebuilds from the stats, in place over the logits: with dloss = 1,
  // dlogits + onehot(target) is the softmax (rows with an ignored target are 0)
  std::vector<float> d = zf;
  softmax_crossentropy_backward(d.data(), d.data(), stats.data(), y.data(), N, V, 1.0f);
  std::vector<double> expect = probs_ref;
  for (int i = 0; i < N; ++i) {
    if (y[i] == kIgnoreTarget) {
      std::fill(expect.begin() + long(i) * V, expect.begin() + long(i + 1) * V, 0.0);
    } else {
      d[long(i) * V + y[i]] += 1.0f;
    }
  }
  EXPECT_LE(rel_error(d, expect), 1e-5);
}

TEST_P(CrossEntropyTest, BackwardMatchesFiniteDifferences) {
  const auto [N, V] = GetParam();
  auto z = random_vec(N * V, 2, 2.0);
  auto y = targets_for(N, V);
  const int count = count_targets(y.data(), N);
  std::vector<double> dz(z.size()), stats(N * kCrossEntropyStats), losses(N);
  // the output checked is the mean loss, a single number
  auto forward = [&] {
    double s = softmax_crossentropy_forward(losses.data(), stats.data(), z.data(), y.data(), N, V);
    return std::vector<double>{count ? s / count : 0.0};
  };
  auto backward = [&](const std::vector<double>& dout) {
    std::vector<double> d(z.size());
    softmax_crossentropy_backward(d.data(), z.data(), stats.data(), y.data(), N, V,
                                  count ? dout[0] / count : 0.0);
    for (size_t i = 0; i < d.size(); ++i) dz[i] += d[i];
  };
  check_gradients(forward, {{"logits", &z, &dz}}, backward);
}

TEST(CrossEntropy, StableForHugeLogits) {
  const int V = 3;
  const float z[V] = {1000.0f, -1000.0f, 999.0f};
  const int32_t y[1] = {1};
  float stats[kCrossEntropyStats], loss[1], d[V];
  softmax_crossentropy_forward(loss, stats, z, y, 1, V);
  EXPECT_TRUE(std::isfinite(loss[0]));
  EXPECT_NEAR(loss[0], 2000.0f + std::log1p(std::exp(-1.0f)), 1e-2);
  softmax_crossentropy_backward(d, z, stats, y, 1, V, 1.0f);  // dz = p - onehot
  EXPECT_NEAR(d[0] + d[2], 1.0f, 1e-6);
  EXPECT_NEAR(d[1], -1.0f, 1e-6);
}

TEST(CrossEntropy, AllIgnoredGivesZero) {
  const float z[4] = {1, 2, 3, 4};
  const int32_t y[2] = {kIgnoreTarget, kIgnoreTarget};
  float stats[2 * kCrossEntropyStats], loss[2], d[4] = {9, 9, 9, 9};
  EXPECT_EQ(softmax_crossentropy_forward(loss, stats, z, y, 2, 2), 0.0);
  EXPECT_EQ(count_targets(y, 2), 0);
  softmax_crossentropy_backward(d, z, stats, y, 2, 2, 1.0f);
  for (float v : d) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyTest,
                         ::testing::Values(Shape{1, 2}, Shape{3, 7}, Shape{8, 16}, Shape{9, 33},
                                           Shape{5, 257}));

}  // namespace
}  // namespace skein
