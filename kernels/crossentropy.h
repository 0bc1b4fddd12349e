// Fused softmax + cross-entropy over the vocabulary.
// Dimensions: N rows (= B*T), V vocab. A target of -1 marks a position that is ignored.
#pragma once

#include <cstdint>

namespace skein {

constexpr int32_t kIgnoreTarget = -1;

// Number of targets that are not kIgnoreTarget.
int count_targets(const int32_t* targets, int N);

// The softmax statistics forward keeps for backward: each row's max and 1/sum, 2 values per row.
// Backward rebuilds the probabilities from them and the logits, bit for bit what a stored softmax
// would hold, so no (N,V) buffer of probabilities is kept (at GPT-2's vocabulary and T = 1024 that
// is 206 MB per sequence).
constexpr int kCrossEntropyStats = 2;

// logits (N,V), targets (N) -> losses (N) (0 where ignored), stats (N, kCrossEntropyStats).
// Returns the sum of the losses over non-ignored targets (the caller divides by the count).
template <typename F>
double softmax_crossentropy_forward(F* losses, F* stats, const F* logits, const int32_t* targets,
                                    int N, int V);

// dlogits (N,V) = (softmax(logits) - onehot(target)) * dloss, with forward's stats; rows with an
// ignored target are set to 0. dloss is the gradient of the total loss with respect to each
// position's loss: 1/count for a mean. dlogits may be logits itself (overwritten in place); it is
// written, not accumulated.
template <typename F>
void softmax_crossentropy_backward(F* dlogits, const F* logits, const F* stats,
                                   const int32_t* targets, int N, int V, F dloss);

}  // namespace skein
