// Training batches from token shards, prepared ahead by OpenMP producer threads; and the
// validation iterator.
//
// Sampling (what a batch holds). A window is T+1 consecutive tokens of one shard; shard k of
// n_k tokens has n_k - T windows (starts 0 .. n_k - T - 1), and all shards' windows are numbered
// together, W in all. Sequence i of rank r at step s is global sequence g (below); it is window
// floor(u * W / 2^64) with u = mix64(seed, s, g): uniform over all windows of all shards (so a
// shard is drawn in proportion to its length), drawn independently, with replacement. A window
// never crosses a shard boundary. inputs are its first T tokens, targets its last T.
//
// Global sequence numbers: a step's batch may be cut into `micro_steps` micro-batches (gradient
// accumulation) of b = B / micro_steps sequences per rank. Sequence i = a*b + j of rank r (micro-
// step a, j < b) is global sequence g = a*b*P + r*b + j, with P = ranks. So micro-step a of the
// P ranks together is micro-step a of one process with B*P, sequence for sequence, and with one
// micro-step g = r*B + i.
//
// So a batch is a pure function of (seed, step, rank) and the shards: the data cursor is just
// the step, resuming at step k is exact, and the union of ranks 0..P-1 with B each is the rank-0
// batch with B*P. There are no epochs; a window can repeat (at the rate of sampling with
// replacement), which is harmless for the corpus sizes this engine trains on.
//
// Prefetching. start(k) launches one background std::thread that runs an OpenMP parallel region
// of `threads` producers. Each producer claims the next position of a RingBuffer<Batch> of
// capacity `prefetch` and fills batch k + position in place, in parallel with the others; the
// ring hands positions to the consumer in order, so next() returns steps k, k+1, ... in order
// whatever order they were filled in. A producer sleeps (futex) while the ring is full; the
// destructor (or the next start) closes the ring and joins the thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "data/ring_buffer.h"
#include "data/shard.h"

namespace skein {

struct Batch {  // one step's batch for one rank
  long step = -1;
  int B = 0, T = 0;
  std::vector<int32_t> inputs;   // (B,T)
  std::vector<int32_t> targets;  // (B,T) = inputs shifted by one token; -1 = no target (padding)
};

struct LoaderOptions {
  std::vector<std::string> shards;  // paths of the split's shards
  int B = 8, T = 256;               // sequences per batch (this rank's share), tokens per sequence
  uint64_t seed = 1;
  int rank = 0;  // this process's rank, of `ranks` (global sequence numbers: above)
  int ranks = 1;
  int micro_steps = 1;     // micro-batches per batch (divides B)
  int vocab_size = 65536;  // tokens >= this are refused at open
  int prefetch = 4;        // batches prepared ahead (ring buffer capacity)
  int threads = 2;         // OpenMP producer threads
};

// The shards of one split, mapped and validated (each at least T+1 tokens, every token below
// the vocabulary size), and their windows of T+1 tokens.
class ShardSet {
 public:
  // window_stride: distance between window starts counted by windows() and window(): 1 for the
  // overlapping windows of training, T+1 for the disjoint windows of validation.
  static StatusOr<ShardSet> open(const std::vector<std::string>& paths, int T, int vocab_size,
                                 int64_t window_stride = 1);

  const std::vector<Shard>& shards() const { return shards_; }
  int T() const { return T_; }
  int64_t windows() const { return first_window_.back(); }
  // First token of window w (0 <= w < windows()), in shard order.
  const uint16_t* window(int64_t w) const;

 private:
  std::vector<Shard> shards_;
  std::vector<int64_t> first_window_;  // prefix sums of windows per shard, size shards + 1
  int T_ = 0;
  int64_t stride_ = 1;
};

class Loader {
 public:
  // Validates the options and opens every shard; errors name the option or file at fault.
  static StatusOr<std::unique_ptr<Loader>> open(const LoaderOptions& o);
  ~Loader();  // closes the ring and joins the producers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins prefetching batches first_step, first_step+1, ... (first_step >= 0). Calling it again
  // stops the producers and restarts from the new step (e.g. after loading a checkpoint).
  void start(long first_step);
  // Blocks until the batch of the next step is ready; returns it. Valid until the next call.
  // Call from one thread (the trainer's), after start().
  const Batch& next();
  // Total time the consumer spent blocked in next(), in seconds.
  double wait_seconds() const { return wait_seconds_; }

  const LoaderOptions& options() const { return opts_; }
  const ShardSet& shard_set() const { return shards_; }

  // The batch of `step` for o.rank: the pure function that the producers run (see the top of
  // this file). Reuses out's vectors; allocates only if their size is wrong.
  static void fill(const LoaderOptions& o, const ShardSet& shards, long step, Batch* out);

 private:
  Loader(LoaderOptions o, ShardSet s) : opts_(std::move(o)), shards_(std::move(s)) {}
  void stop();

  LoaderOptions opts_;
  ShardSet shards_;
  std::unique_ptr<RingBuffer<Batch>> ring_;
  std::thread producer_;
  Batch current_;
  long expected_step_ = -1;
  double wait_seconds_ = 0;
};

// Validation: walks the val shards in order, in disjoint windows of T+1 tokens (shard k gives
// floor(n_k / (T+1)) of them, a shard's tail shorter than T+1 is not used), B windows per batch.
// Deterministic; the same batches after reset(). The last batch is padded to B sequences with
// inputs 0 and targets -1 (ignored by the loss), so every batch has the same shape.
class ValIterator {
 public:
  static StatusOr<ValIterator> open(const std::vector<std::string>& shards, int B, int T,
                                    int vocab_size);
  // Fills the next batch (out->step counts batches from 0); false after the last one.
  bool next(Batch* out);
  void reset() { next_window_ = 0; }
  int64_t num_sequences() const { return shards_.windows(); }  // windows without padding
  int64_t num_batches() const { return (shards_.windows() + B_ - 1) / B_; }

 private:
  ValIterator(ShardSet s, int B) : shards_(std::move(s)), B_(B) {}
  ShardSet shards_;
  int B_ = 0;
  int64_t next_window_ = 0;
};

}  // namespace skein
