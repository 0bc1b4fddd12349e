#include "kernels/attention.h"

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
  int B, T, C, NH;
};
class AttentionTest : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionTest, ForwardMatchesReference) {
  const auto [B, T, C, NH] = GetParam();
  auto qkv = random_vec(B * T * 3 * C, 1, 1.5);
  std::vector<double> expect(B * T * C);
  ref::attention_forward(expect.data(), qkv.data(), B, T, C, NH);

  auto qf = to_float(qkv);
  std::vector<float> out(B * T * C), stats(attention_stats_size(B, T, NH)), scratch(T * T);
  attention_forward(out.data(), stats.data(), scratch.data(), qf.data(), B, T, C, NH);
  EXPECT_LE(rel_error(out, expect), 1e-5);
  // the last head's probabilities, left in scratch: rows sum to one, nothing above the diagonal
  for (int t = 0; t < T; ++t) {
    double sum = 0;
    for (int j = 0; j < T; ++j) {
      float pj = scratch[t * T + j];
      if (j > t) {
        EXPECT_EQ(pj, 0.0f);
      }
      sum += pj;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST_P(AttentionTest, BackwardMatchesFiniteDifferences) {
  const auto [B, T, C, NH] = GetParam();
  auto qkv = random_vec(B * T * 3 * C, 2);
  std::vector<double> dqkv(qkv.size()), out(B * T * C), stats(attention_stats_size(B, T, NH)),
      scratch(2 * T * T);
  auto forward = [&] {
    attention_forward(out.data(), stats.data(), scratch.data(), qkv.data(), B, T, C, NH);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), stats.data(), B, T, C,
                       NH);
  };
  check_gradients(forward, {{"qkv", &qkv, &dqkv}}, backward);
}

// float runs its products on sgemm, double on Eigen (checked above against finite differences):
// the float outputs and gradients must match the double ones.
void expect_float_matches_double(int B, int T, int C, int NH) {
  auto qkv = random_vec(B * T * 3 * C, 4), dout = random_vec(B * T * C, 5);
  auto dqkv = random_vec(qkv.size(), 6);  // backward accumulates: start from nonzero
  std::vector<double> out(B * T * C), stats(attention_stats_size(B, T, NH)), scratch(2 * T * T);
  auto qf = to_float(qkv), doutf = to_float(dout), dqkvf = to_float(dqkv);
  std::vector<float> outf(out.size()), statsf(stats.size()), scratchf(2 * T * T);
  attention_forward(out.data(), stats.data(), scratch.data(), qkv.data(), B, T, C, NH);
  attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), stats.data(), B, T, C,
                     NH);
  attention_forward(outf.data(), statsf.data(), scratchf.data(), qf.data(), B, T, C, NH);
  attention_backward(dqkvf.data(), scratchf.data(), doutf.data(), qf.data(), statsf.data(), B, T, C,
                     NH);
  EXPECT_LE(rel_error(outf, out), 1e-5);
  EXPECT_LE(rel_error(dqkvf, dqkv), 1e-5);
}
TEST_P(AttentionTest, FloatMatchesDouble) {
  const auto [B, T, C, NH] = GetParam();
  expect_float_matches_double(B, T, C, NH);
}
// Large enough for several sgemm tiles per head, with edge tiles (T = 70, HS = 20).
TEST(Attention, FloatMatchesDoubleAtLargerShape) {
  expect_float_matches_double(2, 70, 60, 3);
}

TEST(Attention, IsCausal) {
  // Changing the last position's q, k, v must not change any earlier output.
  const int B = 1, T = 5, C = 6, NH = 2;
  auto qkv = to_float(random_vec(B * T * 3 * C, 3));
  std::vector<float> out1(T * C), out2(T * C), stats(attention_stats_size(B, T, NH)), s(T * T);
  attention_forward(out1.data(), stats.data(), s.data(), qkv.data(), B, T, C, NH);
  for (int c = 0; c < 3 * C; ++c) qkv[(T - 1) * 3 * C + c] += 1.0f;
  attention_forward(out2.data(), stats.data(), s.data(), qkv.data(), B, T, C, NH);
  for (int i = 0; i < (T - 1) * C; ++i) EXPECT_EQ(out1[i], out2[i]) << i;
  bool last_changed = false;
  for (int i = (T - 1) * C; i < T * C; ++i) last_changed |= out1[i] != out2[i];
  EXPECT_TRUE(last_changed);
}

// Grouped-query attention: query heads q, key/value heads kv (dividing q), head size.
struct GqaShape {
  int B, T, q, kv, size;
};
class GqaTest : public ::testing::TestWithParam<GqaShape> {};

TEST_P(GqaTest, ForwardMatchesReference) {
  const auto [B, T, NH, NKV, HS] = GetParam();
  const AttentionHeads heads{NH, NKV, HS};
  auto qkv = random_vec(size_t(B) * T * heads.qkv_width(), 21, 1.5);
  std::vector<double> expect(size_t(B) * T * NH * HS);
  ref::gqa_attention_forward(expect.data(), qkv.data(), B, T, NH, NKV, HS);
  auto qf = to_float(qkv);
  std::vector<float> out(expect.size()), stats(attention_stats_size(B, T, NH)), scratch(T * T);
  attention_forward(MatmulContext{}, out.data(), stats.data(), scratch.data(), qf.data(), B, T,
                    heads);
  EXPECT_LE(rel_error(out, expect), 1e-5);
}

TEST_P(GqaTest, BackwardMatchesFiniteDifferences) {
  const auto [B, T, NH, NKV, HS] = GetParam();
  const AttentionHeads heads{NH, NKV, HS};
  auto qkv = random_vec(size_t(B) * T * heads.qkv_width(), 22);
  std::vector<double> dqkv(qkv.size()), out(size_t(B) * T * NH * HS),
      stats(attention_stats_size(B, T, NH)), scratch(2 * T * T);
  const MatmulContext mm;
  auto forward = [&] {
    attention_forward(mm, out.data(), stats.data(), scratch.data(), qkv.data(), B, T, heads);
    return out;
  };
  auto backward = [&](const std::vector<double>& dout) {
    attention_backward(mm, dqkv.data(), scratch.data(), dout.data(), qkv.data(), stats.data(), B, T,
                       heads);
  };
  check_gradients(forward, {{"qkv", &qkv, &dqkv}}, backward);
}

// float (sgemm) against double, and the tasks cut among two "threads" give the whole's bits.
TEST_P(GqaTest, FloatMatchesDoubleAndTasksSplit) {
  const auto [B, T, NH, NKV, HS] = GetParam();
  const AttentionHeads heads{NH, NKV, HS};
  const MatmulContext mm;
  auto qkv = random_vec(size_t(B) * T * heads.qkv_width(), 23),
       dout = random_vec(size_t(B) * T * NH * HS, 24);
  std::vector<double> out(dout.size()), stats(attention_stats_size(B, T, NH)), scratch(2 * T * T),
      dqkv(qkv.size());
  attention_forward(mm, out.data(), stats.data(), scratch.data(), qkv.data(), B, T, heads);
  attention_backward(mm, dqkv.data(), scratch.data(), dout.data(), qkv.data(), stats.data(), B, T,
                     heads);
  auto qf = to_float(qkv), df = to_float(dout);
  std::vector<float> outf(out.size()), statsf(stats.size()), scratchf(2 * T * T), dqkvf(qkv.size());
  attention_forward(mm, outf.data(), statsf.data(), scratchf.data(), qf.data(), B, T, heads);
  attention_backward(mm, dqkvf.data(), scratchf.data(), df.data(), qf.data(), statsf.data(), B, T,
                     heads);
  EXPECT_LE(rel_error(outf, out), 1e-5);
  EXPECT_LE(rel_error(dqkvf, dqkv), 1e-5);

  const int tasks = B * NKV, cut = tasks / 2;
  std::vector<float> out2(outf.size()), stats2(statsf.size()), dqkv2(qkv.size());
  attention_forward_tasks(mm, out2.data(), stats2.data(), scratchf.data(), qf.data(), T, heads, cut,
                          tasks);
  attention_forward_tasks(mm, out2.data(), stats2.data(), scratchf.data(), qf.data(), T, heads, 0,
                          cut);
  attention_backward_tasks(mm, dqkv2.data(), scratchf.data(), df.data(), qf.data(), stats2.data(),
                           T, heads, cut, tasks);
  attention_backward_tasks(mm, dqkv2.data(), scratchf.data(), df.data(), qf.data(), stats2.data(),
                           T, heads, 0, cut);
  EXPECT_EQ(out2, outf);
  EXPECT_EQ(stats2, statsf);
  EXPECT_EQ(dqkv2, dqkvf);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GqaTest,
                         ::testing::Values(GqaShape{1, 3, 2, 1, 4}, GqaShape{2, 5, 6, 2, 3},
                                           GqaShape{1, 9, 4, 4, 2}, GqaShape{2, 7, 9, 3, 4},
                                           // past the causal blocks of 48 rows
                                           GqaShape{1, 60, 4, 2, 3}));

// With as many key/value heads as query heads the grouped form is the multi-head one, bit for bit.
TEST(Gqa, EqualHeadCountsAreMultiHeadAttention) {
  const int B = 2, T = 50, C = 24, NH = 4;
  auto qkv = to_float(random_vec(B * T * 3 * C, 25)), dout = to_float(random_vec(B * T * C, 26));
  std::vector<float> o1(B * T * C), o2(o1.size()), s1(attention_stats_size(B, T, NH)),
      s2(s1.size()), scratch(2 * T * T), d1(qkv.size()), d2(qkv.size());
  const MatmulContext mm;
  attention_forward(mm, o1.data(), s1.data(), scratch.data(), qkv.data(), B, T, C, NH);
  attention_backward(mm, d1.data(), scratch.data(), dout.data(), qkv.data(), s1.data(), B, T, C,
                     NH);
  attention_forward(mm, o2.data(), s2.data(), scratch.data(), qkv.data(), B, T,
                    AttentionHeads{NH, NH, C / NH});
  attention_backward(mm, d2.data(), scratch.data(), dout.data(), qkv.data(), s2.data(), B, T,
                     AttentionHeads{NH, NH, C / NH});
  EXPECT_EQ(o1, o2);
  EXPECT_EQ(d1, d2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Shape{1, 1, 4, 2}, Shape{2, 1, 3, 1}, Shape{1, 3, 6, 2},
                                           Shape{2, 7, 9, 3}, Shape{1, 17, 10, 2},
                                           Shape{3, 5, 16, 4},
                                           // T past the causal blocks of 48 rows (attention.cc)
                                           Shape{2, 65, 2, 1}, Shape{1, 150, 4, 2}));

}  // namespace
}  // namespace skein
