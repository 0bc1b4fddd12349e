// The data-parallel training step of DESIGN.md ("One training step"), inside one process and
// across the ranks of a Comm:
//  1. the global micro-batch is cut into R replicas, R/P per rank; a rank's K threads form
//     G = K / W groups of W (threads_per_replica). Each group takes the rank's replicas from an
//     atomic counter and its W threads run forward+backward for each together (Model's Workers:
//     every operation cut among them along an output dimension, barriers of the group between)
//     into the replica's own gradient buffer (activations per group);
//  2. barrier; the flat parameter vector is cut into fixed blocks of kBlockFloats; rank p owns a
//     contiguous run of blocks and thread k of a rank a contiguous run of the rank's blocks (its
//     shard). The replica buffers are summed by a fixed tree (below) into buffer 0; with P > 1
//     ranks, every rank sends each owner its piece of that sum and the owner sums the P pieces by
//     the same tree, in rank order. One squared-norm partial per block;
//  3. barrier (ranks: all-gather of the block partials); every thread sums the block partials in
//     block order (same bits on every thread and rank), derives the clipping factor, and applies
//     SGD or AdamW to its shard with the shard's optimizer state, which only the owning rank holds
//     (ZeRO-1); ranks then all-gather the updated parameters;
//  4. the team's end-of-run barrier.
// No mutex and no atomic float: the only shared writes are to disjoint ranges, and MPI is called
// by thread 0 between barriers. With R fixed, the result is bit-identical for any thread count,
// since each replica's gradient is computed the same way whichever thread runs it and every sum
// runs in a fixed order; and for any W, since W threads compute a replica's gradient with the
// bits of one.
//
// The tree: n terms t_0..t_{n-1} are summed as sum(t_0..t_{m-1}) + sum(t_m..t_{n-1}) with m the
// largest power of two below n (so n <= 3 is a left fold). When R/P is a power of two the tree
// over R replicas is exactly the tree over P rank-sums of R/P-replica trees, so P ranks give the
// same bits as one process with the same R (tested); otherwise the association differs and the
// results agree to rounding.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "base/status.h"
#include "engine/comm.h"
#include "engine/model.h"
#include "engine/thread_team.h"
#include "optimizers/adamw.h"
#include "optimizers/schedule.h"
#include "optimizers/sgd.h"

namespace skein {

enum class OptimizerKind { kAdamW, kSgd };

struct TrainerOptions {
  int threads = 1;              // compute threads K (>= 1; resolve "auto" before)
  int threads_per_replica = 1;  // W: threads that run one replica together (divides threads)
  int replicas = 0;             // R; 0 = threads / W x ranks (the same on every rank)
  int batch_size = 8;           // sequences per micro-step, all replicas of all ranks together
                                // (divisible by R)
  int seq_len = 256;            // T
  int grad_accum_steps = 1;     // micro-steps per optimizer step
  std::string team = "omp";     // "omp" or "pool"
  OptimizerKind optimizer = OptimizerKind::kAdamW;
  AdamWHyper adamw;
  SgdHyper sgd;
  Schedule schedule;           // lr of each step (overrides adamw.lr / sgd.lr)
  float max_grad_norm = 1.0f;  // 0 = no clipping
  Comm* comm = nullptr;        // the ranks training together (R divisible by their number);
                               // nullptr = this process alone
  // A step whose gradient norm is not finite leaves parameters and optimizer state untouched
  // (StepStats::skipped says so); what to do next is the caller's policy.
};

// Whether K threads in groups of W (K / W groups) leave a group without a replica on a rank that
// holds replicas_here of them (0: R not fixed, one replica per group, so never).
inline bool groups_would_idle(int K, int W, int replicas_here) {
  return replicas_here > 0 && K / W > replicas_here;
}

struct StepStats {
  long step = 0;         // optimizer steps done after this one
  float loss = 0;        // mean over all targets of the step
  double grad_norm = 0;  // before clipping
  float lr = 0;
  bool skipped = false;  // non-finite gradient: no update was applied
  // wall seconds of the phases (thread 0's view), the forward/backward split of the compute
  // phase apportioned by the per-replica times
  double forward_s = 0, backward_s = 0, reduce_s = 0, optimizer_s = 0, total_s = 0;
  double comm_s = 0;  // of reduce_s + optimizer_s, the time inside Comm operations
};

// Where a trainer's memory goes, in bytes (this rank's; the model's parameters included).
struct MemoryReport {
  size_t params = 0;       // the parameters (every rank holds all of them)
  size_t gradients = 0;    // one full-size buffer per local replica
  size_t optimizer = 0;    // AdamW m and v (or SGD momentum) of this rank's range
  size_t activations = 0;  // one set per group of threads, for seqs_per_replica x T tokens
  size_t exchange = 0;     // with several ranks: the pieces of this rank's range
  int replicas = 0, threads = 0, groups = 0;
  size_t total() const { return params + gradients + optimizer + activations + exchange; }
  // One line: "parameters 41.0 MiB, gradients 2 x 41.0 MiB, ... = 365.2 MiB".
  std::string describe() const;
};

class Trainer {
 public:
  static constexpr size_t kBlockFloats = 16384;  // 64 KiB: the unit of the parameter partition

  Trainer(Model& model, const TrainerOptions& opt);

  // One optimizer step on grad_accum_steps micro-batches of this rank: inputs and targets hold
  // grad_accum_steps x (batch_size / P, seq_len) tokens, micro-step after micro-step (the
  // loader's batch for this rank, LoaderOptions::ranks = P). Collective across ranks.
  StepStats step(const int32_t* inputs, const int32_t* targets);

  // Mean loss over the targets of one whole (batch_size, seq_len) batch, forward only; every rank
  // passes the same batch and computes its replicas' share. Collective across ranks.
  float evaluate(const int32_t* inputs, const int32_t* targets);

  long steps_done() const { return step_; }
  void set_steps_done(long s) { step_ = s; }
  int threads() const { return team_->size(); }
  int threads_per_replica() const { return W_; }
  int replicas() const { return R_; }

  // Optimizer state of this rank's parameters [owned_begin(), owned_end()), in the parameter
  // layout: AdamW m and v, or SGD's momentum buffer (m; v is then empty). With one rank that is
  // every parameter; with more ranks than blocks some ranks own none (an empty range, which
  // every collective below still involves).
  float* state_m() { return m_.data(); }
  float* state_v() { return v_.data(); }
  size_t state_m_floats() const { return m_.size(); }
  size_t state_v_floats() const { return v_.size(); }
  size_t owned_begin() const { return rank_offsets_[rank_]; }
  size_t owned_end() const { return rank_offsets_[rank_ + 1]; }
  // The whole optimizer state on rank 0 (m_full, v_full: num_params floats each, used on rank
  // 0 only; v_full may be null for SGD). Collective.
  void gather_state(float* m_full, float* v_full);
  // Each rank takes its part of rank 0's full state. Collective.
  void scatter_state(const float* m_full, const float* v_full);
  // First block and one-past-last block of thread k's shard (of this rank's blocks).
  std::pair<size_t, size_t> shard_blocks(int k) const;
  size_t num_blocks() const { return nblocks_; }
  Comm& comm() { return *comm_; }
  MemoryReport memory() const;
  // What a Trainer over a Model(cfg) with these options allocates on rank `rank` of P, computed
  // without allocating it: memory() of such a trainer equals it (a test holds them together).
  static MemoryReport estimate_memory(const GptConfig& cfg, const TrainerOptions& opt, int P,
                                      int rank);

 private:
  struct Segment {  // a piece of one tensor inside one thread's shard
    size_t begin, end;
    bool decay;
  };
  void run_thread(int k, const int32_t* inputs, const int32_t* targets, StepStats* stats);
  Workers workers(int k) const;  // thread k's place in its group
  int next_group_task(int g, const Workers& w);

  Model& model_;
  TrainerOptions opt_;
  LocalComm local_comm_;
  Comm* comm_;
  int P_, rank_;
  int W_, G_;        // threads per group, groups
  int R_, R_local_;  // replicas in all, of this rank
  int seqs_per_replica_;
  std::vector<size_t> rank_offsets_;        // P+1 parameter indices: rank p's range
  std::vector<size_t> rank_block_offsets_;  // P+1 block indices: rank p's blocks
  AlignedBuffer<float> pieces_;             // P pieces of this rank's range (P > 1)
  std::unique_ptr<ThreadTeam> team_;
  std::vector<std::unique_ptr<Activations>> acts_;  // one per group
  struct alignas(64) Group {                        // one cache line each: no false sharing
    std::unique_ptr<SpinBarrier> barrier;           // its W threads'
    int task = 0;                                   // the replica it runs, set by its thread 0
  };
  std::vector<Group> groups_;
  std::vector<AlignedBuffer<float>> grads_;  // one per replica
  AlignedBuffer<float> m_, v_;
  size_t nblocks_;
  std::vector<std::vector<Segment>> segments_;         // per thread
  std::vector<double> block_sq_;                       // per block
  std::vector<double> replica_loss_, replica_weight_;  // per (micro-step, local replica)
  std::vector<double> my_terms_;                       // weighted losses, per local task
  std::vector<double> all_terms_;                      // per (rank, micro-step, local replica)
  std::vector<std::vector<float*>> tree_terms_;        // per thread: the arrays a tree sums
  std::vector<double> replica_fwd_s_, replica_bwd_s_;
  std::atomic<int> next_task_{0};
  long step_ = 0;
};

// Sums the n arrays p[0..n) of len floats into p[0] by the tree above (split at the largest power
// of two below n): step 2's replica sum (public for bench_kernels).
void tree_sum(float* const* p, int n, size_t len);

// Refuses, with what is needed and what is available, a trainer (as estimate_memory counts it,
// plus extra_bytes, plus rank 0's copy of the whole optimizer state when gathers_state) that
// does not fit in available_bytes on a machine running ranks_on_machine such ranks; OK when
// available_bytes is 0 (unknown). Shapes far too large are refused on a count in doubles, before
// the exact count, so nothing overflows.
Status check_fits_in_memory(const GptConfig& cfg, const TrainerOptions& opt, int P, int rank,
                            int ranks_on_machine, double extra_bytes, bool gathers_state,
                            size_t available_bytes);

// run.threads = 0: times two steps (after one warm-up) at every thread count 1..cores (multiples
// of threads_per_replica) on one
// batch, with the replica count fixed (so the choice cannot change results) and learning rate 0
// (so the parameters do not move: AdamW and SGD then leave every bit as it was), and returns the
// fastest; more threads only for a clear (3%) gain. report(threads, seconds per step) is called
// for each count.
int fastest_thread_count(Model& model, TrainerOptions opt, const int32_t* inputs,
                         const int32_t* targets, int cores,
                         const std::function<void(int, double)>& report);

}  // namespace skein
