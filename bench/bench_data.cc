// Google Benchmark of the data path:
//  - Loader: batches/s and GB/s (inputs + targets as int32) delivered by next() at the char
//    config's batch shape (B=8, T=256), from a synthetic 16 Mi-token shard in a temp directory;
//    and Loader::fill alone (one thread, no ring).
//  - RingBuffer: push+pop cost on one thread, consumer throughput with 1 and 2 producers, and the
//    round-trip latency of handing an item to another thread and back.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/rng.h"
#include "data/loader.h"
#include "data/ring_buffer.h"
#include "data/shard.h"

namespace skein::bench {
namespace {

// The synthetic shard, made once per process and removed at exit.
class SyntheticShard {
 public:
  SyntheticShard() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "skein_bench_data_XXXXXX").string();
    SKEIN_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    std::vector<uint16_t> tokens(16 << 20);
    Rng rng(1);
    for (auto& t : tokens) t = static_cast<uint16_t>(rng.below(256));
    path_ = dir_ + "/train_000000.bin";
    SKEIN_CHECK(write_shard(path_, tokens).ok());
  }
  ~SyntheticShard() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

const std::string& shard_path() {
  static SyntheticShard shard;
  return shard.path();
}

LoaderOptions char_config(int threads) {
  LoaderOptions o;
  o.shards = {shard_path()};
  o.B = 8;
  o.T = 256;
  o.vocab_size = 256;
  o.prefetch = 4;
  o.threads = threads;
  return o;
}

void set_batch_rates(benchmark::State& st, const LoaderOptions& o) {
  const double bytes = 2.0 * o.B * o.T * sizeof(int32_t);  // inputs + targets
  st.counters["batches_per_s"] =
      benchmark::Counter(double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["GBps"] =
      benchmark::Counter(bytes * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_loader_next(benchmark::State& st) {
  const LoaderOptions o = char_config(static_cast<int>(st.range(0)));
  auto loader = Loader::open(o);
  SKEIN_CHECK(loader.ok());
  (*loader)->start(0);
  for (auto _ : st) benchmark::DoNotOptimize((*loader)->next().inputs.data());
  set_batch_rates(st, o);
  st.counters["wait_s"] = (*loader)->wait_seconds();
}
BENCHMARK(BM_loader_next)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

void BM_loader_fill(benchmark::State& st) {
  const LoaderOptions o = char_config(1);
  auto set = ShardSet::open(o.shards, o.T, o.vocab_size);
  SKEIN_CHECK(set.ok());
  Batch b;
  long step = 0;
  for (auto _ : st) {
    Loader::fill(o, *set, step++, &b);
    benchmark::DoNotOptimize(b.inputs.data());
  }
  set_batch_rates(st, o);
}
BENCHMARK(BM_loader_fill);

void BM_ring_push_pop_one_thread(benchmark::State& st) {
  RingBuffer<uint64_t> q(64);
  uint64_t x = 0;
  for (auto _ : st) {
    q.push(x);
    q.pop(&x);
  }
  benchmark::DoNotOptimize(x);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ring_push_pop_one_thread);

// The benchmark thread consumes; `producers` threads push as fast as they can.
void BM_ring_throughput(benchmark::State& st) {
  const int producers = static_cast<int>(st.range(0));
  RingBuffer<uint64_t> q(1024);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&q] {
      uint64_t i = 0;
      while (q.push(i++)) {
      }
    });
  }
  uint64_t x = 0;
  for (auto _ : st) q.pop(&x);
  q.close();
  while (q.pop(&x)) {
  }
  for (auto& t : threads) t.join();
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ring_throughput)->ArgName("producers")->Arg(1)->Arg(2)->UseRealTime();

// Round trip: push to a partner thread, which pushes it back on a second ring.
void BM_ring_round_trip(benchmark::State& st) {
  RingBuffer<uint64_t> there(1), back(1);
  std::thread partner([&] {
    uint64_t v = 0;
    while (there.pop(&v)) back.push(v + 1);
    back.close();
  });
  uint64_t x = 0;
  for (auto _ : st) {
    there.push(x);
    back.pop(&x);
  }
  there.close();
  partner.join();
  benchmark::DoNotOptimize(x);
}
BENCHMARK(BM_ring_round_trip)->UseRealTime();

}  // namespace
}  // namespace skein::bench

BENCHMARK_MAIN();
