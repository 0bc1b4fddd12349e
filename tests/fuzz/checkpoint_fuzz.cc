// Fuzzes the checkpoint readers on bytes: the manifest (both formats, its checksum and the
// structural cross-checks) and the blob against it. Input: a byte F, a uint32 LE manifest length,
// the manifest, then tensors.bin. With F odd, a format-2 manifest's length and CRC-32C fields are
// fixed up first, so that mutations reach the protobuf parser and the cross-checks.
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/crc32c.h"
#include "engine/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const bool fix = data[0] & 1;
  uint32_t mlen = 0;
  std::memcpy(&mlen, data + 1, 4);
  data += 5, size -= 5;
  if (mlen > size) mlen = static_cast<uint32_t>(size);
  std::vector<uint8_t> manifest(data, data + mlen);
  if (fix && manifest.size() >= 24 && std::memcmp(manifest.data(), "SKEINMF\n", 8) == 0) {
    skein::fuzz::put_le64(manifest.size() - 24, manifest.data() + 8);
    skein::fuzz::put_le64(skein::crc32c(manifest.data() + 24, manifest.size() - 24),
                          manifest.data() + 16);
  }
  auto m = skein::parse_manifest(manifest.data(), manifest.size(), "fuzz/manifest.pb");
  if (m.ok()) (void)skein::verify_blob_bytes(*m, data + mlen, size - mlen, "fuzz/tensors.bin");
  return 0;
}
