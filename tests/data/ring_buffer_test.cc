#include "data/ring_buffer.h"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

namespace skein {
namespace {

using Result = RingBuffer<int>::Result;
using namespace std::chrono_literals;

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

TEST(RingBuffer, FifoWithCapacityLimit) {
  RingBuffer<int> q(3);
  EXPECT_EQ(q.capacity(), 3u);
  int x = -1;
  EXPECT_EQ(q.try_pop_with([&](int& v) { x = v; }), Result::kWouldBlock);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(q.try_push_with([&](int& v, uint64_t ticket) {
      EXPECT_EQ(ticket, uint64_t(i));
      v = 10 + i;
    }),
              Result::kOk);
  }
  EXPECT_EQ(q.try_push_with([](int&, uint64_t) { ADD_FAILURE() << "filled a full ring"; }),
            Result::kWouldBlock);
  for (int round = 0; round < 10; ++round) {  // wrap around several times
    ASSERT_TRUE(q.pop(&x));
    EXPECT_EQ(x, 10 + round);
    ASSERT_TRUE(q.push(13 + round));
  }
}

// Regression: with Vyukov's original sequence numbers a ring of capacity 1 cannot tell a full
// slot from a free one, and a second push overwrote the first item.
TEST(RingBuffer, CapacityOneHoldsOneItem) {
  RingBuffer<int> q(1);
  ASSERT_TRUE(q.push(1));
  EXPECT_EQ(q.try_push_with([](int& v, uint64_t) { v = 2; }), Result::kWouldBlock);
  int x = 0;
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 1);
  EXPECT_EQ(q.try_pop_with([](int&) {}), Result::kWouldBlock);
  ASSERT_TRUE(q.push(3));
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 3);
}

// Items are filled in place and swapped out: the slots' buffers circulate, nothing is allocated.
TEST(RingBuffer, SlotsArePreallocatedAndReused) {
  RingBuffer<std::vector<int>> q(4, std::vector<int>(1000));
  std::vector<int> mine(1000);
  std::set<const int*> buffers;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(q.push_with([&](std::vector<int>& slot, uint64_t ticket) {
      ASSERT_EQ(slot.size(), 1000u);
      buffers.insert(slot.data());
      slot[0] = static_cast<int>(ticket);
    }));
    ASSERT_TRUE(q.pop(&mine));
    EXPECT_EQ(mine[0], i);
    buffers.insert(mine.data());
  }
  EXPECT_LE(buffers.size(), 5u);  // 4 slots + the consumer's own buffer
}

TEST(RingBuffer, CloseRefusesPushesAndDrainsPops) {
  RingBuffer<int> q(4);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.push(2));
  q.close();
  q.close();  // idempotent
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.push(3));
  EXPECT_EQ(q.try_push_with([](int&, uint64_t) {}), Result::kClosed);
  int x = 0;
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 1);
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 2);
  EXPECT_FALSE(q.pop(&x));
  EXPECT_EQ(q.try_pop_with([](int&) {}), Result::kClosed);
}

// P producers push N items each, tagged (producer, sequence); consumers must see every item
// exactly once and, with one consumer, each producer's items in order. A small capacity makes
// producers and consumers block and wake up constantly.
void stress(int producers, int consumers, size_t capacity, uint64_t total) {
  RingBuffer<uint64_t> q(capacity);
  const uint64_t per = total / producers;
  std::vector<std::vector<uint64_t>> seen(consumers);
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      seen[c].reserve(total);
      uint64_t v = 0;
      while (q.pop(&v)) seen[c].push_back(v);
    });
  }
  std::vector<std::thread> writers;
  for (int p = 0; p < producers; ++p) {
    writers.emplace_back([&, p] {
      for (uint64_t i = 0; i < per; ++i) ASSERT_TRUE(q.push(uint64_t(p) << 32 | i));
    });
  }
  for (auto& t : writers) t.join();
  q.close();
  for (auto& t : threads) t.join();

  std::vector<uint64_t> next(producers, 0);
  std::vector<std::vector<bool>> got(producers, std::vector<bool>(per, false));
  uint64_t count = 0;
  for (int c = 0; c < consumers; ++c) {
    std::vector<int64_t> last(producers, -1);
    for (uint64_t v : seen[c]) {
      const uint64_t p = v >> 32, i = v & 0xFFFFFFFFu;
      ASSERT_LT(p, uint64_t(producers));
      ASSERT_LT(i, per);
      ASSERT_FALSE(got[p][i]) << "duplicate " << p << ":" << i;
      got[p][i] = true;
      // Per producer, any one consumer sees increasing sequence numbers; with one consumer,
      // exactly 0, 1, 2, ...
      ASSERT_GT(int64_t(i), last[p]) << "producer " << p << " out of order";
      last[p] = int64_t(i);
      if (consumers == 1) {
        ASSERT_EQ(i, next[p]++);
      }
      ++count;
    }
  }
  EXPECT_EQ(count, per * producers) << "items lost";
}

TEST(RingBuffer, StressFourProducersOneConsumerMillionItems) {
  stress(4, 1, 8, 1'000'000);
}

TEST(RingBuffer, StressTwoProducersTwoConsumers) {
  stress(2, 2, 4, 400'000);
}

TEST(RingBuffer, StressCapacityOne) {
  stress(3, 1, 1, 100'000);
}

TEST(RingBuffer, CloseWakesProducersBlockedOnFull) {
  RingBuffer<int> q(2);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.push(2));
  std::atomic<int> returned{0}, refused{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back([&] {
      if (!q.push(99)) ++refused;
      ++returned;
    });
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(returned.load(), 0) << "push into a full ring must block";
  q.close();
  for (auto& t : producers) t.join();
  EXPECT_EQ(refused.load(), 3);
  int x = 0;  // what was in the ring before close is still delivered
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 1);
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 2);
  EXPECT_FALSE(q.pop(&x));
}

TEST(RingBuffer, CloseWakesConsumerBlockedOnEmpty) {
  RingBuffer<int> q(4);
  std::atomic<bool> done{false};
  bool got = true;
  double cpu = 0;
  std::thread consumer([&] {
    const double t0 = thread_cpu_seconds();
    int x = 0;
    got = q.pop(&x);
    cpu = thread_cpu_seconds() - t0;
    done = true;
  });
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(done.load()) << "pop from an empty ring must block";
  q.close();
  consumer.join();
  EXPECT_FALSE(got);
  // Blocked for half a second; a spinning wait would have burnt about that much CPU.
  EXPECT_LT(cpu, 0.1) << "the blocked consumer used " << cpu << " s of CPU";
}

TEST(RingBuffer, BlockedConsumerWakesOnPushAndProducerOnPop) {
  RingBuffer<int> q(1);
  int x = 0;
  std::thread producer([&] {
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(q.push(7));
    ASSERT_TRUE(q.push(8));  // blocks until the consumer pops 7
  });
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 7);
  ASSERT_TRUE(q.pop(&x));
  EXPECT_EQ(x, 8);
  producer.join();
}

// close() while a producer is still filling its claimed slot: the consumer must wait for that
// item and receive it, then see the end.
TEST(RingBuffer, CloseDuringFillStillDeliversTheItem) {
  RingBuffer<int> q(4);
  std::atomic<bool> claimed{false}, release{false};
  std::thread producer([&] {
    EXPECT_TRUE(q.push_with([&](int& slot, uint64_t) {
      claimed = true;
      while (!release) std::this_thread::sleep_for(1ms);
      slot = 42;
    }));
  });
  while (!claimed) std::this_thread::sleep_for(1ms);
  q.close();
  int x = 0;
  std::thread consumer([&] {
    EXPECT_TRUE(q.pop(&x));
    EXPECT_FALSE(q.pop(&x));
  });
  std::this_thread::sleep_for(50ms);
  release = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(x, 42);
}

}  // namespace
}  // namespace skein
