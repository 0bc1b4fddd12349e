#include "kernels/swiglu.h"

#include <gtest/gtest.h>

#include "kernels/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::check_gradients;
using testing::random_vec;
using testing::rel_error;
using testing::to_float;

struct Shape {
  int N, F;
};
class SwiGluTest : public ::testing::TestWithParam<Shape> {};

TEST_P(SwiGluTest, ForwardMatchesReference) {
  const auto [N, F] = GetParam();
  auto x = random_vec(size_t(N) * 2 * F, 1, 3.0);  // gates far into both tails
  std::vector<double> expect(size_t(N) * F);
  ref::swiglu_forward(expect.data(), x.data(), N, F);
  auto xf = to_float(x);
  std::vector<float> out(expect.size());
  swiglu_forward(out.data(), xf.data(), N, F);
  EXPECT_LE(rel_error(out, expect), 1e-6);
}

TEST_P(SwiGluTest, BackwardMatchesFiniteDifferences) {
  const auto [N, F] = GetParam();
  auto x = random_vec(size_t(N) * 2 * F, 2, 2.0);
  std::vector<double> out(size_t(N) * F), dx(x.size());
  auto forward = [&] {
    swiglu_forward(out.data(), x.data(), N, F);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    std::vector<double> d(x.size());
    swiglu_backward(d.data(), x.data(), dout.data(), N, F);
    for (size_t i = 0; i < d.size(); ++i) dx[i] += d[i];
  };
  check_gradients(forward, {{"inp", &x, &dx}}, backward);
}

// float's gradient (exp_approx) against double's (libm)
TEST_P(SwiGluTest, FloatBackwardMatchesDouble) {
  const auto [N, F] = GetParam();
  auto x = random_vec(size_t(N) * 2 * F, 3, 3.0), d = random_vec(size_t(N) * F, 4);
  std::vector<double> dx(x.size());
  swiglu_backward(dx.data(), x.data(), d.data(), N, F);
  auto xf = to_float(x), df = to_float(d);
  std::vector<float> dxf(x.size(), NAN);  // written, not added to
  swiglu_backward(dxf.data(), xf.data(), df.data(), N, F);
  EXPECT_LE(rel_error(dxf, dx), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwiGluTest,
                         ::testing::Values(Shape{1, 1}, Shape{2, 7}, Shape{3, 16}, Shape{5, 33}));

}  // namespace
}  // namespace skein
