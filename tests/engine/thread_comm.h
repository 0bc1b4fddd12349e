// A Comm whose ranks are threads of this process: each rank thread owns one ThreadComm of a
// shared ThreadGroup. It lets the multi-rank path of the Trainer run in unit tests and under
// ThreadSanitizer without MPI. Every operation publishes this rank's pointer, waits for all
// ranks, copies what it needs from the others, and waits again (so nobody changes a buffer that
// another rank still reads). Copies are plain loops, not memcpy: the ThreadSanitizer run sets
// ignore_noninstrumented_modules (for libomp), which also hides races through libc's memcpy.
#pragma once

#include <barrier>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "engine/comm.h"

namespace skein {

struct ThreadGroup {
  explicit ThreadGroup(int n) : size(n), sync(n), ptr(n), value(n) {}
  int size;
  std::barrier<> sync;
  std::vector<const void*> ptr;  // published by each rank before the first wait
  std::vector<long> value;
};

class ThreadComm final : public Comm {
 public:
  ThreadComm(ThreadGroup* g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }

  void exchange_pieces(const float* send, const std::vector<size_t>& o, float* recv) override {
    publish(send);
    const size_t lo = o[rank_], n = o[rank_ + 1] - lo;
    for (int p = 0; p < g_->size; ++p)
      copy_bytes(recv + p * n, static_cast<const float*>(g_->ptr[p]) + lo, n * sizeof(float));
    g_->sync.arrive_and_wait();
  }
  void allgather_ranges(void* data, size_t elem, const std::vector<size_t>& o) override {
    publish(data);
    for (int p = 0; p < g_->size; ++p)
      if (p != rank_)
        copy_bytes(static_cast<char*>(data) + o[p] * elem,
                   static_cast<const char*>(g_->ptr[p]) + o[p] * elem, (o[p + 1] - o[p]) * elem);
    g_->sync.arrive_and_wait();
  }
  void gather_ranges(const float* mine, const std::vector<size_t>& o, float* full) override {
    publish(mine);
    if (rank_ == 0)
      for (int p = 0; p < g_->size; ++p)
        copy_bytes(full + o[p], g_->ptr[p], (o[p + 1] - o[p]) * sizeof(float));
    g_->sync.arrive_and_wait();
  }
  void scatter_ranges(const float* full, const std::vector<size_t>& o, float* mine) override {
    publish(full);
    copy_bytes(mine, static_cast<const float*>(g_->ptr[0]) + o[rank_],
               (o[rank_ + 1] - o[rank_]) * sizeof(float));
    g_->sync.arrive_and_wait();
  }
  void allgather_bytes(const void* mine, size_t bytes, void* all) override {
    publish(mine);
    for (int p = 0; p < g_->size; ++p)
      copy_bytes(static_cast<char*>(all) + p * bytes, g_->ptr[p], bytes);
    g_->sync.arrive_and_wait();
  }
  void broadcast_bytes(void* data, size_t bytes) override {
    publish(data);
    if (rank_ != 0) copy_bytes(data, g_->ptr[0], bytes);
    g_->sync.arrive_and_wait();
  }
  long sum(long x) override {
    g_->value[rank_] = x;
    g_->sync.arrive_and_wait();
    long s = 0;
    for (long v : g_->value) s += v;
    g_->sync.arrive_and_wait();
    return s;
  }
  int max(int x) override {
    g_->value[rank_] = x;
    g_->sync.arrive_and_wait();
    long m = g_->value[0];
    for (long v : g_->value) m = v > m ? v : m;
    g_->sync.arrive_and_wait();
    return static_cast<int>(m);
  }
  [[noreturn]] void abort(int) override { std::abort(); }
  double seconds() const override { return 0; }

 private:
  static void copy_bytes(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
  }
  void publish(const void* p) {
    g_->ptr[rank_] = p;
    g_->sync.arrive_and_wait();
  }
  ThreadGroup* g_;
  int rank_;
};

}  // namespace skein
