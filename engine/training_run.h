// A whole training run, as the train binary performs it: validate everything before the first
// allocation, set up or resume the run folder, train with progress lines, evaluate, checkpoint,
// and stop cleanly on SIGINT/SIGTERM.
//
// Run folder (run.out_dir): config.textproto (the resolved config), metrics.jsonl, loss.svg,
// checkpoints/step_NNNNNNNN/ and checkpoints/latest.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "proto/skein.pb.h"

namespace skein {

class Comm;

// Exit codes of the train binary (documented in train --help).
enum ExitCode : int {
  kExitOk = 0,             // finished, or stopped by a signal after saving a checkpoint
  kExitRuntime = 1,        // an error during training: I/O, disk full, non-finite loss with STOP
  kExitBadInput = 2,       // bad flags, config, data or output folder: nothing was written
  kExitResume = 3,         // resuming refused: incompatible config, or no checkpoint that verifies
  kExitInterrupted = 130,  // a second signal: stopped at once, the last checkpoint is intact
};

struct TrainRequest {
  std::string config_path;
  std::vector<std::string> overrides;  // --set path=value
  std::string resume = "auto";         // "auto", "none", or a checkpoint folder
  std::string out_dir;                 // --out; empty = run.out_dir of the config
  std::string init_from;               // --init_from; empty = model.init_from of the config
  Comm* comm = nullptr;                // the MPI job's ranks (rank 0 prints and writes);
                                       // nullptr = this process alone
};

// Runs training; prints progress to stdout and errors to stderr. Returns an ExitCode.
int run_training(const TrainRequest& request);

}  // namespace skein
