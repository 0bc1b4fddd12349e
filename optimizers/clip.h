// Global-norm gradient clipping, split so that threads can compute partial norms of their shards
// and combine them in a fixed order (reproducible, unlike a float reduction in arbitrary order).
#pragma once

namespace skein {

// Sum of squares of g[0..n), accumulated in double in a fixed order (lane_sum: 8 interleaved
// partial sums, combined pairwise), so the same n floats always give the same bits.
double squared_norm(const float* g, long n);

// Factor to multiply the gradient by: min(1, max_norm / (norm + 1e-6)), PyTorch's
// clip_grad_norm_ rule. max_norm <= 0 disables clipping (factor 1).
float clip_factor(double norm, float max_norm);

}  // namespace skein
