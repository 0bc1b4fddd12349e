// Fused softmax + cross-entropy over the vocabulary.
// Dimensions: N rows (= B*T), V vocab. A target of -1 marks a position that is ignored.
#pragma once

#include <cstdint>

namespace skein {

constexpr int32_t kIgnoreTarget = -1;

// Number of targets that are not kIgnoreTarget.
int count_targets(const int32_t* targets, int N);

// logits (N,V), targets (N) -> probs (N,V) softmax, losses (N) (0 where ignored).
// Returns the sum of the losses over non-ignored targets (the caller divides by the count).
template <typename F>
double softmax_crossentropy_forward(F* losses, F* probs, const F* logits, const int32_t* targets,
                                    int N, int V);

// dlogits (N,V) = (probs - onehot(target)) * dloss; rows with an ignored target are set to 0.
// dloss is the gradient of the total loss with respect to each position's loss: 1/count for a mean.
// (Writes rather than accumulates: dlogits is always a fresh buffer.)
template <typename F>
void softmax_crossentropy_backward(F* dlogits, const F* probs, const int32_t* targets, int N, int V,
                                   F dloss);

}  // namespace skein
