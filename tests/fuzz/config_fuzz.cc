// Fuzzes the config readers: the text-format parser with its error explanations, the semantic
// checks, and --set overrides. Input: a config text; its last line, if it holds '=', is also
// applied as an override.
#include <cstdint>
#include <string>

#include "engine/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  skein::StatusOr<skein::proto::Config> cfg = skein::parse_config_text(text, "fuzz.textproto");
  skein::proto::Config c = cfg.ok() ? *cfg : skein::proto::Config();
  const size_t nl = text.rfind('\n');
  const std::string last = nl == std::string::npos ? text : text.substr(nl + 1);
  if (last.find('=') != std::string::npos) (void)skein::apply_override(&c, last);
  (void)skein::validate_config(c);
  return 0;
}
