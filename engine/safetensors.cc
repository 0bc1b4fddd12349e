#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace skein {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

using nlohmann::json;

std::string range_text(uint64_t begin, uint64_t end) {
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  return s + "]";
}

const char kCorruptHint[] =
    "\nHINT: the file is truncated or corrupt (an interrupted download?); fetch it again";

// One header entry NAME -> {dtype, shape, data_offsets}, checked against the data's size.
StatusOr<SafetensorsTensor> parse_entry(const std::string& name, const json& v, uint64_t data_start,
                                        uint64_t data_bytes, const std::string& path) {
  const std::string where = path + ": tensor " + name + ": ";
  if (!v.is_object())
    return Status::error(where + "its header entry is " + std::string(v.type_name()) +
                         ", not an object {\"dtype\", \"shape\", \"data_offsets\"}" + kCorruptHint);
  SafetensorsTensor t;
  t.name = name;
  const auto dtype = v.find("dtype");
  if (dtype == v.end() || !dtype->is_string())
    return Status::error(where + "no \"dtype\" string in its header entry" + kCorruptHint);
  t.dtype = dtype->get<std::string>();
  const size_t elem = safetensors_dtype_bytes(t.dtype);
  if (elem == 0)
    return Status::error(where + "dtype \"" + t.dtype +
                         "\" is not one that skein knows (BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, "
                         "U16, F16, BF16, I32, U32, F32, F64, I64, U64)");
  const auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array())
    return Status::error(where + "no \"shape\" array in its header entry" + kCorruptHint);
  uint64_t elements = 1;
  bool overflow = false;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
      return Status::error(where + "shape " + shape->dump() +
                           " holds something other than non-negative integers" + kCorruptHint);
    t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    overflow |= __builtin_mul_overflow(elements, d.get<uint64_t>(), &elements);
  }
  uint64_t bytes = 0;
  overflow |= __builtin_mul_overflow(elements, uint64_t(elem), &bytes);
  if (overflow)
    return Status::error(where + "shape " + shape_text(t.shape) + " has more elements than any " +
                         "file can hold" + kCorruptHint);
  const auto offsets = v.find("data_offsets");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    return Status::error(where + "no \"data_offsets\" [begin, end] of non-negative integers in " +
                         "its header entry" + kCorruptHint);
  const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
  if (end < begin)
    return Status::error(where + "data_offsets " + range_text(begin, end) + " end before they " +
                         "begin" + kCorruptHint);
  if (end > data_bytes)
    return Status::error(where + "data_offsets " + range_text(begin, end) +
                         " reach past the end of the data, which has " +
                         std::to_string(data_bytes) + " bytes" + kCorruptHint);
  if (end - begin != bytes)
    return Status::error(where + "shape " + shape_text(t.shape) + " of " + t.dtype + " takes " +
                         std::to_string(bytes) + " bytes, but data_offsets " +
                         range_text(begin, end) + " hold " + std::to_string(end - begin) +
                         kCorruptHint);
  t.begin = data_start + begin;
  t.end = data_start + end;
  return t;
}

}  // namespace

const SafetensorsTensor* SafetensorsHeader::find(std::string_view name) const {
  auto it =
      std::lower_bound(tensors.begin(), tensors.end(), name,
                       [](const SafetensorsTensor& t, std::string_view n) { return t.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

size_t safetensors_dtype_bytes(std::string_view d) {
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E5M2" || d == "F8_E4M3" || d == "F8_E8M0")
    return 1;
  if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 2;
  if (d == "I32" || d == "U32" || d == "F32") return 4;
  if (d == "I64" || d == "U64" || d == "F64" || d == "C64") return 8;
  return 0;
}

StatusOr<SafetensorsHeader> parse_safetensors(const uint8_t* data, size_t n,
                                              const std::string& path) {
  SafetensorsHeader h;
  if (n < 8)
    return Status::error(path + ": truncated: " + std::to_string(n) +
                         " bytes, but a safetensors file starts with an 8-byte header length" +
                         kCorruptHint);
  for (int i = 7; i >= 0; --i) h.header_bytes = h.header_bytes << 8 | data[i];
  if (h.header_bytes > n - 8)
    return Status::error(
        path + ": its first 8 bytes give a header of " + std::to_string(h.header_bytes) +
        " bytes, but only " + std::to_string(n - 8) +
        " bytes follow them (truncated, or not a safetensors file)" + kCorruptHint);
  if (h.header_bytes > kMaxSafetensorsHeaderBytes)
    return Status::error(path + ": a header of " + std::to_string(h.header_bytes) +
                         " bytes is longer than safetensors allows (100 MB)" + kCorruptHint);
  const char* text = reinterpret_cast<const char*>(data + 8);
  if (h.header_bytes == 0 || text[0] != '{')
    return Status::error(path + ": the header does not start with '{': not a safetensors file" +
                         kCorruptHint);
  // A name given twice would leave one of the two tensors unread: the parser keeps the last.
  // Nothing in a safetensors header nests deeper than 3 (header, tensor, shape): deeper values
  // are dropped while parsing and refused after it, so that no later recursion over the
  // document (dump(), for a message) can exhaust the stack on a hostile header.
  constexpr int kMaxDepth = 4;
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  bool too_deep = false;
  const json::parser_callback_t no_duplicates = [&](int depth, json::parse_event_t e,
                                                    json& parsed) {
    if (depth > kMaxDepth) {
      too_deep = true;
      return false;
    }
    if (e == json::parse_event_t::object_start) keys.emplace_back();
    if (e == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (e == json::parse_event_t::key && !keys.empty() && duplicate.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + h.header_bytes, no_duplicates);
  } catch (const json::exception& e) {
    return Status::error(path + ": the header (bytes 8.." + std::to_string(8 + h.header_bytes) +
                         ") is not valid JSON: " + e.what() + kCorruptHint);
  }
  if (too_deep)
    return Status::error(path + ": the header nests deeper than " + std::to_string(kMaxDepth) +
                         " levels, which no safetensors header does" + kCorruptHint);
  if (!duplicate.empty())
    return Status::error(path + ": the header names \"" + duplicate +
                         "\" twice, so which one is meant is unclear" + kCorruptHint);
  if (!header.is_object())
    return Status::error(path + ": the header is JSON " + std::string(header.type_name()) +
                         ", not an object of tensors" + kCorruptHint);
  const uint64_t data_start = 8 + h.header_bytes, data_bytes = n - data_start;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        return Status::error(path + ": __metadata__ is not an object of strings" + kCorruptHint);
      for (const auto& [key, value] : v.items()) {
        if (!value.is_string())
          return Status::error(path + ": __metadata__ \"" + key + "\" is " +
                               std::string(value.type_name()) + ", not a string" + kCorruptHint);
        h.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    StatusOr<SafetensorsTensor> t = parse_entry(name, v, data_start, data_bytes, path);
    if (!t.ok()) return t.status();
    h.tensors.push_back(std::move(*t));
  }
  // json objects iterate in key order, so tensors are sorted by name already.
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& t : h.tensors)
    if (t.end > t.begin) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(),  // ties stay in name order
                   [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const SafetensorsTensor &a = *by_offset[i - 1], &b = *by_offset[i];
    if (b.begin < a.end)
      return Status::error(path + ": tensors " + a.name + " and " + b.name +
                           " overlap: data_offsets " +
                           range_text(a.begin - data_start, a.end - data_start) + " and " +
                           range_text(b.begin - data_start, b.end - data_start) + kCorruptHint);
  }
  return h;
}

}  // namespace skein
