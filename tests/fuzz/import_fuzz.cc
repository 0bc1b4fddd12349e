// Fuzzes the pretrained-weights readers on bytes (engine/import.h): safetensors with its
// config.json (GPT-2's or a Llama's), and llm.c's model file; then the value checks and the copy
// into a Model.
// Input: a byte F, then
//   F even (safetensors): uint16 LE config.json length, config.json, the .safetensors file.
//          With F & 2 the file's header length is clamped to the bytes that follow it, so that
//          mutations reach the JSON and the tensor table more often.
//   F odd (llm.c): the model file. With F & 2 the magic and version are fixed up (version 5 if
//          F & 4, else 3), so that mutations reach the shape and size checks.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/import.h"
#include "engine/model.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  ++data, --size;
  std::string config;
  if (!(flags & 1)) {
    if (size < 2) return 0;
    size_t len = data[0] | size_t(data[1]) << 8;
    data += 2, size -= 2;
    len = std::min(len, size);
    config.assign(reinterpret_cast<const char*>(data), len);
    data += len, size -= len;
  }
  std::vector<uint8_t> file(data, data + size);
  if (!(flags & 1) && (flags & 2) && file.size() >= 8) {
    uint64_t n = 0;
    std::memcpy(&n, file.data(), 8);
    skein::fuzz::put_le64(std::min<uint64_t>(n, file.size() - 8), file.data());
  }
  if ((flags & 1) && (flags & 2) && file.size() >= 8) {
    const int32_t head[2] = {20240326, flags & 4 ? 5 : 3};
    std::memcpy(file.data(), head, 8);
  }
  auto w = flags & 1 ? skein::PretrainedWeights::from_llmc(file.data(), file.size(), "fuzz.bin")
                     : skein::PretrainedWeights::from_safetensors(file.data(), file.size(), config,
                                                                  "fuzz/model.safetensors",
                                                                  "fuzz/config.json");
  if (!w.ok()) return 0;
  if (!w->check_values().ok()) return 0;
  // Every tensor is in the file, whole, so the model is no bigger than the input allows.
  const skein::PretrainedShape& s = w->shape();
  const skein::GptConfig cfg = skein::pretrained_model_config(s, std::min(s.n_ctx, 64));
  if (skein::Model::num_params_for(cfg) > (size_t(1) << 24)) std::abort();  // a reader bug
  skein::Model model(cfg);
  if (!w->load_into(model).ok()) std::abort();  // checked values must load
  return 0;
}
