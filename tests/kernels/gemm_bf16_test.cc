// sgemm_bf16 (MatmulPrecision::kBf16): its portable kernel, which runs on every CPU, against an
// independent model of vdpbf16ps's arithmetic, bit for bit; and, on CPUs with avx512_bf16, the
// hardware kernel against the portable one (bf16_self_check).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// What gemm.h promises, element by element: K in equal even blocks of at most 256; in a block,
// per pair of k, sum += odd product, then sum += even product, on bf16-rounded operands (a
// missing odd k counts as 0); the block's sum, then C (the caller's with beta 1 in the first
// block, the running result after), then the bias in the first block.
void check_case(const Case& c) {
  SCOPED_TRACE(describe(c));
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
  const int blocks = std::max(1, (K + 255) / 256);
  const int step = ((K + blocks - 1) / blocks + 1) / 2 * 2;
  std::vector<float> want(size_t(M) * ldc), got = c0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float v = c.beta != 0 ? c0[size_t(i) * ldc + j] : 0.0f;
      if (K == 0) v = v + (c.bias ? bias[j] : 0.0f);
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
  sgemm_bf16(false, c.trans_a, c.trans_b, M, N, K, a.data(), lda, b.data(), ldb, c.beta, got.data(),
             ldc, c.bias ? bias.data() : nullptr);
  int differ = 0, pad_touched = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j)
      differ += bits(got[size_t(i) * ldc + j]) != bits(want[size_t(i) * ldc + j]);
    for (int j = N; j < ldc; ++j)
      pad_touched += got[size_t(i) * ldc + j] != c0[size_t(i) * ldc + j];
  }
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(pad_touched, 0);
}

TEST(SgemmBf16, PortableKernelIsVdpbf16psArithmeticAroundTheTile) {
  const int MR = kSgemmBf16MR, NR = kSgemmBf16NR;
  int n_case = 0;
  for (int m : {1, 5, MR - 1, MR, MR + 1, 2 * MR + 1})
    for (int n : {1, 7, NR - 1, NR, NR + 1, 2 * NR + 3})
      for (int k : {1, 2, 3, 15, 16, 17, 34, 47})
        for (int t = 0; t < 4; ++t) {
          ++n_case;
          check_case({m, n, k, bool(t & 1), bool(t & 2), float((m + n + k) % 2),
                      (m + k + t) % 3 != 0, (n + t) % 3});
        }
  EXPECT_EQ(n_case, 6 * 6 * 8 * 4);
}

TEST(SgemmBf16, PortableKernelIsVdpbf16psArithmeticAcrossBlocks) {
  // K blocks (256, and uneven: 257 -> 2 x 130, 513 -> 3 x 172), M past 144, N past 1536
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int k : {255, 256, 257, 513}) check_case({14, 45, k, ta, tb, 1.0f, true, 1});
    check_case({145, 33, 40, ta, tb, 0.0f, true, 2});
    check_case({13, 1537, 20, ta, tb, 1.0f, false, 0});
    check_case({5, 9, 0, ta, tb, 1.0f, true, 1});  // K = 0: C = beta C + bias
  }
}

// Through sgemm under a kBf16 scope (what the model's matmuls call), the same bits as
// sgemm_bf16 on this CPU's kernel; close to kBf16Rounded (which sums in another order).
TEST(SgemmBf16, SgemmDispatchesToItUnderKbf16) {
  const int M = 30, N = 50, K = 70;
  const auto a = to_float(random_vec(size_t(M) * K, 1)), b = to_float(random_vec(size_t(N) * K, 2));
  std::vector<float> via_sgemm(size_t(M) * N), direct(size_t(M) * N), rounded(size_t(M) * N);
  {
    ScopedMatmulPrecision p(MatmulPrecision::kBf16);
    sgemm(false, true, M, N, K, a.data(), K, b.data(), K, 0.0f, via_sgemm.data(), N);
  }
  {
    ScopedMatmulPrecision p(MatmulPrecision::kBf16Rounded);
    sgemm(false, true, M, N, K, a.data(), K, b.data(), K, 0.0f, rounded.data(), N);
  }
  sgemm_bf16(bf16_self_check().empty(), false, true, M, N, K, a.data(), K, b.data(), K, 0.0f,
             direct.data(), N);
  EXPECT_EQ(via_sgemm, direct);
  EXPECT_LE(testing::rel_error(via_sgemm, rounded), 1e-5);
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
