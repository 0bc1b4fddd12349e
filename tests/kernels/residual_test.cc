#include "kernels/residual.h"

#include <gtest/gtest.h>

#include "kernels/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::check_gradients;
using testing::random_vec;
using testing::rel_error;
using testing::to_float;

class ResidualTest : public ::testing::TestWithParam<int> {};

TEST_P(ResidualTest, ForwardMatchesReference) {
  const int n = GetParam();
  auto a = random_vec(n, 1), b = random_vec(n, 2);
  std::vector<double> expect(n);
  ref::residual_forward(expect.data(), a.data(), b.data(), n);
  auto af = to_float(a), bf = to_float(b);
  std::vector<float> out(n);
  residual_forward(out.data(), af.data(), bf.data(), n);
  EXPECT_LE(rel_error(out, expect), 1e-6);
}

TEST_P(ResidualTest, BackwardMatchesFiniteDifferences) {
  const int n = GetParam();
  auto a = random_vec(n, 3), b = random_vec(n, 4);
  std::vector<double> da(n), db(n), out(n);
  auto forward = [&] {
    residual_forward(out.data(), a.data(), b.data(), n);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    residual_backward(da.data(), db.data(), dout.data(), n);
  };
  check_gradients(forward, {{"a", &a, &da}, {"b", &b, &db}}, backward);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ResidualTest, ::testing::Values(1, 5, 16, 37));

}  // namespace
}  // namespace skein
