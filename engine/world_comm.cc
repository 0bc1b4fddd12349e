// world_comm(): the MPI job when launched by mpirun (and built with MPI), else one process.
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "base/check.h"
#include "engine/comm.h"

#ifdef SKEIN_HAVE_MPI
#include <mpi.h>
#endif

namespace skein {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

#ifdef SKEIN_HAVE_MPI
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Nonblocking collectives completed by polling against a deadline: a rank that died or hangs
// makes the others stop with a message instead of waiting forever (mpirun usually ends the job
// sooner, when it sees a rank exit; this covers a rank that is alive but stuck).
class MpiComm final : public Comm {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (const char* t = std::getenv("SKEIN_COMM_TIMEOUT_S")) timeout_s_ = std::atof(t);
    if (!(timeout_s_ > 0)) timeout_s_ = 300;
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void exchange_pieces(const float* send, const std::vector<size_t>& o, float* recv) override {
    SKEIN_CHECK(o.size() == size_t(size_) + 1);
    const size_t mine = o[rank_ + 1] - o[rank_];
    std::vector<int> scount(size_), sdispl(size_), rcount(size_), rdispl(size_);
    for (int p = 0; p < size_; ++p) {
      scount[p] = to_int(o[p + 1] - o[p]);
      sdispl[p] = to_int(o[p]);
      rcount[p] = to_int(mine);
      rdispl[p] = to_int(mine * p);
    }
    MPI_Request req;
    const double t0 = now_s();
    MPI_Ialltoallv(send, scount.data(), sdispl.data(), MPI_FLOAT, recv, rcount.data(),
                   rdispl.data(), MPI_FLOAT, MPI_COMM_WORLD, &req);
    wait(&req, "the gradient exchange", t0);
  }
  void allgather_ranges(void* data, size_t elem, const std::vector<size_t>& o) override {
    SKEIN_CHECK(elem == sizeof(float) || elem == sizeof(double), "float or double arrays only");
    const MPI_Datatype type = elem == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE;
    const auto [count, displ] = counts(o);
    MPI_Request req;
    const double t0 = now_s();
    MPI_Iallgatherv(MPI_IN_PLACE, 0, type, data, count.data(), displ.data(), type, MPI_COMM_WORLD,
                    &req);
    wait(&req, "the parameter all-gather", t0);
  }
  void gather_ranges(const float* mine, const std::vector<size_t>& o, float* full) override {
    const auto [count, displ] = counts(o);
    MPI_Request req;
    const double t0 = now_s();
    MPI_Igatherv(mine, count[rank_], MPI_FLOAT, full, count.data(), displ.data(), MPI_FLOAT, 0,
                 MPI_COMM_WORLD, &req);
    wait(&req, "gathering the optimizer state", t0);
  }
  void scatter_ranges(const float* full, const std::vector<size_t>& o, float* mine) override {
    const auto [count, displ] = counts(o);
    MPI_Request req;
    const double t0 = now_s();
    MPI_Iscatterv(full, count.data(), displ.data(), MPI_FLOAT, mine, count[rank_], MPI_FLOAT, 0,
                  MPI_COMM_WORLD, &req);
    wait(&req, "scattering the optimizer state", t0);
  }
  void allgather_bytes(const void* mine, size_t bytes, void* all) override {
    MPI_Request req;
    const double t0 = now_s();
    MPI_Iallgather(mine, to_int(bytes), MPI_BYTE, all, to_int(bytes), MPI_BYTE, MPI_COMM_WORLD,
                   &req);
    wait(&req, "an all-gather", t0);
  }
  void broadcast_bytes(void* data, size_t bytes) override {
    auto* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes;) {  // in pieces below INT_MAX bytes
      const size_t n = std::min<size_t>(bytes - done, size_t(1) << 30);
      MPI_Request req;
      const double t0 = now_s();
      MPI_Ibcast(p + done, static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD, &req);
      wait(&req, "a broadcast from rank 0", t0);
      done += n;
    }
  }
  long sum(long x) override { return allreduce(x, MPI_LONG, MPI_SUM); }
  int max(int x) override { return allreduce(x, MPI_INT, MPI_MAX); }
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }
  double seconds() const override { return seconds_; }
  void set_timeout_seconds(double s) override {
    if (s > 0 && !std::getenv("SKEIN_COMM_TIMEOUT_S")) timeout_s_ = s;
  }

 private:
  template <typename T>
  T allreduce(T x, MPI_Datatype type, MPI_Op op) {
    T r{};
    MPI_Request req;
    const double t0 = now_s();
    MPI_Iallreduce(&x, &r, 1, type, op, MPI_COMM_WORLD, &req);
    wait(&req, "an all-reduce", t0);
    return r;
  }
  // MPI's element counts and offsets of the ranges [o[p], o[p+1]).
  std::pair<std::vector<int>, std::vector<int>> counts(const std::vector<size_t>& o) const {
    SKEIN_CHECK(o.size() == size_t(size_) + 1);
    std::vector<int> count(size_), displ(size_);
    for (int p = 0; p < size_; ++p) count[p] = to_int(o[p + 1] - o[p]), displ[p] = to_int(o[p]);
    return {count, displ};
  }
  static int to_int(size_t n) {
    SKEIN_CHECK(n <= size_t(INT_MAX), "an MPI count or offset above 2^31 elements: not supported");
    return static_cast<int>(n);
  }
  void wait(MPI_Request* req, const char* what, double t0) {
    int done = 0;
    for (long polls = 0;; ++polls) {
      MPI_Test(req, &done, MPI_STATUS_IGNORE);
      if (done) break;
      if (polls < 2000) continue;  // the common case: a few microseconds
      const double waited = now_s() - t0;
      if (waited > timeout_s_) {
        std::fprintf(stderr,
                     "error: rank %d: no progress in %s for %.0f s: another rank has failed or "
                     "hangs; stopping the job (run.comm_timeout_s sets this limit)\n",
                     rank_, what, waited);
        abort(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 20000 ? 0 : 200));
    }
    seconds_ += now_s() - t0;
  }

  int rank_ = 0, size_ = 1;
  double timeout_s_ = 300;
  double seconds_ = 0;
};

std::unique_ptr<Comm> g_world;
bool g_mpi_initialised = false;

}  // namespace

Comm* world_comm() {
  if (g_world) return g_world.get();
  if (launched_by_mpi()) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    g_mpi_initialised = true;
    SKEIN_CHECK(provided >= MPI_THREAD_FUNNELED, "the MPI library lacks MPI_THREAD_FUNNELED");
    g_world = std::make_unique<MpiComm>();
  } else {
    g_world = std::make_unique<LocalComm>();
  }
  return g_world.get();
}

void finalize_world_comm() {
  if (g_mpi_initialised) {
    g_world.reset();
    MPI_Finalize();
    g_mpi_initialised = false;
  }
}

#else  // no MPI in this build

namespace {
std::unique_ptr<Comm> g_world;
}

Comm* world_comm() {
  if (!g_world) {
    if (launched_by_mpi()) {  // P copies training alone into one folder: refuse
      std::fprintf(
          stderr,
          "error: started by an MPI launcher, but this build has no MPI support\nHINT: "
          "install libopenmpi-dev (scripts/setup.sh) and rebuild, or run without mpirun\n");
      std::exit(2);
    }
    g_world = std::make_unique<LocalComm>();
  }
  return g_world.get();
}

void finalize_world_comm() {}

#endif

}  // namespace skein
