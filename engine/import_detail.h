// Shared by the importers (import.cc, import_hf.cc, import_llmc.cc); not for the rest of skein.
#pragma once

#include <cstdint>
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

}  // namespace skein::import_detail
