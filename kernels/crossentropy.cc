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
// One row's unnormalised probability, in one place so that forward and backward round it alike.
template <typename F>
inline F shifted_exp(F z, F mx) {
  return exp_of(z - mx);
}

template <typename F>
double softmax_crossentropy_forward_rows(F* losses, F* stats, const F* logits,
                                         const int32_t* targets, int N, int V) {
  double total = 0;
  for (int i = 0; i < N; ++i) {
    const F* z = logits + static_cast<long>(i) * V;
    const F mx = lane_max(z, V);
    const F sum = lane_sum<F>(V, [=](long v) { return shifted_exp(z[v], mx); });
    stats[kCrossEntropyStats * i] = mx;
    stats[kCrossEntropyStats * i + 1] = F(1) / sum;
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
SKEIN_MULTIVERSION double softmax_crossentropy_forward_rows(float* losses, float* stats,
                                                            const float* logits,
                                                            const int32_t* targets, int N, int V) {
  return softmax_crossentropy_forward_rows<float>(losses, stats, logits, targets, N, V);
}

template <typename F>
void softmax_crossentropy_backward_rows(F* dlogits, const F* logits, const F* stats,
                                        const int32_t* targets, int N, int V, F dloss) {
  for (int i = 0; i < N; ++i) {
    F* d = dlogits + static_cast<long>(i) * V;
    const F* z = logits + static_cast<long>(i) * V;
    const int32_t y = targets[i];
    if (y == kIgnoreTarget) {
      std::fill(d, d + V, F(0));
      continue;
    }
    const F mx = stats[kCrossEntropyStats * i], inv = stats[kCrossEntropyStats * i + 1];
    // (p * inv) * dloss: the probability rounded first, as a stored softmax would be
    for (int v = 0; v < V; ++v) d[v] = (shifted_exp(z[v], mx) * inv) * dloss;
    d[y] -= dloss;
  }
}
SKEIN_MULTIVERSION void softmax_crossentropy_backward_rows(float* dlogits, const float* logits,
                                                           const float* stats,
                                                           const int32_t* targets, int N, int V,
                                                           float dloss) {
  softmax_crossentropy_backward_rows<float>(dlogits, logits, stats, targets, N, V, dloss);
}
}  // namespace

template <typename F>
double softmax_crossentropy_forward(F* losses, F* stats, const F* logits, const int32_t* targets,
                                    int N, int V) {
  return softmax_crossentropy_forward_rows(losses, stats, logits, targets, N, V);
}

template <typename F>
void softmax_crossentropy_backward(F* dlogits, const F* logits, const F* stats,
                                   const int32_t* targets, int N, int V, F dloss) {
  softmax_crossentropy_backward_rows(dlogits, logits, stats, targets, N, V, dloss);
}

template double softmax_crossentropy_forward<float>(float*, float*, const float*, const int32_t*,
                                                    int, int);
template double softmax_crossentropy_forward<double>(double*, double*, const double*,
                                                     const int32_t*, int, int);
template void softmax_crossentropy_backward<float>(float*, const float*, const float*,
                                                   const int32_t*, int, int, float);
template void softmax_crossentropy_backward<double>(double*, const double*, const double*,
                                                    const int32_t*, int, int, double);

}  // namespace skein
