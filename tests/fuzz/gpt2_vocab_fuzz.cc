// Fuzzes GPT-2's vocabulary readers (parse_gpt2_vocab: the JSON of vocab.json / encoder.json,
// the merges of merges.txt / vocab.bpe, and every check between them). Input: uint16 n (little
// endian), n bytes of JSON, then the merges file. A vocabulary that parses makes a tokenizer
// whose tokenizer.bin loads back to the same bytes, and which encodes and decodes a short text.
#include <cstdint>
#include <string>
#include <string_view>

#include "data/gpt2_vocab.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t n = std::min<size_t>(data[0] | size_t(data[1]) << 8, size - 2);
  const std::string_view json(reinterpret_cast<const char*>(data + 2), n);
  const std::string_view merges(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
  auto vocab = skein::parse_gpt2_vocab(json, "vocab.json", merges, "merges.txt");
  if (!vocab.ok()) return 0;
  auto tok = skein::Tokenizer::from_gpt2(std::move(*vocab));
  if (!tok.ok()) __builtin_trap();  // parse_gpt2_vocab checked it already
  const std::string bytes = tok->serialize();
  skein::fuzz::write_scratch(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto loaded = skein::Tokenizer::load(skein::fuzz::scratch_path());
  if (!loaded.ok() || loaded->serialize() != bytes) __builtin_trap();
  const std::string text = "the quick brown fox, 123 ... it's \xC3\xA9t\xC3\xA9\n\n  x";
  auto back = loaded->decode(loaded->encode(text));
  if (!back.ok() || *back != text) __builtin_trap();
  return 0;
}
