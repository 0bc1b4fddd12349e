// Fuzzes the token shard reader (Shard::open on a file: header, size, token count, the
// vocabulary scan). Input: a byte choosing the vocabulary size, then the shard file.
#include <cstdint>

#include "data/shard.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int vocab = data[0] & 1 ? 65536 : 1 + data[0] * 37;
  skein::fuzz::write_scratch(data + 1, size - 1);
  auto shard = skein::Shard::open(skein::fuzz::scratch_path(), vocab, 1 + (data[0] >> 5));
  if (shard.ok() && shard->size() > 0) {
    volatile uint16_t sink = shard->tokens()[shard->size() - 1];
    (void)sink;
  }
  return 0;
}
