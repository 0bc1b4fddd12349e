#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

using testing::random_vec;
using testing::to_float;

// What the cases run: the dispatching entry point (kernel = -1), the portable fallback (-2), or
// one fp32 kernel of the table, called directly (every one is tested around its own tile, not
// only the one the dispatcher picks; the bf16 family has gemm_bf16_test).
struct Impl {
  std::string name;
  int kernel;
  int mr, nr;  // the tile whose edges the sweep straddles
  void fn(MatmulPrecision p, bool ta, bool tb, int M, int N, int K, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc, const float* bias) const {
    const MatmulContext mm{p, kernel >= 0 ? kernel : -1};
    if (kernel == -2)
      return sgemm_portable(mm, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
    sgemm(mm, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  }
  void fn(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc, const float* bias) const {
    fn(MatmulPrecision::kFp32, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  }
};
std::vector<Impl> all_impls() {
  std::vector<Impl> v = {{"sgemm", -1, kSgemmMR, kSgemmNR},
                         {"sgemm_portable", -2, kSgemmMR, kSgemmNR}};
  const auto kernels = sgemm_kernels();
  for (int i = 0; i < int(kernels.size()); ++i)
    if (kernels[i].family == MatmulPrecision::kFp32)
      v.push_back({kernels[i].name, i, kernels[i].mr, kernels[i].nr});
  return v;
}
std::vector<Impl> runnable_impls() {
  std::vector<Impl> v;
  for (const Impl& i : all_impls())
    if (i.kernel < 0 || sgemm_kernels()[i.kernel].supported()) v.push_back(i);
  return v;
}
// A kernel this CPU cannot run is reported as skipped, with the reason.
#define SKIP_UNLESS_RUNNABLE(impl)                                       \
  if ((impl).kernel >= 0 && !sgemm_kernels()[(impl).kernel].supported()) \
  GTEST_SKIP() << (impl).name << ": this CPU has no " << sgemm_kernels()[(impl).kernel].needs

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
  SCOPED_TRACE(impl.name + " " + describe(c, trans_a, trans_b, beta));
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
  SKIP_UNLESS_RUNNABLE(impl);
  const int MR = impl.mr, NR = impl.nr;
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
  SKIP_UNLESS_RUNNABLE(impl);
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
  SKIP_UNLESS_RUNNABLE(impl);
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
  for (const Impl& impl : all_impls())
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f}) ps.push_back({impl, ta, tb, beta});
  return ps;
}
INSTANTIATE_TEST_SUITE_P(All, SgemmTest, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           const Param& p = info.param;
                           return p.impl.name + (p.trans_a ? "_At" : "_A") +
                                  (p.trans_b ? "_Bt" : "_B") + "_beta" +
                                  std::to_string(int(p.beta));
                         });

TEST(Sgemm, RunsAKernelOfTheTableThatThisCpuRuns) {
  const std::string path = sgemm_path();
  bool any = false, found = false;
  for (const SgemmKernel& k : sgemm_kernels()) {
    if (k.family != MatmulPrecision::kFp32) continue;
    any |= k.supported();
    found |= path == k.name && k.supported();
  }
  EXPECT_EQ(found, any) << path;
  if (!any) {
    EXPECT_EQ(path, "portable");
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  EXPECT_EQ(sgemm_kernels()[0].supported(),
            __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  EXPECT_EQ(sgemm_kernels()[1].supported(), __builtin_cpu_supports("avx2") &&
                                                __builtin_cpu_supports("fma") &&
                                                __builtin_cpu_supports("avx512f"));
  EXPECT_EQ(sgemm_kernels()[2].supported(), bool(__builtin_cpu_supports("avx512bf16")));
#endif
  EXPECT_TRUE(sgemm_kernels()[3].supported());  // bf16_portable_12x32 runs anywhere
  // under kBf16: a hardware kernel (AMX, vdpbf16ps) where one passes its check, else the twin
  const int bf16 = sgemm_chosen_kernel(MatmulPrecision::kBf16);
  EXPECT_EQ(sgemm_kernels()[bf16].family, MatmulPrecision::kBf16);
  EXPECT_EQ(bf16 == 3, !bf16_self_check().empty());
  EXPECT_NE(sgemm_choice().find(path), std::string::npos) << sgemm_choice();
}

// Every kernel sums in the same order: all give the same bits as the first, on shapes that
// cross every tile and block edge, with every transpose, C and bias, in fp32 and with the bf16
// rounding of BF16_EMULATED; so a run gives the same bits whichever kernel its CPU picks.
TEST(Sgemm, EveryKernelGivesTheSameBits) {
  const auto kernels = sgemm_kernels();
  auto runs = [&](int i) {
    return kernels[i].family == MatmulPrecision::kFp32 && kernels[i].supported();
  };
  int runnable = 0;
  for (int i = 0; i < int(kernels.size()); ++i) runnable += runs(i);
  if (runnable < 2) GTEST_SKIP() << "fewer than two fp32 kernels run on this CPU";
  struct Shape {
    int M, N, K;
  };
  // {45, 193, KC + 9}: a few rows times a wide operand over deep K, which the AVX-512 kernel
  // computes transposed (C^T = op(B)^T op(A)^T) where op(B) is a transposed weight; full and
  // edge tiles both ways
  for (const Shape sh :
       {Shape{13, 35, 17}, Shape{kSgemmMC + 13, 70, kSgemmKC + 9}, Shape{25, kSgemmNC + 33, 40},
        Shape{45, 193, kSgemmKC + 9}, Shape{1, 1, 1}})
    for (int t = 0; t < 4; ++t)
      for (MatmulPrecision prec : {MatmulPrecision::kFp32, MatmulPrecision::kBf16Rounded}) {
        const bool ta = t & 1, tb = t & 2;
        const int lda = ta ? sh.M : sh.K, ldb = tb ? sh.K : sh.N;
        const auto a = to_float(random_vec(size_t(sh.M) * sh.K, 11));
        const auto b = to_float(random_vec(size_t(sh.K) * sh.N, 12));
        const auto bias = to_float(random_vec(sh.N, 13));
        const auto c0 = to_float(random_vec(size_t(sh.M) * sh.N, 14));
        std::vector<float> first;
        for (int i = 0; i < int(kernels.size()); ++i) {
          if (!runs(i)) continue;
          std::vector<float> c = c0;
          sgemm(MatmulContext{prec, i}, ta, tb, sh.M, sh.N, sh.K, a.data(), lda, b.data(), ldb,
                1.0f, c.data(), sh.N, bias.data());
          if (first.empty()) {
            first = c;
            continue;
          }
          EXPECT_EQ(0, std::memcmp(first.data(), c.data(), c.size() * sizeof(float)))
              << kernels[i].name << " M=" << sh.M << " N=" << sh.N << " K=" << sh.K << " ta=" << ta
              << " tb=" << tb << " rounded=" << (prec != MatmulPrecision::kFp32);
        }
      }
}

// The contract threads sharing a replica rely on (sgemm_runs_blocked): every kernel of the
// blocked driver gives a product's bits when it is computed in pieces of output columns (cut at
// multiples of 32) or rows (of 96), with beta 1 and a bias, over several K blocks.
TEST(Sgemm, PiecesOfAProductGiveTheWholeProductsBits) {
  const auto kernels = sgemm_kernels();
  const int M = 2 * 96 + 37, N = 3 * 32 + 21, K = kSgemmKC + 70;
  const auto a = to_float(random_vec(size_t(M) * K, 21));
  const auto b = to_float(random_vec(size_t(K) * N, 22));
  const auto bias = to_float(random_vec(N, 23));
  const auto c0 = to_float(random_vec(size_t(M) * N, 24));
  int tested = 0;
  for (int i = 0; i < int(kernels.size()); ++i) {
    if (!kernels[i].supported()) continue;
    const MatmulContext mm{kernels[i].family, i};
    EXPECT_TRUE(sgemm_runs_blocked(mm)) << kernels[i].name;
    ++tested;
    std::vector<float> whole = c0, cols = c0, rows = c0;
    sgemm(mm, false, false, M, N, K, a.data(), K, b.data(), N, 1.0f, whole.data(), N, bias.data());
    for (int j0 = 0; j0 < N; j0 += 32) {
      const int n = std::min(32, N - j0);
      sgemm(mm, false, false, M, n, K, a.data(), K, b.data() + j0, N, 1.0f, cols.data() + j0, N,
            bias.data() + j0);
    }
    for (int r0 = 0; r0 < M; r0 += 96) {
      const int m = std::min(96, M - r0);
      sgemm(mm, false, false, m, N, K, a.data() + size_t(r0) * K, K, b.data(), N, 1.0f,
            rows.data() + size_t(r0) * N, N, bias.data());
    }
    EXPECT_EQ(0, std::memcmp(whole.data(), cols.data(), whole.size() * sizeof(float)))
        << kernels[i].name << ": columns";
    EXPECT_EQ(0, std::memcmp(whole.data(), rows.data(), whole.size() * sizeof(float)))
        << kernels[i].name << ": rows";
  }
  EXPECT_GT(tested, 0);
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

// ---- MatmulPrecision::kBf16Rounded ----

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

TEST(RoundToBf16, NearestEvenAndSpecialValues) {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);  // a bf16 ulp at 1 (8 significant bits)
  EXPECT_EQ(round_to_bf16(one), one);
  EXPECT_EQ(round_to_bf16(-1.5f), -1.5f);
  EXPECT_EQ(round_to_bf16(one + ulp), one + ulp);              // representable
  EXPECT_EQ(round_to_bf16(one + ulp / 2), one);                // tie, to even (1)
  EXPECT_EQ(round_to_bf16(one + 3 * ulp / 2), one + 2 * ulp);  // tie, to even (1+2u)
  EXPECT_EQ(round_to_bf16(one + ulp / 2 + std::ldexp(1.0f, -20)), one + ulp);  // above the tie
  EXPECT_EQ(round_to_bf16(one + ulp / 2 - std::ldexp(1.0f, -20)), one);        // below the tie
  EXPECT_EQ(round_to_bf16(-(one + ulp / 2 + std::ldexp(1.0f, -20))), -(one + ulp));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::max()), inf);  // rounds past bf16's max
  EXPECT_EQ(round_to_bf16(inf), inf);
  EXPECT_EQ(round_to_bf16(-inf), -inf);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  // a NaN whose payload sits only in the low half must not turn into an infinity
  float low_nan;
  const uint32_t low_nan_bits = 0x7f800001u;
  std::memcpy(&low_nan, &low_nan_bits, sizeof low_nan);
  EXPECT_TRUE(std::isnan(round_to_bf16(low_nan)));
  EXPECT_EQ(bits(round_to_bf16(-0.0f)), bits(-0.0f));
  // every result has its low 16 bits clear, and is within half a bf16 ulp of the input
  const auto v = to_float(random_vec(1000, 7, 100.0));
  for (float x : v) {
    const float r = round_to_bf16(x);
    EXPECT_EQ(bits(r) & 0xffffu, 0u);
    EXPECT_LE(std::abs(r - x), std::ldexp(std::abs(x), -8) * 1.0001f) << x;
  }
}

// The precision is the caller's argument, not a property of the thread: two threads asking for
// different precisions at the same time each get what they asked for, as they do alone.
TEST(MatmulPrecision, EachCallComputesWhatItsContextSays) {
  const int M = 40, N = 50, K = 60;
  const auto a = to_float(random_vec(size_t(M) * K, 3)), b = to_float(random_vec(size_t(K) * N, 4));
  auto run = [&](MatmulPrecision p, std::vector<float>& out) {
    out.assign(size_t(M) * N, 0.0f);
    for (int rep = 0; rep < 20; ++rep)
      sgemm(MatmulContext{p}, false, false, M, N, K, a.data(), K, b.data(), N, 0.0f, out.data(), N);
  };
  std::vector<float> fp32, rounded, fp32_together, rounded_together;
  run(MatmulPrecision::kFp32, fp32);
  run(MatmulPrecision::kBf16Rounded, rounded);
  EXPECT_GT(testing::rel_error(rounded, fp32), 1e-4);  // they do differ
  std::thread t1([&] { run(MatmulPrecision::kFp32, fp32_together); });
  std::thread t2([&] { run(MatmulPrecision::kBf16Rounded, rounded_together); });
  t1.join();
  t2.join();
  EXPECT_EQ(fp32_together, fp32);
  EXPECT_EQ(rounded_together, rounded);
  // a kernel of the other family is refused, not silently run
  for (int i = 0; i < int(sgemm_kernels().size()); ++i) {
    EXPECT_EQ(sgemm_kernel_computes(i, MatmulPrecision::kBf16),
              sgemm_kernels()[i].family == MatmulPrecision::kBf16);
    EXPECT_EQ(sgemm_kernel_computes(i, MatmulPrecision::kBf16Rounded),
              sgemm_kernels()[i].family == MatmulPrecision::kFp32);
  }
}

// Under kBf16Rounded, every path gives exactly (bit for bit) what it gives in fp32 on operands
// rounded beforehand: the rounding happens to every element of op(A) and op(B), in every packing
// branch (vector and edge), and to nothing else (C and the bias stay fp32).
TEST(MatmulPrecision, Bf16RoundedIsTheFp32ProductOfRoundedOperands) {
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{1, 1, 1},
                          {5, 17, 9},
                          {6, 16, 8},
                          {13, 35, 257},
                          {7, 33, 40},
                          {145, 70, 19},
                          {12, kSgemmNC + 3, 24}};
  for (const Impl& impl : runnable_impls())
    for (const Shape& sh : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (float beta : {0.0f, 1.0f}) {
            const int M = sh.M, N = sh.N, K = sh.K;
            SCOPED_TRACE(impl.name + " " + describe({M, N, K, 1, true}, ta, tb, beta));
            const int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 1, ldc = N;
            const uint64_t seed = uint64_t(M) * 31 + N * 7 + K;
            const auto a = to_float(random_vec(size_t(ta ? K : M) * lda, seed));
            const auto b = to_float(random_vec(size_t(tb ? N : K) * ldb, seed + 1));
            const auto bias = to_float(random_vec(N, seed + 2));
            const auto c0 = to_float(random_vec(size_t(M) * N, seed + 3));
            std::vector<float> ar(a.size()), br(b.size());
            std::transform(a.begin(), a.end(), ar.begin(), round_to_bf16);
            std::transform(b.begin(), b.end(), br.begin(), round_to_bf16);
            std::vector<float> got = c0, want = c0, fp32 = c0;
            impl.fn(MatmulPrecision::kBf16Rounded, ta, tb, M, N, K, a.data(), lda, b.data(), ldb,
                    beta, got.data(), ldc, bias.data());
            impl.fn(ta, tb, M, N, K, ar.data(), lda, br.data(), ldb, beta, want.data(), ldc,
                    bias.data());
            impl.fn(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, beta, fp32.data(), ldc,
                    bias.data());
            int differ = 0;
            for (size_t i = 0; i < got.size(); ++i) differ += bits(got[i]) != bits(want[i]);
            EXPECT_EQ(differ, 0);
            // and the rounding is real: bf16's 8 bits move the result by ~1e-3 relative
            if (K >= 8) {
              EXPECT_GT(testing::rel_error(got, fp32), 1e-4);
            }
          }
}

// Special values through both packing directions of op(B) (rows contiguous: vector stores;
// columns contiguous: transposed) and of op(A): C = 1 * round(x) shows each rounded element.
// (Not -0: the sum starts at +0, and +0 + -0 = +0.)
TEST(MatmulPrecision, Bf16RoundedPacksSpecialValuesLikeTheScalarRounding) {
  const float inf = std::numeric_limits<float>::infinity();
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);
  std::vector<float> x = {one,
                          one + ulp / 2,
                          one + 3 * ulp / 2,
                          std::numeric_limits<float>::max(),
                          inf,
                          -inf,
                          -3e-39f,
                          std::numeric_limits<float>::quiet_NaN(),
                          1e-3f,
                          -7.77f,
                          3.14159f,
                          1e30f,
                          -2.5e-20f,
                          65504.7f,
                          0.1f,
                          -0.3f};
  const auto more = to_float(random_vec(21, 9));  // 37 values: full panels and an edge
  x.insert(x.end(), more.begin(), more.end());
  const int n = int(x.size());
  const float unit = 1.0f;
  for (const Impl& impl : runnable_impls())
    for (bool tb : {false, true})
      for (bool along_m : {false, true}) {
        SCOPED_TRACE(impl.name + (along_m ? " values in A" : " values in B") +
                     (tb ? " transposed" : ""));
        std::vector<float> c(n, 0.0f);
        const MatmulPrecision bf16 = MatmulPrecision::kBf16Rounded;
        if (along_m)  // A (n,1) or A^T stored (1,n), B = [1]: C (n,1) = round(x)
          impl.fn(bf16, tb, false, n, 1, 1, x.data(), tb ? n : 1, &unit, 1, 0.0f, c.data(), 1,
                  nullptr);
        else  // A = [1], B (1,n) or B^T stored (n,1): C (1,n) = round(x)
          impl.fn(bf16, false, tb, 1, n, 1, &unit, 1, x.data(), tb ? 1 : n, 0.0f, c.data(), n,
                  nullptr);
        for (int i = 0; i < n; ++i) {
          const float want = round_to_bf16(x[i]);
          if (std::isnan(want))
            EXPECT_TRUE(std::isnan(c[i])) << i;
          else
            EXPECT_EQ(bits(c[i]), bits(want)) << i << ": " << x[i];
        }
      }
}

}  // namespace
}  // namespace skein
