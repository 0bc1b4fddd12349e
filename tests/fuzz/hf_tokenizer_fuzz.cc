// Fuzzes the reader of Hugging Face's tokenizer.json (parse_hf_tokenizer_json: the JSON, the
// model and pre-tokenizer settings, the vocabulary, the merges in either form, the added tokens,
// and every check between them). Input: the file. A file that parses makes a tokenizer whose
// tokenizer.bin loads back to the same bytes, and which encodes and decodes a short text with
// digits, spaces and invalid UTF-8 to the text with U+FFFD.
#include <cstdint>
#include <string>
#include <string_view>

#include "data/gpt2_vocab.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto vocab = skein::parse_hf_tokenizer_json(json, "tokenizer.json");
  if (!vocab.ok()) return 0;
  auto tok = skein::Tokenizer::from_gpt2(std::move(*vocab));
  if (!tok.ok()) __builtin_trap();  // parse_hf_tokenizer_json checked it already
  const std::string bytes = tok->serialize();
  skein::fuzz::write_scratch(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto loaded = skein::Tokenizer::load(skein::fuzz::scratch_path());
  if (!loaded.ok() || loaded->serialize() != bytes) __builtin_trap();
  const std::string text =
      "the 2 quick  12 brown\n\n3 fox, it's \xC3\xA9t\xC3\xA9 \xD9\xA3\xC2\xBD x";
  auto back = loaded->decode(loaded->encode(text));
  if (!back.ok() || *back != text) __builtin_trap();
  auto bad =
      loaded->decode(loaded->encode("a\xFF"
                                    "1"));
  if (!bad.ok() || *bad !=
                       "a\xEF\xBF\xBD"
                       "1")
    __builtin_trap();
  return 0;
}
