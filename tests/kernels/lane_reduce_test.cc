#include "kernels/lane_reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"

namespace skein {
namespace {

// Every length around the lane count and its multiples, including the empty row and tails.
TEST(LaneReduce, SumAndMaxOfEveryLength) {
  for (long n : {0L, 1L, 2L, 7L, 15L, 16L, 17L, 31L, 32L, 33L, 63L, 64L, 65L, 100L, 257L, 1000L}) {
    std::vector<float> x(n);
    double exact = 0;
    for (long i = 0; i < n; ++i) {
      x[i] = static_cast<float>(double(mix64(3, i) % 20001) / 1000.0 - 10.0);
      exact += x[i];
    }
    const float s = lane_sum<float>(n, [&](long i) { return x[i]; });
    EXPECT_NEAR(s, exact, 1e-5 * (1 + std::fabs(exact)) + 1e-6 * n) << "n = " << n;
    const double sd = lane_sum<double>(n, [&](long i) { return double(x[i]); });
    EXPECT_NEAR(sd, exact, 1e-12 * (1 + n)) << "n = " << n;
    // squared_norm's 32 lanes: the tails of every length above too
    const double s32 = lane_sum<double, 32>(n, [&](long i) { return double(x[i]); });
    EXPECT_NEAR(s32, exact, 1e-12 * (1 + n)) << "n = " << n;
    if (n == 0) continue;
    float mx = x[0];
    for (float v : x) mx = std::max(mx, v);
    EXPECT_EQ(lane_max(x.data(), n), mx) << "n = " << n;
    // the maximum in the last (tail) element is found too
    x[n - 1] = mx + 1;
    EXPECT_EQ(lane_max(x.data(), n), mx + 1) << "n = " << n;
  }
}

}  // namespace
}  // namespace skein
