#include "engine/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/check.h"
#include "kernels/crossentropy.h"
#include "optimizers/clip.h"

namespace skein {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Trainer::Trainer(Model& model, const TrainerOptions& opt)
    : model_(model), opt_(opt), R_(opt.replicas > 0 ? opt.replicas : opt.threads) {
  SKEIN_CHECK(opt.threads >= 1 && opt.grad_accum_steps >= 1);
  SKEIN_CHECK(opt.batch_size % R_ == 0, "batch_size must be divisible by the replica count");
  seqs_per_replica_ = opt.batch_size / R_;
  team_ = make_thread_team(opt.team, opt.threads);
  for (int k = 0; k < opt.threads; ++k)
    acts_.push_back(std::make_unique<Activations>(model.config(), seqs_per_replica_, opt.seq_len));
  const size_t n = model.num_params();
  grads_.resize(R_);
  for (auto& g : grads_) g.resize(n);  // zero-filled; the step leaves them zero again
  m_.resize(n);
  if (opt.optimizer == OptimizerKind::kAdamW) v_.resize(n);

  // Partition: fixed blocks, thread k owns blocks [k*nb/K, (k+1)*nb/K).
  nblocks_ = (n + kBlockFloats - 1) / kBlockFloats;
  block_sq_.assign(nblocks_, 0.0);
  segments_.resize(opt.threads);
  for (int k = 0; k < opt.threads; ++k) {
    auto [b0, b1] = shard_blocks(k);
    const size_t lo = b0 * kBlockFloats, hi = std::min(n, b1 * kBlockFloats);
    for (const TensorView& t : model.tensors()) {
      const size_t s = std::max(lo, t.offset), e = std::min(hi, t.offset + t.size);
      if (s < e) segments_[k].push_back({s, e, t.decay});
    }
  }
  const size_t tasks = size_t(R_) * opt.grad_accum_steps;
  replica_loss_.assign(tasks, 0.0);
  replica_weight_.assign(tasks, 0.0);
  replica_fwd_s_.assign(R_, 0.0);
  replica_bwd_s_.assign(R_, 0.0);
}

std::pair<size_t, size_t> Trainer::shard_blocks(int k) const {
  const size_t K = team_->size();
  return {nblocks_ * k / K, nblocks_ * (k + 1) / K};
}

StepStats Trainer::step(const int32_t* inputs, const int32_t* targets) {
  const int A = opt_.grad_accum_steps, T = opt_.seq_len;
  const size_t replica_tokens = size_t(seqs_per_replica_) * T;
  // Each (micro-step, replica) loss is weighted by its share of the step's targets, so the step's
  // loss and gradient are those of the mean over all targets.
  long total = 0;
  for (int i = 0; i < A * R_; ++i) {
    replica_weight_[i] =
        count_targets(targets + i * replica_tokens, static_cast<int>(replica_tokens));
    total += static_cast<long>(replica_weight_[i]);
  }
  for (auto& w : replica_weight_) w = total ? w / double(total) : 0.0;

  StepStats stats;
  next_task_.store(0, std::memory_order_relaxed);
  const double t0 = now_s();
  team_->run([&](int k) { run_thread(k, inputs, targets, &stats); });
  stats.total_s = now_s() - t0;

  double loss = 0;
  for (int i = 0; i < A * R_; ++i) loss += replica_weight_[i] * replica_loss_[i];
  stats.loss = static_cast<float>(loss);
  double fwd = 0, bwd = 0;
  for (int r = 0; r < R_; ++r) fwd += replica_fwd_s_[r], bwd += replica_bwd_s_[r];
  const double compute = stats.forward_s;  // thread 0 stored the compute phase's wall time here
  stats.forward_s = fwd + bwd > 0 ? compute * fwd / (fwd + bwd) : 0;
  stats.backward_s = compute - stats.forward_s;
  if (!stats.skipped) ++step_;
  stats.step = step_;
  return stats;
}

float Trainer::evaluate(const int32_t* inputs, const int32_t* targets) {
  const size_t replica_tokens = size_t(seqs_per_replica_) * opt_.seq_len;
  std::vector<double> loss(R_), count(R_);
  for (int r = 0; r < R_; ++r)
    count[r] = count_targets(targets + r * replica_tokens, static_cast<int>(replica_tokens));
  next_task_.store(0, std::memory_order_relaxed);
  team_->run([&](int k) {
    for (int r; (r = next_task_.fetch_add(1, std::memory_order_relaxed)) < R_;)
      loss[r] = model_.forward(*acts_[k], inputs + r * replica_tokens, targets + r * replica_tokens);
  });
  double sum = 0, n = 0;
  for (int r = 0; r < R_; ++r) sum += loss[r] * count[r], n += count[r];
  return n > 0 ? static_cast<float>(sum / n) : 0.0f;
}

void Trainer::run_thread(int k, const int32_t* inputs, const int32_t* targets, StepStats* stats) {
  const int A = opt_.grad_accum_steps, T = opt_.seq_len;
  const size_t replica_tokens = size_t(seqs_per_replica_) * T;
  const size_t micro_tokens = size_t(opt_.batch_size) * T;
  const double t0 = now_s();

  // Phase 1: replicas, handed out dynamically; each into its own gradient buffer.
  Activations& acts = *acts_[k];
  for (int r; (r = next_task_.fetch_add(1, std::memory_order_relaxed)) < R_;) {
    double fwd = 0, bwd = 0;
    for (int a = 0; a < A; ++a) {
      const size_t off = a * micro_tokens + r * replica_tokens;
      const int i = a * R_ + r;
      const double ta = now_s();
      replica_loss_[i] = model_.forward(acts, inputs + off, targets + off);
      const double tb = now_s();
      model_.backward(acts, grads_[r].data(), static_cast<float>(replica_weight_[i]));
      fwd += tb - ta;
      bwd += now_s() - tb;
    }
    replica_fwd_s_[r] = fwd;
    replica_bwd_s_[r] = bwd;
  }
  team_->barrier();
  const double t1 = now_s();

  // Phase 2: sum this shard over replicas in replica order into grads_[0]; one norm partial per
  // block. The other replicas' buffers are zeroed here, while the shard is in cache.
  const size_t n = model_.num_params();
  const auto [b0, b1] = shard_blocks(k);
  float* g = grads_[0].data();
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * kBlockFloats, hi = std::min(n, lo + kBlockFloats);
    for (int r = 1; r < R_; ++r) {
      float* gr = grads_[r].data();
      for (size_t i = lo; i < hi; ++i) g[i] += gr[i];
      std::fill(gr + lo, gr + hi, 0.0f);
    }
    block_sq_[b] = squared_norm(g + lo, static_cast<long>(hi - lo));
  }
  team_->barrier();
  const double t2 = now_s();

  // Phase 3: global norm from the block partials in block order (the same on every thread), then
  // the update of this shard.
  double sq = 0;
  for (double s : block_sq_) sq += s;
  const double norm = std::sqrt(sq);
  const bool finite = std::isfinite(norm);
  const float scale = clip_factor(norm, opt_.max_grad_norm);
  const float lr = learning_rate(opt_.schedule, step_);
  if (finite) {
    for (const Segment& s : segments_[k]) {
      const long len = static_cast<long>(s.end - s.begin);
      if (opt_.optimizer == OptimizerKind::kAdamW) {
        AdamWHyper h = opt_.adamw;
        h.lr = lr;
        adamw_update(model_.params() + s.begin, g + s.begin, m_.data() + s.begin,
                     v_.data() + s.begin, len, h, step_ + 1, s.decay, scale);
      } else {
        SgdHyper h = opt_.sgd;
        h.lr = lr;
        sgd_update(model_.params() + s.begin, g + s.begin, m_.data() + s.begin, len, h, s.decay,
                   scale);
      }
    }
  }
  const size_t lo = b0 * kBlockFloats, hi = std::min(n, b1 * kBlockFloats);
  if (lo < hi) std::fill(g + lo, g + hi, 0.0f);
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

}  // namespace skein
