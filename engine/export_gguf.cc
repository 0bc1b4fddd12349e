// GGUF out (engine/export.h): version 3, little endian, alignment 32, for llama.cpp's "gpt2"
// architecture (GPT-2 models) or its "llama" architecture (Llama-family models: llama_tensors
// below), with the tokenizer in tokenizer.ggml.* as llama.cpp's own converter
// (convert_hf_to_gguf.py) writes GPT-2.
//
// File layout: "GGUF", uint32 version 3, uint64 tensor count, uint64 metadata count; the metadata
// (key as uint64 length + bytes, uint32 value type, value); the tensor table (name, uint32 n_dims,
// n_dims x uint64 ne, uint32 ggml type, uint64 offset into the data); zero padding to 32 bytes;
// the tensor data, each tensor starting at a multiple of 32.
//
// ggml lists dimensions fastest first, so a tensor of skein's (PyTorch's) shape [out, in] has
// ne = [in, out] and the same bytes: no transpose (Hugging Face's GPT-2 stores Conv1D weights
// [in, out], which the converter transposes; skein's are [out, in] already). The attention's
// qkv rows are [q | k | v] with heads contiguous inside, as llama.cpp's gpt2 graph splits them.
// The output projection is tied: no "output.weight", and llama.cpp's gpt2 loader then uses
// token_embd.weight. Matrices and embeddings are written in the chosen dtype; 1-D tensors
// (LayerNorm weights, biases) always as f32, as the converter does.
//
// Tokenizers (llama.cpp's byte-level BPE, tokenizer.ggml.model "gpt2"): a token is spelled in
// GPT-2's byte characters (a space is "Ġ"), a merge is "left right" in rank order, and the
// pre-tokenizer is named by tokenizer.ggml.pre.
//   - GPT-2: its vocabulary and merges, pre "gpt-2", <|endoftext|> as BOS and EOS (a control
//     token), no BOS added to prompts. A byte-level BPE from tokenizer.json the same way, with
//     pre "smollm" when it cuts every digit alone (SmolLM's); its other special tokens are
//     control tokens too.
//   - byte: the 256 single bytes, no merges (llama.cpp then emits one token per byte whatever
//     its pre-tokenizer cuts), pre "gpt-2". There is no end-of-text token, yet llama.cpp always
//     has an EOS (default id 11, a vertical tab): it is set to byte 0 (NUL), which text does not
//     contain, so generation does not stop at a byte that text uses.
//   - skein's BPE with GPT-2's pieces (data/tokenizer.h): its tokens (bytes 0..255, then one
//     per merge) and merges, pre "gpt-2"; llama.cpp's BPE then cuts and merges exactly as
//     skein's encoder does (GPT-2's pattern, listed merges lowest rank first, leftmost first;
//     no two tokens alike, so finding a token by its text is unambiguous). No end-of-text
//     token: EOS is byte 0 as for the byte tokenizer.
//   - skein's BPE with skein's pieces: refused, see kBpeRefusal.
// The tokenizer's vocabulary must be the model's (as train requires).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/file_util.h"
#include "engine/export.h"
#include "kernels/layernorm.h"

namespace skein {
namespace {

static_assert(std::endian::native == std::endian::little,
              "GGUF is written little endian straight from memory");

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" as a little-endian uint32
constexpr uint32_t kGgufVersion = 3;
constexpr uint32_t kGgufAlignment = 32;

// GGUF metadata value types.
constexpr uint32_t kValueU32 = 4, kValueI32 = 5, kValueF32 = 6, kValueBool = 7, kValueString = 8,
                   kValueArray = 9;
// ggml tensor types and llama.cpp's general.file_type (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, _BF16).
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBf16 = 30;
constexpr uint32_t kFileTypeF32 = 0, kFileTypeF16 = 1, kFileTypeBf16 = 32;
// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int32_t kTokenNormal = 1, kTokenControl = 3;

const char kBpeRefusal[] =
    "this BPE tokenizer (skein's pieces, tokenizer.bin version 1) cannot be exported to GGUF: "
    "llama.cpp would tokenize text differently "
    "from the training data. llama.cpp cuts text into pieces before merging with a "
    "pre-tokenizer chosen by name (tokenizer.ggml.pre) from its own list, and none cuts as "
    "skein's does (data/pretokenize.h). The nearest, \"gpt-2\", differs in four ways: before a "
    "word it splits the last character off any run of whitespace (\"\\n\\nOh\" is \"\\n\" + "
    "\"\\n\" + \"Oh\" there, \"\\n\\n\" + \"Oh\" in skein, which does so for spaces only); it "
    "splits non-ASCII text by Unicode category, where skein counts every byte >= 0x80 as a letter "
    "(\"don\xe2\x80\x99t\", \"a\xe2\x80\x94"
    "b\" and \"x\xe2\x82\xac"
    "y\" are one piece in skein, "
    "three there); it never cuts a long run, where skein cuts every 64 bytes; and it keeps 's 't "
    "'re 've 'm 'll 'd together (\"'tis\" is \"'t\" + \"is\" there, \"'\" + \"tis\" in skein). "
    "Besides, llama.cpp finds tokens by their text, and skein's BPE may make the same bytes twice "
    "(\"a\"+\"bc\", \"ab\"+\"c\").\nHINT: BPE with GPT-2's pieces (prepare_data --tokenizer bpe, "
    "the default since tokenizer.bin version 3), byte-level and GPT-2 tokenizers export to GGUF: "
    "prepare the data again and train on it; --format hf or llmc write this model's weights "
    "without the tokenizer";

class Bytes {
 public:
  void u32(uint32_t v) { raw(&v, 4); }
  void i32(int32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void f32(float v) { raw(&v, 4); }
  void str(std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// The metadata section: key-value pairs, counted.
class Metadata {
 public:
  void u32(std::string_view key, uint32_t v) {
    head(key, kValueU32);
    b_.u32(v);
  }
  void f32(std::string_view key, float v) {
    head(key, kValueF32);
    b_.f32(v);
  }
  void boolean(std::string_view key, bool v) {
    head(key, kValueBool);
    const uint8_t byte = v ? 1 : 0;
    b_.raw(&byte, 1);
  }
  void str(std::string_view key, std::string_view v) {
    head(key, kValueString);
    b_.str(v);
  }
  // An empty array is written with its element type: llama.cpp requires tokenizer.ggml.merges
  // to be an array of strings even when there is no merge.
  void str_array(std::string_view key, const std::vector<std::string>& v) {
    head(key, kValueArray);
    b_.u32(kValueString);
    b_.u64(v.size());
    for (const auto& s : v) b_.str(s);
  }
  void i32_array(std::string_view key, const std::vector<int32_t>& v) {
    head(key, kValueArray);
    b_.u32(kValueI32);
    b_.u64(v.size());
    for (int32_t x : v) b_.i32(x);
  }
  uint64_t count() const { return count_; }
  const std::string& bytes() const { return b_.bytes(); }

 private:
  void head(std::string_view key, uint32_t type) {
    b_.str(key);
    b_.u32(type);
    ++count_;
  }
  Bytes b_;
  uint64_t count_ = 0;
};

struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  uint32_t bos = 0, eos = 0;
};

// One rule for every kind (GPT-2, skein's BPE, byte): special tokens (<|endoftext|>, and a
// tokenizer.json's added tokens) are Tokenizer::special_ids(), the ones that are neither a byte
// nor made by a merge; llama.cpp keeps their text as it is and never makes them from ordinary
// text. skein's BPE and byte tokenizers have none.
GgufVocab gguf_vocab(const Tokenizer& tok) {
  const int V = tok.vocab_size();
  GgufVocab v;
  v.tokens.reserve(V);
  v.types.reserve(V);
  v.merges.reserve(tok.merges().size());
  for (const Merge& m : tok.merges()) {
    v.merges.push_back(gpt2_spelling(tok.token_bytes(m.left)) + " " +
                       gpt2_spelling(tok.token_bytes(m.right)));
  }
  std::vector<bool> is_special(V, false);
  for (const int32_t id : tok.special_ids()) is_special[id] = true;
  for (int id = 0; id < V; ++id) {
    const std::string& bytes = tok.token_bytes(id);
    const bool special = is_special[id];
    v.tokens.push_back(special ? bytes : gpt2_spelling(bytes));
    v.types.push_back(special ? kTokenControl : kTokenNormal);
  }
  // without an end-of-text token, NUL: see the file comment
  v.bos = v.eos = tok.eot_id() >= 0 ? static_cast<uint32_t>(tok.eot_id()) : 0;
  return v;
}

// One tensor of the file: its floats (in the model, or a rearranged copy of some of them) and how
// it is stored.
struct GgufTensor {
  std::string name;
  const float* data = nullptr;  // count floats: the model's, or owned's
  size_t count = 0;
  std::vector<float> owned;
  std::vector<uint64_t> ne;  // the floats' [rows, columns] (PyTorch's order) reversed
  uint32_t type = kGgmlF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;
};

// Rows [row0, row0 + rows) of a matrix of `in` columns, as a copy; with head_size > 0 the rows of
// each head of head_size are reordered from Hugging Face's rotary layout (channel i pairs with
// i + head_size/2) to the interleaved one of Meta's checkpoints and llama.cpp's "llama" graph
// (pairs 2i, 2i+1): row 2i + j of a head is its row j * head_size/2 + i. Scores q.k are the same
// in either layout, since q and k rows are reordered alike.
std::vector<float> matrix_rows(const float* w, int in, int row0, int rows, int head_size) {
  std::vector<float> out(size_t(rows) * in);
  for (int r = 0; r < rows; ++r) {
    int src = r;
    if (head_size > 0) {
      const int h = r / head_size, k = r % head_size, half = head_size / 2;
      src = h * head_size + (k % 2) * half + k / 2;
    }
    std::copy_n(w + size_t(row0 + src) * in, in, out.data() + size_t(r) * in);
  }
  return out;
}

// skein's tensor name -> llama.cpp's (MODEL_ARCH.GPT2 in gguf-py's constants).
std::string gguf_name(const std::string& skein) {
  static const std::pair<const char*, const char*> kFixed[] = {
      {"wte", "token_embd.weight"},
      {"wpe", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"},
      {"ln_f.bias", "output_norm.bias"}};
  for (const auto& [from, to] : kFixed)
    if (skein == from) return to;
  static const std::pair<const char*, const char*> kBlock[] = {
      {"ln_1.", "attn_norm."}, {"attn.c_attn.", "attn_qkv."}, {"attn.c_proj.", "attn_output."},
      {"ln_2.", "ffn_norm."},  {"mlp.c_fc.", "ffn_up."},      {"mlp.c_proj.", "ffn_down."}};
  // "h.<l>.<part><weight|bias>"
  SKEIN_CHECK(skein.rfind("h.", 0) == 0, "unknown tensor");
  const size_t dot = skein.find('.', 2);
  SKEIN_CHECK(dot != std::string::npos, "unknown tensor");
  const std::string layer = skein.substr(2, dot - 2), rest = skein.substr(dot + 1);
  for (const auto& [from, to] : kBlock) {
    const std::string_view f(from);
    if (rest.compare(0, f.size(), f) == 0) return "blk." + layer + "." + to + rest.substr(f.size());
  }
  SKEIN_CHECK(false, "unknown tensor");
  return {};
}

uint64_t align_up(uint64_t n) {
  return (n + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment;
}

Status write_padding(AtomicFile& f) {
  static const char kZeros[kGgufAlignment] = {};
  const uint64_t pad = align_up(f.size()) - f.size();
  return pad ? f.write(kZeros, pad) : Status();
}

// Writes n floats as `type`, converting a block at a time.
Status write_floats(AtomicFile& f, const float* p, size_t n, uint32_t type) {
  if (type == kGgmlF32) return f.write(p, n * sizeof(float));
  constexpr size_t kBlock = 1 << 16;
  std::vector<uint16_t> buf(std::min(n, kBlock));
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    for (size_t j = 0; j < m; ++j)
      buf[j] = type == kGgmlF16 ? f32_to_f16_rne(p[i + j]) : f32_to_bf16_rne(p[i + j]);
    SKEIN_RETURN_IF_ERROR(f.write(buf.data(), m * sizeof(uint16_t)));
  }
  return Status();
}

// GPT-2: every tensor as it is, named as llama.cpp's "gpt2" graph names them.
std::vector<GgufTensor> gpt2_tensors(const Model& model, uint32_t matrix_type) {
  std::vector<GgufTensor> out;
  for (const TensorView& t : model.tensors()) {
    GgufTensor g;
    g.name = gguf_name(t.name);
    g.data = model.params() + t.offset;
    g.count = t.size;
    g.ne.assign(t.shape.rbegin(), t.shape.rend());
    g.type = t.shape.size() >= 2 ? matrix_type : kGgmlF32;
    out.push_back(std::move(g));
  }
  return out;
}

// Llama, as llama.cpp's "llama" graph (MODEL_ARCH.LLAMA) names and lays them out: q, k and v
// apart, q and k in the interleaved rotary layout (matrix_rows), gate and up apart; output.weight
// only when untied (llama.cpp then uses token_embd.weight).
std::vector<GgufTensor> llama_tensors(const Model& model, uint32_t matrix_type) {
  const GptConfig& c = model.config();
  const int C = c.d_model, HS = c.head_size(), KV = c.kv_heads() * HS, F = c.ffn();
  const float* p = model.params();
  std::vector<GgufTensor> out;
  // a matrix of rows x cols, or (rows 0) a vector of cols
  const auto whole = [&](std::string name, size_t offset, int rows, int cols) {
    GgufTensor g;
    g.name = std::move(name);
    g.data = p + offset;
    g.count = size_t(std::max(rows, 1)) * cols;
    g.ne = rows == 0 ? std::vector<uint64_t>{uint64_t(cols)}
                     : std::vector<uint64_t>{uint64_t(cols), uint64_t(rows)};
    g.type = rows == 0 ? kGgmlF32 : matrix_type;
    out.push_back(std::move(g));
  };
  const auto part = [&](std::string name, size_t offset, int row0, int rows, int head_size) {
    GgufTensor g;
    g.name = std::move(name);
    g.owned = matrix_rows(p + offset, C, row0, rows, head_size);
    g.data = g.owned.data();
    g.count = g.owned.size();
    g.ne = {uint64_t(C), uint64_t(rows)};
    g.type = matrix_type;
    out.push_back(std::move(g));
  };
  whole("token_embd.weight", model.wte_offset(), c.vocab_size, C);
  for (int l = 0; l < c.n_layer; ++l) {
    const Model::LayerOffsets& o = model.layer(l);
    const std::string b = "blk." + std::to_string(l) + ".";
    whole(b + "attn_norm.weight", o.ln1w, 0, C);
    part(b + "attn_q.weight", o.qkvw, 0, C, HS);
    part(b + "attn_k.weight", o.qkvw, C, KV, HS);
    part(b + "attn_v.weight", o.qkvw, C + KV, KV, 0);
    whole(b + "attn_output.weight", o.projw, C, C);
    whole(b + "ffn_norm.weight", o.ln2w, 0, C);
    part(b + "ffn_gate.weight", o.fcw, 0, F, 0);
    part(b + "ffn_up.weight", o.fcw, F, F, 0);
    whole(b + "ffn_down.weight", o.fcprojw, C, F);
  }
  whole("output_norm.weight", model.lnfw_offset(), 0, C);
  if (!c.tied) whole("output.weight", model.lm_head_offset(), c.vocab_size, C);
  return out;
}

}  // namespace

Status check_gguf_tokenizer(const Tokenizer& tokenizer, int model_vocab) {
  if (tokenizer.kind() == Tokenizer::Kind::kBpe && tokenizer.bpe_pieces() != BpePieces::kGpt2) {
    return Status::error(kBpeRefusal);
  }
  // as train requires: every row of the embedding is one of the tokenizer's tokens
  if (tokenizer.vocab_size() != model_vocab) {
    return Status::error("the tokenizer (" + std::string(tokenizer.kind_name()) + ") has " +
                         std::to_string(tokenizer.vocab_size()) + " tokens but the model " +
                         std::to_string(model_vocab) +
                         " embedding rows\nHINT: pass the tokenizer.bin of the data the model "
                         "was trained on (--tokenizer)");
  }
  return Status();
}

Status export_gguf(const Model& model, const Tokenizer& tokenizer, ExportDtype dtype,
                   const std::string& path) {
  const auto fail = [&](const Status& s) { return s.with_context("exporting GGUF " + path); };
  SKEIN_RETURN_IF_ERROR(fail(check_exportable(model, dtype)));
  const GptConfig& cfg = model.config();
  SKEIN_RETURN_IF_ERROR(fail(check_gguf_tokenizer(tokenizer, cfg.vocab_size)));
  const GgufVocab vocab = gguf_vocab(tokenizer);

  const uint32_t matrix_type = dtype == ExportDtype::kF32   ? kGgmlF32
                               : dtype == ExportDtype::kF16 ? kGgmlF16
                                                            : kGgmlBf16;
  const uint32_t file_type = dtype == ExportDtype::kF32   ? kFileTypeF32
                             : dtype == ExportDtype::kF16 ? kFileTypeF16
                                                          : kFileTypeBf16;

  Metadata md;
  const bool llama = cfg.arch == Arch::kLlama;
  const std::string a = llama ? "llama" : "gpt2";
  md.str("general.architecture", a);
  md.str("general.name", "skein");
  md.u32("general.alignment", kGgufAlignment);
  md.u32("general.file_type", file_type);
  md.u32(a + ".context_length", static_cast<uint32_t>(cfg.seq_len));
  md.u32(a + ".embedding_length", static_cast<uint32_t>(cfg.d_model));
  md.u32(a + ".feed_forward_length", static_cast<uint32_t>(cfg.ffn()));
  md.u32(a + ".block_count", static_cast<uint32_t>(cfg.n_layer));
  md.u32(a + ".attention.head_count", static_cast<uint32_t>(cfg.n_head));
  if (llama) {
    md.u32("llama.attention.head_count_kv", static_cast<uint32_t>(cfg.kv_heads()));
    md.f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(cfg.norm_eps));
    md.u32("llama.rope.dimension_count", static_cast<uint32_t>(cfg.head_size()));
    md.f32("llama.rope.freq_base", static_cast<float>(cfg.rope_theta));
    md.u32("llama.vocab_size", static_cast<uint32_t>(cfg.vocab_size));
  } else {
    md.f32("gpt2.attention.layer_norm_epsilon", static_cast<float>(kLayerNormEps));
  }
  md.str("tokenizer.ggml.model", "gpt2");
  // llama.cpp's "smollm" cuts every \p{N} alone, then by GPT-2's pattern (data/gpt2_pretokenize.h)
  md.str("tokenizer.ggml.pre", tokenizer.gpt2_pieces() == Gpt2Pieces::kDigits ? "smollm" : "gpt-2");
  md.str_array("tokenizer.ggml.tokens", vocab.tokens);
  md.i32_array("tokenizer.ggml.token_type", vocab.types);
  md.str_array("tokenizer.ggml.merges", vocab.merges);
  md.u32("tokenizer.ggml.bos_token_id", vocab.bos);
  md.u32("tokenizer.ggml.eos_token_id", vocab.eos);
  md.boolean("tokenizer.ggml.add_bos_token", false);

  std::vector<GgufTensor> tensors = cfg.arch == Arch::kLlama ? llama_tensors(model, matrix_type)
                                                             : gpt2_tensors(model, matrix_type);
  uint64_t data_bytes = 0;
  for (GgufTensor& g : tensors) {
    g.offset = data_bytes;
    g.bytes = g.count * (g.type == kGgmlF32 ? 4 : 2);
    data_bytes = align_up(data_bytes + g.bytes);
  }

  Bytes head;
  head.u32(kGgufMagic);
  head.u32(kGgufVersion);
  head.u64(tensors.size());
  head.u64(md.count());
  head.raw(md.bytes().data(), md.bytes().size());
  for (const GgufTensor& g : tensors) {
    head.str(g.name);
    head.u32(static_cast<uint32_t>(g.ne.size()));
    for (uint64_t n : g.ne) head.u64(n);
    head.u32(g.type);
    head.u64(g.offset);
  }

  auto file = AtomicFile::create(path);
  if (!file.ok()) return fail(file.status());
  SKEIN_RETURN_IF_ERROR(fail(file->write(head.bytes().data(), head.bytes().size())));
  SKEIN_RETURN_IF_ERROR(fail(write_padding(*file)));
  const uint64_t data_start = file->size();
  for (const GgufTensor& g : tensors) {
    SKEIN_CHECK(file->size() == data_start + g.offset);
    SKEIN_RETURN_IF_ERROR(fail(write_floats(*file, g.data, g.count, g.type)));
    SKEIN_RETURN_IF_ERROR(fail(write_padding(*file)));
  }
  return fail(file->commit());
}

}  // namespace skein
