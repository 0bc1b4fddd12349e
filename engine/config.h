// Loading and validating configs (proto/skein.proto in text format). Every error names the file,
// and the line and column or the field, what was expected and what was found.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "engine/trainer.h"
#include "proto/skein.pb.h"

namespace skein {

// Parses a text-format config. Syntax errors and unknown fields give "FILE:LINE:COL: ...".
StatusOr<proto::Config> parse_config_text(const std::string& text, const std::string& filename);
StatusOr<proto::Config> load_config(const std::string& path);

// Applies "path.to.field=value" overrides (the train binary's --set), e.g. "run.steps=10".
Status apply_override(proto::Config* cfg, const std::string& assignment);

// Semantic checks that do not touch the file system (shapes, ranges, divisibility).
Status validate_config(const proto::Config& cfg);

// The config of a run: the file, then the --set overrides in order, then out_dir (--out) and
// init_from (--init_from: model.init_from) when not empty; validated. *file_sets_nothing: the
// file itself sets no field (empty, or comments only), so that the first error can say so.
StatusOr<proto::Config> resolve_config(const std::string& path,
                                       const std::vector<std::string>& overrides,
                                       const std::string& out_dir, bool* file_sets_nothing,
                                       const std::string& init_from = "");

GptConfig gpt_config(const proto::ModelConfig& m);

// The trainer's options that the config decides: batch, sequence length, accumulation, team,
// optimizer, schedule and clipping (threads, replicas and comm are the run's to set).
TrainerOptions trainer_options(const proto::Config& cfg);

// The config fields whose change makes a checkpoint unusable (the model's shape, the optimizer
// kind), as "field: old -> new" lines (empty when compatible); compatible changes go to *notes.
std::vector<std::string> incompatible_changes(const proto::Config& saved, const proto::Config& now,
                                              std::vector<std::string>* notes);

// The matmul arithmetic for run.precision on this CPU. *note gets a line for the user when the
// run does not get what it asked for (BF16 without the means to run it: fp32 then), else "".
MatmulPrecision matmul_precision_for(proto::RunConfig::Precision p, std::string* note);

}  // namespace skein
