// Fuzzes the tokenizer file reader (Tokenizer::load: header, merges, trailing FNV-1a hash; byte
// and BPE files of version 1, GPT-2's of version 2, BPE with GPT-2's pieces of version 3, GPT-2's
// kind from a tokenizer.json of version 4); a
// tokenizer that loads encodes and decodes
// a short text. Input: a byte F, then the file. With F odd the trailing hash is recomputed
// first, so that mutations reach the merge table checks.
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::vector<uint8_t> file(data + 1, data + size);
  if ((data[0] & 1) && file.size() >= 8) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a 64 of everything before the hash
    for (size_t i = 0; i < file.size() - 8; ++i) h = (h ^ file[i]) * 1099511628211ull;
    skein::fuzz::put_le64(h, file.data() + file.size() - 8);
  }
  skein::fuzz::write_scratch(file.data(), file.size());
  auto tok = skein::Tokenizer::load(skein::fuzz::scratch_path());
  if (tok.ok()) {
    const std::vector<int32_t> ids = tok->encode("the quick brown fox, 123 ...\n");
    auto text = tok->decode(ids);
    if (!text.ok() || *text != "the quick brown fox, 123 ...\n") __builtin_trap();
  }
  return 0;
}
