// Reductions over a row that the compiler can vectorise without reassociation flags: element i
// goes to partial sum (or max) i mod L (kLanes unless the caller picks another), the lanes are
// combined pairwise at the end. A fixed
// order, so the result is deterministic; it differs from a left-to-right sum by rounding only.
#pragma once

#include <algorithm>

namespace skein {

template <typename F>
inline constexpr int kLanes = 64 / sizeof(F);  // two 256-bit registers of partial results

// sum over i in [0, n) of term(i); L partial sums (a power of two), by default two registers'
// worth: enough parallel chains where each term costs several operations, too few for a long
// reduction with a cheap term (squared_norm's), which takes more.
template <typename F, int L = kLanes<F>, typename Term>
inline F lane_sum(long n, Term term) {
  static_assert(L > 0 && (L & (L - 1)) == 0);
  F acc[L] = {};
  long i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) acc[j] += term(i + j);
  for (int j = 0; i + j < n; ++j) acc[j] += term(i + j);
  for (int w = L / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

// max of x[0..n), n >= 1 (NaN-free input)
template <typename F>
inline F lane_max(const F* x, long n) {
  constexpr int L = kLanes<F>;
  if (n < L) return *std::max_element(x, x + n);
  F acc[L];
  for (int j = 0; j < L; ++j) acc[j] = x[j];
  long i = L;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) acc[j] = acc[j] < x[i + j] ? x[i + j] : acc[j];
  for (int j = 0; i + j < n; ++j) acc[j] = acc[j] < x[i + j] ? x[i + j] : acc[j];
  for (int w = L / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] = acc[j] < acc[j + w] ? acc[j + w] : acc[j];
  return acc[0];
}

}  // namespace skein
