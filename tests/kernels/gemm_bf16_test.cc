// MatmulPrecision::kBf16: every kernel of the bf16 family this CPU runs (the portable twin
// everywhere, the vdpbf16ps kernel where the CPU has avx512_bf16) against an independent model of
// vdpbf16ps's arithmetic, bit for bit, around the tile and the blocks; and bf16_self_check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::random_vec;
using testing::to_float;

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

struct Case {
  int M, N, K;
  bool trans_a, trans_b;
  float beta;
  bool bias;
  int pad;  // added to each leading dimension
};

std::string describe(const Case& c) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " trans_a=" + std::to_string(c.trans_a) + " trans_b=" + std::to_string(c.trans_b) +
         " beta=" + std::to_string(int(c.beta)) + " bias=" + std::to_string(c.bias) +
         " pad=" + std::to_string(c.pad);
}

// What gemm.h promises, element by element: K in equal even blocks of at most kSgemmKC; in a block,
// per pair of k, sum += odd product, then sum += even product, on bf16-rounded operands (a
// missing odd k counts as 0); the block's sum, then C (the caller's with beta 1 in the first
// block, the running result after), then the bias in the first block.
void check_case(int kernel, const Case& c) {
  SCOPED_TRACE(std::string(sgemm_kernels()[kernel].name) + " " + describe(c));
  const int M = c.M, N = c.N, K = c.K;
  const int lda = std::max(1, c.trans_a ? M : K) + c.pad;
  const int ldb = std::max(1, c.trans_b ? K : N) + c.pad, ldc = std::max(1, N) + c.pad;
  const uint64_t seed = uint64_t(M) * 1000003 + N * 1009 + K * 7 + c.trans_a + 2 * c.trans_b;
  const auto a = to_float(random_vec(size_t(c.trans_a ? K : M) * lda, seed));
  const auto b = to_float(random_vec(size_t(c.trans_b ? N : K) * ldb, seed + 1));
  const auto bias = to_float(random_vec(N, seed + 2));
  const auto c0 = to_float(random_vec(size_t(M) * ldc, seed + 3));
  auto op_a = [&](int i, int k) {
    return round_to_bf16(c.trans_a ? a[size_t(k) * lda + i] : a[size_t(i) * lda + k]);
  };
  auto op_b = [&](int k, int j) {
    return round_to_bf16(c.trans_b ? b[size_t(j) * ldb + k] : b[size_t(k) * ldb + j]);
  };
  const int blocks = std::max(1, (K + kSgemmKC - 1) / kSgemmKC);
  const int step = ((K + blocks - 1) / blocks + 1) / 2 * 2;
  std::vector<float> want(size_t(M) * ldc), got = c0;
  std::vector<double> scale(size_t(M) * ldc);  // sum of |terms|: the scale of fp32's rounding
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float v = c.beta != 0 ? c0[size_t(i) * ldc + j] : 0.0f;
      if (K == 0) v = v + (c.bias ? bias[j] : 0.0f);
      double sc = std::abs(double(v)) + (c.bias ? std::abs(double(bias[j])) : 0.0);
      for (int k = 0; k < K; ++k) sc += std::abs(double(op_a(i, k)) * double(op_b(k, j)));
      scale[size_t(i) * ldc + j] = sc;
      for (int k0 = 0; k0 < K; k0 += step) {
        const int k1 = std::min(K, k0 + step);
        float sum = 0.0f;
        for (int k = k0; k < k1; k += 2) {
          const float odd = k + 1 < k1 ? op_a(i, k + 1) * op_b(k + 1, j) : 0.0f;
          const float t = sum + odd;
          sum = t + op_a(i, k) * op_b(k, j);
        }
        const bool first = k0 == 0;
        if (first && c.beta == 0)
          v = sum;
        else
          v = sum + v;
        if (first && c.bias) v = v + bias[j];
      }
      want[size_t(i) * ldc + j] = v;
    }
  sgemm(MatmulContext{MatmulPrecision::kBf16, kernel}, c.trans_a, c.trans_b, M, N, K, a.data(), lda,
        b.data(), ldb, c.beta, got.data(), ldc, c.bias ? bias.data() : nullptr);
  // a kernel that sums in the model's order gives its bits; the AMX kernel (its own order) is
  // within fp32's rounding of the same sums: (K + 2) additions of relative error 2^-24 each
  const bool exact = sgemm_kernels()[kernel].exact_order;
  int differ = 0, pad_touched = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      const size_t at = size_t(i) * ldc + j;
      if (exact)
        differ += bits(got[at]) != bits(want[at]);
      else
        differ += !(std::abs(double(got[at]) - double(want[at])) <=
                    (K + 2) * std::ldexp(1.0, -24) * scale[at]);
    }
    for (int j = N; j < ldc; ++j)
      pad_touched += got[size_t(i) * ldc + j] != c0[size_t(i) * ldc + j];
  }
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(pad_touched, 0);
}

std::vector<int> bf16_kernels() {
  std::vector<int> v;
  for (int i = 0; i < int(sgemm_kernels().size()); ++i)
    if (sgemm_kernels()[i].family == MatmulPrecision::kBf16) v.push_back(i);
  return v;
}

class SgemmBf16Kernel : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    const SgemmKernel& k = sgemm_kernels()[GetParam()];
    if (!k.supported()) GTEST_SKIP() << k.name << ": this CPU has no " << k.needs;
  }
};

TEST_P(SgemmBf16Kernel, IsVdpbf16psArithmeticAroundTheTile) {
  const int MR = sgemm_kernels()[GetParam()].mr, NR = sgemm_kernels()[GetParam()].nr;
  int n_case = 0;
  for (int m : {1, 5, MR - 1, MR, MR + 1, 2 * MR + 1})
    for (int n : {1, 7, NR - 1, NR, NR + 1, 2 * NR + 3})
      for (int k : {1, 2, 3, 15, 16, 17, 34, 47})
        for (int t = 0; t < 4; ++t) {
          ++n_case;
          check_case(GetParam(), {m, n, k, bool(t & 1), bool(t & 2), float((m + n + k) % 2),
                                  (m + k + t) % 3 != 0, (n + t) % 3});
        }
  EXPECT_EQ(n_case, 6 * 6 * 8 * 4);
}

TEST_P(SgemmBf16Kernel, IsVdpbf16psArithmeticAcrossBlocks) {
  // K blocks (one of kSgemmKC, and uneven: kSgemmKC + 1 -> 2, 2 kSgemmKC + 1 -> 3 equal even
  // blocks), M past the M block, N past 1536
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int k : {kSgemmKC - 1, kSgemmKC, kSgemmKC + 1, 2 * kSgemmKC + 1})
      check_case(GetParam(), {14, 45, k, ta, tb, 1.0f, true, 1});
    check_case(GetParam(), {kSgemmMC + 1, 33, 40, ta, tb, 0.0f, true, 2});
    check_case(GetParam(), {13, 1537, 20, ta, tb, 1.0f, false, 0});
    check_case(GetParam(), {5, 9, 0, ta, tb, 1.0f, true, 1});  // K = 0: C = beta C + bias
  }
}

// Full panels are packed by vector code (AVX2, or AVX-512 BF16 with vcvtne2ps2bf16 where the CPU
// has it, for the vdpbf16ps and the AMX kernels), the rows and columns of edge panels by scalar
// code (round_to_bf16): on
// operands full of subnormals of both signs, a value that rounds up to infinity and ties, a block
// of a large product equals the same block computed alone, where every panel is an edge panel,
// bit for bit. The largest fp32 subnormals round up to bf16's smallest normal, a number even
// where the kernel reads subnormal inputs as zero (vdpbf16ps): a row of op(A) and a column of
// op(B) of them, against a column and a row of large values, make that rounding decide whole
// products, in every packing path (each trans_a, trans_b). The AMX kernel adds a tile step's
// products in the hardware's own order, which is held here to be the same at every position of a
// tile (the block sits one row and one column off the large product's tiles).
TEST_P(SgemmBf16Kernel, VectorAndScalarPackingGiveTheSameBits) {
  const int MR = sgemm_kernels()[GetParam()].mr, NR = sgemm_kernels()[GetParam()].nr;
  const int M = 2 * MR, N = 2 * NR, K = 96, m = MR - 1, n = NR - 1;  // the block: m x n at (1, 1)
  const float specials[] = {1e-39f, -2.5e-39f, 3e-42f, -1e-45f, 0.0f, -0.0f, 1.00390625f,
                            1.01171875f, -1.00390625f, 1.17e-38f, -1.1754942e-38f, 6.1e-39f, 1.0f,
                            // large enough that a subnormal times one of them is a normal product
                            4096.0f, -30000.0f};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    SCOPED_TRACE(std::string(sgemm_kernels()[GetParam()].name) + " trans_a=" + std::to_string(ta) +
                 " trans_b=" + std::to_string(tb));
    auto a = to_float(random_vec(size_t(M) * K, 11 + t));
    auto b = to_float(random_vec(size_t(K) * N, 17 + t));
    for (size_t i = 0; i < a.size(); i += 3) a[i] = specials[(i / 3) % std::size(specials)];
    for (size_t i = 1; i < b.size(); i += 4) b[i] = specials[(i / 4 + 5) % std::size(specials)];
    const int lda = ta ? M : K, ldb = tb ? K : N;
    auto op_a = [&](int i, int k) -> float& {
      return ta ? a[size_t(k) * lda + i] : a[size_t(i) * lda + k];
    };
    auto op_b = [&](int k, int j) -> float& {
      return tb ? b[size_t(j) * ldb + k] : b[size_t(k) * ldb + j];
    };
    // op(A) row 4 and op(B) column 7: the largest subnormals (0x007fffff, both signs), which
    // round to bf16's smallest normal; op(B) column 5 and op(A) row 6 large: products 4.8e-35
    for (int k = 0; k < K; ++k) {
      const float tiny = k % 3 ? 1.1754942e-38f : -1.1754942e-38f;
      op_a(4, k) = op_b(k, 7) = tiny;
      op_b(k, 5) = op_a(6, k) = 4096.0f;
    }
    // one value of op(A) in the block's row 2 that rounds up to bf16's infinity
    op_a(3, 7) = 3.3999e38f;
    const MatmulContext mm{MatmulPrecision::kBf16, GetParam()};
    std::vector<float> full(size_t(M) * N), block(size_t(m) * n);
    sgemm(mm, ta, tb, M, N, K, a.data(), lda, b.data(), ldb, 0.0f, full.data(), N);
    // the block's operands: rows 1..m of op(A), columns 1..n of op(B), in place (same strides)
    const float* a1 = a.data() + (ta ? 1 : size_t(lda));
    const float* b1 = b.data() + (tb ? size_t(ldb) : 1);
    sgemm(mm, ta, tb, m, n, K, a1, lda, b1, ldb, 0.0f, block.data(), n);
    int differ = 0, finite = 0;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        const float want = full[size_t(i + 1) * N + j + 1], got = block[size_t(i) * n + j];
        const bool same = bits(want) == bits(got) || (std::isnan(want) && std::isnan(got));
        if (!same && differ++ == 0)
          ADD_FAILURE() << "at " << i << "," << j << ": " << want << " vs " << got;
        finite += std::isfinite(got);
      }
    EXPECT_EQ(differ, 0);
    EXPECT_EQ(finite, (m - 1) * n);  // row 2 alone is infinite or NaN
  }
}

INSTANTIATE_TEST_SUITE_P(All, SgemmBf16Kernel, ::testing::ValuesIn(bf16_kernels()),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sgemm_kernels()[info.param].name);
                         });

// Through sgemm with kBf16 and no kernel named (what the model's matmuls call), the same bits as
// the chosen bf16 kernel named explicitly; close to kBf16Rounded (which sums in another order).
TEST(SgemmBf16, SgemmDispatchesToTheChosenBf16Kernel) {
  const int M = 30, N = 50, K = 70;
  const auto a = to_float(random_vec(size_t(M) * K, 1)), b = to_float(random_vec(size_t(N) * K, 2));
  std::vector<float> via_sgemm(size_t(M) * N), direct(size_t(M) * N), rounded(size_t(M) * N);
  sgemm(MatmulContext{MatmulPrecision::kBf16}, false, true, M, N, K, a.data(), K, b.data(), K, 0.0f,
        via_sgemm.data(), N);
  sgemm(MatmulContext{MatmulPrecision::kBf16Rounded}, false, true, M, N, K, a.data(), K, b.data(),
        K, 0.0f, rounded.data(), N);
  const int chosen = sgemm_chosen_kernel(MatmulPrecision::kBf16);
  ASSERT_TRUE(sgemm_kernel_computes(chosen, MatmulPrecision::kBf16));
  const std::string name = sgemm_kernels()[chosen].name;
  if (!bf16_self_check().empty()) {
    EXPECT_EQ(name, "bf16_portable_12x32");
  } else if (cpu_has_avx512_bf16() && !std::getenv("SKEIN_SGEMM_KERNEL")) {
    EXPECT_TRUE(name == "amx_bf16_32x32" || name == "avx512bf16_12x32") << name;
  }
  EXPECT_NE(sgemm_bf16_choice().find(name), std::string::npos) << sgemm_bf16_choice();
  // A hardware bf16 kernel's choice says how fast it is against the fp32 kernel on this CPU.
  const bool speed_said =
      sgemm_bf16_choice().find("x the speed of the fp32 kernel ") != std::string::npos;
  EXPECT_EQ(speed_said, name != "bf16_portable_12x32") << sgemm_bf16_choice();
  sgemm(MatmulContext{MatmulPrecision::kBf16, chosen}, false, true, M, N, K, a.data(), K, b.data(),
        K, 0.0f, direct.data(), N);
  EXPECT_EQ(via_sgemm, direct);
  EXPECT_LE(testing::rel_error(via_sgemm, rounded), 1e-5);
  EXPECT_GT(testing::rel_error(via_sgemm, rounded), 0.0);
}

// On a CPU with avx512_bf16 this runs the hardware kernel against the portable one; elsewhere it
// must say why it cannot.
TEST(SgemmBf16, SelfCheckPassesOnBf16CpusAndExplainsElsewhere) {
  const std::string verdict = bf16_self_check();
  if (cpu_has_avx512_bf16())
    EXPECT_EQ(verdict, "");
  else
    EXPECT_NE(verdict.find("no avx512_bf16"), std::string::npos) << verdict;
}

}  // namespace
}  // namespace skein
