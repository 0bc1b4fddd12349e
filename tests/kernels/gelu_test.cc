#include "kernels/gelu.h"

#include <gtest/gtest.h>

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

INSTANTIATE_TEST_SUITE_P(Sizes, GeluTest, ::testing::Values(1, 7, 16, 33, 100));

}  // namespace
}  // namespace skein
