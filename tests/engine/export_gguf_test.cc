// GGUF out (engine/export_gguf.cc), read back by a small GGUF reader written here from the
// format's description (llama.cpp's docs/gguf.md), independently of the writer: the header,
// every metadata key with its type and value, the tensor table (llama.cpp's gpt2 names, ne =
// skein's shape reversed, ggml types, 32-byte aligned offsets) and the data (the parameters bit
// for bit in f32; in f16 / bf16 their rounding to nearest even, 1-D tensors still f32). The
// tokenizers: byte, GPT-2 (spelling, merges, the control token); BPE and a tokenizer of another
// vocabulary size refused.
// tests/system/gguf_test.sh loads such files in the real llama.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <variant>

#include "base/rng.h"
#include "engine/export.h"
#include "tests/data/data_test_util.h"
#include "tests/data/gpt2_test_util.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using testing::gpt2_chars;
using testing::MiniGpt2;
using testing::read_bytes;
using testing::TempDir;

// --- a GGUF reader for the test -------------------------------------------------------------

using Value = std::variant<uint32_t, int32_t, float, bool, std::string, std::vector<std::string>,
                           std::vector<int32_t>>;

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, Value> kv;
  std::map<std::string, uint32_t> kv_type;  // the GGUF value type of each key
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_start = 0;
  std::string bytes;

  template <typename T>
  const T& get(const std::string& key) const {
    auto it = kv.find(key);
    SKEIN_CHECK(it != kv.end(), "missing key");
    return std::get<T>(it->second);
  }
};

class Reader {
 public:
  explicit Reader(const std::string& b) : b_(b) {}
  template <typename T>
  T pod() {
    SKEIN_CHECK(pos_ + sizeof(T) <= b_.size(), "GGUF truncated");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = pod<uint64_t>();
    SKEIN_CHECK(pos_ + n <= b_.size(), "GGUF string truncated");
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t pos() const { return pos_; }

 private:
  const std::string& b_;
  uint64_t pos_ = 0;
};

GgufFile read_gguf(const std::string& path) {
  GgufFile f;
  f.bytes = read_bytes(path);
  Reader r(f.bytes);
  SKEIN_CHECK(f.bytes.compare(0, 4, "GGUF") == 0, "not GGUF");
  r.pod<uint32_t>();
  f.version = r.pod<uint32_t>();
  const uint64_t n_tensors = r.pod<uint64_t>(), n_kv = r.pod<uint64_t>();
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.str();
    const uint32_t type = r.pod<uint32_t>();
    f.kv_type[key] = type;
    switch (type) {
      case 4:
        f.kv[key] = r.pod<uint32_t>();
        break;
      case 5:
        f.kv[key] = r.pod<int32_t>();
        break;
      case 6:
        f.kv[key] = r.pod<float>();
        break;
      case 7:
        f.kv[key] = r.pod<uint8_t>() != 0;
        break;
      case 8:
        f.kv[key] = r.str();
        break;
      case 9: {
        const uint32_t elem = r.pod<uint32_t>();
        const uint64_t n = r.pod<uint64_t>();
        if (elem == 8) {
          std::vector<std::string> v(n);
          for (auto& s : v) s = r.str();
          f.kv[key] = v;
        } else {
          SKEIN_CHECK(elem == 5, "unexpected array type");
          std::vector<int32_t> v(n);
          for (auto& x : v) x = r.pod<int32_t>();
          f.kv[key] = v;
        }
        f.kv_type[key] = 900 + elem;  // array of elem
        break;
      }
      default:
        SKEIN_CHECK(false, "unexpected metadata type");
    }
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = r.str();
    t.ne.resize(r.pod<uint32_t>());
    for (auto& n : t.ne) n = r.pod<uint64_t>();
    t.type = r.pod<uint32_t>();
    t.offset = r.pod<uint64_t>();
    f.tensors.push_back(t);
  }
  f.data_start = (r.pos() + 31) / 32 * 32;
  for (uint64_t p = r.pos(); p < f.data_start; ++p) SKEIN_CHECK(f.bytes[p] == 0, "padding");
  return f;
}

// --- fixtures ---------------------------------------------------------------------------------

Model small_model(int vocab, uint64_t seed = 7) {
  Model m(GptConfig{vocab, 16, 2, 2, 8});  // V, T, L, NH, C
  m.init(seed);
  // LayerNorm weights and biases away from 1 and 0, so that their bytes say something
  Rng rng(seed + 1);
  for (const TensorView& t : m.tensors())
    for (size_t i = 0; i < t.size; ++i)
      m.params()[t.offset + i] += static_cast<float>(0.1 * rng.normal());
  return m;
}

// skein's tensor names -> llama.cpp's, written out by hand.
std::string llama_name(const std::string& s) {
  static const std::map<std::string, std::string> kNames = {
      {"wte", "token_embd.weight"},
      {"wpe", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"},
      {"ln_f.bias", "output_norm.bias"},
      {"h.0.ln_1.weight", "blk.0.attn_norm.weight"},
      {"h.0.ln_1.bias", "blk.0.attn_norm.bias"},
      {"h.0.attn.c_attn.weight", "blk.0.attn_qkv.weight"},
      {"h.0.attn.c_attn.bias", "blk.0.attn_qkv.bias"},
      {"h.0.attn.c_proj.weight", "blk.0.attn_output.weight"},
      {"h.0.attn.c_proj.bias", "blk.0.attn_output.bias"},
      {"h.0.ln_2.weight", "blk.0.ffn_norm.weight"},
      {"h.0.ln_2.bias", "blk.0.ffn_norm.bias"},
      {"h.0.mlp.c_fc.weight", "blk.0.ffn_up.weight"},
      {"h.0.mlp.c_fc.bias", "blk.0.ffn_up.bias"},
      {"h.0.mlp.c_proj.weight", "blk.0.ffn_down.weight"},
      {"h.0.mlp.c_proj.bias", "blk.0.ffn_down.bias"},
  };
  std::string key = s;
  if (s.rfind("h.1.", 0) == 0) key = "h.0." + s.substr(4);
  auto it = kNames.find(key);
  SKEIN_CHECK(it != kNames.end(), "unmapped name");
  std::string name = it->second;
  if (s.rfind("h.1.", 0) == 0) name = "blk.1." + name.substr(6);
  return name;
}

// Checks the tensor table and data of f against model, for dtype.
void expect_tensors(const GgufFile& f, const Model& model, ExportDtype dtype) {
  const auto& tv = model.tensors();
  ASSERT_EQ(f.tensors.size(), tv.size());  // no output.weight: tied to token_embd
  uint64_t end = 0;
  for (size_t i = 0; i < tv.size(); ++i) {
    const GgufTensorInfo& t = f.tensors[i];
    SCOPED_TRACE(tv[i].name);
    EXPECT_EQ(t.name, llama_name(tv[i].name));
    const std::vector<uint64_t> ne(tv[i].shape.rbegin(), tv[i].shape.rend());
    EXPECT_EQ(t.ne, ne);
    const bool matrix = tv[i].shape.size() == 2;
    const uint32_t want_type = !matrix || dtype == ExportDtype::kF32 ? 0
                               : dtype == ExportDtype::kF16          ? 1
                                                                     : 30;
    EXPECT_EQ(t.type, want_type);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_GE(t.offset, end);
    const size_t elem = t.type == 0 ? 4 : 2;
    end = t.offset + tv[i].size * elem;
    ASSERT_LE(f.data_start + end, f.bytes.size());
    const char* data = f.bytes.data() + f.data_start + t.offset;
    const float* p = model.params() + tv[i].offset;
    size_t wrong = 0;
    for (size_t j = 0; j < tv[i].size; ++j) {
      if (t.type == 0) {
        float x;
        std::memcpy(&x, data + 4 * j, 4);
        wrong += std::memcmp(&x, p + j, 4) != 0;
      } else {
        uint16_t h;
        std::memcpy(&h, data + 2 * j, 2);
        wrong += h != (t.type == 1 ? f32_to_f16_rne(p[j]) : f32_to_bf16_rne(p[j]));
      }
    }
    EXPECT_EQ(wrong, 0u);
  }
}

void expect_model_metadata(const GgufFile& f, const GptConfig& cfg, uint32_t file_type) {
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.get<std::string>("general.architecture"), "gpt2");
  EXPECT_EQ(f.get<uint32_t>("general.alignment"), 32u);
  EXPECT_EQ(f.get<uint32_t>("general.file_type"), file_type);
  EXPECT_EQ(f.get<uint32_t>("gpt2.context_length"), uint32_t(cfg.seq_len));
  EXPECT_EQ(f.get<uint32_t>("gpt2.embedding_length"), uint32_t(cfg.d_model));
  EXPECT_EQ(f.get<uint32_t>("gpt2.feed_forward_length"), uint32_t(4 * cfg.d_model));
  EXPECT_EQ(f.get<uint32_t>("gpt2.block_count"), uint32_t(cfg.n_layer));
  EXPECT_EQ(f.get<uint32_t>("gpt2.attention.head_count"), uint32_t(cfg.n_head));
  EXPECT_EQ(f.get<float>("gpt2.attention.layer_norm_epsilon"), 1e-5f);
  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f.get<bool>("tokenizer.ggml.add_bos_token"), false);
  // llama.cpp requires the merges key, as an array of strings, even when it is empty
  EXPECT_EQ(f.kv_type.at("tokenizer.ggml.merges"), 908u);
  EXPECT_EQ(f.kv_type.at("tokenizer.ggml.tokens"), 908u);
  EXPECT_EQ(f.kv_type.at("tokenizer.ggml.token_type"), 905u);
  std::vector<std::string> keys;
  for (const auto& [k, v] : f.kv) keys.push_back(k);
  EXPECT_EQ(
      keys,
      (std::vector<std::string>{
          "general.alignment", "general.architecture", "general.file_type", "general.name",
          "gpt2.attention.head_count", "gpt2.attention.layer_norm_epsilon", "gpt2.block_count",
          "gpt2.context_length", "gpt2.embedding_length", "gpt2.feed_forward_length",
          "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id",
          "tokenizer.ggml.eos_token_id", "tokenizer.ggml.merges", "tokenizer.ggml.model",
          "tokenizer.ggml.pre", "tokenizer.ggml.token_type", "tokenizer.ggml.tokens"}));
}

// --- tests ------------------------------------------------------------------------------------

TEST(ExportGgufTest, ByteModelInF32IsTheParametersBitForBit) {
  TempDir dir;
  const Model model = small_model(256);
  const std::string path = dir.file("m.gguf");
  ASSERT_TRUE(export_gguf(model, Tokenizer(), ExportDtype::kF32, path).ok());
  const GgufFile f = read_gguf(path);
  expect_model_metadata(f, model.config(), 0);
  expect_tensors(f, model, ExportDtype::kF32);
  const auto& tokens = f.get<std::vector<std::string>>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tokens[b], gpt2_chars(std::string(1, char(b)))) << b;
  EXPECT_EQ(tokens[' '], "\xc4\xa0");   // "Ġ"
  EXPECT_EQ(tokens['\n'], "\xc4\x8a");  // "Ċ"
  EXPECT_EQ(tokens['a'], "a");
  EXPECT_EQ(f.get<std::vector<int32_t>>("tokenizer.ggml.token_type"), std::vector<int32_t>(256, 1));
  EXPECT_TRUE(f.get<std::vector<std::string>>("tokenizer.ggml.merges").empty());
  // no end-of-text token: NUL, which text does not contain, rather than llama.cpp's default 11
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.bos_token_id"), 0u);
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.eos_token_id"), 0u);
  // nothing but the file itself is left in the folder
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(ExportGgufTest, F16AndBf16RoundMatricesAndKeepVectorsInF32) {
  TempDir dir;
  const Model model = small_model(256, 11);
  for (auto [dtype, file_type] :
       {std::pair{ExportDtype::kF16, 1u}, std::pair{ExportDtype::kBf16, 32u}}) {
    SCOPED_TRACE(export_dtype_name(dtype));
    const std::string path = dir.file(std::string(export_dtype_name(dtype)) + ".gguf");
    ASSERT_TRUE(export_gguf(model, Tokenizer(), dtype, path).ok());
    const GgufFile f = read_gguf(path);
    expect_model_metadata(f, model.config(), file_type);
    expect_tensors(f, model, dtype);
  }
}

TEST(ExportGgufTest, TokenizerOfAnotherVocabularySizeIsRefused) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  for (int V : {200, 300}) {  // fewer and more embedding rows than the byte tokenizer's 256
    const Model model = small_model(V);
    const Status s = export_gguf(model, Tokenizer(), ExportDtype::kF32, path);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("256 tokens but the model " + std::to_string(V)), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("HINT"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(ExportGgufTest, Gpt2TokenizerIsSpelledWithItsMergesInRankOrder) {
  TempDir dir;
  MiniGpt2 mini;
  mini.merges = {{"h", "e"}, {" ", "t"}, {" t", "he"}, {"l", "l"}, {"\n", "\n"}, {"\xc3", "\xa9"}};
  auto vocab = mini.parse();
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  auto tok = Tokenizer::from_gpt2(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const int V = tok->vocab_size();  // 256 + 6 merges + <|endoftext|>
  ASSERT_EQ(V, 263);
  const Model model = small_model(V);
  const std::string path = dir.file("m.gguf");
  ASSERT_TRUE(export_gguf(model, *tok, ExportDtype::kF16, path).ok());
  const GgufFile f = read_gguf(path);
  expect_model_metadata(f, model.config(), 1);
  expect_tensors(f, model, ExportDtype::kF16);
  EXPECT_EQ(f.get<std::vector<std::string>>("tokenizer.ggml.merges"),
            (std::vector<std::string>{"h e", "\xc4\xa0 t", "\xc4\xa0t he", "l l",
                                      "\xc4\x8a \xc4\x8a", "\xc3\x83 \xc2\xa9"}));
  const auto& tokens = f.get<std::vector<std::string>>("tokenizer.ggml.tokens");
  const auto& types = f.get<std::vector<int32_t>>("tokenizer.ggml.token_type");
  const auto want = mini.tokens();  // bytes by id
  ASSERT_EQ(tokens.size(), want.size());
  for (int id = 0; id < V - 1; ++id) {
    EXPECT_EQ(tokens[id], gpt2_chars(want[id])) << id;
    EXPECT_EQ(types[id], 1) << id;
  }
  EXPECT_EQ(tokens[258], "\xc4\xa0the");
  EXPECT_EQ(tokens[V - 1], "<|endoftext|>");
  EXPECT_EQ(types[V - 1], 3);  // control
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.bos_token_id"), uint32_t(V - 1));
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.eos_token_id"), uint32_t(V - 1));
}

TEST(ExportGgufTest, BpeTokenizerIsRefusedSayingWhy) {
  TempDir dir;
  auto tok = Tokenizer::from_merges({{'t', 'h'}, {256, 'e'}});
  ASSERT_TRUE(tok.ok());
  const Model model = small_model(258);
  const std::string path = dir.file("m.gguf");
  const Status s = export_gguf(model, *tok, ExportDtype::kF32, path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("pre-tokenizer"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("64 bytes"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("HINT"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir.path()));
  // the same answer without writing (what an app asks first)
  EXPECT_EQ(check_gguf_tokenizer(*tok, 258).message(),
            s.message().substr(s.message().find(": ") + 2));
  EXPECT_TRUE(check_gguf_tokenizer(Tokenizer(), 256).ok());
  EXPECT_FALSE(check_gguf_tokenizer(Tokenizer(), 257).ok());
}

TEST(ExportGgufTest, BadInputIsRefusedLeavingNothing) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  {  // a NaN weight (check_exportable)
    Model model = small_model(256);
    model.params()[model.tensor("h.1.mlp.c_fc.weight").offset + 5] = NAN;
    EXPECT_FALSE(export_gguf(model, Tokenizer(), ExportDtype::kF32, path).ok());
  }
  {  // a folder that does not exist
    const Model model = small_model(256);
    const std::string bad = dir.file("no/such/dir/m.gguf");
    const Status s = export_gguf(model, Tokenizer(), ExportDtype::kF32, bad);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace skein
