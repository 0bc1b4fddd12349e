// The importers' common half: opening a path (which format, which files), the value checks, the
// copy into a Model, and the shape's way into the config.
#include "engine/import.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/crc32c.h"
#include "data/file_util.h"
#include "engine/import_detail.h"

namespace skein {

static_assert(std::endian::native == std::endian::little, "model files are little endian");

namespace fs = std::filesystem;

namespace import_detail {

std::vector<Gpt2Tensor> gpt2_tensors(const PretrainedShape& s) {
  const int64_t C = s.d_model;
  std::vector<Gpt2Tensor> t = {{"wte", {s.vocab_size, C}}, {"wpe", {s.n_ctx, C}}};
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    t.insert(t.end(), {{p + "ln_1.weight", {C}},
                       {p + "ln_1.bias", {C}},
                       {p + "attn.c_attn.weight", {3 * C, C}},
                       {p + "attn.c_attn.bias", {3 * C}},
                       {p + "attn.c_proj.weight", {C, C}},
                       {p + "attn.c_proj.bias", {C}},
                       {p + "ln_2.weight", {C}},
                       {p + "ln_2.bias", {C}},
                       {p + "mlp.c_fc.weight", {4 * C, C}},
                       {p + "mlp.c_fc.bias", {4 * C}},
                       {p + "mlp.c_proj.weight", {C, 4 * C}},
                       {p + "mlp.c_proj.bias", {C}}});
  }
  t.insert(t.end(), {{"ln_f.weight", {C}}, {"ln_f.bias", {C}}});
  return t;
}

}  // namespace import_detail

const char* wire_type_name(WireType t) {
  switch (t) {
    case WireType::kF32:
      return "F32";
    case WireType::kF16:
      return "F16";
    case WireType::kBF16:
      return "BF16";
  }
  return "?";
}

size_t wire_type_bytes(WireType t) {
  return t == WireType::kF32 ? 4 : 2;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;  // infinity, or NaN with its payload
  } else if (exp == 0) {
    const float f = static_cast<float>(mant) * 0x1p-24f;  // zero or subnormal: mant x 2^-24
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  } else {
    bits = sign | (exp + 112) << 23 | mant << 13;  // rebias 15 -> 127
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

size_t elements(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

float decode_one(WireType t, const uint8_t* p) {
  if (t == WireType::kF32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t b;
  std::memcpy(&b, p, 2);
  return t == WireType::kF16 ? f16_to_f32(b) : bf16_to_f32(b);
}

// src: n elements of type t (any alignment) -> dst, n floats.
void decode(WireType t, const uint8_t* src, size_t n, float* dst) {
  switch (t) {
    case WireType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case WireType::kF16:
      for (size_t i = 0; i < n; ++i) dst[i] = decode_one(t, src + 2 * i);
      return;
    case WireType::kBF16:
      for (size_t i = 0; i < n; ++i) dst[i] = decode_one(t, src + 2 * i);
      return;
  }
}

// The first element whose exponent bits are all ones (infinity or NaN), or -1.
long first_non_finite(WireType t, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    bool bad;
    if (t == WireType::kF32) {
      uint32_t u;
      std::memcpy(&u, p + 4 * i, 4);
      bad = (u & 0x7f800000u) == 0x7f800000u;
    } else {
      uint16_t u;
      std::memcpy(&u, p + 2 * i, 2);
      bad = t == WireType::kF16 ? (u & 0x7c00) == 0x7c00 : (u & 0x7f80) == 0x7f80;
    }
    if (bad) return long(i);
  }
  return -1;
}

// Element `flat` of a row-major shape as "[i, j]".
std::string index_text(size_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = int64_t(flat % size_t(shape[d]));
    flat /= size_t(shape[d]);
  }
  return shape_text(idx);
}

std::string tensor_text(const SourceTensor& t) {
  return t.file_name == t.name ? "tensor " + t.name
                               : "tensor " + t.name + " (" + t.file_name + " in the file)";
}

Status non_finite_error(const std::string& path, const SourceTensor& t, size_t at, float v) {
  return Status::error(path + ": " + tensor_text(t) + " holds " +
                       (std::isnan(v) ? "NaN"
                        : v > 0       ? "+inf"
                                      : "-inf") +
                       " at " + index_text(at, t.file_shape) +
                       "\nHINT: a model that holds NaN or infinity cannot be trained from; the "
                       "file is corrupt, or the model diverged before it was saved");
}

Status check_tensor(const std::string& path, const SourceTensor& t) {
  const size_t n = elements(t.file_shape);
  if (const long at = first_non_finite(t.type, t.data, n); at >= 0)
    return non_finite_error(path, t, size_t(at),
                            decode_one(t.type, t.data + at * wire_type_bytes(t.type)));
  if (t.zero_from_row >= 0) {
    const size_t cols = size_t(t.file_shape.back()), bytes = wire_type_bytes(t.type);
    for (size_t i = size_t(t.zero_from_row) * cols; i < n; ++i) {
      if (decode_one(t.type, t.data + i * bytes) != 0.0f)
        return Status::error(path + ": " + tensor_text(t) + ": its padding rows (" +
                             std::to_string(t.zero_from_row) + " and up, past the vocabulary) " +
                             "should be zero, but " + index_text(i, t.file_shape) + " is not" +
                             "\nHINT: the header's vocabulary size does not fit the file, or the "
                             "file is corrupt");
    }
  }
  return Status();
}

StatusOr<std::string> read_small_file(const std::string& path, size_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Status::error("cannot read " + path + ": " + ec.message());
  if (size > limit)
    return Status::error(path + ": " + std::to_string(size) + " bytes, more than the " +
                         std::to_string(limit) + " that a config.json could need");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) return Status::error("cannot read " + path);
  return ss.str();
}

constexpr int32_t kLlmcMagic = 20240326;

StatusOr<PretrainedWeights> open_safetensors(const std::string& path, const std::string& config,
                                             std::shared_ptr<const MappedFile>* file) {
  std::error_code ec;
  if (!fs::exists(config, ec))
    return Status::error(path + ": no config.json next to it (" + config +
                         ")\nHINT: a safetensors model needs the config.json that "
                         "save_pretrained() writes beside it (n_embd, n_layer, n_head, "
                         "n_positions, vocab_size)");
  StatusOr<std::string> text = read_small_file(config, 16 << 20);
  if (!text.ok()) return text.status();
  StatusOr<MappedFile> m = MappedFile::open(path);
  if (!m.ok()) return m.status();
  *file = std::make_shared<const MappedFile>(std::move(*m));
  return PretrainedWeights::from_safetensors((*file)->data(), (*file)->size(), *text, path, config);
}

}  // namespace

StatusOr<PretrainedWeights> PretrainedWeights::open(const std::string& path) {
  const std::string hint =
      "\nHINT: model.init_from (--init_from) takes a Hugging Face folder with model.safetensors "
      "and config.json, a .safetensors file, or an llm.c model file such as gpt2_124M.bin";
  std::error_code ec;
  if (path.empty()) return Status::error("model.init_from is empty" + hint);
  std::shared_ptr<const MappedFile> file;
  StatusOr<PretrainedWeights> w = Status::error("unset");
  if (fs::is_directory(path, ec)) {
    const std::string st = (fs::path(path) / "model.safetensors").string();
    if (!fs::exists(st, ec)) {
      if (fs::exists(fs::path(path) / "model.safetensors.index.json", ec))
        return Status::error(path + " holds a model sharded over several .safetensors files " +
                             "(model.safetensors.index.json), which skein does not read yet" +
                             "\nHINT: save it as one file: save_pretrained(dir, " +
                             "max_shard_size=\"100GB\")");
      if (fs::exists(fs::path(path) / "pytorch_model.bin", ec))
        return Status::error(path + " holds pytorch_model.bin, a pickle, which skein does not " +
                             "read (unpickling can run code)\nHINT: convert it: load it in " +
                             "transformers and save_pretrained(dir, safe_serialization=True)");
      return Status::error(path + " is a folder without model.safetensors" + hint);
    }
    w = open_safetensors(st, (fs::path(path) / "config.json").string(), &file);
  } else if (!fs::exists(path, ec)) {
    return Status::error("model.init_from = \"" + path + "\": no such file or folder" + hint);
  } else if (path.ends_with(".safetensors")) {
    w = open_safetensors(path, (fs::path(path).parent_path() / "config.json").string(), &file);
  } else {
    StatusOr<MappedFile> m = MappedFile::open(path);
    if (!m.ok()) return m.status();
    file = std::make_shared<const MappedFile>(std::move(*m));
    int32_t magic = 0;
    if (file->size() >= 4) std::memcpy(&magic, file->data(), 4);
    if (magic == kLlmcMagic) {
      w = from_llmc(file->data(), file->size(), path);
    } else if (file->size() >= 9 && file->data()[8] == '{') {
      w = open_safetensors(path, (fs::path(path).parent_path() / "config.json").string(), &file);
    } else {
      std::string what = file->size() < 4 ? "it has " + std::to_string(file->size()) + " bytes"
                                          : "its first int32 is " + std::to_string(magic);
      if (magic == 20240520) what += ", a token shard's magic (prepare_data's output)";
      if (magic == 20240327) what += ", the magic of llm.c's debug state file";
      return Status::error(path + ": not a model file that skein reads: " + what +
                           ", where an llm.c model file starts with " + std::to_string(kLlmcMagic) +
                           ", and it is no safetensors file " +
                           "either (no JSON header after the first 8 bytes)" + hint);
    }
  }
  if (!w.ok()) return w.status();
  w->file_ = file;
  w->crc32c_ = skein::crc32c(file->data(), file->size());
  if (!w->config_path_.empty()) {
    StatusOr<uint32_t> c = file_crc32c(w->config_path_);
    if (!c.ok()) return c.status();
    w->config_crc32c_ = *c;
  }
  return w;
}

Status PretrainedWeights::check_values() const {
  for (const SourceTensor& t : tensors_) SKEIN_RETURN_IF_ERROR(check_tensor(path_, t));
  for (const SourceTensor& head : tied_) {
    SKEIN_RETURN_IF_ERROR(check_tensor(path_, head));
    const SourceTensor& wte = tensors_.front();  // the token embedding
    SKEIN_CHECK((wte.name == "wte" || wte.name == "embed_tokens.weight") &&
                head.file_shape.size() == 2);
    const size_t C = size_t(shape_.d_model), V = size_t(shape_.vocab_size);
    std::vector<float> a(C), b(C);
    for (size_t r = 0; r < V; ++r) {
      decode(wte.type, wte.data + r * C * wire_type_bytes(wte.type), C, a.data());
      decode(head.type, head.data + r * C * wire_type_bytes(head.type), C, b.data());
      for (size_t c = 0; c < C; ++c) {
        if (a[c] == b[c]) continue;
        return Status::error(
            path_ + ": " + head.file_name + " differs from " + wte.file_name + " (at [" +
            std::to_string(r) + ", " + std::to_string(c) + "]: " + std::to_string(b[c]) + " vs " +
            std::to_string(a[c]) +
            "): config.json ties the output layer to the token embedding (GPT-2's always "
            "does), so a separate lm_head must equal it\nHINT: GPT-2's own weights are tied; this "
            "one was trained or edited with an untied head" +
            (shape_.arch == Arch::kLlama ? " (for a Llama: set tie_word_embeddings false)" : ""));
      }
    }
  }
  return Status();
}

Status PretrainedWeights::load_into(Model& model) const {
  const GptConfig& c = model.config();
  const bool llama = shape_.arch == Arch::kLlama;
  const bool family = c.arch == shape_.arch &&
                      (!llama || (c.kv_heads() == shape_.n_kv_head && c.ffn() == shape_.ffn_dim &&
                                  c.tied == shape_.tied && c.rope_theta == shape_.rope_theta &&
                                  c.norm_eps == shape_.norm_eps));
  if (!family || c.vocab_size != shape_.vocab_size || c.n_layer != shape_.n_layer ||
      c.n_head != shape_.n_head || c.d_model != shape_.d_model || c.seq_len > shape_.n_ctx)
    return Status::error(
        path_ + ": the model's shape (" + (c.arch == Arch::kLlama ? "Llama" : "GPT-2") + ", V " +
        std::to_string(c.vocab_size) + ", T " + std::to_string(c.seq_len) + ", L " +
        std::to_string(c.n_layer) + ", NH " + std::to_string(c.n_head) + ", C " +
        std::to_string(c.d_model) + ") is not the file's (" + (llama ? "Llama" : "GPT-2") + ", V " +
        std::to_string(shape_.vocab_size) + ", at most T " + std::to_string(shape_.n_ctx) + ", L " +
        std::to_string(shape_.n_layer) + ", NH " + std::to_string(shape_.n_head) + ", C " +
        std::to_string(shape_.d_model) + ")");
  std::memset(model.params(), 0, model.num_params() * sizeof(float));  // and the padding
  std::vector<float> row;
  for (const SourceTensor& t : tensors_) {
    const TensorView& v = model.tensor(t.name);
    float* dst = model.params() + v.offset;
    const size_t bytes = wire_type_bytes(t.type);
    if (t.transposed) {
      // stored [in, out]: row i of the file is column i of skein's [out, in]
      SKEIN_CHECK(v.shape.size() == 2 && t.file_shape.size() == 2 &&
                  t.file_shape[0] == v.shape[1] && t.file_shape[1] == v.shape[0]);
      const size_t in = size_t(v.shape[1]), out = size_t(v.shape[0]);
      row.resize(out);
      for (size_t i = 0; i < in; ++i) {
        decode(t.type, t.data + i * out * bytes, out, row.data());
        for (size_t o = 0; o < out; ++o) dst[o * in + i] = row[o];
      }
    } else if (t.row0 >= 0) {
      // rows [row0, row0 + the file's rows) of skein's tensor, the same layout
      const size_t cols = size_t(v.shape.back()), part = elements(t.file_shape);
      SKEIN_CHECK(t.file_shape.back() == v.shape.back() && size_t(t.row0) * cols + part <= v.size);
      dst += size_t(t.row0) * cols;
      decode(t.type, t.data, part, dst);
      for (size_t i = 0; i < part; ++i)
        if (!std::isfinite(dst[i])) return non_finite_error(path_, t, i, dst[i]);
      continue;
    } else {
      // the same layout; wpe (and llm.c's padded wte) may have more rows than the model uses
      SKEIN_CHECK(t.file_shape.back() == v.shape.back() && elements(t.file_shape) >= v.size);
      decode(t.type, t.data, v.size, dst);
    }
    for (size_t i = 0; i < v.size; ++i) {
      if (std::isfinite(dst[i])) continue;
      // report the element as the file stores it
      const size_t at =
          t.transposed ? (i % size_t(v.shape[1])) * size_t(v.shape[0]) + i / size_t(v.shape[1]) : i;
      return non_finite_error(path_, t, at, dst[i]);
    }
  }
  return Status();
}

Status apply_pretrained_shape(const PretrainedWeights& w, proto::ModelConfig* m) {
  const PretrainedShape& s = w.shape();
  std::vector<std::string> bad;
  auto compare = [&](const char* field, bool set, int value, int file, const std::string& unit) {
    if (set && value != file)
      bad.push_back(std::string("model.") + field + " = " + std::to_string(value) +
                    ", but the weights have " + std::to_string(file) + " " + unit);
  };
  compare("vocab_size", m->has_vocab_size(), m->vocab_size(), s.vocab_size, "tokens");
  compare("n_layer", m->has_n_layer(), m->n_layer(), s.n_layer, "layers");
  compare("n_head", m->has_n_head(), m->n_head(), s.n_head, "heads");
  compare("d_model", m->has_d_model(), m->d_model(), s.d_model, "channels");
  const bool llama = s.arch == Arch::kLlama;
  const proto::ModelConfig::Arch arch =
      llama ? proto::ModelConfig::LLAMA : proto::ModelConfig::GPT2;
  if (m->has_arch() && m->arch() != arch)
    bad.push_back(std::string("model.arch = ") + proto::ModelConfig::Arch_Name(m->arch()) +
                  ", but the weights are a " + (llama ? "Llama (LLAMA)" : "GPT-2 (GPT2)"));
  if (llama) {
    compare("n_kv_head", m->has_n_kv_head(), m->n_kv_head(), s.n_kv_head, "key/value heads");
    compare("ffn_dim", m->has_ffn_dim(), m->ffn_dim(), s.ffn_dim, "MLP channels");
    const auto differs = [&](const char* field, bool set, double value, double file) {
      if (set && value != file)
        bad.push_back(std::string("model.") + field + " = " + std::to_string(value) +
                      ", but the weights' config.json has " + std::to_string(file));
    };
    differs("rope_theta", m->has_rope_theta(), m->rope_theta(), s.rope_theta);
    differs("norm_eps", m->has_norm_eps(), m->norm_eps(), s.norm_eps);
    if (m->has_tie_embeddings() && m->tie_embeddings() != s.tied)
      bad.push_back(std::string("model.tie_embeddings = ") +
                    (m->tie_embeddings() ? "true" : "false") + ", but the weights' are " +
                    (s.tied ? "tied" : "untied"));
  }
  if (m->has_seq_len() && m->seq_len() > s.n_ctx)
    bad.push_back(
        "model.seq_len = " + std::to_string(m->seq_len()) +
        " is longer than the weights' context, " + std::to_string(s.n_ctx) +
        (llama ? " positions (max_position_embeddings)" : " positions (the rows of their wpe)"));
  if (!bad.empty()) {
    std::string msg = "model.init_from = \"" + m->init_from() + "\" (" + w.path() + ", " +
                      w.format() + "): the config states another shape than the weights:";
    for (const std::string& b : bad) msg += "\n  " + b;
    return Status::error(msg +
                         "\nHINT: leave these fields unset: the weights decide the model's "
                         "shape (model.seq_len may be set shorter than " +
                         std::to_string(s.n_ctx) + "); the data's tokenizer must have the " +
                         "weights' vocabulary of " + std::to_string(s.vocab_size));
  }
  m->set_vocab_size(s.vocab_size);
  m->set_n_layer(s.n_layer);
  m->set_n_head(s.n_head);
  m->set_d_model(s.d_model);
  if (!m->has_seq_len()) m->set_seq_len(s.n_ctx);
  if (llama) {
    m->set_arch(proto::ModelConfig::LLAMA);
    m->set_n_kv_head(s.n_kv_head);
    m->set_ffn_dim(s.ffn_dim);
    m->set_rope_theta(s.rope_theta);
    m->set_norm_eps(s.norm_eps);
    m->set_tie_embeddings(s.tied);
  }
  return Status();
}

GptConfig pretrained_model_config(const PretrainedShape& s, int seq_len) {
  GptConfig c{s.vocab_size, seq_len, s.n_layer, s.n_head, s.d_model};
  if (s.arch != Arch::kLlama) return c;
  c = llama_blocks(c);
  c.n_kv_head = s.n_kv_head;
  c.ffn_dim = s.ffn_dim;
  c.rope_theta = s.rope_theta;
  c.norm_eps = s.norm_eps;
  c.tied = s.tied;
  return c;
}

proto::InitSource init_source_record(const PretrainedWeights& w) {
  proto::InitSource r;
  std::error_code ec;
  auto absolute = [&](const std::string& p) {
    const fs::path a = fs::absolute(p, ec);
    return ec ? p : a.lexically_normal().string();
  };
  r.set_path(absolute(w.path()));
  r.set_format(w.format());
  r.set_crc32c(w.crc32c());
  if (!w.config_path().empty()) {
    r.set_config_path(absolute(w.config_path()));
    r.set_config_crc32c(w.config_crc32c());
  }
  return r;
}

}  // namespace skein
