// The run folder's metrics: metrics.jsonl (one JSON record per logged step and per evaluation)
// and loss.svg, a loss curve (train and validation) that any browser shows, rewritten atomically
// at each evaluation.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "base/status.h"

namespace skein {

struct TrainRecord {
  long step;
  double loss, lr, grad_norm, tokens_per_s, mfu, data_wait_frac, elapsed_s;
};

class MetricsLog {
 public:
  // Opens RUN/metrics.jsonl for appending. On resume (resume_step >= 0), records of steps after
  // resume_step, which the resumed run will redo, are dropped first; earlier ones are kept and
  // feed the plot.
  static StatusOr<MetricsLog> open(const std::string& run_dir, long resume_step);

  Status log_train(const TrainRecord& r);
  Status log_eval(long step, double val_loss);
  // Rewrites RUN/loss.svg from every record so far.
  Status write_plot() const;

  const std::vector<std::pair<long, double>>& train_points() const { return train_; }
  const std::vector<std::pair<long, double>>& eval_points() const { return eval_; }

 private:
  Status append(const std::string& line);
  std::string run_dir_;
  std::vector<std::pair<long, double>> train_, eval_;
};

// "12m05s", "3h07m"; "?" for a negative or non-finite time.
std::string format_duration(double seconds);

// One progress line of train: "step 20/400 | loss 2.3456 | lr 3.00e-03 | norm 0.912 |
// 5123 tok/s | MFU 41.2% | wait 0.1% | ETA 1m30s" (with " | comm N%" before ETA under mpirun).
struct Progress {
  long step = 0, steps = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, mfu = 0, wait_frac = 0;
  double comm_frac = -1;  // < 0: one process, not shown
  double eta_s = 0;
};
std::string format_progress(const Progress& p);

// The SVG document of a loss plot (exposed for tests).
std::string loss_plot_svg(const std::vector<std::pair<long, double>>& train,
                          const std::vector<std::pair<long, double>>& eval);

}  // namespace skein
