// Shared by the importers (import.cc, import_hf.cc, import_llmc.cc); not for the rest of skein.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/import.h"
#include "engine/safetensors.h"  // shape_text

namespace skein::import_detail {

// Limits on a file's dimensions, so that no product of them overflows (the file's size bounds
// them further: every tensor must be there, whole).
inline constexpr int64_t kMaxVocab = 1 << 24, kMaxContext = 1 << 24, kMaxChannels = 1 << 16,
                         kMaxLayers = 4096;

// skein's GPT-2 tensors for a shape, in the model's order, with their shapes (wpe: n_ctx rows).
struct Gpt2Tensor {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<Gpt2Tensor> gpt2_tensors(const PretrainedShape& s);

// config.json parsed, refusing nesting deeper than 16 levels (no config.json is; a hostile file
// could exhaust the stack of anything that recurses over the document); an error names cpath.
StatusOr<nlohmann::json> parse_config_json(const std::string& text, const std::string& cpath);

// The wire type of a safetensors tensor: F32, F16 or BF16, else an error naming it.
StatusOr<WireType> wire_type(const SafetensorsTensor& t, const std::string& path);

// The error for tensors that a safetensors file lacks (missing: their names without the prefix
// that the file may add), a model of `family` ("GPT-2", "Llama") of config_shape having them.
Status missing_tensors(const std::string& path, const std::vector<std::string>& missing,
                       const std::string& prefix, const std::string& family,
                       const std::string& config_shape);

// "F16", or "F32+F16" for a file of several dtypes (in name order).
std::string dtypes_text(const std::set<std::string>& dtypes);

}  // namespace skein::import_detail
