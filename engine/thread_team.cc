#include "engine/thread_team.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/check.h"

namespace skein {

namespace {

class OmpTeam : public ThreadTeam {
 public:
  explicit OmpTeam(int n) : n_(n) {}
  int size() const override { return n_; }
  void run(const std::function<void(int)>& fn) override {
    omp_set_dynamic(0);  // exactly n_ threads, or the step's partition would be wrong
#pragma omp parallel num_threads(n_)
    {
      SKEIN_CHECK(omp_get_num_threads() == n_, "OpenMP gave fewer threads than asked for");
      fn(omp_get_thread_num());
    }
  }
  void barrier() override {
#pragma omp barrier
  }

 private:
  int n_;
};

class PoolTeam : public ThreadTeam {
 public:
  explicit PoolTeam(int n) : n_(n), barrier_(n) {
    for (int k = 1; k < n; ++k) workers_.emplace_back([this, k] { work(k); });
  }
  ~PoolTeam() override {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const override { return n_; }
  void run(const std::function<void(int)>& fn) override {
    fn_ = &fn;
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    fn(0);
    barrier_.arrive_and_wait();  // every worker has finished fn
  }
  void barrier() override { barrier_.arrive_and_wait(); }

 private:
  void work(int k) {
    uint64_t seen = 0;
    while (true) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      (*fn_)(k);
      barrier_.arrive_and_wait();
    }
  }

  int n_;
  std::barrier<> barrier_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;  // published by the release on generation_
};

}  // namespace

std::unique_ptr<ThreadTeam> make_thread_team(const std::string& kind, int threads) {
  SKEIN_CHECK(threads >= 1);
  if (kind == "pool") return std::make_unique<PoolTeam>(threads);
  SKEIN_CHECK(kind == "omp", "unknown team kind");
  return std::make_unique<OmpTeam>(threads);
}

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {
// The first number in the file (after `key` when given), or -1.
double read_number(const char* path, const char* key = nullptr) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  double v = -1;
  while (std::fgets(line, sizeof(line), f)) {
    const char* p = line;
    if (key) {
      if (std::strncmp(line, key, std::strlen(key)) != 0) continue;
      p += std::strlen(key);
    }
    char* end = nullptr;
    const double x = std::strtod(p, &end);
    if (end != p) v = x;
    break;
  }
  std::fclose(f);
  return v;
}
}  // namespace

// This process's cgroup v2 folder ("0::/PATH" in /proc/self/cgroup), "" if none.
std::string own_cgroup_v2() {
  std::FILE* f = std::fopen("/proc/self/cgroup", "r");
  if (!f) return "";
  char line[4096];
  std::string path;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, "0::", 3) != 0) continue;
    path = line + 3;
    while (!path.empty() && (path.back() == '\n' || path.back() == '/')) path.pop_back();
    break;
  }
  std::fclose(f);
  return path;
}

size_t available_memory_bytes() {
  double avail = read_number("/proc/meminfo", "MemAvailable:");  // kB
  if (avail >= 0) avail *= 1024;
  auto limit_by = [&](double limit, double used, double reclaimable) {
    if (limit <= 0 || limit >= 1e18 || used < 0) return;  // "max" reads as no number
    const double left = std::max(0.0, limit - used + std::max(0.0, reclaimable));
    avail = avail < 0 ? left : std::min(avail, left);
  };
  // cgroup v2: this process's group and each one above it (a limit anywhere up the tree
  // applies); the page cache they count (inactive_file) can be reclaimed.
  const std::string root = "/sys/fs/cgroup";
  for (std::string g = own_cgroup_v2();; g = g.substr(0, g.rfind('/'))) {
    const std::string dir = root + g;
    limit_by(read_number((dir + "/memory.max").c_str()),
             read_number((dir + "/memory.current").c_str()),
             read_number((dir + "/memory.stat").c_str(), "inactive_file "));
    if (g.empty()) break;
  }
  // cgroup v1
  limit_by(read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
           read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
           read_number("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file "));
  return avail < 0 ? 0 : static_cast<size_t>(avail);
}

}  // namespace skein
