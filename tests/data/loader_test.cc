#include "data/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "tests/data/data_test_util.h"

namespace skein {
namespace {

using testing::counting_tokens;
using testing::make_shard;
using testing::random_tokens;
using testing::TempDir;

// Three shards of counting tokens starting at 0, 10000 and 20000: a token tells its shard and
// position.
struct Fixture {
  TempDir dir;
  std::vector<int64_t> lengths{3000, 1500, 700};
  LoaderOptions opts;
  Fixture() {
    for (size_t k = 0; k < lengths.size(); ++k) {
      opts.shards.push_back(make_shard(dir, "train_00000" + std::to_string(k) + ".bin",
                                       counting_tokens(lengths[k], 10000 * uint32_t(k))));
    }
    opts.B = 4;
    opts.T = 16;
    opts.seed = 7;
  }
  ShardSet set() const {
    auto s = ShardSet::open(opts.shards, opts.T, opts.vocab_size);
    SKEIN_CHECK(s.ok());
    return std::move(*s);
  }
};

Batch fill(const LoaderOptions& o, const ShardSet& s, long step) {
  Batch b;
  Loader::fill(o, s, step, &b);
  return b;
}

bool same(const Batch& a, const Batch& b) {
  return a.step == b.step && a.B == b.B && a.T == b.T && a.inputs == b.inputs &&
         a.targets == b.targets;
}

TEST(Loader, BatchIsAPureFunctionOfSeedStepAndRank) {
  Fixture f;
  const ShardSet s = f.set();
  const Batch a = fill(f.opts, s, 5);
  EXPECT_EQ(a.step, 5);
  EXPECT_EQ(a.B, 4);
  EXPECT_EQ(a.T, 16);
  ASSERT_EQ(a.inputs.size(), 64u);
  EXPECT_TRUE(same(a, fill(f.opts, s, 5)));
  EXPECT_NE(a.inputs, fill(f.opts, s, 6).inputs);
  LoaderOptions other = f.opts;
  other.seed = 8;
  EXPECT_NE(a.inputs, fill(other, s, 5).inputs);
  other = f.opts;
  other.rank = 1;
  EXPECT_NE(a.inputs, fill(other, s, 5).inputs);
}

// Each row is T+1 consecutive tokens of one shard: targets are inputs shifted by one, and the
// window fits inside its shard.
TEST(Loader, RowsAreWindowsInsideOneShardWithShiftedTargets) {
  Fixture f;
  const ShardSet s = f.set();
  for (long step = 0; step < 200; ++step) {
    const Batch b = fill(f.opts, s, step);
    for (int i = 0; i < b.B; ++i) {
      const int32_t* in = &b.inputs[i * b.T];
      const int32_t* tg = &b.targets[i * b.T];
      const int k = in[0] / 10000, pos = in[0] % 10000;
      ASSERT_LT(k, 3);
      ASSERT_LE(pos + b.T, f.lengths[k] - 1) << "window runs past the end of shard " << k;
      for (int t = 0; t < b.T; ++t) {
        ASSERT_EQ(in[t], in[0] + t);
        ASSERT_EQ(tg[t], in[0] + t + 1);
      }
    }
  }
}

// Windows are uniform over all windows of all shards: shards are drawn in proportion to their
// window counts, and the first and last window of a shard are reachable.
TEST(Loader, WindowsAreDrawnUniformly) {
  Fixture f;
  f.opts.B = 64;
  const ShardSet s = f.set();
  std::map<int, int> per_shard, first_or_last;
  const int steps = 1000;
  for (long step = 0; step < steps; ++step) {
    const Batch b = fill(f.opts, s, step);
    for (int i = 0; i < b.B; ++i) {
      const int32_t x = b.inputs[i * b.T];
      ++per_shard[x / 10000];
      if (x == 20000 || x == 20000 + 700 - 17) ++first_or_last[x];
    }
  }
  const double total_windows = double(s.windows());
  EXPECT_EQ(s.windows(), (3000 - 16) + (1500 - 16) + (700 - 16));
  for (int k = 0; k < 3; ++k) {
    const double expected = steps * 64.0 * (f.lengths[k] - 16) / total_windows;
    EXPECT_NEAR(per_shard[k], expected, 0.08 * expected) << "shard " << k;
  }
  EXPECT_EQ(first_or_last.size(), 2u) << "first and last window of a shard must be drawn";
}

TEST(Loader, RanksTogetherMakeTheBiggerRankZeroBatch) {
  Fixture f;
  const ShardSet s = f.set();
  const int P = 3;
  LoaderOptions all = f.opts;
  all.B = f.opts.B * P;
  for (long step : {0L, 1L, 99L}) {
    const Batch big = fill(all, s, step);
    std::vector<int32_t> inputs, targets;
    for (int r = 0; r < P; ++r) {
      LoaderOptions o = f.opts;
      o.rank = r;
      const Batch b = fill(o, s, step);
      inputs.insert(inputs.end(), b.inputs.begin(), b.inputs.end());
      targets.insert(targets.end(), b.targets.begin(), b.targets.end());
    }
    EXPECT_EQ(inputs, big.inputs);
    EXPECT_EQ(targets, big.targets);
  }
}

// With gradient accumulation, micro-step a of P ranks together is micro-step a of one process
// with P times the batch, sequence for sequence (so ranks reproduce one process's replicas).
TEST(Loader, RanksTogetherMakeEachMicroStepOfTheBiggerBatch) {
  Fixture f;
  const ShardSet s = f.set();
  const int P = 2, A = 2;
  const int b = f.opts.B / A;  // sequences per rank and micro-step
  const size_t row = size_t(f.opts.T);
  LoaderOptions all = f.opts;
  all.B = f.opts.B * P;
  all.micro_steps = A;
  for (long step : {0L, 7L}) {
    const Batch big = fill(all, s, step);
    for (int r = 0; r < P; ++r) {
      LoaderOptions o = f.opts;
      o.rank = r;
      o.ranks = P;
      o.micro_steps = A;
      const Batch mine = fill(o, s, step);
      for (int a = 0; a < A; ++a)
        for (int j = 0; j < b; ++j) {
          const size_t from = (size_t(a) * b + j) * row;
          const size_t to = (size_t(a) * b * P + size_t(r) * b + j) * row;
          EXPECT_TRUE(std::equal(mine.inputs.begin() + from, mine.inputs.begin() + from + row,
                                 big.inputs.begin() + to))
              << "step " << step << " rank " << r << " micro-step " << a << " sequence " << j;
        }
    }
    // One process: the micro-step split does not move any sequence.
    LoaderOptions one = all;
    one.micro_steps = 1;
    EXPECT_EQ(fill(one, s, step).inputs, big.inputs);
  }
}

TEST(Loader, NextReturnsFillOfEachStepInOrder) {
  Fixture f;
  for (int threads : {1, 3}) {
    for (int prefetch : {1, 2, 7}) {
      f.opts.threads = threads;
      f.opts.prefetch = prefetch;
      auto loader = Loader::open(f.opts);
      ASSERT_TRUE(loader.ok()) << loader.status().message();
      (*loader)->start(0);
      for (long step = 0; step < 60; ++step) {
        const Batch& b = (*loader)->next();
        ASSERT_TRUE(same(b, fill(f.opts, (*loader)->shard_set(), step)))
            << "step " << step << " threads " << threads << " prefetch " << prefetch;
      }
    }
  }
}

TEST(Loader, StartResumesExactly) {
  Fixture f;
  auto a = Loader::open(f.opts);
  auto b = Loader::open(f.opts);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->start(0);
  std::vector<Batch> run;
  for (int i = 0; i < 20; ++i) run.push_back((*a)->next());
  (*b)->start(12);
  for (int i = 12; i < 20; ++i) EXPECT_TRUE(same((*b)->next(), run[i])) << "step " << i;
  (*a)->start(3);  // restart a running loader, e.g. after loading a checkpoint
  for (int i = 3; i < 10; ++i) EXPECT_TRUE(same((*a)->next(), run[i])) << "step " << i;
}

TEST(Loader, DestructorStopsProducersBlockedOnAFullRing) {
  Fixture f;
  f.opts.prefetch = 2;
  f.opts.threads = 3;
  for (int i = 0; i < 20; ++i) {
    auto loader = Loader::open(f.opts);
    ASSERT_TRUE(loader.ok());
    (*loader)->start(i);
    if (i % 2) (*loader)->next();
  }  // each destructor must return (a hang fails by ctest timeout)
}

TEST(Loader, ReportsTimeSpentWaiting) {
  Fixture f;
  {
    std::vector<uint16_t> big = counting_tokens(1 << 20);
    f.opts.shards = {make_shard(f.dir, "big.bin", big)};
  }
  f.opts.B = 64;
  f.opts.T = 4096;  // ~1 MB of tokens per batch: slow to make, nothing to consume
  f.opts.threads = 1;
  f.opts.prefetch = 1;
  auto loader = Loader::open(f.opts);
  ASSERT_TRUE(loader.ok());
  EXPECT_EQ((*loader)->wait_seconds(), 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  (*loader)->start(0);
  for (int i = 0; i < 20; ++i) (*loader)->next();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT((*loader)->wait_seconds(), 0.0);
  EXPECT_LE((*loader)->wait_seconds(), elapsed);
}

void expect_open_error(const LoaderOptions& o, const std::string& want) {
  auto loader = Loader::open(o);
  ASSERT_FALSE(loader.ok()) << "expected an error containing: " << want;
  EXPECT_NE(loader.status().message().find(want), std::string::npos) << loader.status().message();
}

TEST(Loader, OpenRefusesBadOptionsAndShards) {
  Fixture f;
  LoaderOptions o = f.opts;
  o.shards.clear();
  expect_open_error(o, "no shards given");
  o = f.opts;
  o.B = 0;
  expect_open_error(o, "option B is 0");
  o = f.opts;
  o.T = -3;
  expect_open_error(o, "option T is -3");
  o = f.opts;
  o.prefetch = 0;
  expect_open_error(o, "option prefetch is 0");
  o = f.opts;
  o.threads = 0;
  expect_open_error(o, "option threads is 0");
  o = f.opts;
  o.rank = -1;
  expect_open_error(o, "rank = -1, ranks = 1: expected 0 <= rank < ranks");
  o = f.opts;
  o.rank = 2;
  o.ranks = 2;
  expect_open_error(o, "rank = 2, ranks = 2");
  o = f.opts;
  o.micro_steps = 3;  // B = 4
  expect_open_error(o, "micro_steps = 3: must be positive and divide B = 4");
  o = f.opts;
  o.vocab_size = 65537;
  expect_open_error(o, "vocabulary size 65537 is out of range");
  o = f.opts;
  o.shards.push_back(f.dir.file("missing.bin"));
  expect_open_error(o, "missing.bin");
  o = f.opts;
  o.T = 700;  // shard 2 has 700 tokens: one short of T+1
  expect_open_error(o, "train_000002.bin holds 700 tokens, fewer than the 701");
  o = f.opts;
  o.vocab_size = 20500;  // shard 2 holds ids 20000..20699
  expect_open_error(o, "train_000002.bin has token id 20500 at token offset 500");
  o = f.opts;
  testing::write_bytes(f.dir.file("junk.bin"), std::string(2048, 'x'));
  o.shards.push_back(f.dir.file("junk.bin"));
  expect_open_error(o, "junk.bin has magic number");
  o = f.opts;
  testing::write_bytes(f.dir.file("v2.bin"),
                       testing::raw_header(20240520, 2, 100) + std::string(400, '\0'));
  o.shards.push_back(f.dir.file("v2.bin"));
  expect_open_error(o, "v2.bin has version 2, expected 1");
  o = f.opts;
  testing::write_bytes(f.dir.file("cut.bin"),
                       testing::raw_header(20240520, 1, 100) + std::string(100, '\0'));
  o.shards.push_back(f.dir.file("cut.bin"));
  expect_open_error(o, "cut.bin is truncated");
}

TEST(ValIterator, CoversTheValShardsInOrderInDisjointWindows) {
  TempDir dir;
  const auto t0 = counting_tokens(105, 0), t1 = counting_tokens(50, 1000);
  const std::vector<std::string> shards = {make_shard(dir, "val_000000.bin", t0),
                                           make_shard(dir, "val_000001.bin", t1)};
  const int B = 4, T = 9;  // windows of 10: 10 from shard 0 (tail of 5 unused), 5 from shard 1
  auto it = ValIterator::open(shards, B, T, 65536);
  ASSERT_TRUE(it.ok()) << it.status().message();
  EXPECT_EQ(it->num_sequences(), 15);
  EXPECT_EQ(it->num_batches(), 4);
  std::vector<int32_t> starts;
  for (int pass = 0; pass < 2; ++pass) {
    Batch b;
    long batches = 0;
    starts.clear();
    while (it->next(&b)) {
      EXPECT_EQ(b.step, batches++);
      ASSERT_EQ(b.B, B);
      ASSERT_EQ(b.T, T);
      for (int i = 0; i < B; ++i) {
        const int32_t* in = &b.inputs[i * T];
        const int32_t* tg = &b.targets[i * T];
        if (tg[0] == -1) {  // padding
          for (int t = 0; t < T; ++t) EXPECT_TRUE(in[t] == 0 && tg[t] == -1);
          continue;
        }
        starts.push_back(in[0]);
        for (int t = 0; t < T; ++t) {
          ASSERT_EQ(in[t], in[0] + t);
          ASSERT_EQ(tg[t], in[0] + t + 1);
        }
      }
    }
    EXPECT_EQ(batches, 4);
    EXPECT_EQ(starts, (std::vector<int32_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 1000, 1010, 1020,
                                            1030, 1040}));
    it->reset();
  }
}

TEST(ValIterator, RefusesShortShardsAndBadShapes) {
  TempDir dir;
  const std::string s = make_shard(dir, "val_000000.bin", random_tokens(9, 256, 1));
  auto it = ValIterator::open({s}, 2, 9, 256);
  ASSERT_FALSE(it.ok());
  EXPECT_NE(it.status().message().find("fewer than the 10"), std::string::npos)
      << it.status().message();
  EXPECT_FALSE(ValIterator::open({s}, 0, 4, 256).ok());
  EXPECT_FALSE(ValIterator::open({}, 2, 4, 256).ok());
  const std::string bad = make_shard(dir, "val_000001.bin", {1, 2, 150, 3, 4, 5});
  it = ValIterator::open({bad}, 1, 4, 100);
  ASSERT_FALSE(it.ok());
  EXPECT_NE(it.status().message().find("token id 150 at token offset 2"), std::string::npos)
      << it.status().message();
}

}  // namespace
}  // namespace skein
