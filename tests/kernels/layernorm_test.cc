#include "kernels/layernorm.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "kernels/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::check_gradients;
using testing::random_vec;
using testing::rel_error;
using testing::to_double;
using testing::to_float;

struct Shape {
  int N, C;
};
class LayerNormTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LayerNormTest, ForwardMatchesReference) {
  const auto [N, C] = GetParam();
  auto x = random_vec(N * C, 1, 2.0), w = random_vec(C, 2), b = random_vec(C, 3);
  for (auto& v : x) v += 3.0;  // an offset mean exercises the centring
  std::vector<double> expect(N * C);
  ref::layernorm_forward(expect.data(), x.data(), w.data(), b.data(), N, C);

  auto xf = to_float(x), wf = to_float(w), bf = to_float(b);
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), xf.data(), wf.data(), bf.data(), N, C);
  EXPECT_LE(rel_error(out, expect), 1e-5);

  std::vector<double> outd(N * C), meand(N), rstdd(N);
  layernorm_forward(outd.data(), meand.data(), rstdd.data(), x.data(), w.data(), b.data(), N, C);
  EXPECT_LE(rel_error(outd, expect), 1e-12);
}

TEST_P(LayerNormTest, BackwardMatchesFiniteDifferences) {
  const auto [N, C] = GetParam();
  auto x = random_vec(N * C, 4), w = random_vec(C, 5), b = random_vec(C, 6);
  std::vector<double> dx(N * C), dw(C), db(C), out(N * C), mean(N), rstd(N);
  auto forward = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
  };
  check_gradients(forward, {{"inp", &x, &dx}, {"weight", &w, &dw}, {"bias", &b, &db}}, backward);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormTest,
                         ::testing::Values(Shape{1, 1}, Shape{1, 7}, Shape{3, 16}, Shape{5, 17},
                                           Shape{2, 33}));

// The checker itself must be able to fail: a backward that is slightly off is caught.
TEST(GradientChecker, CatchesAWrongBackward) {
  const int N = 3, C = 5;
  auto x = random_vec(N * C, 7), w = random_vec(C, 8), b = random_vec(C, 9);
  std::vector<double> dx(N * C), dw(C), db(C), out(N * C), mean(N), rstd(N);
  auto forward = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    return out;
  };
  auto wrong_backward = [&](const std::vector<double>& dout) {
    layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
    dx[4] *= 1.001;  // one element 0.1% off
  };
  EXPECT_NONFATAL_FAILURE(check_gradients(forward, {{"inp", &x, &dx}}, wrong_backward),
                          "d/d inp[4]");
}

}  // namespace
}  // namespace skein
