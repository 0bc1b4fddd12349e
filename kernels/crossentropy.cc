#include "kernels/crossentropy.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "base/multiversion.h"
#include "kernels/fast_math.h"
#include "kernels/lane_reduce.h"

namespace skein {

int count_targets(const int32_t* targets, int N) {
  int n = 0;
  for (int i = 0; i < N; ++i) n += targets[i] != kIgnoreTarget;
  return n;
}

// The row loops: templates for any F, and float overloads compiled for each x86-64 level
// (base/multiversion.h), which the public kernels' calls pick for float.
namespace {
template <typename F>
double softmax_crossentropy_forward_rows(F* losses, F* probs, const F* logits,
                                         const int32_t* targets, int N, int V) {
  double total = 0;
  for (int i = 0; i < N; ++i) {
    const F* z = logits + static_cast<long>(i) * V;
    F* p = probs + static_cast<long>(i) * V;
    const F mx = lane_max(z, V);
    for (int v = 0; v < V; ++v) p[v] = exp_of(z[v] - mx);
    const F sum = lane_sum<F>(V, [=](long v) { return p[v]; });
    F inv = F(1) / sum;
    for (int v = 0; v < V; ++v) p[v] *= inv;
    const int32_t y = targets[i];
    if (y == kIgnoreTarget) {
      losses[i] = 0;
      continue;
    }
    SKEIN_CHECK(y >= 0 && y < V, "target out of range");
    // -log softmax(z)_y = log(sum) + mx - z_y, exact even where p_y underflows.
    losses[i] = std::log(sum) + mx - z[y];
    total += losses[i];
  }
  return total;
}
SKEIN_MULTIVERSION double softmax_crossentropy_forward_rows(float* losses, float* probs,
                                                            const float* logits,
                                                            const int32_t* targets, int N, int V) {
  return softmax_crossentropy_forward_rows<float>(losses, probs, logits, targets, N, V);
}

template <typename F>
void softmax_crossentropy_backward_rows(F* dlogits, const F* probs, const int32_t* targets, int N,
                                        int V, F dloss) {
  for (int i = 0; i < N; ++i) {
    F* d = dlogits + static_cast<long>(i) * V;
    const F* p = probs + static_cast<long>(i) * V;
    const int32_t y = targets[i];
    if (y == kIgnoreTarget) {
      std::fill(d, d + V, F(0));
      continue;
    }
    for (int v = 0; v < V; ++v) d[v] = p[v] * dloss;
    d[y] -= dloss;
  }
}
SKEIN_MULTIVERSION void softmax_crossentropy_backward_rows(float* dlogits, const float* probs,
                                                           const int32_t* targets, int N, int V,
                                                           float dloss) {
  softmax_crossentropy_backward_rows<float>(dlogits, probs, targets, N, V, dloss);
}
}  // namespace

template <typename F>
double softmax_crossentropy_forward(F* losses, F* probs, const F* logits, const int32_t* targets,
                                    int N, int V) {
  return softmax_crossentropy_forward_rows(losses, probs, logits, targets, N, V);
}

template <typename F>
void softmax_crossentropy_backward(F* dlogits, const F* probs, const int32_t* targets, int N, int V,
                                   F dloss) {
  softmax_crossentropy_backward_rows(dlogits, probs, targets, N, V, dloss);
}

template double softmax_crossentropy_forward<float>(float*, float*, const float*, const int32_t*,
                                                    int, int);
template double softmax_crossentropy_forward<double>(double*, double*, const double*,
                                                     const int32_t*, int, int);
template void softmax_crossentropy_backward<float>(float*, const float*, const int32_t*, int, int,
                                                   float);
template void softmax_crossentropy_backward<double>(double*, const double*, const int32_t*, int,
                                                    int, double);

}  // namespace skein
