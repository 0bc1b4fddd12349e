// RingBuffer<T>: a bounded multi-producer multi-consumer queue with preallocated slots.
//
// Fast path (Vyukov's bounded MPMC queue): every slot carries a sequence number. A producer
// claims position p (a CAS on tail) when slot p % capacity has sequence 2p (free for p), fills
// the slot in place, and publishes it by storing 2p + 1. A consumer claims p (a CAS on head) when
// the sequence is 2p + 1, uses the item in place, and frees the slot for position p + capacity by
// storing 2(p + capacity). (Vyukov's original uses p, p + 1, p + capacity, which cannot tell
// "full" from "free" when the capacity is 1; doubling keeps every capacity >= 1 exact.) No
// mutex and no allocation per item: items are filled and used in place (push_with / pop_with
// hand out the slot), so an item that owns memory (a Batch and its vectors) is allocated once,
// with the slots, and reused. Positions are 64-bit (62 bits used) and never wrap in practice.
//
// Items leave in the order of their claimed positions (the ticket that push_with passes to its
// fill function). Filling happens after claiming, so several producers fill different slots at
// once while the consumer still receives them in ticket order: it waits for the slot at head.
//
// Slow path: a waiter spins briefly (kSpins pause instructions), then sleeps with C++20
// std::atomic<uint32_t>::wait (a futex on Linux) on an event counter, after registering in a
// waiter count. The other side only bumps the counter and calls notify_all when the waiter count
// is non-zero, so the fast path costs no system call. The register-then-recheck versus
// publish-then-check-waiters handshake uses seq_cst operations on both sides, so a wake-up
// cannot be lost.
//
// close(): push fails from then on (the closed flag lives in the tail word, so a claim and
// close() cannot cross), pop drains what was pushed before and then returns false, and every
// waiter wakes up.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "base/check.h"

namespace skein {

template <typename T>
class RingBuffer {
 public:
  enum class Result { kOk, kWouldBlock, kClosed };
  static constexpr int kSpins = 64;

  // `capacity` slots (>= 1), each a copy of `prototype`: give it the size that items will have.
  explicit RingBuffer(size_t capacity, const T& prototype = T())
      : capacity_(capacity), slots_(new Slot[capacity]) {
    SKEIN_CHECK(capacity >= 1);
    for (size_t i = 0; i < capacity; ++i) {
      slots_[i].seq.store(2 * i, std::memory_order_relaxed);
      slots_[i].value = prototype;
    }
  }
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;

  size_t capacity() const { return capacity_; }

  // Claims a free slot and calls fill(T& slot, uint64_t ticket) on it in place; tickets count
  // 0, 1, 2, ... in the order the items will be popped. fill must not throw. Does not call
  // fill and returns kClosed once closed, kWouldBlock when full.
  template <typename F>
  Result try_push_with(F&& fill) {
    uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & kClosedBit) return Result::kClosed;
      Slot& s = slots_[pos % capacity_];
      const uint64_t seq = s.seq.load(std::memory_order_acquire);
      const int64_t dif = static_cast<int64_t>(seq - 2 * pos);
      if (dif == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          fill(s.value, pos);
          s.seq.store(2 * pos + 1, std::memory_order_seq_cst);
          wake(pop_waiters_, pushed_epoch_);
          return Result::kOk;
        }
      } else if (dif < 0) {
        return Result::kWouldBlock;  // the slot still holds an item from one lap ago
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Calls consume(T& slot) on the next item in place (consume may swap the slot's contents with
  // a buffer of its own: the slot is reused for a later item). Returns kClosed once closed and
  // drained, kWouldBlock when the next item is not ready.
  template <typename F>
  Result try_pop_with(F&& consume) {
    uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& s = slots_[pos % capacity_];
      const uint64_t seq = s.seq.load(std::memory_order_acquire);
      const int64_t dif = static_cast<int64_t>(seq - (2 * pos + 1));
      if (dif == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          consume(s.value);
          s.seq.store(2 * (pos + capacity_), std::memory_order_seq_cst);
          wake(push_waiters_, popped_epoch_);
          return Result::kOk;
        }
      } else if (dif < 0) {
        // Empty, or the producer of this position is still filling it.
        const uint64_t tail = tail_.load(std::memory_order_acquire);
        if ((tail & kClosedBit) && (tail & ~kClosedBit) == pos) return Result::kClosed;
        return Result::kWouldBlock;
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // Blocking versions: wait while full (push) or while the next item is not ready (pop).
  // Return false once closed (pop: once closed and drained).
  template <typename F>
  bool push_with(F&& fill) {
    for (int spin = 0;; ++spin) {
      const Result r = try_push_with(fill);
      if (r != Result::kWouldBlock) return r == Result::kOk;
      if (spin < kSpins) {
        cpu_relax();
      } else {
        sleep_until(push_waiters_, popped_epoch_, [this] { return can_push(); });
      }
    }
  }
  template <typename F>
  bool pop_with(F&& consume) {
    for (int spin = 0;; ++spin) {
      const Result r = try_pop_with(consume);
      if (r != Result::kWouldBlock) return r == Result::kOk;
      if (spin < kSpins) {
        cpu_relax();
      } else {
        sleep_until(pop_waiters_, pushed_epoch_, [this] { return can_pop(); });
      }
    }
  }

  // Moves item into a slot.
  bool push(T item) {
    return push_with([&](T& slot, uint64_t) { slot = std::move(item); });
  }
  // Swaps the next item into *out (which must hold a valid T): *out's old contents go back to
  // the slot for reuse.
  bool pop(T* out) {
    return pop_with([&](T& slot) {
      using std::swap;
      swap(slot, *out);
    });
  }

  // Idempotent. Wakes every waiting producer and consumer.
  void close() {
    tail_.fetch_or(kClosedBit, std::memory_order_seq_cst);
    pushed_epoch_.fetch_add(1, std::memory_order_seq_cst);
    popped_epoch_.fetch_add(1, std::memory_order_seq_cst);
    pushed_epoch_.notify_all();
    popped_epoch_.notify_all();
  }
  bool closed() const { return tail_.load(std::memory_order_acquire) & kClosedBit; }

 private:
  static constexpr uint64_t kClosedBit = uint64_t{1} << 63;

  struct alignas(64) Slot {
    std::atomic<uint64_t> seq{0};
    T value{};
  };

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  bool can_push() const {
    const uint64_t tail = tail_.load(std::memory_order_seq_cst);
    if (tail & kClosedBit) return true;
    return slots_[tail % capacity_].seq.load(std::memory_order_seq_cst) == 2 * tail;
  }
  bool can_pop() const {
    const uint64_t head = head_.load(std::memory_order_seq_cst);
    if (slots_[head % capacity_].seq.load(std::memory_order_seq_cst) == 2 * head + 1) return true;
    // Closed and drained. (Closed with an item still being filled: its publish wakes us.)
    const uint64_t tail = tail_.load(std::memory_order_seq_cst);
    return (tail & kClosedBit) && (tail & ~kClosedBit) == head;
  }

  // Waiter: register, read the epoch, re-check the condition, sleep until the epoch moves.
  template <typename Ready>
  static void sleep_until(std::atomic<uint32_t>& waiters, std::atomic<uint32_t>& epoch,
                          Ready ready) {
    waiters.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t e = epoch.load(std::memory_order_seq_cst);
    if (!ready()) epoch.wait(e, std::memory_order_seq_cst);
    waiters.fetch_sub(1, std::memory_order_relaxed);
  }
  // Other side, after its seq_cst store that changed the condition.
  static void wake(std::atomic<uint32_t>& waiters, std::atomic<uint32_t>& epoch) {
    if (waiters.load(std::memory_order_seq_cst) == 0) return;
    epoch.fetch_add(1, std::memory_order_seq_cst);
    epoch.notify_all();
  }

  const size_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next position to pop
  alignas(64) std::atomic<uint64_t> tail_{0};  // next position to push; kClosedBit once closed
  alignas(64) std::atomic<uint32_t> pushed_epoch_{0};  // bumped to wake sleeping consumers
  std::atomic<uint32_t> pop_waiters_{0};
  alignas(64) std::atomic<uint32_t> popped_epoch_{0};  // bumped to wake sleeping producers
  std::atomic<uint32_t> push_waiters_{0};
};

}  // namespace skein
