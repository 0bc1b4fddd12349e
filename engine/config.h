// Loading and validating configs (proto/skein.proto in text format). Every error names the file,
// and the line and column or the field, what was expected and what was found.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "proto/skein.pb.h"

namespace skein {

// Parses a text-format config. Syntax errors and unknown fields give "FILE:LINE:COL: ...".
StatusOr<proto::Config> parse_config_text(const std::string& text, const std::string& filename);
StatusOr<proto::Config> load_config(const std::string& path);

// Applies "path.to.field=value" overrides (the train binary's --set), e.g. "run.steps=10".
Status apply_override(proto::Config* cfg, const std::string& assignment);

// Semantic checks that do not touch the file system (shapes, ranges, divisibility).
Status validate_config(const proto::Config& cfg);

GptConfig gpt_config(const proto::ModelConfig& m);

// The matmul arithmetic for run.precision on this CPU. *note gets a line for the user when the
// run does not get what it asked for (BF16 without the means to run it: fp32 then), else "".
MatmulPrecision matmul_precision_for(proto::RunConfig::Precision p, std::string* note);

}  // namespace skein
