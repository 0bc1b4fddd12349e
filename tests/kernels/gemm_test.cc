#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::random_vec;
using testing::to_float;

using SgemmFn = void (*)(bool, bool, int, int, int, const float*, int, const float*, int, float,
                         float*, int, const float*);
struct Impl {
  const char* name;
  SgemmFn fn;
};
// Every implementation runs the same cases: the dispatching entry point (the AVX2 kernel on this
// CPU where it has AVX2+FMA) and the portable fallback, called directly.
const Impl kImpls[] = {{"sgemm", sgemm}, {"sgemm_portable", sgemm_portable}};

struct Case {
  int M, N, K;
  int pad = 0;  // added to each leading dimension beyond its minimum
  bool bias = false;
};

std::string describe(const Case& c, bool trans_a, bool trans_b, float beta) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " pad=" + std::to_string(c.pad) + " bias=" + std::to_string(c.bias) +
         " trans_a=" + std::to_string(trans_a) + " trans_b=" + std::to_string(trans_b) +
         " beta=" + std::to_string(int(beta));
}

// Runs one case against a naive triple loop in double. C's padding columns hold a sentinel that
// must survive; with beta 0, C starts as NaN, so reading it would poison the result.
void run_case(const Impl& impl, const Case& c, bool trans_a, bool trans_b, float beta) {
  SCOPED_TRACE(std::string(impl.name) + " " + describe(c, trans_a, trans_b, beta));
  const int M = c.M, N = c.N, K = c.K;
  // BLAS convention: a leading dimension is at least 1, even for an empty matrix
  const int lda = std::max(1, trans_a ? M : K) + c.pad;
  const int ldb = std::max(1, trans_b ? K : N) + c.pad, ldc = std::max(1, N) + c.pad;
  const auto a = to_float(random_vec(size_t(trans_a ? K : M) * lda, 1));
  const auto b = to_float(random_vec(size_t(trans_b ? N : K) * ldb, 2));
  const auto bias = to_float(random_vec(N, 3));
  const float sentinel = 12345.0f;
  std::vector<float> out(size_t(M) * ldc, sentinel);
  const auto c0 = random_vec(size_t(M) * N, 4);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j)
      out[size_t(i) * ldc + j] =
          beta != 0 ? float(c0[size_t(i) * N + j]) : std::numeric_limits<float>::quiet_NaN();

  std::vector<double> expect(size_t(M) * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = beta != 0 ? double(float(c0[size_t(i) * N + j])) : 0.0;
      for (int p = 0; p < K; ++p) {
        const double av = trans_a ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
        const double bv = trans_b ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
        s += av * bv;
      }
      expect[size_t(i) * N + j] = s + (c.bias ? double(bias[j]) : 0.0);
    }

  impl.fn(trans_a, trans_b, M, N, K, a.data(), lda, b.data(), ldb, beta, out.data(), ldc,
          c.bias ? bias.data() : nullptr);

  std::vector<float> got(size_t(M) * N);
  int bad_pad = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) got[size_t(i) * N + j] = out[size_t(i) * ldc + j];
    for (int j = N; j < ldc; ++j) bad_pad += out[size_t(i) * ldc + j] != sentinel;
  }
  EXPECT_EQ(bad_pad, 0) << "wrote into C's padding";
  EXPECT_LE(testing::rel_error(got, expect), 1e-5);
}

struct Param {
  Impl impl;
  bool trans_a, trans_b;
  float beta;
};
class SgemmTest : public ::testing::TestWithParam<Param> {};

// Sizes around the microkernel tile: equal, one below, one above, multiples, odd, 1.
TEST_P(SgemmTest, SmallSizesAroundTheTile) {
  const auto [impl, ta, tb, beta] = GetParam();
  const int MR = kSgemmMR, NR = kSgemmNR;
  const int ms[] = {1, 2, MR - 1, MR, MR + 1, 2 * MR, 2 * MR + 1, 4 * MR + 5};
  const int ns[] = {1, 3, NR - 1, NR, NR + 1, 2 * NR, 2 * NR + 7, 3 * NR + 1};
  const int ks[] = {1, 2, 7, 16, 33};
  for (int m : ms)
    for (int n : ns)
      for (int k : ks) {
        // vary padding and bias along the sweep rather than multiplying the cases
        const int pad = (m + n + k) % 3 == 0 ? 0 : (m + n) % 5 + 1;
        run_case(impl, {m, n, k, pad, (m + k) % 2 == 0}, ta, tb, beta);
      }
}

// Sizes around the cache blocks: K = KC +- 1 and 2 KC + 1, M = MC +- 1, N = NC +- 1.
TEST_P(SgemmTest, SizesAroundTheCacheBlocks) {
  const auto [impl, ta, tb, beta] = GetParam();
  const int KC = kSgemmKC, MC = kSgemmMC, NC = kSgemmNC;
  for (int k : {KC - 1, KC, KC + 1, 2 * KC + 1}) run_case(impl, {13, 35, k, 2, true}, ta, tb, beta);
  for (int m : {MC - 1, MC, MC + 1, 2 * MC + 5})
    run_case(impl, {m, 17, 19, 1, false}, ta, tb, beta);
  for (int n : {NC - 1, NC + 1}) run_case(impl, {7, n, 11, 3, true}, ta, tb, beta);
  // all three blocks crossed at once, with edge tiles in both directions
  run_case(impl, {MC + 1, NC + 1, KC + 1, 1, true}, ta, tb, beta);
}

TEST_P(SgemmTest, EmptyAndZeroK) {
  const auto [impl, ta, tb, beta] = GetParam();
  run_case(impl, {5, 9, 0, 1, false}, ta, tb, beta);  // C = beta * C
  run_case(impl, {5, 9, 0, 0, true}, ta, tb, beta);   // C = beta * C + bias
  // M = 0 or N = 0: nothing to write and nothing to read
  float c = 7.0f;
  impl.fn(ta, tb, 0, 1, 3, nullptr, 3, nullptr, 3, beta, &c, 1, nullptr);
  impl.fn(ta, tb, 1, 0, 3, nullptr, 3, nullptr, 3, beta, &c, 1, nullptr);
  EXPECT_EQ(c, 7.0f);
}

std::vector<Param> all_params() {
  std::vector<Param> ps;
  for (const Impl& impl : kImpls)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f}) ps.push_back({impl, ta, tb, beta});
  return ps;
}
INSTANTIATE_TEST_SUITE_P(All, SgemmTest, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           const Param& p = info.param;
                           return std::string(p.impl.name) + (p.trans_a ? "_At" : "_A") +
                                  (p.trans_b ? "_Bt" : "_B") + "_beta" +
                                  std::to_string(int(p.beta));
                         });

TEST(Sgemm, UsesAvx2WhereTheCpuHasIt) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  EXPECT_STREQ(sgemm_path(), has ? "avx2" : "portable");
#else
  EXPECT_STREQ(sgemm_path(), "portable");
#endif
}

// Two threads multiplying different matrices at the same time must not share packing buffers:
// each must get exactly what it gets alone.
TEST(Sgemm, ConcurrentCallsAreIndependent) {
  const int M = 150, N = 70, K = 300;
  auto run = [&](uint64_t seed, std::vector<float>& out) {
    const auto a = to_float(random_vec(size_t(M) * K, seed));
    const auto b = to_float(random_vec(size_t(K) * N, seed + 1));
    out.assign(size_t(M) * N, 0.0f);
    for (int rep = 0; rep < 20; ++rep)
      sgemm(false, false, M, N, K, a.data(), K, b.data(), N, 0.0f, out.data(), N);
  };
  std::vector<float> alone1, alone2, together1, together2;
  run(10, alone1);
  run(20, alone2);
  std::thread t1([&] { run(10, together1); });
  std::thread t2([&] { run(20, together2); });
  t1.join();
  t2.join();
  EXPECT_EQ(together1, alone1);
  EXPECT_EQ(together2, alone2);
}

// The portable path and the AVX2 path agree with each other too (a second oracle in float).
TEST(Sgemm, MatchesPortableAtATrainingShape) {
  const int M = 64, N = 384, K = 384;  // a slice of the char config's attn_proj forward
  const auto x = to_float(random_vec(size_t(M) * K, 5)), w = to_float(random_vec(size_t(N) * K, 6));
  std::vector<float> fast(size_t(M) * N), slow(size_t(M) * N);
  sgemm(false, true, M, N, K, x.data(), K, w.data(), K, 0.0f, fast.data(), N);
  sgemm_portable(false, true, M, N, K, x.data(), K, w.data(), K, 0.0f, slow.data(), N);
  EXPECT_LE(testing::rel_error(fast, slow), 1e-5);
}

}  // namespace
}  // namespace skein
