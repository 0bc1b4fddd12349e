#include "kernels/linear.h"

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
  int N, C, OC;
  bool bias;
};
class LinearTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LinearTest, ForwardMatchesReference) {
  const auto [N, C, OC, has_bias] = GetParam();
  auto x = random_vec(N * C, 1), w = random_vec(OC * C, 2), b = random_vec(OC, 3);
  const double* bp = has_bias ? b.data() : nullptr;
  std::vector<double> expect(N * OC);
  ref::linear_forward(expect.data(), x.data(), w.data(), bp, N, C, OC);

  auto xf = to_float(x), wf = to_float(w), bf = to_float(b);
  std::vector<float> out(N * OC);
  linear_forward(out.data(), xf.data(), wf.data(), has_bias ? bf.data() : nullptr, N, C, OC);
  EXPECT_LE(rel_error(out, expect), 1e-5);
}

TEST_P(LinearTest, BackwardMatchesFiniteDifferences) {
  const auto [N, C, OC, has_bias] = GetParam();
  auto x = random_vec(N * C, 4), w = random_vec(OC * C, 5), b = random_vec(OC, 6);
  std::vector<double> dx(N * C), dw(OC * C), db(OC), out(N * OC);
  auto forward = [&] {
    linear_forward(out.data(), x.data(), w.data(), has_bias ? b.data() : nullptr, N, C, OC);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    linear_backward(dx.data(), dw.data(), has_bias ? db.data() : nullptr, dout.data(), x.data(),
                    w.data(), N, C, OC);
  };
  std::vector<testing::GradInput> inputs = {{"inp", &x, &dx}, {"weight", &w, &dw}};
  if (has_bias) inputs.push_back({"bias", &b, &db});
  check_gradients(forward, inputs, backward);
}

// float runs on sgemm, double on Eigen (checked above against finite differences): the float
// gradients must match the double ones.
TEST_P(LinearTest, FloatBackwardMatchesDouble) {
  const auto [N, C, OC, has_bias] = GetParam();
  auto x = random_vec(N * C, 7), w = random_vec(OC * C, 8), dout = random_vec(N * OC, 9);
  // start from nonzero gradients: backward accumulates
  auto dx = random_vec(N * C, 10), dw = random_vec(OC * C, 11), db = random_vec(OC, 12);
  auto dxf = to_float(dx), dwf = to_float(dw), dbf = to_float(db);
  linear_backward(dx.data(), dw.data(), has_bias ? db.data() : nullptr, dout.data(), x.data(),
                  w.data(), N, C, OC);
  auto xf = to_float(x), wf = to_float(w), doutf = to_float(dout);
  linear_backward(dxf.data(), dwf.data(), has_bias ? dbf.data() : nullptr, doutf.data(), xf.data(),
                  wf.data(), N, C, OC);
  EXPECT_LE(rel_error(dxf, dx), 1e-5);
  EXPECT_LE(rel_error(dwf, dw), 1e-5);
  if (has_bias) {
    EXPECT_LE(rel_error(dbf, db), 1e-5);
  }
}

TEST(Linear, BackwardAccumulates) {
  const int N = 3, C = 4, OC = 5;
  auto x = to_float(random_vec(N * C, 1)), w = to_float(random_vec(OC * C, 2));
  auto dout = to_float(random_vec(N * OC, 3));
  std::vector<float> dx1(N * C), dw1(OC * C), db1(OC);
  linear_backward(dx1.data(), dw1.data(), db1.data(), dout.data(), x.data(), w.data(), N, C, OC);
  std::vector<float> dx2 = dx1, dw2 = dw1, db2 = db1;
  linear_backward(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(), N, C, OC);
  for (int i = 0; i < N * C; ++i) EXPECT_FLOAT_EQ(dx2[i], 2 * dx1[i]);
  for (int i = 0; i < OC * C; ++i) EXPECT_FLOAT_EQ(dw2[i], 2 * dw1[i]);
  for (int i = 0; i < OC; ++i) EXPECT_FLOAT_EQ(db2[i], 2 * db1[i]);
}

// beta 0 writes dinp and dweight without reading them: NaN there changes nothing.
TEST(Linear, BackwardBetaZeroOverwrites) {
  const int N = 7, C = 300, OC = 9;  // C > the product's K block: two passes over dweight
  auto x = to_float(random_vec(N * C, 4)), w = to_float(random_vec(OC * C, 5));
  auto dout = to_float(random_vec(N * OC, 6));
  std::vector<float> dx0(N * C), dw0(OC * C), db0(OC);
  linear_backward(dx0.data(), dw0.data(), db0.data(), dout.data(), x.data(), w.data(), N, C, OC);
  std::vector<float> dx(N * C, NAN), dw(OC * C, NAN), db(OC);
  linear_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, C, OC, 0.0f,
                  0.0f);
  for (int i = 0; i < N * C; ++i) ASSERT_EQ(dx[i], dx0[i]) << i;
  for (int i = 0; i < OC * C; ++i) ASSERT_EQ(dw[i], dw0[i]) << i;
  for (int i = 0; i < OC; ++i) ASSERT_EQ(db[i], db0[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearTest,
                         ::testing::Values(Shape{1, 1, 1, true}, Shape{1, 7, 3, true},
                                           Shape{5, 8, 16, true}, Shape{9, 17, 13, false},
                                           Shape{17, 33, 31, true}, Shape{2, 40, 24, true}));

}  // namespace
}  // namespace skein
