#include "data/loader.h"

#include <algorithm>
#include <chrono>

#include "base/rng.h"

namespace skein {

namespace {

Status check_positive(int value, const char* name, const char* hint) {
  if (value >= 1) return {};
  return Status::error(std::string("loader option ") + name + " is " + std::to_string(value) +
                       ", expected at least 1. HINT: " + hint);
}

void resize_batch(int B, int T, Batch* out) {
  const size_t n = size_t(B) * T;
  out->B = B;
  out->T = T;
  if (out->inputs.size() != n) out->inputs.resize(n);
  if (out->targets.size() != n) out->targets.resize(n);
}

// Token window of T+1 at `w` into row i of the batch.
void copy_window(const uint16_t* w, int T, int i, Batch* out) {
  int32_t* in = out->inputs.data() + size_t(i) * T;
  int32_t* tg = out->targets.data() + size_t(i) * T;
  for (int t = 0; t < T; ++t) in[t] = w[t];
  for (int t = 0; t < T; ++t) tg[t] = w[t + 1];
}

}  // namespace

StatusOr<ShardSet> ShardSet::open(const std::vector<std::string>& paths, int T, int vocab_size,
                                  int64_t window_stride) {
  SKEIN_CHECK(T >= 1 && window_stride >= 1);
  if (paths.empty()) {
    return Status::error(
        "no shards given: expected at least one token shard path. HINT: make shards with "
        "prepare_data --out DIR FILE..., then pass DIR/train_*.bin (or DIR/val_*.bin)");
  }
  ShardSet set;
  set.T_ = T;
  set.stride_ = window_stride;
  set.first_window_.push_back(0);
  for (const auto& path : paths) {
    auto shard = Shard::open(path, vocab_size, int64_t(T) + 1);
    if (!shard.ok()) return shard.status();
    const int64_t n = shard->size();
    set.first_window_.push_back(set.first_window_.back() + (n - T - 1) / window_stride + 1);
    set.shards_.push_back(std::move(*shard));
  }
  return set;
}

const uint16_t* ShardSet::window(int64_t w) const {
  SKEIN_CHECK(w >= 0 && w < windows());
  const auto it = std::upper_bound(first_window_.begin(), first_window_.end(), w);
  const size_t k = static_cast<size_t>(it - first_window_.begin()) - 1;
  return shards_[k].tokens() + (w - first_window_[k]) * stride_;
}

StatusOr<std::unique_ptr<Loader>> Loader::open(const LoaderOptions& o) {
  SKEIN_RETURN_IF_ERROR(check_positive(o.B, "B", "sequences per batch must be positive"));
  SKEIN_RETURN_IF_ERROR(check_positive(o.T, "T", "tokens per sequence must be positive"));
  SKEIN_RETURN_IF_ERROR(check_positive(o.prefetch, "prefetch", "prepare at least one batch ahead"));
  SKEIN_RETURN_IF_ERROR(check_positive(o.threads, "threads", "use at least one producer"));
  if (o.rank < 0 || o.ranks < 1 || o.rank >= o.ranks) {
    return Status::error("loader options rank = " + std::to_string(o.rank) +
                         ", ranks = " + std::to_string(o.ranks) + ": expected 0 <= rank < ranks");
  }
  if (o.micro_steps < 1 || o.B % o.micro_steps != 0) {
    return Status::error("loader option micro_steps = " + std::to_string(o.micro_steps) +
                         ": must be positive and divide B = " + std::to_string(o.B));
  }
  SKEIN_RETURN_IF_ERROR(check_vocab_size(o.vocab_size, "loader option vocab_size"));
  auto shards = ShardSet::open(o.shards, o.T, o.vocab_size);
  if (!shards.ok()) return shards.status();
  return std::unique_ptr<Loader>(new Loader(o, std::move(*shards)));
}

Loader::~Loader() {
  stop();
}

void Loader::fill(const LoaderOptions& o, const ShardSet& shards, long step, Batch* out) {
  SKEIN_CHECK(shards.T() == o.T);
  resize_batch(o.B, o.T, out);
  out->step = step;
  const auto windows = static_cast<unsigned __int128>(shards.windows());
  for (int i = 0; i < o.B; ++i) {
    const uint64_t b = uint64_t(o.B / o.micro_steps), a = uint64_t(i) / b, j = uint64_t(i) % b;
    const uint64_t g = a * b * uint64_t(o.ranks) + uint64_t(o.rank) * b + j;
    const uint64_t u = mix64(o.seed, static_cast<uint64_t>(step), g);
    const auto w = static_cast<int64_t>((u * windows) >> 64);  // uniform in [0, windows)
    copy_window(shards.window(w), o.T, i, out);
  }
}

void Loader::stop() {
  if (!ring_) return;
  ring_->close();
  producer_.join();
  ring_.reset();
}

void Loader::start(long first_step) {
  SKEIN_CHECK(first_step >= 0);
  stop();
  Batch prototype;
  resize_batch(opts_.B, opts_.T, &prototype);
  if (current_.inputs.size() != prototype.inputs.size()) current_ = prototype;
  ring_ = std::make_unique<RingBuffer<Batch>>(size_t(opts_.prefetch), prototype);
  expected_step_ = first_step;
  RingBuffer<Batch>* ring = ring_.get();
  producer_ = std::thread([this, ring, first_step] {
#pragma omp parallel num_threads(opts_.threads)
    {
      auto produce = [&](Batch& slot, uint64_t ticket) {
        fill(opts_, shards_, first_step + static_cast<long>(ticket), &slot);
      };
      while (ring->push_with(produce)) {
      }
    }
  });
}

const Batch& Loader::next() {
  SKEIN_CHECK(ring_, "Loader::next() before start()");
  // Swap, not copy: the slot takes current_'s buffers for a later batch.
  auto take = [this](Batch& slot) { std::swap(slot, current_); };
  auto r = ring_->try_pop_with(take);
  if (r == RingBuffer<Batch>::Result::kWouldBlock) {
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = ring_->pop_with(take);
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    SKEIN_CHECK(ok, "the loader's ring was closed while the trainer reads it");
  } else {
    SKEIN_CHECK(r == RingBuffer<Batch>::Result::kOk);
  }
  SKEIN_CHECK(current_.step == expected_step_, "batches out of order");
  ++expected_step_;
  return current_;
}

StatusOr<ValIterator> ValIterator::open(const std::vector<std::string>& shards, int B, int T,
                                        int vocab_size) {
  if (B < 1 || T < 1) {
    return Status::error("validation batch shape B=" + std::to_string(B) +
                         ", T=" + std::to_string(T) +
                         " is invalid: expected both at least 1. HINT: fix the batch size and "
                         "sequence length");
  }
  SKEIN_RETURN_IF_ERROR(check_vocab_size(vocab_size, "validation vocab_size"));
  auto set = ShardSet::open(shards, T, vocab_size, int64_t(T) + 1);
  if (!set.ok()) return set.status();
  return ValIterator(std::move(*set), B);
}

bool ValIterator::next(Batch* out) {
  const int64_t total = shards_.windows();
  if (next_window_ >= total) return false;
  const int T = shards_.T();
  resize_batch(B_, T, out);
  out->step = static_cast<long>(next_window_ / B_);
  for (int i = 0; i < B_; ++i, ++next_window_) {
    if (next_window_ < total) {
      copy_window(shards_.window(next_window_), T, i, out);
    } else {  // padding: no targets, so the loss ignores the row
      std::fill_n(out->inputs.data() + size_t(i) * T, T, 0);
      std::fill_n(out->targets.data() + size_t(i) * T, T, -1);
    }
  }
  return true;
}

}  // namespace skein
