// Single-precision matrix product (GEMM) on one thread, for the linear layers and attention.
// All matrices are row-major with leading dimensions (the distance between rows, in floats), so
// a matrix may be a strided view inside a larger one (e.g. one head inside qkv, ld = 3C).
//   op(A) (M,K): A itself, stored (M,K) with lda >= K, or A^T when trans_a, stored (K,M), lda >= M
//   op(B) (K,N): B itself, stored (K,N) with ldb >= N, or B^T when trans_b, stored (N,K), ldb >= K
//   C (M,N), ldc >= N
// No allocation (packing buffers are fixed-size and thread_local), no threads inside: callers
// run it from many threads at once.
#pragma once

namespace skein {

// Block sizes of the AVX2 path (gemm.cc says why these): microkernel tile kSgemmMR x kSgemmNR,
// cache blocks of K, M and N. Public so that the tests can sweep sizes around them.
inline constexpr int kSgemmMR = 6;
inline constexpr int kSgemmNR = 16;
inline constexpr int kSgemmKC = 256;
inline constexpr int kSgemmMC = 144;
inline constexpr int kSgemmNC = 1536;

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

// Which path sgemm takes on this CPU: "avx2" or "portable".
const char* sgemm_path();

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
