// For gpt2_js_test.sh: checks a GPT-2 shard written by prepare_data (one document per file)
// against skein's own tokenizer: every document is <|endoftext|> and then Tokenizer::encode of
// the file (the streaming encoder equals the in-memory one), and decode gives the file back
// (with U+FFFD for invalid UTF-8). Exit code 0 when all hold.
//   gpt2_check TOKENIZER_BIN SHARD FILE...
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/gpt2_pretokenize.h"
#include "data/shard.h"
#include "data/tokenizer.h"

namespace {

std::string read_bytes(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gpt2_check TOKENIZER_BIN SHARD FILE...\n");
    return 2;
  }
  auto tok = skein::Tokenizer::load(argv[1]);
  if (!tok.ok() || tok->kind() != skein::Tokenizer::Kind::kGpt2) {
    std::fprintf(stderr, "gpt2_check: %s is no GPT-2 tokenizer: %s\n", argv[1],
                 tok.ok() ? "other kind" : tok.status().message().c_str());
    return 1;
  }
  auto shard = skein::Shard::open(argv[2], tok->vocab_size());
  if (!shard.ok()) {
    std::fprintf(stderr, "gpt2_check: %s\n", shard.status().message().c_str());
    return 1;
  }
  const uint16_t* t = shard->tokens();
  const size_t n = shard->size();
  size_t at = 0, failures = 0, replaced_files = 0;
  for (int f = 3; f < argc; ++f) {
    const std::string bytes = read_bytes(argv[f]);
    std::string text;
    if (skein::sanitize_utf8(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &text) >
        0) {
      ++replaced_files;
    }
    const std::vector<int32_t> ids = tok->encode(bytes);
    if (at >= n || t[at] != tok->eot_id() || n - at - 1 < ids.size() ||
        !std::equal(ids.begin(), ids.end(), t + at + 1)) {
      std::fprintf(stderr, "gpt2_check: FAIL %s: the shard's document is not encode(file)\n",
                   argv[f]);
      return 1;
    }
    at += 1 + ids.size();
    auto back = tok->decode(ids);
    if (!back.ok() || *back != text) {
      std::fprintf(stderr, "gpt2_check: FAIL %s: decode(encode(x)) is not x%s\n", argv[f],
                   text == bytes ? "" : " with U+FFFD for its invalid UTF-8");
      ++failures;
    }
  }
  if (at != n) {
    std::fprintf(stderr, "gpt2_check: FAIL the shard has %zu tokens after the last file\n", n - at);
    return 1;
  }
  std::printf(
      "gpt2_check: %d files, %zu tokens: shard == encode(file), decode(encode(x)) == x "
      "(%zu files with invalid UTF-8: == x with U+FFFD)%s\n",
      argc - 3, n, replaced_files, failures ? "; FAILED" : "");
  return failures ? 1 : 0;
}
