// inspect_checkpoint PATH: prints a checkpoint's manifest and verifies all of it: the manifest's
// own checksum, its tensor table against tensors.bin (entries, offsets, sizes, blob size) and
// every tensor's checksum.
// Exit code 0 when it verifies, 1 when it does not, 2 on bad usage.
#include <google/protobuf/text_format.h>

#include <cstdio>
#include <string>

#include "engine/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(
        argc == 2 ? stdout : stderr,
        "usage: inspect_checkpoint PATH\n  PATH: a checkpoint folder "
        "(RUN/checkpoints/step_NNNNNNNN)\nexit codes: 0 verifies, 1 does not, 2 bad usage\n");
    return argc == 2 ? 0 : 2;
  }
  const std::string path = argv[1];
  auto m = skein::verify_checkpoint(path);
  if (!m.ok()) {
    std::printf("%s: DOES NOT VERIFY\n  %s\n", path.c_str(), m.status().message().c_str());
    return 1;
  }
  std::printf(
      "%s\n  format version %u, step %ld, data cursor %ld, seed %lu, last loss %.4f, "
      "skipped steps %ld\n  %s\n",
      path.c_str(), m->format_version(), long(m->step()), long(m->data_cursor()),
      static_cast<unsigned long>(m->seed()), m->last_loss(), long(m->skipped_steps()),
      m->created_by().c_str());
  if (m->format_version() >= 2)
    std::printf("  manifest: CRC-32C ok; tensor table consistent with tensors.bin\n");
  else
    std::printf(
        "  manifest: format 1, written before manifests carried a checksum: only its "
        "structure and the tensors' checksums vouch for it\n");
  if (m->has_init_source()) {
    const auto& src = m->init_source();
    std::printf("  step 0 from pretrained weights: %s (%s, crc32c %08x)\n", src.path().c_str(),
                src.format().c_str(), src.crc32c());
    if (src.has_config_path())
      std::printf("    with %s (crc32c %08x)\n", src.config_path().c_str(), src.config_crc32c());
  }
  std::printf("  %d tensors, %lu bytes:\n", m->tensors_size(),
              static_cast<unsigned long>(m->blob_size()));
  for (const auto& t : m->tensors()) {
    std::string shape;
    for (int i = 0; i < t.shape_size(); ++i) {
      if (i) shape += 'x';
      shape += std::to_string(t.shape(i));
    }
    std::printf("    %-36s %s %-12s crc32c %08x  ok\n", t.name().c_str(), t.dtype().c_str(),
                shape.c_str(), t.crc32c());
  }
  std::string cfg;
  google::protobuf::TextFormat::PrintToString(m->config(), &cfg);
  std::printf("  config:\n");
  size_t start = 0;
  while (start < cfg.size()) {
    size_t end = cfg.find('\n', start);
    std::printf("    %s\n", cfg.substr(start, end - start).c_str());
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::printf("VERIFIED\n");
  return 0;
}
