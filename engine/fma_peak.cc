#include "engine/fma_peak.h"

#include <time.h>

#include <algorithm>

#include "kernels/intrinsics.h"

namespace skein {
namespace {

// 12 independent accumulators hide the FMA latency (4-5 cycles) on two FMA ports.
constexpr int kChains = 12;

#if defined(__x86_64__)
__attribute__((target("avx2,fma,avx512f"))) double loop_avx512(long iters, float* sink) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + 0.001f * i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 total = acc[0];
  for (int i = 1; i < kChains; ++i) total = _mm512_add_ps(total, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, total);
  *sink = out[0];
  return 2.0 * kChains * 16 * double(iters);
}

__attribute__((target("avx2,fma"))) double loop_avx2(long iters, float* sink) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.001f * i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 total = acc[0];
  for (int i = 1; i < kChains; ++i) total = _mm256_add_ps(total, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, total);
  *sink = out[0];
  return 2.0 * kChains * 8 * double(iters);
}
#endif

double loop_scalar(long iters, float* sink) {
  float acc[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  for (long it = 0; it < iters; ++it)
    for (float& x : acc) x = x * 0.999999f + 1e-7f;
  *sink = acc[0];
  return 2.0 * 8 * double(iters);
}

enum class Unit { kAvx512, kAvx2, kScalar };
Unit unit() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return Unit::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Unit::kAvx2;
#endif
  return Unit::kScalar;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

double fma_peak_loop(long iters, float* sink) {
  switch (unit()) {
#if defined(__x86_64__)
    case Unit::kAvx512:
      return loop_avx512(iters, sink);
    case Unit::kAvx2:
      return loop_avx2(iters, sink);
#endif
    default:
      return loop_scalar(iters, sink);
  }
}

const char* fma_peak_unit() {
  switch (unit()) {
    case Unit::kAvx512:
      return "avx512";
    case Unit::kAvx2:
      return "avx2+fma";
    default:
      return "scalar";
  }
}

double measure_fma_peak(int repeats, long iters) {
  float sink = 0;
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = thread_cpu_seconds();
    const double flops = fma_peak_loop(iters, &sink);
    const double s = thread_cpu_seconds() - t0;
    if (s > 0) best = std::max(best, flops / s);
  }
  volatile float keep = sink;
  (void)keep;
  return best;
}

}  // namespace skein
