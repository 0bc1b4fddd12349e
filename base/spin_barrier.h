// A barrier for a few compute threads that meet very often (Workers: one meeting per operation of
// a forward or backward, hundreds per step): waiting threads spin on an atomic generation count
// with a pause instruction, then yield the core after a bounded spin, instead of sleeping in the
// kernel. std::barrier sleeps on a futex, and waking a sleeping vCPU costs a VM exit and a
// reschedule: 0.25 to 2 ms per meeting measured on a 2-core VM, 10 to 20% of a char model's step.
//
// Ordering: every arrival is an acq_rel increment of one counter (a release sequence), the last
// arrival resets the counter and then release-increments the generation, which the others
// acquire; so whatever any thread wrote before arriving is visible to every thread after it
// leaves. The reset happens before the generation moves, so a thread that leaves and arrives
// again at once counts into the next meeting.
#pragma once

#include <atomic>
#include <thread>

namespace skein {

class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  SpinBarrier(const SpinBarrier&) = delete;
  SpinBarrier& operator=(const SpinBarrier&) = delete;

  void arrive_and_wait() {
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen;) {
      if (++spins < kSpinsBeforeYield) {
        pause();
      } else {
        std::this_thread::yield();  // another thread needs this core (more threads than cores)
        spins = 0;
      }
    }
  }

 private:
  static constexpr int kSpinsBeforeYield = 1 << 14;  // some 50 to 500 us of pause instructions
  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
  const int n_;
};

}  // namespace skein
