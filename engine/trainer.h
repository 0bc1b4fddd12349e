// The data-parallel training step of DESIGN.md ("One training step"):
//  1. the micro-batch is cut into R replicas; threads take replicas from an atomic counter and run
//     forward+backward for each into the replica's own gradient buffer (activations per thread);
//  2. barrier; the flat parameter vector is cut into fixed blocks of kBlockFloats; thread k owns a
//     contiguous run of blocks (its shard), sums the R gradient buffers over it in replica order,
//     and writes one squared-norm partial per block;
//  3. barrier; every thread sums the block partials in block order (same bits on every thread),
//     derives the clipping factor, and applies SGD or AdamW to its shard with the shard's
//     optimizer state;
//  4. the team's end-of-run barrier.
// No mutex and no atomic float: the only shared writes are to disjoint ranges. With R fixed, the
// result is bit-identical for any thread count, since each replica's gradient is computed the same
// way whichever thread runs it and every sum runs in a fixed order.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "engine/model.h"
#include "engine/thread_team.h"
#include "optimizers/adamw.h"
#include "optimizers/schedule.h"
#include "optimizers/sgd.h"

namespace skein {

enum class OptimizerKind { kAdamW, kSgd };

struct TrainerOptions {
  int threads = 1;           // compute threads (>= 1; resolve "auto" before)
  int replicas = 0;          // R; 0 = threads
  int batch_size = 8;        // sequences per micro-step, all replicas together (divisible by R)
  int seq_len = 256;         // T
  int grad_accum_steps = 1;  // micro-steps per optimizer step
  std::string team = "omp";  // "omp" or "pool"
  OptimizerKind optimizer = OptimizerKind::kAdamW;
  AdamWHyper adamw;
  SgdHyper sgd;
  Schedule schedule;           // lr of each step (overrides adamw.lr / sgd.lr)
  float max_grad_norm = 1.0f;  // 0 = no clipping
  // A step whose gradient norm is not finite leaves parameters and optimizer state untouched
  // (StepStats::skipped says so); what to do next is the caller's policy.
};

struct StepStats {
  long step = 0;         // optimizer steps done after this one
  float loss = 0;        // mean over all targets of the step
  double grad_norm = 0;  // before clipping
  float lr = 0;
  bool skipped = false;  // non-finite gradient: no update was applied
  // wall seconds of the phases (thread 0's view), the forward/backward split of the compute
  // phase apportioned by the per-replica times
  double forward_s = 0, backward_s = 0, reduce_s = 0, optimizer_s = 0, total_s = 0;
};

class Trainer {
 public:
  static constexpr size_t kBlockFloats = 16384;  // 64 KiB: the unit of the parameter partition

  Trainer(Model& model, const TrainerOptions& opt);

  // One optimizer step on grad_accum_steps micro-batches: inputs and targets hold
  // grad_accum_steps x (batch_size, seq_len) tokens, micro-step after micro-step.
  StepStats step(const int32_t* inputs, const int32_t* targets);

  // Mean loss over the targets of one (batch_size, seq_len) batch, forward only, on the team.
  float evaluate(const int32_t* inputs, const int32_t* targets);

  long steps_done() const { return step_; }
  void set_steps_done(long s) { step_ = s; }
  int threads() const { return team_->size(); }
  int replicas() const { return R_; }

  // Optimizer state in the parameter layout: AdamW m and v, or SGD's momentum buffer (m; v is
  // then empty).
  float* state_m() { return m_.data(); }
  float* state_v() { return v_.data(); }
  size_t state_m_floats() const { return m_.size(); }
  size_t state_v_floats() const { return v_.size(); }
  // First block and one-past-last block of thread k's shard.
  std::pair<size_t, size_t> shard_blocks(int k) const;
  size_t num_blocks() const { return nblocks_; }

 private:
  struct Segment {  // a piece of one tensor inside one thread's shard
    size_t begin, end;
    bool decay;
  };
  void run_thread(int k, const int32_t* inputs, const int32_t* targets, StepStats* stats);

  Model& model_;
  TrainerOptions opt_;
  int R_;
  int seqs_per_replica_;
  std::unique_ptr<ThreadTeam> team_;
  std::vector<std::unique_ptr<Activations>> acts_;  // one per thread
  std::vector<AlignedBuffer<float>> grads_;         // one per replica
  AlignedBuffer<float> m_, v_;
  size_t nblocks_;
  std::vector<std::vector<Segment>> segments_;         // per thread
  std::vector<double> block_sq_;                       // per block
  std::vector<double> replica_loss_, replica_weight_;  // per (micro-step, replica)
  std::vector<double> replica_fwd_s_, replica_bwd_s_;
  std::atomic<int> next_task_{0};
  long step_ = 0;
};

}  // namespace skein
