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

// Block sizes of the driver (gemm_driver.h says why these), the same for every kernel: the
// avx2_6x16 tile kSgemmMR x kSgemmNR, cache blocks of K, M and N. Public so that the tests can
// sweep sizes around them.
inline constexpr int kSgemmMR = 6;
inline constexpr int kSgemmNR = 16;
inline constexpr int kSgemmKC = 384;
inline constexpr int kSgemmMC = 192;
inline constexpr int kSgemmNC = 1536;
// The tile of the AVX-512 kernels (avx512_12x32, and both bf16 kernels).
inline constexpr int kSgemmBf16MR = 12;
inline constexpr int kSgemmBf16NR = 32;

// The arithmetic of a product.
enum class MatmulPrecision {
  kFp32,  // fp32 operands, products and sums
  // Every element of op(A) and op(B) rounded to bf16 (round_to_bf16) as it is packed; products
  // (exact in fp32) and sums in fp32; C, beta * C and the bias stay fp32. The numerics of a bf16
  // matmul with fp32 accumulation (vdpbf16ps), computed by the fp32 kernels on any CPU: to
  // check a model's accuracy in bf16, not faster than kFp32.
  kBf16Rounded,
  // bf16 operands, fp32 accumulation (kBf16's contract below): the AMX or the AVX-512 BF16
  // kernel where the CPU has one and it passes its check, else the portable twin (slow: tests).
  // sgemm_portable treats it as kBf16Rounded.
  kBf16,
};

// What a product computes and where: every caller passes one (no thread or global state), so a
// thread computes exactly what its caller asked for.
struct MatmulContext {
  MatmulPrecision precision = MatmulPrecision::kFp32;
  // An index into sgemm_kernels() (a kernel this CPU runs, of the precision's family), or -1:
  // the kernel chosen at start-up for the precision (sgemm_choice()).
  int kernel = -1;
};

// C (M,N) = beta * C + op(A) (M,K) @ op(B) (K,N) [+ bias (N) added to every row of C].
// beta is 0 or 1; with beta 0, C is never read (it may hold garbage or NaN). bias may be nullptr.
// Any M, N, K >= 0; K = 0 gives C = beta * C (+ bias). C must not overlap A, B or bias.
// Runs mm's kernel through the one blocked driver (gemm_driver.h), or sgemm_portable where the
// CPU runs none of the fp32 kernels.
void sgemm(const MatmulContext& mm, bool trans_a, bool trans_b, int M, int N, int K, const float* A,
           int lda, const float* B, int ldb, float beta, float* C, int ldc,
           const float* bias = nullptr);
// The same in fp32 on the chosen kernel.
inline void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                  const float* B, int ldb, float beta, float* C, int ldc,
                  const float* bias = nullptr) {
  sgemm(MatmulContext{}, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

// The same contract, computed by Eigen: the fallback for CPUs without AVX2/FMA, the benchmark's
// baseline, and a second oracle in the tests (kBf16 as kBf16Rounded; mm.kernel is ignored).
void sgemm_portable(const MatmulContext& mm, bool trans_a, bool trans_b, int M, int N, int K,
                    const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc,
                    const float* bias = nullptr);
inline void sgemm_portable(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                           const float* B, int ldb, float beta, float* C, int ldc,
                           const float* bias = nullptr) {
  sgemm_portable(MatmulContext{}, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

// Every microkernel of the driver, in one table for the dispatcher, the tests (each kernel this
// CPU runs, around its own tile and blocks) and bench_kernels (all side by side):
//   kFp32 family (also runs kBf16Rounded, rounding while it packs): avx2_6x16, avx512_12x32;
//   kBf16 family: avx512bf16_12x32 (vdpbf16ps), bf16_portable_12x32 (its twin in plain C++),
//   amx_bf16_32x32 (AMX tiles, tdpbf16ps).
// The fp32 kernels, and the vdpbf16ps kernel and its twin, sum each element of C in their
// family's documented order, so kernels of one family give the same bits (exact_order). The
// AMX kernel adds the products of each 16-pair tile step in the hardware's own order (Intel
// documents fp32 sums, not their order): deterministic, within fp32 rounding of the others.
struct SgemmKernel {
  const char* name;
  MatmulPrecision family;  // kFp32 or kBf16
  int mr, nr;              // the microkernel's tile
  bool (*supported)();     // whether this CPU (and OS) runs it
  const char* needs;       // what it needs, for "skipped: this CPU has no ..."
  bool exact_order;        // sums in the family's documented order (bit-exact to its model)
};
std::span<const SgemmKernel> sgemm_kernels();
// Whether kernel index computes products of precision p (its family's).
bool sgemm_kernel_computes(int index, MatmulPrecision p);

// The kernel sgemm runs for p when MatmulContext::kernel is -1, chosen once per process:
// SKEIN_SGEMM_KERNEL=name if set (for the family of that kernel); else for the fp32 family the
// fastest in a few-ms timing at the first product (-1: none runs here, Eigen then), for kBf16
// the AMX kernel, else the vdpbf16ps one, the first that runs here and passes its check against
// the portable twin (bf16_self_check), else the portable twin. sgemm_choice() and
// sgemm_bf16_choice() say which and why.
int sgemm_chosen_kernel(MatmulPrecision p);
// Whether sgemm(mm, ...) runs a kernel of the blocked driver, whose tiles give every element of C
// the same bits whether the product is computed whole or in pieces of output rows or columns
// (cut at multiples of the tiles). False on the Eigen fallback (no AVX2+FMA): its register
// blocking depends on the shape, so pieces of a product need not give the whole's bits.
bool sgemm_runs_blocked(const MatmulContext& mm);
const char* sgemm_path();  // the fp32 choice's name, or "portable"
std::string sgemm_choice();
std::string sgemm_bf16_choice();

// Old name of sgemm on one kernel of the table, kept for the benchmarks and tests.
inline void sgemm_with_kernel(int index, bool trans_a, bool trans_b, int M, int N, int K,
                              const float* A, int lda, const float* B, int ldb, float beta,
                              float* C, int ldc, const float* bias = nullptr) {
  const MatmulPrecision p = sgemm_kernels()[index].family;
  sgemm(MatmulContext{p, index}, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

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

// kBf16's contract (the arithmetic of vdpbf16ps): every element of op(A) and op(B) rounded to
// bf16 (round_to_bf16); along K, pairs (k even, k + 1) are multiplied (exactly, in fp32) and
// added to an fp32 sum, the odd product first, each addition rounded; K is cut into blocks of at
// most kSgemmKC (a partial sum per block, added to C). The vdpbf16ps kernel also flushes subnormal
// inputs and results to zero; its portable twin does not.
//
// bf16_self_check(), once per process: "" when a hardware bf16 kernel (AMX or vdpbf16ps) runs
// here and agrees with the portable twin on awkward shapes (bf16_kernel_check); else why not (no
// avx512_bf16 on this CPU, or the largest difference found), so that callers can fall back to
// fp32.
std::string bf16_self_check();

// The same contract in double, on Eigen: for the double builds of the kernels, which the
// finite-difference tests check.
void dgemm(bool trans_a, bool trans_b, int M, int N, int K, const double* A, int lda,
           const double* B, int ldb, double beta, double* C, int ldc, const double* bias = nullptr);

// gemm: sgemm for float, dgemm for double (which ignores mm: the double builds compute in
// double), so a kernel templated on F writes its products once.
inline void gemm(const MatmulContext& mm, bool trans_a, bool trans_b, int M, int N, int K,
                 const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc,
                 const float* bias = nullptr) {
  sgemm(mm, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}
inline void gemm(const MatmulContext&, bool trans_a, bool trans_b, int M, int N, int K,
                 const double* A, int lda, const double* B, int ldb, double beta, double* C,
                 int ldc, const double* bias = nullptr) {
  dgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

}  // namespace skein
