#include "kernels/rmsnorm.h"

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
  int N, C;
};
class RmsNormTest : public ::testing::TestWithParam<Shape> {};

TEST_P(RmsNormTest, ForwardMatchesReference) {
  const auto [N, C] = GetParam();
  auto x = random_vec(N * C, 1, 2.0), w = random_vec(C, 2);
  for (auto& v : x) v += 1.0;  // not centred: RMSNorm must not centre it
  std::vector<double> expect(N * C);
  ref::rmsnorm_forward(expect.data(), x.data(), w.data(), N, C, 1e-5);

  auto xf = to_float(x), wf = to_float(w);
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), xf.data(), wf.data(), N, C, 1e-5f);
  EXPECT_LE(rel_error(out, expect), 1e-5);

  std::vector<double> outd(N * C), rstdd(N);
  rmsnorm_forward(outd.data(), rstdd.data(), x.data(), w.data(), N, C, 1e-5);
  EXPECT_LE(rel_error(outd, expect), 1e-12);
}

TEST_P(RmsNormTest, BackwardMatchesFiniteDifferences) {
  const auto [N, C] = GetParam();
  auto x = random_vec(N * C, 4), w = random_vec(C, 5);
  std::vector<double> dx(N * C), dw(C), out(N * C), rstd(N);
  auto forward = [&] {
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    rmsnorm_backward_input(dx.data(), dout.data(), x.data(), w.data(), rstd.data(), N, C);
    rmsnorm_backward_params(dw.data(), dout.data(), x.data(), rstd.data(), N, C, 0, C);
  };
  check_gradients(forward, {{"inp", &x, &dx}, {"weight", &w, &dw}}, backward);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormTest,
                         ::testing::Values(Shape{1, 1}, Shape{1, 7}, Shape{3, 16}, Shape{5, 17},
                                           Shape{2, 33}));

// The parameters' gradient cut into channel windows gives the whole one's bits, and the input's
// gradient is added to what dinp held.
TEST(RmsNorm, PiecesAddUpBitForBit) {
  const int N = 9, C = 40;
  auto x = to_float(random_vec(N * C, 7)), w = to_float(random_vec(C, 8)),
       d = to_float(random_vec(N * C, 9));
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  std::vector<float> whole(C, 0.5f), pieces(C, 0.5f);
  rmsnorm_backward_params(whole.data(), d.data(), x.data(), rstd.data(), N, C, 0, C);
  for (int c0 = 0; c0 < C; c0 += 16)
    rmsnorm_backward_params(pieces.data(), d.data(), x.data(), rstd.data(), N, C, c0,
                            std::min(C, c0 + 16));
  EXPECT_EQ(whole, pieces);
  std::vector<float> dx0(N * C, 0.0f), dx1(N * C, 1.0f);
  rmsnorm_backward_input(dx0.data(), d.data(), x.data(), w.data(), rstd.data(), N, C);
  rmsnorm_backward_input(dx1.data(), d.data(), x.data(), w.data(), rstd.data(), N, C);
  for (int i = 0; i < N * C; ++i) EXPECT_NEAR(dx1[i], dx0[i] + 1.0f, 1e-6f) << i;
}

}  // namespace
}  // namespace skein
