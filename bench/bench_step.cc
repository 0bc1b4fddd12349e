// bench_step: real training steps of the data-parallel Trainer on synthetic tokens for a config.
//   bench_step --config FILE [--threads K] [--replicas R] [--threads_per_replica W] [--steps N]
//              [--warmup N] [--team omp|pool] [--set path=value]... [--json] [--scaling]
// Prints, from medians over warm steps: ms/step, tokens/s, achieved GFLOP/s and MFU
// (FLOPs/token = 6 N + 12 L C T with N the weight-matrix parameters including the tied lm_head;
// peak = this machine's measured single-thread FMA peak x threads; a single run probes it before
// and after its steps and keeps the higher reading), peak RSS, and the split of a
// step into forward, backward, reduction, optimizer and data wait (no loader here: 0).
// W unset (flag and run.threads_per_replica): 1, or with R below the thread count the threads
// shared among the replicas; a layout that leaves threads idle is refused.
// --scaling runs every layout of K = 1..cores threads (G groups of W threads per replica),
// prints speed-up, efficiency and memory, fits T(K) = W/K + K c + s on the W = 1 layouts and the
// (G, W) model of fit_layouts_and_predict on all, and predicts the best layout for 16, 64 and 128
// cores (labelled as a prediction).
// Under mpirun (-np P) every rank runs K threads on its share of the batch; rank 0 reports the
// whole job's tokens/s (MFU against P x K x peak) and the time spent in communication.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/rng.h"
#include "engine/comm.h"
#include "engine/config.h"
#include "engine/fma_peak.h"
#include "engine/trainer.h"
#include "kernels/gemm.h"

namespace skein {
namespace {

struct Args {
  std::string config;
  int threads = -1, replicas = -1, per_replica = -1, steps = 10, warmup = 2;
  std::string team;
  std::vector<std::string> overrides;  // --set path=value, as train's
  bool json = false, scaling = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: bench_step --config FILE [--threads K] [--replicas R] "
               "[--threads_per_replica W] [--steps N] [--warmup N] [--team omp|pool] "
               "[--set path=value]... [--json] [--scaling]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + f).c_str());
      return argv[++i];
    };
    auto number = [&]() {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (*end || n < 0) usage((f + " expects a non-negative integer, got '" + v + "'").c_str());
      return static_cast<int>(n);
    };
    if (f == "--config")
      a.config = value();
    else if (f == "--threads")
      a.threads = number();
    else if (f == "--replicas")
      a.replicas = number();
    else if (f == "--threads_per_replica")
      a.per_replica = number();
    else if (f == "--steps")
      a.steps = std::max(1, number());
    else if (f == "--warmup")
      a.warmup = number();
    else if (f == "--team")
      a.team = value();
    else if (f == "--set")
      a.overrides.push_back(value());
    else if (f == "--json")
      a.json = true;
    else if (f == "--scaling")
      a.scaling = true;
    else
      usage(("unknown flag " + f).c_str());
  }
  if (a.config.empty()) usage("--config is required");
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

struct Result {
  int threads, replicas, per_replica;
  double ms_per_step, tokens_per_s, gflops, mfu;
  double fwd_ms, bwd_ms, reduce_ms, opt_ms, wait_ms;
  int ranks;
  double comm_ms;  // inside reduce_ms + opt_ms (and the step's small collectives)
  MemoryReport memory;
  std::string matmul_kernel;  // the sgemm kernel the matmuls ran on (sgemm_kernels()), "portable"
};

// The kernel sgemm runs for p when the caller leaves the choice to it: what a step ran on.
std::string chosen_kernel_name(MatmulPrecision p) {
  const int i = sgemm_chosen_kernel(p);  // kBf16Rounded: the fp32 kernel's
  return i < 0 ? "portable" : sgemm_kernels()[i].name;
}

Result measure(const proto::Config& cfg, int threads, int replicas, int per_replica,
               const std::string& team, int steps, int warmup, double peak, Comm* comm) {
  const GptConfig g = gpt_config(cfg.model());
  Model model(g);
  model.init(cfg.run().seed());
  std::string precision_note;
  model.set_matmul_precision(matmul_precision_for(cfg.run().precision(), &precision_note));
  if (!precision_note.empty() && comm->rank() == 0)
    std::fprintf(stderr, "%s\n", precision_note.c_str());
  TrainerOptions o;
  o.threads = threads;
  o.threads_per_replica = per_replica;
  o.replicas = replicas;
  o.batch_size = cfg.run().batch_size();
  o.seq_len = g.seq_len;
  o.grad_accum_steps = cfg.run().grad_accum_steps();
  o.team = team;
  o.optimizer = cfg.optimizer().kind() == proto::OptimizerConfig::SGD ? OptimizerKind::kSgd
                                                                      : OptimizerKind::kAdamW;
  o.adamw = {cfg.optimizer().lr(), cfg.optimizer().beta1(), cfg.optimizer().beta2(),
             cfg.optimizer().eps(), cfg.optimizer().weight_decay()};
  o.sgd = {cfg.optimizer().lr(), cfg.optimizer().momentum(), cfg.optimizer().nesterov(),
           cfg.optimizer().weight_decay()};
  o.schedule = {ScheduleKind::kConstant, cfg.optimizer().lr(), 0.0f, 0, 1};
  o.max_grad_norm = cfg.optimizer().max_grad_norm();
  o.comm = comm;
  const int P = comm->size();
  Trainer trainer(model, o);

  const size_t ntok = size_t(o.batch_size / P) * o.grad_accum_steps * o.seq_len;  // this rank's
  const size_t first = size_t(comm->rank()) * ntok;
  std::vector<int32_t> in(ntok), tg(ntok);
  std::vector<double> total, fwd, bwd, red, opt, com;
  for (int s = 0; s < warmup + steps; ++s) {
    for (size_t i = 0; i < ntok; ++i) {
      in[i] = static_cast<int32_t>(mix64(s, first + i) % g.vocab_size);
      tg[i] = static_cast<int32_t>(mix64(s, first + i + 1) % g.vocab_size);
    }
    StepStats st = trainer.step(in.data(), tg.data());
    if (s < warmup) continue;
    total.push_back(st.total_s);
    fwd.push_back(st.forward_s);
    bwd.push_back(st.backward_s);
    red.push_back(st.reduce_s);
    opt.push_back(st.optimizer_s);
    com.push_back(st.comm_s);
  }
  const double flops_per_token = training_flops_per_token(g, g.seq_len);
  Result r;
  r.threads = threads;
  r.replicas = trainer.replicas();
  r.per_replica = trainer.threads_per_replica();
  r.ms_per_step = median(total) * 1e3;
  r.tokens_per_s = double(ntok) * P / median(total);  // the whole job's
  r.gflops = r.tokens_per_s * flops_per_token / 1e9;
  r.mfu = r.gflops * 1e9 / (peak * threads * P);
  r.ranks = P;
  r.comm_ms = median(com) * 1e3;
  r.memory = trainer.memory();
  r.fwd_ms = median(fwd) * 1e3;
  r.bwd_ms = median(bwd) * 1e3;
  r.reduce_ms = median(red) * 1e3;
  r.opt_ms = median(opt) * 1e3;
  r.wait_ms = 0;
  r.matmul_kernel = chosen_kernel_name(model.matmul_precision());
  return r;
}

void print_human(const Result& r, const std::string& config) {
  if (r.ranks > 1)
    std::printf("%s: %d ranks x %d threads (%d per replica), %d replicas\n", config.c_str(),
                r.ranks, r.threads, r.per_replica, r.replicas);
  else
    std::printf("%s: %d threads (%d per replica), %d replicas\n", config.c_str(), r.threads,
                r.per_replica, r.replicas);
  std::printf("  %.1f ms/step  %.0f tokens/s  %.1f GFLOP/s  MFU %.1f%%  peak RSS %.0f MiB\n",
              r.ms_per_step, r.tokens_per_s, r.gflops, 100 * r.mfu, peak_rss_mib());
  std::printf("  memory: %s\n", r.memory.describe().c_str());
  std::printf("  matmuls on %s\n", r.matmul_kernel.c_str());
  const double sum = r.fwd_ms + r.bwd_ms + r.reduce_ms + r.opt_ms + r.wait_ms;
  auto pct = [&](double v) { return 100.0 * v / sum; };
  std::printf(
      "  split: forward %.1f ms (%.1f%%)  backward %.1f ms (%.1f%%)  reduction %.2f ms (%.1f%%)  "
      "optimizer %.2f ms (%.1f%%)  data wait %.2f ms (%.1f%%)\n",
      r.fwd_ms, pct(r.fwd_ms), r.bwd_ms, pct(r.bwd_ms), r.reduce_ms, pct(r.reduce_ms), r.opt_ms,
      pct(r.opt_ms), r.wait_ms, pct(r.wait_ms));
  if (r.ranks > 1)
    std::printf("  communication (inside reduction and optimizer): %.2f ms/step (%.1f%%)\n",
                r.comm_ms, pct(r.comm_ms));
}

void print_json(const Result& r, const std::string& config, double peak) {
  std::printf(
      "{\"config\": \"%s\", \"threads\": %d, \"threads_per_replica\": %d, \"replicas\": %d, "
      "\"ms_per_step\": %.3f, "
      "\"tokens_per_s\": %.1f, \"gflops\": %.2f, \"mfu\": %.4f, \"peak_rss_mib\": %.1f, "
      "\"fma_peak_gflops_per_thread\": %.2f, \"forward_ms\": %.3f, \"backward_ms\": %.3f, "
      "\"reduce_ms\": %.3f, \"optimizer_ms\": %.3f, \"data_wait_ms\": %.3f, \"ranks\": %d, "
      "\"comm_ms\": %.3f, \"matmul_kernel\": \"%s\"}\n",
      config.c_str(), r.threads, r.per_replica, r.replicas, r.ms_per_step, r.tokens_per_s, r.gflops,
      r.mfu, peak_rss_mib(), peak / 1e9, r.fwd_ms, r.bwd_ms, r.reduce_ms, r.opt_ms, r.wait_ms,
      r.ranks, r.comm_ms, r.matmul_kernel.c_str());
}

// Least squares: the m coefficients b minimising sum over rows of (x_row . b - y_row)^2, by
// Gaussian elimination on the normal equations (m <= 4).
std::vector<double> least_squares(const std::vector<std::vector<double>>& x,
                                  const std::vector<double>& y, int m) {
  double A[4][4] = {}, v[4] = {};
  for (size_t r = 0; r < x.size(); ++r)
    for (int i = 0; i < m; ++i) {
      v[i] += x[r][i] * y[r];
      for (int j = 0; j < m; ++j) A[i][j] += x[r][i] * x[r][j];
    }
  for (int i = 0; i < m; ++i)
    for (int j = i + 1; j < m; ++j) {
      const double f = A[j][i] / A[i][i];
      for (int k = i; k < m; ++k) A[j][k] -= f * A[i][k];
      v[j] -= f * v[i];
    }
  std::vector<double> sol(m);
  for (int i = m - 1; i >= 0; --i) {
    double t = v[i];
    for (int k = i + 1; k < m; ++k) t -= A[i][k] * sol[k];
    sol[i] = t / A[i][i];
  }
  return sol;
}

// Least-squares fit of t(K) = W/K + c K + s over the layouts of one thread per replica. With
// fewer than 3 thread counts the system is underdetermined, so c is fixed at 0 and only W and s
// are fitted (said in the output).
void fit_and_print(const std::vector<Result>& all) {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (const Result& r : all) {
    if (r.per_replica != 1) continue;
    const double K = r.threads;
    x.push_back({1.0 / K, 1.0, K});
    y.push_back(r.ms_per_step);
  }
  const bool full = x.size() >= 3;
  const std::vector<double> sol = least_squares(x, y, full ? 3 : 2);
  const double W = sol[0], s = sol[1], c = full ? sol[2] : 0.0;
  std::printf("cost model T(K) = W/K + K*c + s (ms): W = %.2f  c = %.3f  s = %.2f%s\n", W, c, s,
              full ? "" : "  (2 thread counts only: c fixed at 0)");
  if (c > 0) {
    std::printf("predicted best K = sqrt(W/c) = %.1f\n", std::sqrt(W / c));
  } else {
    std::printf("predicted best K: no per-thread overhead measured, so the most threads\n");
  }
}

// The (G, W) model over every layout measured (K = G W threads, R replicas):
//   compute (forward + backward) = (A + D (W - 1)) / K + c (K - 1)
//     A: the work of the step in thread-ms; D: the work each further thread of a group adds to
//     it (Amdahl's law inside a group: the parts of an operation that are not cut, the packing
//     each thread repeats, the waits at the group's barriers), so a group of W is W / (1 + e (W
//     - 1)) times as fast as one thread, e = D / A; c: what each further thread costs the
//     others whatever the layout (shared caches, memory bandwidth, the machine's other load),
//     the same for every layout of K threads, so it moves no ranking;
//   rest (reduction + optimizer) = (B (R - 1) + O) / K + s
//     B: summing one more replica's gradient buffer; O: the optimizer; s: serial time.
// Then, labelled as a prediction, the best layout for 16, 64 and 128 cores on this config's
// batch: every (G, W) with G dividing the batch (R = G), ranked by the model, and whether its
// memory (Trainer::estimate_memory, exact) fits in this machine's. A layout where the fitted
// compute time A + D (W - 1) is <= 0 (D < 0 extrapolated too far, or noisy points) is left out,
// and the output says so.
void fit_layouts_and_predict(const std::vector<Result>& all, const proto::Config& cfg) {
  std::vector<std::vector<double>> xc, xr;
  std::vector<double> yc, yr;
  for (const Result& r : all) {
    const double K = r.threads, W = r.per_replica, R = r.replicas;
    xc.push_back({1.0 / K, (W - 1) / K, K - 1});
    yc.push_back(r.fwd_ms + r.bwd_ms);
    xr.push_back({(R - 1) / K, 1.0 / K, 1.0});
    yr.push_back(r.reduce_ms + r.opt_ms);
  }
  if (xr.size() < 3) {  // both fits have 3 unknowns
    std::printf("(G, W) model: needs 3 layouts or more (2 cores give 1x1, 2x1 and 1x2)\n");
    return;
  }
  const std::vector<double> f = least_squares(xc, yc, 3), q = least_squares(xr, yr, 3);
  const double A = f[0], D = f[1], c = f[2], B = q[0], O = q[1], s = q[2];
  std::printf(
      "(G, W) cost model, ms per step: compute = (A + D (W - 1))/K + c (K - 1), rest = (B (R - 1) "
      "+ O)/K + s\n"
      "  A = %.1f  D = %.1f (e = D/A = %.3f)  c = %.2f  B = %.2f  O = %.2f  s = %.2f  (fitted on "
      "%zu layouts)\n",
      A, D, A != 0 ? D / A : 0.0, c, B, O, s, all.size());
  const GptConfig g = gpt_config(cfg.model());
  const int batch = cfg.run().batch_size();
  const size_t avail = available_memory_bytes();
  const auto mib = [](double b) { return b / (1 << 20); };
  std::printf(
      "PREDICTION (from the constants above, not measured; ms per step without c (K - 1)), "
      "batch %d, memory %s:\n",
      batch,
      avail ? (std::to_string(long(mib(double(avail)))) + " MiB available here").c_str()
            : "unknown");
  for (int K : {16, 64, 128}) {
    struct Layout {
      int G, W;
      double ms;
      double mem;
    };
    std::vector<Layout> ls;
    int broken = 0;  // layouts where the fitted line gives a group no compute time at all
    for (int W = 1; W <= K; ++W) {
      if (K % W) continue;
      const int G = K / W;
      if (batch % G) continue;  // R = G replicas must divide the batch
      // A negative D (a group faster than its threads alone: shared packing, less memory
      // traffic) is real for small W, but a line through it reaches zero at some W: past that
      // the model says nothing.
      if (A + D * (W - 1) <= 0) {
        ++broken;
        continue;
      }
      TrainerOptions o;
      o.threads = K;
      o.threads_per_replica = W;
      o.replicas = G;
      o.batch_size = batch;
      o.seq_len = g.seq_len;
      const double mem = double(Trainer::estimate_memory(g, o, 1, 0).total());
      // c (K - 1) left out: the same for every layout of K, and a straight line fitted on 2
      // cores says nothing about 128
      const double ms = (A + D * (W - 1)) / K + (B * (G - 1) + O) / K + s;
      ls.push_back({G, W, ms, mem});
    }
    if (ls.empty()) {
      if (broken)
        std::printf(
            "  %3d cores: no prediction: the fitted compute time A + D (W - 1) is <= 0 for "
            "every layout %s\n",
            K,
            A <= 0 ? "(A <= 0: the measured points disagree; rerun with more --steps)"
                   : "(D < 0: a group was faster here than separate replicas, and a "
                     "straight line through that cannot be extrapolated this far)");
      else
        std::printf("  %3d cores: no layout (no divisor of %d cores divides the batch)\n", K, K);
      continue;
    }
    std::sort(ls.begin(), ls.end(), [](const Layout& a, const Layout& b) { return a.ms < b.ms; });
    const Layout* best = nullptr;
    for (const Layout& l : ls)
      if (!avail || l.mem <= double(avail)) {
        best = &l;
        break;
      }
    std::printf("  %3d cores:", K);
    for (size_t i = 0; i < ls.size() && i < 4; ++i)
      std::printf("  %dx%d %.0f ms %.0f MiB%s", ls[i].G, ls[i].W, ls[i].ms, mib(ls[i].mem),
                  avail && ls[i].mem > double(avail) ? " (does not fit)" : "");
    if (best)
      std::printf("  -> best that fits: %d groups x %d threads", best->G, best->W);
    else
      std::printf("  -> none fits");
    if (broken) std::printf(" (%d wider layout(s) left out: A + D (W - 1) <= 0 there)", broken);
    std::printf("\n");
  }
}

}  // namespace
}  // namespace skein

int main(int argc, char** argv) {
  using namespace skein;
  Args a = parse(argc, argv);
  Comm* comm = world_comm();  // the MPI job under mpirun; rank 0 reports
  const bool leader = comm->rank() == 0;
  if (a.scaling && comm->size() > 1) usage("--scaling is for one process (not under mpirun)");
  StatusOr<proto::Config> cfg = load_config(a.config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "error: %s\n", cfg.status().message().c_str());
    return 2;
  }
  for (const std::string& o : a.overrides) {
    Status s = apply_override(&*cfg, o);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 2;
    }
  }
  Status valid = validate_config(*cfg);
  if (!valid.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", a.config.c_str(), valid.message().c_str());
    return 2;
  }
  double peak = measure_fma_peak();
  const std::string team = a.team.empty() ? cfg->run().team() : a.team;
  if (a.scaling) {
    // Every layout of K = 1..cores threads: G groups of W threads per replica, R = G replicas
    // (or --replicas R for all, when G does not exceed it), where R divides the batch.
    const int max_k = available_cores();
    const int batch = cfg->run().batch_size();
    std::vector<Result> rs;
    std::printf("%-8s %-7s %-4s %12s %10s %10s %11s %10s %10s\n", "threads", "groups", "W",
                "tokens/s", "ms/step", "speed-up", "efficiency", "reduce+opt", "memory");
    for (int k = 1; k <= max_k; ++k) {
      for (int w = 1; w <= k; ++w) {
        const int g = k / w;
        const int R = a.replicas > 0 ? a.replicas : g;
        if (k % w || batch % R || g > R) continue;
        rs.push_back(measure(*cfg, k, R, w, team, a.steps, a.warmup, peak, comm));
        const Result& r = rs.back();
        const double sp = r.tokens_per_s / rs[0].tokens_per_s;
        std::printf("%-8d %-7d %-4d %12.0f %10.1f %10.2f %10.1f%% %8.1f ms %6.0f MiB\n", k, g, w,
                    r.tokens_per_s, r.ms_per_step, sp, 100 * sp / k, r.reduce_ms + r.opt_ms,
                    r.memory.total() / double(1 << 20));
      }
    }
    fit_and_print(rs);
    fit_layouts_and_predict(rs, *cfg);
    return 0;
  }
  const int threads = a.threads > 0              ? a.threads
                      : cfg->run().threads() > 0 ? cfg->run().threads()
                                                 : available_cores();
  const int replicas = a.replicas >= 0 ? a.replicas : cfg->run().replicas();
  const int P = comm->size();
  int per_replica = a.per_replica > 0                      ? a.per_replica
                    : cfg->run().threads_per_replica() > 0 ? cfg->run().threads_per_replica()
                                                           : 0;
  if (per_replica == 0) {
    // unset: the smallest W that divides the threads and leaves no group idle, as train chooses
    // (without its memory check)
    const int per_rank = replicas > 0 ? replicas / P : 0;
    per_replica = 1;
    while (threads % per_replica != 0 || groups_would_idle(threads, per_replica, per_rank))
      ++per_replica;
  }
  const int R = replicas > 0 ? replicas : threads / per_replica * P;
  if (threads % per_replica != 0) {
    if (leader)
      std::fprintf(stderr, "error: --threads_per_replica %d does not divide the %d threads\n",
                   per_replica, threads);
    finalize_world_comm();
    return 2;
  }
  if (R % P != 0 || cfg->run().batch_size() % R != 0) {
    if (leader)
      std::fprintf(
          stderr,
          "error: the replica count must divide the batch and be divisible by the %d ranks\n", P);
    finalize_world_comm();
    return 2;
  }
  if (groups_would_idle(threads, per_replica, R / P)) {  // a timing with idle threads misleads
    if (leader)
      std::fprintf(
          stderr,
          "error: %d replica(s) per rank x %d thread(s) per replica keep only %d of the %d "
          "threads busy: set --threads_per_replica (or run.threads_per_replica) so that "
          "their product is at least %d\n",
          R / P, per_replica, R / P * per_replica, threads, threads);
    finalize_world_comm();
    return 2;
  }
  Result r = measure(*cfg, threads, replicas, per_replica, team, a.steps, a.warmup, peak, comm);
  // A second probe after the steps: a reading taken while a neighbour on a shared machine slowed
  // this core would inflate the MFU, so the higher of the two is the peak.
  if (const double later = measure_fma_peak(); later > peak) {
    r.mfu *= peak / later;
    peak = later;
  }
  if (leader && a.json) {
    print_json(r, a.config, peak);
  } else if (leader) {
    std::printf("single-thread fp32 FMA peak: %.1f GFLOP/s (%s, thread CPU time)\n", peak / 1e9,
                fma_peak_unit());
    print_human(r, a.config);
  }
  finalize_world_comm();
  return 0;
}
