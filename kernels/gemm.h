// Single-precision matrix product (GEMM) on one thread, for the linear layers and attention.
// All matrices are row-major with leading dimensions (the distance between rows, in floats), so
// a matrix may be a strided view inside a larger one (e.g. one head inside qkv, ld = 3C).
//   op(A) (M,K): A itself, stored (M,K) with lda >= K, or A^T when trans_a, stored (K,M), lda >= M
//   op(B) (K,N): B itself, stored (K,N) with ldb >= N, or B^T when trans_b, stored (N,K), ldb >= K
//   C (M,N), ldc >= N
// No allocation (packing buffers are fixed-size and thread_local), no threads inside: callers
// run it from many threads at once.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace skein {

// Block sizes of the AVX2 path (gemm.cc says why these): microkernel tile kSgemmMR x kSgemmNR,
// cache blocks of K, M and N. Public so that the tests can sweep sizes around them.
inline constexpr int kSgemmMR = 6;
inline constexpr int kSgemmNR = 16;
inline constexpr int kSgemmKC = 256;
inline constexpr int kSgemmMC = 144;
inline constexpr int kSgemmNC = 1536;
// Microkernel tile of sgemm_bf16 (gemm_bf16.cc).
inline constexpr int kSgemmBf16MR = 12;
inline constexpr int kSgemmBf16NR = 32;

// C (M,N) = beta * C + op(A) (M,K) @ op(B) (K,N) [+ bias (N) added to every row of C].
// beta is 0 or 1; with beta 0, C is never read (it may hold garbage or NaN). bias may be nullptr.
// Any M, N, K >= 0; K = 0 gives C = beta * C (+ bias). C must not overlap A, B or bias.
// Runs the AVX2+FMA kernel where the CPU has it (checked once), else sgemm_portable.
void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
           int ldb, float beta, float* C, int ldc, const float* bias = nullptr);

// The same contract, computed by Eigen: the fallback for CPUs without AVX2/FMA, the benchmark's
// baseline, and a second oracle in the tests.
void sgemm_portable(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc,
                    const float* bias = nullptr);

// The fp32 microkernels that sgemm's blocked driver runs (gemm.cc), in one table for the
// dispatcher, the tests (each kernel this CPU runs, around its own tile) and bench_kernels.
// Every kernel sums each element of C in the same order, so all give the same bits.
struct SgemmKernel {
  const char* name;     // "avx2_6x16", "avx512_12x32"
  int mr, nr;           // the microkernel's tile
  bool (*supported)();  // whether this CPU runs it
  const char* needs;    // what it needs, for "skipped: this CPU has no ..."
};
std::span<const SgemmKernel> sgemm_kernels();

// sgemm on sgemm_kernels()[index], which this CPU must run (MatmulPrecision as in sgemm, except
// kBf16, which is sgemm_bf16's).
void sgemm_with_kernel(int index, bool trans_a, bool trans_b, int M, int N, int K, const float* A,
                       int lda, const float* B, int ldb, float beta, float* C, int ldc,
                       const float* bias = nullptr);

// The kernel sgemm runs on this CPU ("avx2_6x16", "avx512_12x32", or "portable" for Eigen),
// chosen once: SKEIN_SGEMM_KERNEL=name if set, else the fastest in a few-ms timing at the first
// product; sgemm_choice() says which and why.
const char* sgemm_path();
std::string sgemm_choice();

// The arithmetic of sgemm's products (sgemm and sgemm_portable alike) on the calling thread.
enum class MatmulPrecision {
  kFp32,  // fp32 operands, products and sums
  // Every element of op(A) and op(B) rounded to bf16 (round_to_bf16) as it is packed; products
  // (exact in fp32) and sums in fp32; C, beta * C and the bias stay fp32. The numerics of a bf16
  // matmul with fp32 accumulation (vdpbf16ps), computed with fp32 instructions on any CPU: to
  // check a model's accuracy in bf16, not faster than kFp32.
  kBf16Rounded,
  // bf16 operands, fp32 accumulation with vdpbf16ps's arithmetic: sgemm runs sgemm_bf16, on the
  // AVX-512 BF16 kernel where the CPU has it and it passes bf16_self_check(), else on its
  // portable twin (slow: tests). sgemm_portable treats it as kBf16Rounded.
  kBf16,
};
MatmulPrecision matmul_precision();  // of the calling thread; kFp32 unless a scope set it

// Sets the calling thread's MatmulPrecision for its lifetime, then restores the previous one.
class ScopedMatmulPrecision {
 public:
  explicit ScopedMatmulPrecision(MatmulPrecision p);
  ~ScopedMatmulPrecision();
  ScopedMatmulPrecision(const ScopedMatmulPrecision&) = delete;
  ScopedMatmulPrecision& operator=(const ScopedMatmulPrecision&) = delete;

 private:
  MatmulPrecision previous_;
};

// x rounded to the nearest bfloat16 (8 significant bits, ties to even), returned as the float
// of that value (its low 16 bits zero). Infinities stay, a NaN stays a (quiet) NaN, values
// that round past the largest bf16 become infinities. Subnormals round like any other value
// (vdpbf16ps would flush them to zero: a difference below 1e-38).
// (Inline: the packing's scalar edges call it per element.)
inline float round_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    u = (u | 0x00400000u) & 0xffff0000u;  // NaN: quiet, high half kept
  } else {
    // add just under half a bf16 ulp, plus one when the kept part is odd (ties to even); an
    // overflow of the mantissa carries into the exponent, up to infinity
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  }
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// Whether the CPU has the AVX-512 bf16 instructions (vdpbf16ps).
bool cpu_has_avx512_bf16();

// sgemm's contract computed as vdpbf16ps computes: every element of op(A) and op(B) rounded to
// bf16 (round_to_bf16); along K, pairs (k even, k + 1) are multiplied (exactly, in fp32) and
// added to an fp32 sum, the odd product first, each addition rounded; K is cut into blocks of at
// most 256 (a partial sum per block, added to C). hardware: the AVX-512 BF16 kernel (the CPU
// must have it); false: the same arithmetic in portable code (slow: for tests and checks), except
// that the instruction also flushes subnormal inputs and results to zero.
void sgemm_bf16(bool hardware, bool trans_a, bool trans_b, int M, int N, int K, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc,
                const float* bias = nullptr);

// Runs sgemm_bf16's hardware kernel against its portable twin on awkward shapes, once per
// process. "" when they agree; else why not (no avx512_bf16 on this CPU, or the largest
// difference found), so that callers can fall back to fp32.
std::string bf16_self_check();

// The same contract in double, on Eigen: for the double builds of the kernels, which the
// finite-difference tests check.
void dgemm(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
           const double* B, int ldb, double beta, double* C, int ldc, const double* bias = nullptr);

// gemm: sgemm for float, dgemm for double, so a kernel templated on F writes its products once.
inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc,
                 const float* bias = nullptr) {
  sgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}
inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
                 const double* B, int ldb, double beta, double* C, int ldc,
                 const double* bias = nullptr) {
  dgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

}  // namespace skein
