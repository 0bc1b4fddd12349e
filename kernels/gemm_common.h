// Pieces shared by the GEMM paths (gemm.cc: fp32 and Eigen; gemm_bf16.cc): argument checks, the
// K = 0 product, strided views of op(A) / op(B), and the write of a partial microkernel tile.
// Internal to kernels/.
#pragma once

#include <algorithm>

#include "base/check.h"

namespace skein::gemm_detail {

template <typename F>
void check_args(bool trans_a, bool trans_b, int M, int N, int K, int lda, int ldb, F beta,
                int ldc) {
  SKEIN_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative dimension");
  SKEIN_CHECK(beta == 0 || beta == 1, "gemm: beta must be 0 or 1");
  SKEIN_CHECK(lda >= std::max(1, trans_a ? M : K), "gemm: lda smaller than a row of A");
  SKEIN_CHECK(ldb >= std::max(1, trans_b ? K : N), "gemm: ldb smaller than a row of B");
  SKEIN_CHECK(ldc >= std::max(1, N), "gemm: ldc smaller than a row of C");
}

// C = beta * C (+ bias): the whole product when K = 0, shared by all paths.
template <typename F>
void scale_c(int M, int N, F beta, F* C, long ldc, const F* bias) {
  for (int i = 0; i < M; ++i) {
    F* c = C + i * ldc;
    for (int j = 0; j < N; ++j) c[j] = (beta != 0 ? c[j] : F(0)) + (bias ? bias[j] : F(0));
  }
}

// Element (r, c) of op(X) is data[r * rs + c * cs]: a transpose is just swapped strides.
struct View {
  const float* data;
  long rs, cs;
  float at(long r, long c) const { return data[r * rs + c * cs]; }
  static View of(const float* X, int ld, bool trans) {
    return trans ? View{X, 1, ld} : View{X, ld, 1};
  }
};

// Writes the top-left (mr, nr) of a full tile computed into `tile` (row stride tile_ld) to C, in
// the kernels' summation order: product, then C, then bias. Tile (r, j) goes to c[r * ldc + j]
// with bias[j]; transposed (a product computed as C^T, gemm_driver.h), to c[j * ldc + r] with
// bias[r].
inline void write_edge_tile(const float* tile, int tile_ld, int mr, int nr, float* c, long ldc,
                            bool load_c, const float* bias, bool transposed = false) {
  const long rs = transposed ? 1 : ldc, cs = transposed ? ldc : 1;
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) {
      float v = tile[r * tile_ld + j];
      float& out = c[r * rs + j * cs];
      if (load_c) v += out;
      if (bias) v += bias[transposed ? r : j];
      out = v;
    }
}

}  // namespace skein::gemm_detail
