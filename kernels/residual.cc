#include "kernels/residual.h"

#include "base/multiversion.h"

namespace skein {

// The loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
template <typename F>
void residual_forward_loop(F* out, const F* a, const F* b, long n) {
  for (long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
SKEIN_MULTIVERSION void residual_forward_loop(float* out, const float* a, const float* b, long n) {
  residual_forward_loop<float>(out, a, b, n);
}

template <typename F>
void residual_backward_loop(F* da, F* db, const F* dout, long n) {
  for (long i = 0; i < n; ++i) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}
SKEIN_MULTIVERSION void residual_backward_loop(float* da, float* db, const float* dout, long n) {
  residual_backward_loop<float>(da, db, dout, n);
}
}  // namespace

template <typename F>
void residual_forward(F* out, const F* a, const F* b, long n) {
  residual_forward_loop(out, a, b, n);
}

template <typename F>
void residual_backward(F* da, F* db, const F* dout, long n) {
  residual_backward_loop(da, db, dout, n);
}

template void residual_forward<float>(float*, const float*, const float*, long);
template void residual_forward<double>(double*, const double*, const double*, long);
template void residual_backward<float>(float*, float*, const float*, long);
template void residual_backward<double>(double*, double*, const double*, long);

}  // namespace skein
