#include "engine/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/check.h"
#include "base/multiversion.h"
#include "kernels/crossentropy.h"
#include "optimizers/clip.h"

namespace skein {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// a[0..len) += b[0..len); one clone per x86-64 level (base/multiversion.h)
SKEIN_MULTIVERSION void add_into(float* __restrict a, const float* __restrict b, size_t len) {
  for (size_t i = 0; i < len; ++i) a[i] += b[i];
}

}  // namespace

void tree_sum(float* const* p, int n, size_t len) {
  if (n <= 1) return;
  int m = 1;
  while (m * 2 < n) m *= 2;
  tree_sum(p, m, len);
  tree_sum(p + m, n - m, len);
  add_into(p[0], p[m], len);
}

Trainer::Trainer(Model& model, const TrainerOptions& opt)
    : model_(model),
      opt_(opt),
      comm_(opt.comm ? opt.comm : &local_comm_),
      P_(comm_->size()),
      rank_(comm_->rank()),
      W_(opt.threads_per_replica),
      G_(opt.threads / std::max(1, opt.threads_per_replica)),
      R_(opt.replicas > 0 ? opt.replicas : G_ * P_) {
  SKEIN_CHECK(opt.threads >= 1 && opt.grad_accum_steps >= 1);
  SKEIN_CHECK(W_ >= 1 && opt.threads % W_ == 0, "threads_per_replica must divide the thread count");
  SKEIN_CHECK(R_ % P_ == 0, "the replica count must be divisible by the number of ranks");
  SKEIN_CHECK(P_ == 1 || (comm_->max(R_) == R_ && comm_->max(-R_) == -R_),
              "the ranks disagree on the replica count");
  SKEIN_CHECK(opt.batch_size % R_ == 0, "batch_size must be divisible by the replica count");
  R_local_ = R_ / P_;
  seqs_per_replica_ = opt.batch_size / R_;
  team_ = make_thread_team(opt.team, opt.threads);
  groups_.resize(G_);
  for (int g = 0; g < G_; ++g) {
    acts_.push_back(
        std::make_unique<Activations>(model.config(), seqs_per_replica_, opt.seq_len, W_));
    groups_[g].barrier = std::make_unique<SpinBarrier>(W_);
  }
  const size_t n = model.num_params();
  grads_.resize(R_local_);
  for (auto& g : grads_) g.resize(n);  // each step's first backward overwrites them

  // Partition: fixed blocks; rank p owns blocks [nb*p/P, nb*(p+1)/P), thread k of a rank a
  // contiguous run of the rank's blocks.
  nblocks_ = (n + kBlockFloats - 1) / kBlockFloats;
  block_sq_.assign(nblocks_, 0.0);
  for (int p = 0; p <= P_; ++p) {
    const size_t b = nblocks_ * p / P_;
    rank_block_offsets_.push_back(b);
    rank_offsets_.push_back(std::min(n, b * kBlockFloats));
  }
  const size_t owned = owned_end() - owned_begin();
  m_.resize(owned);
  if (opt.optimizer == OptimizerKind::kAdamW) v_.resize(owned);
  if (P_ > 1) pieces_.resize(owned * P_);
  segments_.resize(opt.threads);
  for (int k = 0; k < opt.threads; ++k) {
    auto [b0, b1] = shard_blocks(k);
    const size_t lo = b0 * kBlockFloats, hi = std::min(n, b1 * kBlockFloats);
    for (const TensorView& t : model.tensors()) {
      const size_t s = std::max(lo, t.offset), e = std::min(hi, t.offset + t.size);
      if (s < e) segments_[k].push_back({s, e, t.decay});
    }
  }
  const size_t tasks = size_t(R_local_) * opt.grad_accum_steps;
  replica_loss_.assign(tasks, 0.0);
  replica_weight_.assign(tasks, 0.0);
  my_terms_.assign(tasks, 0.0);
  all_terms_.assign(tasks * P_, 0.0);
  tree_terms_.assign(opt.threads, std::vector<float*>(std::max(R_local_, P_)));
  replica_fwd_s_.assign(R_local_, 0.0);
  replica_bwd_s_.assign(R_local_, 0.0);
}

Workers Trainer::workers(int k) const {
  return {k % W_, W_, groups_[k / W_].barrier.get()};
}

// The group's thread 0 takes the next replica from the counter; every thread of the group gets it
// after the group's barrier. Before thread 0 takes another, the group meets again (backward's
// last barrier, or evaluate's), so no thread still reads the old one.
int Trainer::next_group_task(int g, const Workers& w) {
  if (w.index == 0) groups_[g].task = next_task_.fetch_add(1, std::memory_order_relaxed);
  w.sync();
  return groups_[g].task;
}

std::pair<size_t, size_t> Trainer::shard_blocks(int k) const {
  const size_t K = team_->size();
  const size_t b0 = rank_block_offsets_[rank_], nb = rank_block_offsets_[rank_ + 1] - b0;
  return {b0 + nb * k / K, b0 + nb * (k + 1) / K};
}

std::string MemoryReport::describe() const {
  auto mib = [](double b) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / (1 << 20));
    return std::string(buf);
  };
  std::string s = "parameters " + mib(double(params)) + ", gradients " + std::to_string(replicas) +
                  " x " + mib(replicas ? double(gradients) / replicas : 0) + ", optimizer state " +
                  mib(double(optimizer)) + ", activations " + std::to_string(groups) + " x " +
                  mib(groups ? double(activations) / groups : 0);
  if (exchange) s += ", exchange " + mib(double(exchange));
  return s + " = " + mib(double(total()));
}

MemoryReport Trainer::memory() const {
  MemoryReport r;
  const size_t n = model_.num_params() * sizeof(float);
  r.params = n;
  r.gradients = grads_.size() * n;
  r.optimizer = (m_.size() + v_.size()) * sizeof(float);
  for (const auto& a : acts_) r.activations += a->num_floats() * sizeof(float);
  r.exchange = pieces_.size() * sizeof(float);
  r.replicas = R_local_;
  r.threads = team_->size();
  r.groups = G_;
  return r;
}

MemoryReport Trainer::estimate_memory(const GptConfig& cfg, const TrainerOptions& opt, int P,
                                      int rank) {
  MemoryReport r;
  const int W = std::max(1, opt.threads_per_replica), G = opt.threads / W;
  const int R = opt.replicas > 0 ? opt.replicas : G * P;
  const size_t n = Model::num_params_for(cfg);
  const size_t nblocks = (n + kBlockFloats - 1) / kBlockFloats;
  const size_t begin = std::min(n, nblocks * rank / P * kBlockFloats),
               end = std::min(n, nblocks * (rank + 1) / P * kBlockFloats);
  const size_t owned = end - begin;
  r.params = n * sizeof(float);
  r.replicas = R / P;
  r.threads = opt.threads;
  r.groups = G;
  r.gradients = size_t(r.replicas) * n * sizeof(float);
  r.optimizer = (opt.optimizer == OptimizerKind::kAdamW ? 2 : 1) * owned * sizeof(float);
  r.activations =
      size_t(G) * Activations::floats_for(cfg, opt.batch_size / R, opt.seq_len, W) * sizeof(float);
  r.exchange = P > 1 ? owned * P * sizeof(float) : 0;
  return r;
}

// Collective, so whether v takes part is decided by the optimizer (the same on every rank), never
// by this rank's v_.size(): a rank may own no blocks (a model of fewer blocks than ranks), and if
// it skipped the second gather, the others would pair it with its next collective.
void Trainer::gather_state(float* m_full, float* v_full) {
  comm_->gather_ranges(m_.data(), rank_offsets_, m_full);
  if (opt_.optimizer == OptimizerKind::kAdamW)
    comm_->gather_ranges(v_.data(), rank_offsets_, v_full);
}

void Trainer::scatter_state(const float* m_full, const float* v_full) {
  comm_->scatter_ranges(m_full, rank_offsets_, m_.data());
  if (opt_.optimizer == OptimizerKind::kAdamW)
    comm_->scatter_ranges(v_full, rank_offsets_, v_.data());
}

StepStats Trainer::step(const int32_t* inputs, const int32_t* targets) {
  const int A = opt_.grad_accum_steps, T = opt_.seq_len;
  const size_t replica_tokens = size_t(seqs_per_replica_) * T;
  // Each (micro-step, replica) loss is weighted by its share of the step's targets over all
  // ranks, so the step's loss and gradient are those of the mean over all targets.
  long total = 0;
  for (int i = 0; i < A * R_local_; ++i) {
    replica_weight_[i] =
        count_targets(targets + i * replica_tokens, static_cast<int>(replica_tokens));
    total += static_cast<long>(replica_weight_[i]);
  }
  const double comm0 = comm_->seconds();
  total = comm_->sum(total);
  for (auto& w : replica_weight_) w = total ? w / double(total) : 0.0;

  StepStats stats;
  next_task_.store(0, std::memory_order_relaxed);
  const double t0 = now_s();
  team_->run([&](int k) { run_thread(k, inputs, targets, &stats); });
  stats.total_s = now_s() - t0;

  // The loss: the weighted terms of every (micro-step, replica) of every rank, summed in the
  // order of one process (micro-step, then global replica), so it is the same on every rank.
  const int local = A * R_local_;
  for (int i = 0; i < local; ++i) my_terms_[i] = replica_weight_[i] * replica_loss_[i];
  comm_->allgather_bytes(my_terms_.data(), local * sizeof(double), all_terms_.data());
  double loss = 0;
  for (int a = 0; a < A; ++a)
    for (int p = 0; p < P_; ++p)
      for (int r = 0; r < R_local_; ++r) loss += all_terms_[size_t(p) * local + a * R_local_ + r];
  stats.loss = static_cast<float>(loss);
  double fwd = 0, bwd = 0;
  for (int r = 0; r < R_local_; ++r) fwd += replica_fwd_s_[r], bwd += replica_bwd_s_[r];
  const double compute = stats.forward_s;  // thread 0 stored the compute phase's wall time here
  stats.forward_s = fwd + bwd > 0 ? compute * fwd / (fwd + bwd) : 0;
  stats.backward_s = compute - stats.forward_s;
  stats.comm_s = comm_->seconds() - comm0;
  if (!stats.skipped) ++step_;
  stats.step = step_;
  return stats;
}

float Trainer::evaluate(const int32_t* inputs, const int32_t* targets) {
  const size_t replica_tokens = size_t(seqs_per_replica_) * opt_.seq_len;
  const size_t first = size_t(rank_) * R_local_;                // this rank's first replica
  std::vector<double> mine(2 * R_local_), all(2 * size_t(R_));  // (loss, count) per replica
  for (int r = 0; r < R_local_; ++r)
    mine[2 * r + 1] =
        count_targets(targets + (first + r) * replica_tokens, static_cast<int>(replica_tokens));
  next_task_.store(0, std::memory_order_relaxed);
  team_->run([&](int k) {
    const int g = k / W_;
    const Workers w = workers(k);
    for (int r; (r = next_group_task(g, w)) < R_local_;) {
      const size_t off = (first + r) * replica_tokens;
      const float loss = model_.forward(*acts_[g], inputs + off, targets + off, w);
      if (w.index == 0) mine[2 * r] = loss;
      w.sync();  // the task is read by every thread of the group before thread 0 takes the next
    }
  });
  comm_->allgather_bytes(mine.data(), mine.size() * sizeof(double), all.data());
  double sum = 0, n = 0;
  for (int r = 0; r < R_; ++r) sum += all[2 * r] * all[2 * r + 1], n += all[2 * r + 1];
  return n > 0 ? static_cast<float>(sum / n) : 0.0f;
}

void Trainer::run_thread(int k, const int32_t* inputs, const int32_t* targets, StepStats* stats) {
  const int A = opt_.grad_accum_steps, T = opt_.seq_len, K = team_->size();
  const size_t replica_tokens = size_t(seqs_per_replica_) * T;
  const size_t micro_tokens = size_t(R_local_) * replica_tokens;  // this rank's micro-batch
  const double t0 = now_s();

  // Phase 1: this rank's replicas, handed out dynamically to the groups; each into its own
  // gradient buffer, by the group's W threads together.
  const int grp = k / W_;
  Activations& acts = *acts_[grp];
  const Workers w = workers(k);
  for (int r; (r = next_group_task(grp, w)) < R_local_;) {
    double fwd = 0, bwd = 0;
    for (int a = 0; a < A; ++a) {
      const size_t off = a * micro_tokens + r * replica_tokens;
      const int i = a * R_local_ + r;
      const double ta = now_s();
      const float loss = model_.forward(acts, inputs + off, targets + off, w);
      if (w.index == 0) replica_loss_[i] = loss;
      const double tb = now_s();
      // The first micro-step writes the replica's buffer (its old content is last step's), the
      // others add to it: no buffer is ever zeroed.
      model_.backward(acts, grads_[r].data(), static_cast<float>(replica_weight_[i]),
                      a == 0 ? Model::GradMode::kOverwrite : Model::GradMode::kAccumulate, w);
      fwd += tb - ta;
      bwd += now_s() - tb;
    }
    if (w.index == 0) {
      replica_fwd_s_[r] = fwd;
      replica_bwd_s_[r] = bwd;
    }
    // (backward ends with the group's barrier: every thread has read the task)
  }
  team_->barrier();
  const double t1 = now_s();

  // Phase 2: the replica tree into grads_[0]; with one rank over this thread's shard, with
  // several over its share of the whole vector, which then goes to the owners. One squared-norm
  // partial per owned block, taken right after the block's sum, while it is still in cache.
  const size_t n = model_.num_params();
  const auto [b0, b1] = shard_blocks(k);
  float* g = grads_[0].data();
  std::vector<float*>& terms = tree_terms_[k];
  auto block_norm = [&](size_t b) {
    const size_t lo = b * kBlockFloats, hi = std::min(n, lo + kBlockFloats);
    block_sq_[b] = squared_norm(g + lo, static_cast<long>(hi - lo));
  };
  auto reduce_replicas = [&](size_t bb, size_t be, bool owned) {
    for (size_t b = bb; b < be; ++b) {
      const size_t lo = b * kBlockFloats, hi = std::min(n, lo + kBlockFloats);
      for (int r = 0; r < R_local_; ++r) terms[r] = grads_[r].data() + lo;
      tree_sum(terms.data(), R_local_, hi - lo);
      if (owned) block_norm(b);
    }
  };
  if (P_ == 1) {
    reduce_replicas(b0, b1, true);
  } else {
    const size_t a0 = nblocks_ * k / K, a1 = nblocks_ * (k + 1) / K;
    reduce_replicas(a0, a1, false);
    team_->barrier();
    if (k == 0) comm_->exchange_pieces(g, rank_offsets_, pieces_.data());
    team_->barrier();
    // This thread's owned blocks: the P pieces summed by the tree, in rank order, into g.
    const size_t own_lo = owned_begin(), owned = owned_end() - own_lo;
    for (size_t b = b0; b < b1; ++b) {
      const size_t lo = b * kBlockFloats, hi = std::min(n, lo + kBlockFloats);
      for (int p = 0; p < P_; ++p) terms[p] = pieces_.data() + p * owned + (lo - own_lo);
      tree_sum(terms.data(), P_, hi - lo);
      const float* sum = terms[0];
      for (size_t i = 0; i < hi - lo; ++i) g[lo + i] = sum[i];  // a loop, not memmove: see test.sh
      block_norm(b);
    }
  }
  team_->barrier();
  if (P_ > 1) {
    if (k == 0) comm_->allgather_ranges(block_sq_.data(), sizeof(double), rank_block_offsets_);
    team_->barrier();
  }
  const double t2 = now_s();

  // Phase 3: global norm from the block partials in block order (the same on every thread and
  // rank), then the update of this shard; ranks then share their updated parameters.
  double sq = 0;
  for (double s : block_sq_) sq += s;
  const double norm = std::sqrt(sq);
  const bool finite = std::isfinite(norm);
  const float scale = clip_factor(norm, opt_.max_grad_norm);
  const float lr = learning_rate(opt_.schedule, step_);
  const size_t own_lo = owned_begin();
  if (finite) {
    for (const Segment& s : segments_[k]) {
      const long len = static_cast<long>(s.end - s.begin);
      float* m = m_.data() + (s.begin - own_lo);
      if (opt_.optimizer == OptimizerKind::kAdamW) {
        AdamWHyper h = opt_.adamw;
        h.lr = lr;
        adamw_update(model_.params() + s.begin, g + s.begin, m, v_.data() + (s.begin - own_lo), len,
                     h, step_ + 1, s.decay, scale);
      } else {
        SgdHyper h = opt_.sgd;
        h.lr = lr;
        sgd_update(model_.params() + s.begin, g + s.begin, m, len, h, s.decay, scale);
      }
    }
  }
  if (P_ > 1) {
    team_->barrier();
    if (k == 0 && finite) comm_->allgather_ranges(model_.params(), sizeof(float), rank_offsets_);
  }
  if (k == 0) {
    const double t3 = now_s();
    stats->grad_norm = norm;
    stats->lr = lr;
    stats->skipped = !finite;
    stats->forward_s = t1 - t0;  // the compute phase; split into forward/backward by step()
    stats->reduce_s = t2 - t1;
    stats->optimizer_s = t3 - t2;
  }
}

Status check_fits_in_memory(const GptConfig& cfg, const TrainerOptions& opt, int P, int rank,
                            int ranks_on_machine, double extra_bytes, bool gathers_state,
                            size_t available_bytes) {
  if (available_bytes == 0) return Status();
  const double gib = 1024.0 * 1024 * 1024, avail = double(available_bytes);
  const int W = std::max(1, opt.threads_per_replica);
  const int R = opt.replicas > 0 ? opt.replicas : opt.threads / W * P;
  // The same terms as estimate_memory, in doubles: an absurd shape is refused on these alone,
  // before the exact count (which builds the tensor table) could overflow or itself exhaust
  // memory.
  const double C = cfg.d_model, V = cfg.vocab_size, L = cfg.n_layer, T = cfg.seq_len,
               NH = cfg.n_head, Bq = double(opt.batch_size) / R, G = double(opt.threads / W);
  const double QKV = cfg.qkv_width(), FC = cfg.fc_width(),
               wide = std::max({QKV, FC, double(cfg.ffn())});
  // (the embedding table once more when the output projection is its own matrix)
  const double param_bytes =
      4 * (matmul_weights(cfg) + (cfg.tied ? 0 : V * C) +
           (cfg.position == Position::kLearned ? T * C : 0) + L * (QKV + FC + 6 * C));
  double need = param_bytes * (1 + double(R) / P + 2) +
                4 * G *
                    (L * Bq * T * (QKV + FC + 3 * C + 4 + 2 * NH) +
                     Bq * T * (4 * C + 2 * wide + V + 5) + 2 * W * T * T);
  double once = gathers_state ? 2 * param_bytes : 0;  // rank 0's whole optimizer state at a save
  std::string parts;
  if ((need + extra_bytes) * ranks_on_machine + once <= 2 * avail) {
    const MemoryReport r = Trainer::estimate_memory(cfg, opt, P, rank);
    need = double(r.total());
    once = gathers_state ? 2.0 * r.params : 0;
    parts = " (" + r.describe() + ")";
  }
  need += extra_bytes;
  const double total = need * ranks_on_machine + once;
  if (total <= avail) return Status();
  char buf[256];
  if (ranks_on_machine > 1)
    std::snprintf(buf, sizeof(buf),
                  "the run needs about %.2f GiB of memory per rank, %.2f GiB for the %d ranks on "
                  "this machine, which has %.2f GiB available",
                  need / gib, total / gib, ranks_on_machine, avail / gib);
  else
    std::snprintf(buf, sizeof(buf),
                  "the run needs about %.2f GiB of memory%s, and this machine has %.2f GiB "
                  "available",
                  total / gib, P > 1 ? " per rank" : "", avail / gib);
  return Status::error(buf + parts +
                       "\nHINT: a smaller model (model.d_model, model.n_layer, model.vocab_size), "
                       "shorter sequences (model.seq_len) or a smaller run.batch_size; each "
                       "replica holds a full gradient buffer (run.replicas) and each group of "
                       "run.threads_per_replica threads its activations (run.threads): more "
                       "threads per replica need less");
}

int fastest_thread_count(Model& model, TrainerOptions opt, const int32_t* inputs,
                         const int32_t* targets, int cores,
                         const std::function<void(int, double)>& report) {
  opt.schedule = {ScheduleKind::kConstant, 0.0f, 0.0f, 0, 1};
  int best = cores;
  double best_t = INFINITY;
  const int W = std::max(1, opt.threads_per_replica);
  for (int k = W; k <= cores; k += W) {  // whole groups of W threads
    opt.threads = k;
    Trainer probe(model, opt);
    probe.step(inputs, targets);
    const double t0 = now_s();
    for (int i = 0; i < 2; ++i) probe.step(inputs, targets);
    const double t = (now_s() - t0) / 2;
    report(k, t);
    if (t < best_t * 0.97) best = k, best_t = t;
  }
  return best;
}

}  // namespace skein
