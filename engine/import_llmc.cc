// llm.c's model file (train_gpt2.py's write_model, read by train_gpt2.c):
//
//   header  256 x int32, little endian: [0] magic 20240326, [1] version (3: fp32, 5: bf16),
//           [2] maxT (n_ctx), [3] V, [4] L, [5] NH, [6] C, [7] Vp (V padded up, for the GPU)
//   body    16 tensors, each kind's layers one after another, fp32 or bf16:
//           wte (Vp,C), wpe (maxT,C), ln1w (L,C), ln1b (L,C), qkvw (L,3C,C), qkvb (L,3C),
//           attprojw (L,C,C), attprojb (L,C), ln2w (L,C), ln2b (L,C), fcw (L,4C,C), fcb (L,4C),
//           fcprojw (L,C,4C), fcprojb (L,C), lnfw (C), lnfb (C)
//
// Weights are [out, in] already, as in skein. wte's rows V..Vp-1 are padding, zero in every file
// llm.c writes: checked, then dropped (skein's vocabulary is V).
#include <cstring>

#include "engine/import.h"
#include "engine/import_detail.h"

namespace skein {

namespace {

constexpr int32_t kMagic = 20240326;
constexpr size_t kHeaderInts = 256, kHeaderBytes = kHeaderInts * 4;

}  // namespace

StatusOr<PretrainedWeights> PretrainedWeights::from_llmc(const uint8_t* data, size_t n,
                                                         const std::string& path) {
  if (n < kHeaderBytes)
    return Status::error(path + ": truncated: " + std::to_string(n) +
                         " bytes, but an llm.c model file's header alone is 1024 (256 int32)" +
                         "\nHINT: the file is truncated or corrupt; fetch or export it again");
  int32_t h[kHeaderInts];
  std::memcpy(h, data, kHeaderBytes);
  if (h[0] != kMagic)
    return Status::error(path + ": not an llm.c model file: its first int32 is " +
                         std::to_string(h[0]) + ", not the magic " + std::to_string(kMagic));
  WireType type;
  if (h[1] == 3) {
    type = WireType::kF32;
  } else if (h[1] == 5) {
    type = WireType::kBF16;
  } else {
    return Status::error(path + ": llm.c model file version " + std::to_string(h[1]) +
                         ", which skein does not read (3: fp32, 5: bf16, both with a padded "
                         "vocabulary)\nHINT: export it again with llm.c's current train_gpt2.py");
  }
  const char* names[] = {"maxT", "V", "L", "NH", "C", "Vp"};
  const int64_t limits[] = {import_detail::kMaxContext,  import_detail::kMaxVocab,
                            import_detail::kMaxLayers,   import_detail::kMaxChannels,
                            import_detail::kMaxChannels, import_detail::kMaxVocab};
  std::string dims;
  for (int i = 0; i < 6; ++i) {
    if (i) dims += ", ";
    dims += std::string(names[i]) + " " + std::to_string(h[2 + i]);
  }
  const std::string header_text = path + ": its header (" + dims + ")";
  for (int i = 0; i < 6; ++i) {
    if (h[2 + i] < 1 || h[2 + i] > limits[i])
      return Status::error(header_text + ": " + names[i] + " is not in 1.." +
                           std::to_string(limits[i]) + "\nHINT: the file is corrupt");
  }
  const int64_t maxT = h[2], V = h[3], L = h[4], NH = h[5], C = h[6], Vp = h[7];
  if (Vp < V)
    return Status::error(header_text + ": the padded vocabulary Vp is smaller than V" +
                         "\nHINT: the file is corrupt");
  if (C % NH != 0)
    return Status::error(header_text + ": NH does not divide C" + "\nHINT: the file is corrupt");

  // The 16 kinds in file order: llm.c's name, skein's name (per layer: after "h.N."), the shape
  // of one layer's piece, and whether it repeats per layer.
  struct Kind {
    const char* llmc;
    const char* skein;
    std::vector<int64_t> shape;
    bool per_layer;
  };
  const std::vector<Kind> kinds = {
      {"wte", "wte", {Vp, C}, false},
      {"wpe", "wpe", {maxT, C}, false},
      {"ln1w", "ln_1.weight", {C}, true},
      {"ln1b", "ln_1.bias", {C}, true},
      {"qkvw", "attn.c_attn.weight", {3 * C, C}, true},
      {"qkvb", "attn.c_attn.bias", {3 * C}, true},
      {"attprojw", "attn.c_proj.weight", {C, C}, true},
      {"attprojb", "attn.c_proj.bias", {C}, true},
      {"ln2w", "ln_2.weight", {C}, true},
      {"ln2b", "ln_2.bias", {C}, true},
      {"fcw", "mlp.c_fc.weight", {4 * C, C}, true},
      {"fcb", "mlp.c_fc.bias", {4 * C}, true},
      {"fcprojw", "mlp.c_proj.weight", {C, 4 * C}, true},
      {"fcprojb", "mlp.c_proj.bias", {C}, true},
      {"lnfw", "ln_f.weight", {C}, false},
      {"lnfb", "ln_f.bias", {C}, false},
  };
  const uint64_t elem = wire_type_bytes(type);
  uint64_t total = 0;  // elements; the limits keep this far from overflowing
  for (const Kind& k : kinds) {
    uint64_t e = k.per_layer ? uint64_t(L) : 1;
    for (int64_t d : k.shape) e *= uint64_t(d);
    total += e;
  }
  const uint64_t want = kHeaderBytes + total * elem;
  if (n != want)
    return Status::error(header_text + " needs " + std::to_string(want) + " bytes (" +
                         (type == WireType::kF32 ? "fp32" : "bf16") + "), but the file has " +
                         std::to_string(n) +
                         (n < want ? ": truncated" : ": not the layout its header describes") +
                         "\nHINT: the file is truncated or corrupt; fetch or export it again");

  PretrainedWeights w;
  w.shape_ = {int(V), int(maxT), int(L), int(NH), int(C)};
  w.path_ = path;
  w.format_ = std::string("llm.c model file, version ") + std::to_string(h[1]) +
              (type == WireType::kF32 ? " (fp32)" : " (bf16)");
  std::map<std::string, SourceTensor> found;
  const uint8_t* p = data + kHeaderBytes;
  for (const Kind& k : kinds) {
    uint64_t piece = elem;
    for (int64_t d : k.shape) piece *= uint64_t(d);
    for (int64_t l = 0; l < (k.per_layer ? L : 1); ++l) {
      SourceTensor t;
      t.name = k.per_layer ? "h." + std::to_string(l) + "." + k.skein : k.skein;
      t.file_name = k.per_layer ? std::string(k.llmc) + ", layer " + std::to_string(l) : k.llmc;
      t.type = type;
      t.data = p;
      t.file_shape = k.shape;
      if (t.name == "wte" && Vp > V) t.zero_from_row = V;
      found[t.name] = std::move(t);
      p += piece;
    }
  }
  for (const auto& e : import_detail::gpt2_tensors(w.shape_))
    w.tensors_.push_back(std::move(found.at(e.name)));
  return w;
}

}  // namespace skein
