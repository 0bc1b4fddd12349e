#include "kernels/rope.h"

#include <cmath>

#include "base/check.h"
#include "base/multiversion.h"

namespace skein {

namespace {
// sign +1: (a, b) -> (a cos - b sin, b cos + a sin); sign -1: the inverse turn
template <typename F>
void rope_rows(F* x, const F* table, long row_begin, long row_end, int T, int heads, int HS,
               int stride, F sign) {
  const int half = HS / 2;
  for (long r = row_begin; r < row_end; ++r) {
    const F* cs = table + static_cast<long>(r % T) * HS;  // (half, 2)
    F* row = x + r * stride;
    for (int h = 0; h < heads; ++h) {
      F* __restrict a = row + static_cast<long>(h) * HS;
      F* __restrict b = a + half;
      for (int i = 0; i < half; ++i) {
        const F c = cs[2 * i], s = sign * cs[2 * i + 1];
        const F ai = a[i], bi = b[i];
        a[i] = ai * c - bi * s;
        b[i] = bi * c + ai * s;
      }
    }
  }
}
SKEIN_MULTIVERSION void rope_rows(float* x, const float* table, long row_begin, long row_end, int T,
                                  int heads, int HS, int stride, float sign) {
  rope_rows<float>(x, table, row_begin, row_end, T, heads, HS, stride, sign);
}
}  // namespace

template <typename F>
void rope_table(F* table, int T, int HS, double theta) {
  SKEIN_CHECK(HS % 2 == 0, "rotary embeddings need an even head size");
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < HS / 2; ++i) {
      const double angle = t * std::pow(theta, -2.0 * i / HS);
      table[(static_cast<long>(t) * (HS / 2) + i) * 2] = static_cast<F>(std::cos(angle));
      table[(static_cast<long>(t) * (HS / 2) + i) * 2 + 1] = static_cast<F>(std::sin(angle));
    }
  }
}

template <typename F>
void rope_forward(F* x, const F* table, long row_begin, long row_end, int T, int heads, int HS,
                  int stride) {
  rope_rows(x, table, row_begin, row_end, T, heads, HS, stride, F(1));
}

template <typename F>
void rope_backward(F* dx, const F* table, long row_begin, long row_end, int T, int heads, int HS,
                   int stride) {
  rope_rows(dx, table, row_begin, row_end, T, heads, HS, stride, F(-1));
}

template void rope_table<float>(float*, int, int, double);
template void rope_table<double>(double*, int, int, double);
template void rope_forward<float>(float*, const float*, long, long, int, int, int, int);
template void rope_forward<double>(double*, const double*, long, long, int, int, int, int);
template void rope_backward<float>(float*, const float*, long, long, int, int, int, int);
template void rope_backward<double>(double*, const double*, long, long, int, int, int, int);

}  // namespace skein
