// Weights out, Hugging Face and llm.c (GGUF: export_gguf.cc). The readers of engine/import_hf.cc
// and engine/import_llmc.cc are the specification of both layouts: an export read back by
// PretrainedWeights gives the model's parameters bit for bit in f32.
//
// Hugging Face folder:
//   model.safetensors  8-byte little-endian header length N, the JSON header (N a multiple of 8,
//                      padded with spaces): "__metadata__": {"format": "pt"} and per tensor
//                      NAME -> {dtype, shape, data_offsets}; then the data, in the model's order.
//                      Names are GPT2LMHeadModel's state dict (what its save_pretrained writes):
//                      transformer.wte.weight (V,C), transformer.wpe.weight (T,C), transformer.h.N.
//                      {ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}.{weight, bias},
//                      transformer.ln_f.{weight, bias}. The four matrices are Conv1D's [in, out],
//                      the transpose of skein's [out, in]. No lm_head.weight: it is tied to wte.
//   config.json        GPT2Config: the shape (n_positions = n_ctx = skein's seq_len), GELU's tanh
//                      approximation ("gelu_new", kernels/gelu.h), LayerNorm's eps 1e-5
//                      (kernels/layernorm.h), no dropout (skein trains without), tied embeddings.
//   vocab.json, merges.txt   GPT-2 tokenizers only: token -> id, and "#version: 0.2" then one
//                      merge "left right" per line in rank order, each token written in GPT-2's
//                      byte characters (bytes_to_unicode), as data/gpt2_vocab.h reads them.
//   tokenizer.json     the same tokenizer for Hugging Face's tokenizers library (and
//                      AutoTokenizer, which prefers it): the vocabulary and merges, the special
//                      tokens as added tokens, and the pre-tokenizer that cuts as skein does
//                      (ByteLevel, or Sequence[Digits(individual_digits), ByteLevel] for a
//                      tokenizer that cuts every digit alone, as SmolLM's).
//
// A Llama-family model's folder is LlamaForCausalLM's: model.embed_tokens.weight (V,C),
// model.layers.N.{input_layernorm, post_attention_layernorm}.weight (C),
// model.layers.N.self_attn.{q,k,v,o}_proj.weight (q: NH*HS x C; k, v: NKV*HS x C), cut out of
// skein's fused qkv rows (the same rotary layout: Hugging Face's halves), model.layers.N.mlp.
// {gate,up}_proj.weight (F,C) cut out of gate_up, down_proj.weight (C,F), model.norm.weight,
// lm_head.weight when untied; all [out, in]. config.json is LlamaConfig's (model_type "llama").
//
// llm.c model file: 256 x int32 header (magic 20240326, version 3 fp32 / 5 bf16, maxT = seq_len,
// V, L, NH, C, Vp = V rounded up to a multiple of 128), then the 16 arrays in llm.c's order, each
// kind's layers one after another; wte's rows V..Vp-1 are zero.
#include "engine/export.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/file_util.h"
#include "kernels/gemm.h"  // round_to_bf16
#include "kernels/layernorm.h"

namespace skein {

namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

size_t dtype_bytes(ExportDtype d) {
  return d == ExportDtype::kF32 ? 4 : 2;
}

// Element `flat` of a row-major shape as "[i, j]".
std::string index_text(size_t flat, const std::vector<int>& shape) {
  std::vector<size_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % size_t(shape[d]);
    flat /= size_t(shape[d]);
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(idx[i]);
  }
  return s + "]";
}

std::string value_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

// Hugging Face's Conv1D weights: stored [in, out].
bool is_conv1d(const std::string& name) {
  return name.ends_with(".attn.c_attn.weight") || name.ends_with(".attn.c_proj.weight") ||
         name.ends_with(".mlp.c_fc.weight") || name.ends_with(".mlp.c_proj.weight");
}

// Encodes floats in a dtype and appends them to a file through a buffer of bounded size, so that
// a large tensor needs no copy of its own.
class TensorWriter {
 public:
  TensorWriter(AtomicFile& f, ExportDtype d) : f_(f), d_(d), buf_(kBufBytes) {}

  Status put(const float* v, size_t n) {
    const size_t eb = dtype_bytes(d_);
    while (n > 0) {
      const size_t k = std::min(n, (buf_.size() - used_) / eb);
      uint8_t* out = buf_.data() + used_;
      if (d_ == ExportDtype::kF32) {
        std::memcpy(out, v, k * 4);
      } else {
        for (size_t i = 0; i < k; ++i) {
          const uint16_t h = d_ == ExportDtype::kF16 ? f32_to_f16_rne(v[i]) : f32_to_bf16_rne(v[i]);
          std::memcpy(out + 2 * i, &h, 2);
        }
      }
      used_ += k * eb;
      v += k;
      n -= k;
      if (used_ == buf_.size()) SKEIN_RETURN_IF_ERROR(flush());
    }
    return Status();
  }
  // src is [rows, cols] (skein's [out, in]); writes its transpose [cols, rows].
  Status put_transposed(const float* src, size_t rows, size_t cols) {
    std::vector<float> column(rows);
    for (size_t c = 0; c < cols; ++c) {
      for (size_t r = 0; r < rows; ++r) column[r] = src[r * cols + c];
      SKEIN_RETURN_IF_ERROR(put(column.data(), rows));
    }
    return Status();
  }
  Status zeros(size_t n) {
    const std::vector<float> z(std::min<size_t>(n, 4096), 0.0f);
    for (size_t k = 0; n > 0; n -= k) {
      k = std::min(n, z.size());
      SKEIN_RETURN_IF_ERROR(put(z.data(), k));
    }
    return Status();
  }
  Status flush() {
    if (used_ == 0) return Status();
    const size_t n = used_;
    used_ = 0;
    return f_.write(buf_.data(), n);
  }

 private:
  static constexpr size_t kBufBytes = 1 << 20;  // a multiple of every element size
  AtomicFile& f_;
  ExportDtype d_;
  std::vector<uint8_t> buf_;
  size_t used_ = 0;
};

// Creates dir and its missing parents; *created receives the folders made, deepest last, so that
// a failed export can remove them again.
Status make_out_dir(const std::string& dir, std::vector<fs::path>* created) {
  std::error_code ec;
  for (fs::path p = fs::absolute(dir, ec).lexically_normal(); !p.empty() && !fs::exists(p, ec);
       p = p.parent_path()) {
    if (p == p.parent_path()) break;
    created->insert(created->begin(), p);
  }
  return make_dirs(dir);
}

void remove_created(const std::vector<fs::path>& created) {
  std::error_code ec;
  for (auto it = created.rbegin(); it != created.rend(); ++it) fs::remove(*it, ec);  // if empty
}

// One object from token to id, in id order. (Written entry by entry: ordered_json's inserts are
// linear searches, quadratic over GPT-2's 50257 tokens.)
// Ids with leave_out[id] set are not written.
std::string hf_vocab_json(const Tokenizer& tok, const std::vector<bool>* leave_out = nullptr) {
  // push_back and append, not operator+ on literals: GCC 12 at -O3 reports a false -Wrestrict
  // (bug 105329) in std::string's concatenation of short strings.
  std::string s(1, '{');
  for (int id = 0; id < tok.vocab_size(); ++id) {
    if (leave_out && (*leave_out)[id]) continue;
    if (s.size() > 1) s.push_back(',');
    s.append(ordered_json(gpt2_spelling(tok.token_bytes(id))).dump(-1, ' ', false));
    s.push_back(':');
    s.append(std::to_string(id));
  }
  s.append("}\n");
  return s;
}

// GPT2Tokenizer drops the file's last line (it expects the final newline), so every merge line
// ends with one.
std::string hf_merges_txt(const Tokenizer& tok) {
  std::string s = "#version: 0.2\n";
  for (const Merge& m : tok.merges()) {
    s.append(gpt2_spelling(tok.token_bytes(m.left)));
    s.push_back(' ');
    s.append(gpt2_spelling(tok.token_bytes(m.right)));
    s.push_back('\n');
  }
  return s;
}

// Hugging Face's tokenizer.json of the same tokenizer: its vocabulary and merges (as in
// vocab.json and merges.txt), the special tokens as added tokens, and the pre-tokenizer that
// cuts as skein does (ByteLevel, or Sequence[Digits, ByteLevel] for every digit alone).
std::string hf_tokenizer_json(const Tokenizer& tok) {
  const ordered_json byte_level = {{"type", "ByteLevel"},
                                   {"add_prefix_space", false},
                                   {"trim_offsets", true},
                                   {"use_regex", true}};
  ordered_json pre = byte_level;
  if (tok.gpt2_pieces() == Gpt2Pieces::kDigits) {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            ordered_json::array(
                {ordered_json{{"type", "Digits"}, {"individual_digits", true}}, byte_level})}};
  }
  ordered_json added = ordered_json::array();
  // A special token whose text differs from its spelling in byte characters (one with a space,
  // a control or a non-ASCII byte; GPT-2's and SmolLM's have none) is an added token only:
  // Hugging Face matches an added token's content against model.vocab's keys.
  std::vector<bool> raw_only(tok.vocab_size(), false);
  for (const int32_t id : tok.special_ids()) {
    raw_only[id] = gpt2_spelling(tok.token_bytes(id)) != tok.token_bytes(id);
    added.push_back({{"id", id},
                     {"content", tok.token_bytes(id)},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  std::string merges = "[";
  for (const Merge& m : tok.merges()) {
    if (merges.size() > 1) merges.push_back(',');
    merges.append(ordered_json(gpt2_spelling(tok.token_bytes(m.left)) + " " +
                               gpt2_spelling(tok.token_bytes(m.right)))
                      .dump(-1, ' ', false));
  }
  merges.push_back(']');
  // The head, then vocab and merges written by hand (see hf_vocab_json) in the model object.
  const ordered_json head = {{"version", "1.0"},          {"truncation", nullptr},
                             {"padding", nullptr},        {"added_tokens", added},
                             {"normalizer", nullptr},     {"pre_tokenizer", pre},
                             {"post_processor", nullptr}, {"decoder", byte_level}};
  const ordered_json model = {{"type", "BPE"},
                              {"dropout", nullptr},
                              {"unk_token", nullptr},
                              {"continuing_subword_prefix", nullptr},
                              {"end_of_word_suffix", nullptr},
                              {"fuse_unk", false},
                              {"byte_fallback", false},
                              {"ignore_merges", false}};
  // (a special token that is not UTF-8, which no published tokenizer has, gets U+FFFD)
  std::string s = head.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  s.pop_back();  // the closing brace
  std::string m = model.dump(-1, ' ', false);
  m.pop_back();
  std::string vocab = hf_vocab_json(tok, &raw_only);
  vocab.pop_back();  // its newline
  s.append(",\"model\":");
  s.append(m);
  s.append(",\"vocab\":");
  s.append(vocab);
  s.append(",\"merges\":");
  s.append(merges);
  s.append("}}\n");
  return s;
}

std::string hf_config_json(const Model& model, const Tokenizer* tok, ExportDtype dtype) {
  const GptConfig& c = model.config();
  const char* torch_dtype = dtype == ExportDtype::kF32   ? "float32"
                            : dtype == ExportDtype::kF16 ? "float16"
                                                         : "bfloat16";
  ordered_json eot = nullptr;  // byte and BPE tokenizers have no <|endoftext|>
  if (tok && tok->eot_id() >= 0) eot = tok->eot_id();
  if (c.arch == Arch::kLlama) {
    const ordered_json j = {
        {"architectures", ordered_json::array({"LlamaForCausalLM"})},
        {"model_type", "llama"},
        {"vocab_size", c.vocab_size},
        {"max_position_embeddings", c.seq_len},
        {"hidden_size", c.d_model},
        {"intermediate_size", c.ffn()},
        {"num_hidden_layers", c.n_layer},
        {"num_attention_heads", c.n_head},
        {"num_key_value_heads", c.kv_heads()},
        {"head_dim", c.head_size()},
        {"hidden_act", "silu"},
        {"rms_norm_eps", c.norm_eps},
        {"rope_theta", c.rope_theta},
        {"rope_scaling", nullptr},
        {"attention_bias", false},
        {"mlp_bias", false},
        {"attention_dropout", 0.0},
        {"tie_word_embeddings", c.tied},
        {"bos_token_id", eot},
        {"eos_token_id", eot},
        {"torch_dtype", torch_dtype},
        {"use_cache", true},
    };
    return j.dump(2) + "\n";
  }
  const ordered_json j = {
      {"architectures", ordered_json::array({"GPT2LMHeadModel"})},
      {"model_type", "gpt2"},
      {"vocab_size", c.vocab_size},
      {"n_positions", c.seq_len},
      {"n_ctx", c.seq_len},
      {"n_embd", c.d_model},
      {"n_layer", c.n_layer},
      {"n_head", c.n_head},
      {"n_inner", nullptr},  // 4 x n_embd
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", kLayerNormEps},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      {"bos_token_id", eot},
      {"eos_token_id", eot},
      {"torch_dtype", torch_dtype},
      {"use_cache", true},
  };
  return j.dump(2) + "\n";
}

// The file's name of a tensor in GPT2LMHeadModel's state dict.
std::string hf_name(const std::string& name) {
  return "transformer." + (name == "wte" || name == "wpe" ? name + ".weight" : name);
}

// One tensor of model.safetensors: rows x cols floats of the model from data on, stored
// transposed (Conv1D's [in, out]) or as they are.
struct HfTensor {
  std::string name;
  const float* data;
  size_t rows, cols;  // a vector: rows elements, cols 1
  bool matrix;
  bool transposed = false;
};

std::vector<HfTensor> gpt2_hf_tensors(const Model& model) {
  std::vector<HfTensor> out;
  for (const TensorView& t : model.tensors()) {
    const size_t rows = t.shape[0], cols = t.shape.size() > 1 ? t.shape[1] : 1;
    out.push_back({hf_name(t.name), model.params() + t.offset, rows, cols, t.shape.size() > 1,
                   is_conv1d(t.name)});
  }
  return out;
}

// LlamaForCausalLM's (see the file comment): rows of skein's fused matrices are contiguous.
std::vector<HfTensor> llama_hf_tensors(const Model& model) {
  const GptConfig& c = model.config();
  const size_t C = c.d_model, KV = size_t(c.kv_heads()) * c.head_size(), F = c.ffn();
  const float* p = model.params();
  std::vector<HfTensor> out;
  out.push_back(
      {"model.embed_tokens.weight", p + model.wte_offset(), size_t(c.vocab_size), C, true});
  for (int l = 0; l < c.n_layer; ++l) {
    const Model::LayerOffsets& o = model.layer(l);
    const std::string b = "model.layers." + std::to_string(l) + ".";
    out.push_back({b + "input_layernorm.weight", p + o.ln1w, C, 1, false});
    out.push_back({b + "self_attn.q_proj.weight", p + o.qkvw, C, C, true});
    out.push_back({b + "self_attn.k_proj.weight", p + o.qkvw + C * C, KV, C, true});
    out.push_back({b + "self_attn.v_proj.weight", p + o.qkvw + (C + KV) * C, KV, C, true});
    out.push_back({b + "self_attn.o_proj.weight", p + o.projw, C, C, true});
    out.push_back({b + "post_attention_layernorm.weight", p + o.ln2w, C, 1, false});
    out.push_back({b + "mlp.gate_proj.weight", p + o.fcw, F, C, true});
    out.push_back({b + "mlp.up_proj.weight", p + o.fcw + F * C, F, C, true});
    out.push_back({b + "mlp.down_proj.weight", p + o.fcprojw, C, F, true});
  }
  out.push_back({"model.norm.weight", p + model.lnfw_offset(), C, 1, false});
  if (!c.tied)
    out.push_back({"lm_head.weight", p + model.lm_head_offset(), size_t(c.vocab_size), C, true});
  return out;
}

Status write_safetensors(AtomicFile& f, const Model& model, ExportDtype dtype) {
  const char* st_dtype = dtype == ExportDtype::kF32   ? "F32"
                         : dtype == ExportDtype::kF16 ? "F16"
                                                      : "BF16";
  const std::vector<HfTensor> tensors =
      model.config().arch == Arch::kLlama ? llama_hf_tensors(model) : gpt2_hf_tensors(model);
  ordered_json h = ordered_json::object();
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const HfTensor& t : tensors) {
    std::vector<size_t> shape = {t.rows, t.cols};
    if (!t.matrix) shape = {t.rows};
    if (t.transposed) std::swap(shape[0], shape[1]);
    const uint64_t bytes = uint64_t(t.rows * t.cols) * dtype_bytes(dtype);
    h[t.name] = {{"dtype", st_dtype}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  uint8_t n[8];
  for (int i = 0; i < 8; ++i) n[i] = static_cast<uint8_t>(uint64_t(header.size()) >> (8 * i));
  SKEIN_RETURN_IF_ERROR(f.write(n, 8));
  SKEIN_RETURN_IF_ERROR(f.write(header.data(), header.size()));
  TensorWriter w(f, dtype);
  for (const HfTensor& t : tensors) {
    if (t.transposed) {
      SKEIN_RETURN_IF_ERROR(w.put_transposed(t.data, t.rows, t.cols));
    } else {
      SKEIN_RETURN_IF_ERROR(w.put(t.data, t.rows * t.cols));
    }
  }
  return w.flush();
}

Status write_text(AtomicFile& f, const std::string& s) {
  return f.write(s.data(), s.size());
}

}  // namespace

const char* export_dtype_name(ExportDtype d) {
  switch (d) {
    case ExportDtype::kF32:
      return "f32";
    case ExportDtype::kF16:
      return "f16";
    case ExportDtype::kBf16:
      return "bf16";
  }
  return "?";
}

StatusOr<ExportDtype> parse_export_dtype(const std::string& name) {
  if (name == "f32") return ExportDtype::kF32;
  if (name == "f16") return ExportDtype::kF16;
  if (name == "bf16") return ExportDtype::kBf16;
  return Status::error("unknown dtype '" + name + "': expected f32, f16 or bf16");
}

uint16_t f32_to_f16_rne(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((u >> 13) & 0x3ffu));  // NaN
  if (u >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65536: infinity
  if (u < 0x38800000u) {
    // below 2^-14, float16's subnormals (units of 2^-24): adding 0.5 = 2^-1 leaves the value in
    // the last 10 bits of the mantissa, rounded to nearest even by the float addition itself
    constexpr uint32_t kMagicBits = 0x3f000000u;  // 0.5f
    float f, magic;
    std::memcpy(&f, &u, 4);
    std::memcpy(&magic, &kMagicBits, 4);
    f += magic;
    uint32_t r;
    std::memcpy(&r, &f, 4);
    return static_cast<uint16_t>(sign | (r - kMagicBits));
  }
  // normal: rebias the exponent (127 -> 15), then round the 13 dropped bits to nearest even; a
  // carry out of the mantissa raises the exponent, up to infinity (from 65520 on)
  const uint32_t odd = (u >> 13) & 1u;
  u += (uint32_t(15 - 127) << 23) + 0xfffu + odd;
  return static_cast<uint16_t>(sign | (u >> 13));
}

uint16_t f32_to_bf16_rne(float x) {
  const float r = round_to_bf16(x);
  uint32_t u;
  std::memcpy(&u, &r, 4);
  return static_cast<uint16_t>(u >> 16);
}

Status check_exportable(const Model& model, ExportDtype dtype) {
  for (const TensorView& t : model.tensors()) {
    const float* v = model.params() + t.offset;
    for (size_t i = 0; i < t.size; ++i) {
      const float x = v[i];
      if (!std::isfinite(x))
        return Status::error("tensor " + t.name + " holds " +
                             (std::isnan(x) ? "NaN"
                              : x > 0       ? "+inf"
                                            : "-inf") +
                             " at " + index_text(i, t.shape) +
                             ": a model with non-finite weights cannot be used elsewhere\nHINT: "
                             "the run diverged; export an earlier checkpoint (--checkpoint "
                             "RUN/checkpoints/step_N)");
      bool overflow = false;
      if (dtype == ExportDtype::kF16) overflow = (f32_to_f16_rne(x) & 0x7c00u) == 0x7c00u;
      if (dtype == ExportDtype::kBf16) overflow = (f32_to_bf16_rne(x) & 0x7f80u) == 0x7f80u;
      if (overflow)
        return Status::error("tensor " + t.name + " holds " + value_text(x) + " at " +
                             index_text(i, t.shape) + ", beyond the range of " +
                             export_dtype_name(dtype) +
                             (dtype == ExportDtype::kF16 ? " (largest 65504)" : "") +
                             ": it would become infinity\nHINT: export with --dtype " +
                             (dtype == ExportDtype::kF16 ? "bf16 or f32" : "f32"));
    }
  }
  return Status();
}

Status export_hf(const Model& model, const Tokenizer* tokenizer, ExportDtype dtype,
                 const std::string& out_dir) {
  SKEIN_RETURN_IF_ERROR(check_exportable(model, dtype));
  const GptConfig& c = model.config();
  if (tokenizer && tokenizer->vocab_size() > c.vocab_size)
    return Status::error("the tokenizer has a vocabulary of " +
                         std::to_string(tokenizer->vocab_size()) + ", more than the model's " +
                         std::to_string(c.vocab_size) +
                         "\nHINT: pass the tokenizer the model was trained with");
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
    return Status::error("cannot export to " + out_dir +
                         ": it is a file, and a Hugging Face model is a folder\nHINT: choose a "
                         "folder (it is created if missing)");
  std::vector<fs::path> created;
  Status s = make_out_dir(out_dir, &created);
  if (!s.ok()) {
    remove_created(created);
    return s;
  }
  // Every file is written to its temporary name first and renamed into place only when all are
  // complete; the weights go last, so that a folder with model.safetensors has the rest too.
  auto write_all = [&]() -> Status {
    const fs::path dir(out_dir);
    std::vector<AtomicFile> files;
    auto add = [&](const char* name, const std::string& text) -> Status {
      StatusOr<AtomicFile> f = AtomicFile::create((dir / name).string());
      if (!f.ok()) return f.status();
      SKEIN_RETURN_IF_ERROR(write_text(*f, text));
      files.push_back(std::move(*f));
      return Status();
    };
    if (tokenizer && tokenizer->kind() == Tokenizer::Kind::kGpt2) {
      SKEIN_RETURN_IF_ERROR(add("vocab.json", hf_vocab_json(*tokenizer)));
      SKEIN_RETURN_IF_ERROR(add("merges.txt", hf_merges_txt(*tokenizer)));
      SKEIN_RETURN_IF_ERROR(add("tokenizer.json", hf_tokenizer_json(*tokenizer)));
    }
    SKEIN_RETURN_IF_ERROR(add("config.json", hf_config_json(model, tokenizer, dtype)));
    StatusOr<AtomicFile> st = AtomicFile::create((dir / "model.safetensors").string());
    if (!st.ok()) return st.status();
    SKEIN_RETURN_IF_ERROR(write_safetensors(*st, model, dtype));
    files.push_back(std::move(*st));
    for (AtomicFile& f : files) SKEIN_RETURN_IF_ERROR(f.commit());
    return Status();
  };
  s = write_all();
  if (!s.ok()) remove_created(created);
  return s;
}

Status export_llmc(const Model& model, ExportDtype dtype, const std::string& path) {
  if (model.config().arch != Arch::kGpt2)
    return Status::error(
        "llm.c's model file (gpt2_124M.bin) holds GPT-2 models only, and this one is of the Llama "
        "family\nHINT: --format gguf runs it in llama.cpp");
  if (dtype == ExportDtype::kF16)
    return Status::error(
        "llm.c has no float16 model file (version 3 is fp32, version 5 bf16)\nHINT: export "
        "with --dtype f32 (train_gpt2.c, train_gpt2cu PRECISION=FP32) or bf16 (train_gpt2cu)");
  SKEIN_RETURN_IF_ERROR(check_exportable(model, dtype));
  const GptConfig& c = model.config();
  const int Vp = (c.vocab_size + 127) / 128 * 128;
  int32_t header[256] = {};
  header[0] = 20240326;
  header[1] = dtype == ExportDtype::kF32 ? 3 : 5;
  header[2] = c.seq_len;
  header[3] = c.vocab_size;
  header[4] = c.n_layer;
  header[5] = c.n_head;
  header[6] = c.d_model;
  header[7] = Vp;
  StatusOr<AtomicFile> f = AtomicFile::create(path);
  if (!f.ok()) return f.status();
  SKEIN_RETURN_IF_ERROR(f->write(header, sizeof(header)));
  TensorWriter w(*f, dtype);
  auto put = [&](const std::string& name) {
    const TensorView& t = model.tensor(name);
    return w.put(model.params() + t.offset, t.size);
  };
  SKEIN_RETURN_IF_ERROR(put("wte"));
  SKEIN_RETURN_IF_ERROR(w.zeros(size_t(Vp - c.vocab_size) * size_t(c.d_model)));
  SKEIN_RETURN_IF_ERROR(put("wpe"));
  // skein's per-layer names, in llm.c's order of kinds: ln1w ln1b qkvw qkvb attprojw attprojb
  // ln2w ln2b fcw fcb fcprojw fcprojb (all [out, in] already, as in skein)
  for (const char* kind :
       {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
        "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
        "mlp.c_proj.weight", "mlp.c_proj.bias"})
    for (int l = 0; l < c.n_layer; ++l)
      SKEIN_RETURN_IF_ERROR(put("h." + std::to_string(l) + "." + kind));
  SKEIN_RETURN_IF_ERROR(put("ln_f.weight"));
  SKEIN_RETURN_IF_ERROR(put("ln_f.bias"));
  SKEIN_RETURN_IF_ERROR(w.flush());
  return f->commit();
}

}  // namespace skein
