// The processes of a job and what they exchange: the trainer's only view of MPI.
//
// A Comm is the group of ranks that train one model together (one rank = one process with its
// own thread team). LocalComm is the single-process group (size 1, every operation a copy or
// nothing); MpiComm (engine/comm_mpi.h, built when MPI is found) runs the same operations over
// MPI_COMM_WORLD. Every operation is collective: all ranks call it, in the same order, from one
// thread of their team (MPI is initialised with MPI_THREAD_FUNNELED).
//
// Ranges: several operations take `offsets`, size()+1 increasing indices into an array in the
// parameter layout; rank p owns [offsets[p], offsets[p+1]).
//
// Nothing here sums floats: the callers add what they receive in rank order, so results never
// depend on how MPI would have reduced them.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace skein {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Reduce-scatter without the reduction: rank p's send[offsets[q] .. offsets[q+1]) goes to rank
  // q. On return recv holds size() pieces of this rank's range, piece p from rank p, one after
  // another (recv has size() * (offsets[rank+1] - offsets[rank]) floats).
  virtual void exchange_pieces(const float* send, const std::vector<size_t>& offsets,
                               float* recv) = 0;
  // In place: afterwards every rank's data[offsets[p] .. offsets[p+1]) is rank p's. elem_size is
  // the size of one element in bytes (float or double arrays).
  virtual void allgather_ranges(void* data, size_t elem_size,
                                const std::vector<size_t>& offsets) = 0;
  // Rank 0's full[offsets[p] ..) := rank p's mine (full is used on rank 0 only).
  virtual void gather_ranges(const float* mine, const std::vector<size_t>& offsets,
                             float* full) = 0;
  // Rank p's mine := rank 0's full[offsets[p] ..) (full is read on rank 0 only).
  virtual void scatter_ranges(const float* full, const std::vector<size_t>& offsets,
                              float* mine) = 0;
  // all[p * bytes ..) := rank p's mine (bytes each).
  virtual void allgather_bytes(const void* mine, size_t bytes, void* all) = 0;
  // Every rank's data := rank 0's.
  virtual void broadcast_bytes(void* data, size_t bytes) = 0;
  virtual long sum(long x) = 0;  // exact: integers
  virtual int max(int x) = 0;
  // Ends the whole job with this exit code (after the caller has printed why).
  [[noreturn]] virtual void abort(int code) = 0;
  // Wall seconds spent inside the operations above, since the start.
  virtual double seconds() const = 0;
  // How long one operation may wait for the other ranks before the job is stopped as broken.
  virtual void set_timeout_seconds(double s) { (void)s; }

  void broadcast_string(std::string* s) {
    long n = static_cast<long>(s->size());
    broadcast_bytes(&n, sizeof(n));
    s->resize(static_cast<size_t>(n));
    if (n > 0) broadcast_bytes(s->data(), static_cast<size_t>(n));
  }
};

// The one-process group.
class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void exchange_pieces(const float* send, const std::vector<size_t>& o, float* recv) override {
    copy(recv, send + o[0], o[1] - o[0]);
  }
  void allgather_ranges(void*, size_t, const std::vector<size_t>&) override {}
  void gather_ranges(const float* mine, const std::vector<size_t>& o, float* full) override {
    copy(full + o[0], mine, o[1] - o[0]);
  }
  void scatter_ranges(const float* full, const std::vector<size_t>& o, float* mine) override {
    copy(mine, full + o[0], o[1] - o[0]);
  }
  void allgather_bytes(const void* mine, size_t bytes, void* all) override {
    if (all != mine && bytes) std::memmove(all, mine, bytes);
  }
  void broadcast_bytes(void*, size_t) override {}
  long sum(long x) override { return x; }
  int max(int x) override { return x; }
  [[noreturn]] void abort(int code) override;
  double seconds() const override { return 0; }

 private:
  static void copy(float* dst, const float* src, size_t n) {
    if (dst != src && n) std::memmove(dst, src, n * sizeof(float));
  }
};

// The process-wide group: the MPI job when the binary was launched by mpirun and built with MPI
// (MPI is initialised on the first call), else a LocalComm. Never null.
Comm* world_comm();
// True when this process was started by an MPI launcher (mpirun/srun environment variables).
bool launched_by_mpi();
// Finalises MPI if world_comm() initialised it; call once before a normal exit.
void finalize_world_comm();

}  // namespace skein
