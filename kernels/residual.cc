#include "kernels/residual.h"

namespace skein {

template <typename F>
void residual_forward(F* out, const F* a, const F* b, long n) {
  for (long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename F>
void residual_backward(F* da, F* db, const F* dout, long n) {
  for (long i = 0; i < n; ++i) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

template void residual_forward<float>(float*, const float*, const float*, long);
template void residual_forward<double>(double*, const double*, const double*, long);
template void residual_backward<float>(float*, float*, const float*, long);
template void residual_backward<double>(double*, double*, const double*, long);

}  // namespace skein
