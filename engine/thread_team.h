// A team of compute threads that lives for the whole run. run(fn) executes fn(k) on threads
// k = 0..size()-1 (the caller is thread 0) and returns when all are done; inside fn, barrier()
// waits for every thread of the team. Two implementations, measured against each other by
// bench_step (--team): an OpenMP parallel region (the runtime keeps its threads between regions,
// and OMP_PROC_BIND / OMP_PLACES pin them when the user asks), and a pool of std::threads with
// std::barrier.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace skein {

class ThreadTeam {
 public:
  virtual ~ThreadTeam() = default;
  virtual int size() const = 0;
  virtual void run(const std::function<void(int)>& fn) = 0;
  virtual void barrier() = 0;
};

// kind: "omp" or "pool".
std::unique_ptr<ThreadTeam> make_thread_team(const std::string& kind, int threads);

// Cores this process may run on (affinity mask), at least 1.
int available_cores();

// Bytes of memory this process can still get: the kernel's MemAvailable, or less when a cgroup
// (v2 memory.max, v1 memory.limit_in_bytes) limits it. 0 when neither can be read.
size_t available_memory_bytes();

}  // namespace skein
