// Pretrained weights in (train --init_from): a GPT-2 from Hugging Face's model.safetensors (with
// its config.json) or from llm.c's model file (gpt2_124M.bin), or a Llama-family model from
// Hugging Face's LlamaForCausalLM files, onto skein's Model.
//
// The file decides the model's shape (PretrainedShape); apply_pretrained_shape() puts it into the
// config's model fields, or says field by field where the config states another. Opening checks
// the whole structure (headers, offsets, shapes, names, dtypes) without reading the data;
// check_values() then reads every value once (finite; a stored lm_head equal to wte; llm.c's
// padding rows zero); load_into() copies into a Model, converting F16/BF16 and transposing
// Hugging Face's Conv1D weights ([in, out]) into skein's [out, in]. Every error names the file and
// the tensor.
//
// Each format's reader is its own file: import_hf.cc (GPT-2's safetensors + config.json, on
// engine/safetensors.h), import_hf_llama.cc (LlamaForCausalLM's) and import_llmc.cc; this header
// is all that the rest of skein sees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "proto/skein.pb.h"

namespace skein {

class MappedFile;

// How a file stores a tensor's elements: little-endian float32, float16 or bfloat16.
enum class WireType { kF32, kF16, kBF16 };
const char* wire_type_name(WireType t);  // "F32", "F16", "BF16"
size_t wire_type_bytes(WireType t);
float f16_to_f32(uint16_t bits);  // exact (every float16 is a float32), subnormals included
inline float bf16_to_f32(uint16_t bits) {
  const uint32_t u = uint32_t(bits) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// The shape of the model that a file holds: a GPT-2, or a Llama with the fields below.
struct PretrainedShape {
  int vocab_size = 0;  // V (llm.c: the real vocabulary, not the padded Vp)
  int n_ctx = 0;       // rows of the position embedding (HF n_positions, llm.c maxT); Llama:
                       // max_position_embeddings
  int n_layer = 0;
  int n_head = 0;
  int d_model = 0;
  Arch arch = Arch::kGpt2;
  int n_kv_head = 0, ffn_dim = 0;  // Llama: num_key_value_heads, intermediate_size
  double rope_theta = 10000, norm_eps = 1e-5;
  bool tied = true;  // Llama: tie_word_embeddings
};

// One of skein's tensors as the file stores it.
struct SourceTensor {
  std::string name;       // skein's ("h.0.attn.c_attn.weight")
  std::string file_name;  // the file's ("transformer.h.0.attn.c_attn.weight", "qkvw, layer 0")
  WireType type = WireType::kF32;
  const uint8_t* data = nullptr;  // its first element
  std::vector<int64_t> file_shape;
  bool transposed = false;     // stored [in, out] (Hugging Face's Conv1D); skein's is [out, in]
  int64_t zero_from_row = -1;  // rows from here on must be zero (llm.c's vocabulary padding)
  int64_t row0 = -1;  // >= 0: a part of skein's tensor, its rows from row0 on (Llama's q, k, v
                      // into qkv_proj, gate and up into gate_up_proj)
};

class PretrainedWeights {
 public:
  // PATH is a folder holding model.safetensors and config.json, a .safetensors file with
  // config.json next to it, or an llm.c model file (recognised by its magic number). Maps the
  // file and checks its structure; reads no tensor data (except for the checksum).
  static StatusOr<PretrainedWeights> open(const std::string& path);
  // The readers on bytes (open() calls them; the fuzzer too). `data` must outlive the result;
  // the paths are for messages.
  static StatusOr<PretrainedWeights> from_safetensors(const uint8_t* data, size_t n,
                                                      const std::string& config_json,
                                                      const std::string& path,
                                                      const std::string& config_path);
  static StatusOr<PretrainedWeights> from_llmc(const uint8_t* data, size_t n,
                                               const std::string& path);
  // from_safetensors for a config.json of model_type "llama" (import_hf_llama.cc).
  static StatusOr<PretrainedWeights> from_llama_safetensors(const uint8_t* data, size_t n,
                                                            const std::string& config_json,
                                                            const std::string& path,
                                                            const std::string& config_path);

  const PretrainedShape& shape() const { return shape_; }
  // "safetensors, F16" or "llm.c model file, version 5 (bf16)".
  const std::string& format() const { return format_; }
  const std::string& path() const { return path_; }                // the tensors' file
  const std::string& config_path() const { return config_path_; }  // config.json, or ""
  // CRC-32C of the tensors' file and of config.json (0 when not read from files by open()).
  uint32_t crc32c() const { return crc32c_; }
  uint32_t config_crc32c() const { return config_crc32c_; }
  // One entry per tensor of skein's model, in the model's order (several, by rows, for a tensor
  // that the file stores in parts).
  const std::vector<SourceTensor>& tensors() const { return tensors_; }

  // Reads every value: finite; a stored lm_head.weight equal to wte; llm.c's padding rows zero.
  Status check_values() const;
  // Copies the weights into `model`, whose shape must be the file's but for seq_len, which may
  // be shorter than n_ctx (then the first seq_len rows of wpe are used). Checks every value as
  // it copies; on error the model's parameters are unspecified.
  Status load_into(Model& model) const;

 private:
  PretrainedWeights() = default;
  PretrainedShape shape_;
  std::string format_, path_, config_path_;
  uint32_t crc32c_ = 0, config_crc32c_ = 0;
  std::vector<SourceTensor> tensors_;
  std::vector<SourceTensor> tied_;          // a stored lm_head.weight: must equal wte
  std::shared_ptr<const MappedFile> file_;  // the bytes, when open() mapped them
};

// The model fields of a config from the weights' shape: vocab_size, n_layer, n_head and d_model
// are the file's; seq_len is the file's n_ctx, or shorter. A field that the config sets (has_*)
// to another value is an error that names each such field with both values.
Status apply_pretrained_shape(const PretrainedWeights& w, proto::ModelConfig* m);

// The model of the weights' shape at sequence length seq_len (<= n_ctx), as gpt_config gives it
// for the config that apply_pretrained_shape fills.
GptConfig pretrained_model_config(const PretrainedShape& s, int seq_len);

// What a checkpoint manifest records about the weights a run started from.
proto::InitSource init_source_record(const PretrainedWeights& w);

}  // namespace skein
