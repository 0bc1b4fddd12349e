// Hugging Face's safetensors container, read side (any model; the GPT-2 mapping is
// engine/import_hf.cc):
//
//   bytes [0, 8)        N, the header's length, uint64 little endian
//   bytes [8, 8 + N)    a JSON object: NAME -> {"dtype": "F32", "shape": [d0, ...],
//                       "data_offsets": [begin, end]}, and an optional "__metadata__" object of
//                       strings; writers pad it with spaces to a multiple of 8 bytes
//   bytes [8 + N, ...)  the data: each tensor's elements, row-major, little endian, at
//                       [begin, end) counted from the first byte after the header
//
// The file is untrusted: every length and offset is checked against the file's size before use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace skein {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // its bytes [begin, end), from the start of the file
};

struct SafetensorsHeader {
  uint64_t header_bytes = 0;               // N
  std::vector<SafetensorsTensor> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
  const SafetensorsTensor* find(std::string_view name) const;  // nullptr if absent
};

// Bytes per element of a safetensors dtype name; 0 if safetensors defines no such name (or only
// a sub-byte one, such as F4).
size_t safetensors_dtype_bytes(std::string_view dtype);

// The header longer than this is refused, as by the reference implementation (100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Parses and checks the container: the header length within the file, the header valid JSON
// (UTF-8, no name given twice), every entry a known dtype with a shape of non-negative integers
// and data_offsets [begin, end] within the data, end - begin = the shape's elements x the dtype's
// size, and no two tensors' bytes overlapping. `path` is for messages only.
// A tensor shape as text for messages: "[3, 17]".
std::string shape_text(const std::vector<int64_t>& shape);

StatusOr<SafetensorsHeader> parse_safetensors(const uint8_t* data, size_t n,
                                              const std::string& path);

}  // namespace skein
