#include "kernels/encoder.h"

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
  int B, T, C, V;
};
class EncoderTest : public ::testing::TestWithParam<Shape> {};

std::vector<int32_t> tokens_for(int B, int T, int V) {
  std::vector<int32_t> tok(B * T);
  // repeated tokens exercise the accumulation into one embedding row
  for (int i = 0; i < B * T; ++i) tok[i] = (i * 7 + i / 3) % V;
  return tok;
}

TEST_P(EncoderTest, ForwardMatchesReference) {
  const auto [B, T, C, V] = GetParam();
  auto tok = tokens_for(B, T, V);
  auto wte = random_vec(V * C, 1), wpe = random_vec(T * C, 2);
  std::vector<double> expect(B * T * C);
  ref::encoder_forward(expect.data(), tok.data(), wte.data(), wpe.data(), B, T, C);
  auto wtef = to_float(wte), wpef = to_float(wpe);
  std::vector<float> out(B * T * C);
  encoder_forward(out.data(), tok.data(), wtef.data(), wpef.data(), B, T, C);
  EXPECT_LE(rel_error(out, expect), 1e-6);
}

TEST_P(EncoderTest, BackwardMatchesFiniteDifferences) {
  const auto [B, T, C, V] = GetParam();
  auto tok = tokens_for(B, T, V);
  auto wte = random_vec(V * C, 3), wpe = random_vec(T * C, 4);
  std::vector<double> dwte(wte.size()), dwpe(wpe.size()), out(B * T * C);
  auto forward = [&] {
    encoder_forward(out.data(), tok.data(), wte.data(), wpe.data(), B, T, C);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    encoder_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), B, T, C);
  };
  check_gradients(forward, {{"wte", &wte, &dwte}, {"wpe", &wpe, &dwpe}}, backward);
}

INSTANTIATE_TEST_SUITE_P(Shapes, EncoderTest,
                         ::testing::Values(Shape{1, 1, 3, 2}, Shape{2, 5, 7, 3},
                                           Shape{3, 4, 16, 11}, Shape{1, 9, 5, 50}));

}  // namespace
}  // namespace skein
