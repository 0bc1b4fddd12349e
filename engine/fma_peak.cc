#include "engine/fma_peak.h"

#include <algorithm>
#include <chrono>

#include "kernels/intrinsics.h"

namespace skein {

// 12 independent accumulators hide the FMA latency (4-5 cycles) on two FMA ports.
double fma_peak_loop(long iters, float* sink) {
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int kLanes = 16;
#define SK_SET1 _mm512_set1_ps
#define SK_FMA _mm512_fmadd_ps
#define SK_ADD _mm512_add_ps
#define SK_STORE _mm512_storeu_ps
#elif defined(__FMA__)
  using V = __m256;
  constexpr int kLanes = 8;
#define SK_SET1 _mm256_set1_ps
#define SK_FMA _mm256_fmadd_ps
#define SK_ADD _mm256_add_ps
#define SK_STORE _mm256_storeu_ps
#endif
#if defined(__AVX512F__) || defined(__FMA__)
  constexpr int kChains = 12;
  V acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = SK_SET1(1.0f + 0.001f * i);
  const V a = SK_SET1(0.999999f), b = SK_SET1(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = SK_FMA(acc[i], a, b);
  }
  V total = acc[0];
  for (int i = 1; i < kChains; ++i) total = SK_ADD(total, acc[i]);
  float out[kLanes];
  SK_STORE(out, total);
  *sink = out[0];
  return 2.0 * kChains * kLanes * double(iters);
#else
  float acc[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  for (long it = 0; it < iters; ++it)
    for (float& x : acc) x = x * 0.999999f + 1e-7f;
  *sink = acc[0];
  return 2.0 * 8 * double(iters);
#endif
}

double measure_fma_peak(int repeats, long iters) {
  float sink = 0;
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    double flops = fma_peak_loop(iters, &sink);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops / s);
  }
  volatile float keep = sink;
  (void)keep;
  return best;
}

}  // namespace skein
