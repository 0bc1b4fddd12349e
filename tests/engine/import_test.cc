// Pretrained weights in (engine/import.h): every fixture that tests/reference/
// gpt2_import_reference.py writes (Hugging Face safetensors in F32, F16 and BF16, both name
// forms, Conv1D layout, mask buffers, a tied lm_head; llm.c's model file in versions 3 and 5)
// imports into the same parameters, whose logits, loss and gradients match PyTorch's within
// 1e-5; and every malformed file is refused with a message that names the file and the tensor.
#include "engine/import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/file_util.h"
#include "engine/config.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kTol = 1e-5;
const std::string kDir = "tests/reference/import";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// ---- expected.bin: gpt_reference.py's fixture format ----
struct Record {
  std::vector<int> shape;
  std::vector<float> f;
  std::vector<int32_t> i;
};

std::map<std::string, Record> load_expected(const std::string& file = "expected.bin") {
  const std::string b = read_bytes(kDir + "/" + file);
  std::map<std::string, Record> out;
  if (b.size() < 12 || b.compare(0, 8, "SKEINFX1") != 0) {
    ADD_FAILURE() << kDir << "/" << file << ": missing or bad magic (run from the repository root)";
    return out;
  }
  size_t at = 8;
  auto u32 = [&] {
    uint32_t v = 0;
    if (at + 4 <= b.size()) std::memcpy(&v, b.data() + at, 4);
    at += 4;
    return v;
  };
  const uint32_t count = u32();
  for (uint32_t r = 0; r < count && at < b.size(); ++r) {
    const uint32_t len = u32();
    const std::string name = b.substr(at, len);
    at += len;
    const uint32_t dtype = u32(), ndim = u32();
    Record rec;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; ++d) n *= rec.shape.emplace_back(int(u32()));
    if (at + 4 * n > b.size()) break;
    if (dtype == 0) {
      rec.f.resize(n);
      std::memcpy(rec.f.data(), b.data() + at, 4 * n);
    } else {
      rec.i.resize(n);
      std::memcpy(rec.i.data(), b.data() + at, 4 * n);
    }
    at += 4 * n;
    out[name] = std::move(rec);
  }
  EXPECT_EQ(out.size(), count) << file << " is truncated";
  return out;
}

GptConfig config_for(const PretrainedShape& s, int seq_len) {
  return {s.vocab_size, seq_len, s.n_layer, s.n_head, s.d_model};
}

StatusOr<std::vector<float>> import_params(const std::string& path, int seq_len) {
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(path);
  if (!w.ok()) return w.status();
  if (Status s = w->check_values(); !s.ok()) return s;
  Model m(config_for(w->shape(), seq_len));
  if (Status s = w->load_into(m); !s.ok()) return s;
  return std::vector<float>(m.params(), m.params() + m.num_params());
}

// The error of opening (and, if that passes, value-checking) a file.
std::string import_error(const std::string& path) {
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(path);
  if (!w.ok()) return w.status().message();
  Status s = w->check_values();
  return s.ok() ? "" : s.message();
}

const std::vector<std::string>& fixtures() {
  static const std::vector<std::string> f = {
      kDir + "/hf_f32",           kDir + "/hf_f16",
      kDir + "/hf_bf16",          kDir + "/hf_f16/model.safetensors",
      kDir + "/gpt2_tiny_v3.bin", kDir + "/gpt2_tiny_v5.bin"};
  return f;
}

// ---- the converters ----

// Every float16 bit pattern, against the definition (sign, 5-bit exponent biased 15, 10-bit
// fraction; exponent 0: subnormal, 31: infinity or NaN).
TEST(Import, Float16DecodesEveryBitPatternExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = h >> 15 ? -1 : 1, exp = (h >> 10) & 31, frac = h & 1023;
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (exp == 31) {
      if (frac == 0)
        ASSERT_EQ(got, sign * INFINITY) << h;
      else
        ASSERT_TRUE(std::isnan(got)) << h;
      continue;
    }
    const double want =
        exp == 0 ? sign * std::ldexp(frac, -24) : sign * std::ldexp(1024 + frac, exp - 25);
    ASSERT_EQ(double(got), want) << h;
    ASSERT_EQ(std::signbit(got), h >> 15 != 0) << h;  // -0 stays -0
  }
}

TEST(Import, Bfloat16DecodesAsTheTopHalfOfAFloat) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.0f + 0x1p-7f);
  EXPECT_EQ(bf16_to_f32(0x0001), 0x1p-133f);  // the smallest subnormal
  EXPECT_EQ(bf16_to_f32(0x7f80), INFINITY);
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
}

// ---- parity with PyTorch ----

struct Diff {
  double abs = 0, rel = 0;
};
Diff diff(const float* a, const std::vector<float>& b) {
  Diff d;
  double scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    d.abs = std::max(d.abs, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  d.rel = d.abs / (scale + 1e-30);
  return d;
}

// Each fixture at the file's context (9) and at a shorter seq_len (7 = the tokens' T: the first
// rows of wpe), against PyTorch's float64 answers on the same weights.
TEST(Import, EveryFixtureMatchesPyTorchLogitsLossAndGradients) {
  auto fx = load_expected();
  ASSERT_TRUE(fx.count("config"));
  const auto& c = fx["config"].i;
  const int B = c[5], T = c[6];
  for (const std::string& path : fixtures()) {
    StatusOr<PretrainedWeights> w = PretrainedWeights::open(path);
    ASSERT_TRUE(w.ok()) << w.status().message();
    EXPECT_EQ(w->shape().vocab_size, c[0]);
    EXPECT_EQ(w->shape().n_ctx, c[1]);
    EXPECT_EQ(w->shape().n_layer, c[2]);
    EXPECT_EQ(w->shape().n_head, c[3]);
    EXPECT_EQ(w->shape().d_model, c[4]);
    ASSERT_TRUE(w->check_values().ok()) << w->check_values().message();
    for (int seq_len : {c[1], T}) {
      const GptConfig cfg = config_for(w->shape(), seq_len);
      Model m(cfg);
      ASSERT_TRUE(w->load_into(m).ok()) << path;
      Activations acts(cfg, B, T);
      std::vector<float> grads(m.num_params(), 0.0f);
      const float loss = m.forward(acts, fx["tokens"].i.data(), fx["targets"].i.data());
      const Diff dl = diff(m.logits(acts), fx["logits"].f);  // before backward overwrites them
      m.backward(acts, grads.data());
      const float want = fx["loss"].f[0];
      const double loss_rel = std::abs(double(loss) - want) / std::abs(want);
      EXPECT_LE(loss_rel, kTol) << path << ": loss " << loss << " vs " << want;
      EXPECT_LE(dl.rel, kTol) << path << ": logits";
      Diff worst;
      for (const TensorView& t : m.tensors()) {
        std::vector<float> g = fx["grad/" + t.name].f;
        g.resize(t.size);  // wpe: PyTorch's has n_ctx rows, the model seq_len (beyond T: zero)
        const Diff d = diff(grads.data() + t.offset, g);
        EXPECT_LE(d.rel, kTol) << path << ": grad " << t.name;
        worst.abs = std::max(worst.abs, d.abs);
        worst.rel = std::max(worst.rel, d.rel);
      }
      std::printf(
          "parity %-40s seq_len %d: loss rel %.2e | logits max abs %.2e rel %.2e | "
          "grads max abs %.2e rel %.2e\n",
          path.c_str(), seq_len, loss_rel, dl.abs, dl.rel, worst.abs, worst.rel);
    }
  }
}

// Llama (tests/reference/llama_import_reference.py): LlamaForCausalLM's files in F32 (with the
// "model." prefix and the old rotary_emb.inv_freq buffers) and BF16 (without either) import into
// the same parameters, through the config as train takes them (arch, heads, F, tying and the
// constants from config.json), and give PyTorch's logits, loss and gradients within 1e-5.
TEST(Import, LlamaFixturesMatchPyTorchLogitsLossAndGradients) {
  auto fx = load_expected("llama_expected.bin");
  ASSERT_TRUE(fx.count("config") && fx.count("llama_constants"));
  const auto& c = fx["config"].i;
  const auto& k = fx["llama_constants"].f;
  const int B = c[5], T = c[6];
  std::vector<float> first;
  for (const char* folder : {"llama_f32", "llama_bf16"}) {
    const std::string path = kDir + "/" + folder;
    StatusOr<PretrainedWeights> w = PretrainedWeights::open(path);
    ASSERT_TRUE(w.ok()) << w.status().message();
    const PretrainedShape& s = w->shape();
    EXPECT_EQ(s.arch, Arch::kLlama);
    EXPECT_EQ(s.vocab_size, c[0]);
    EXPECT_EQ(s.n_ctx, c[1]);
    EXPECT_EQ(s.n_layer, c[2]);
    EXPECT_EQ(s.n_head, c[3]);
    EXPECT_EQ(s.d_model, c[4]);
    EXPECT_EQ(s.n_kv_head, c[7]);
    EXPECT_EQ(s.ffn_dim, c[8]);
    EXPECT_EQ(s.tied, c[9] != 0);
    EXPECT_EQ(float(s.rope_theta), k[0]);
    EXPECT_EQ(float(s.norm_eps), k[1]);
    ASSERT_TRUE(w->check_values().ok()) << w->check_values().message();
    proto::ModelConfig m;
    m.set_init_from(path);
    ASSERT_TRUE(apply_pretrained_shape(*w, &m).ok());
    EXPECT_EQ(m.arch(), proto::ModelConfig::LLAMA);
    const GptConfig cfg = gpt_config(m);
    Model model(cfg);
    ASSERT_TRUE(w->load_into(model).ok()) << path;
    if (first.empty())
      first.assign(model.params(), model.params() + model.num_params());
    else
      EXPECT_EQ(0, std::memcmp(first.data(), model.params(), first.size() * 4)) << path;
    Activations acts(cfg, B, T);
    std::vector<float> grads(model.num_params(), 0.0f);
    const float loss = model.forward(acts, fx["tokens"].i.data(), fx["targets"].i.data());
    const Diff dl = diff(model.logits(acts), fx["logits"].f);
    model.backward(acts, grads.data());
    const double loss_rel = std::abs(double(loss) - fx["loss"].f[0]) / std::abs(fx["loss"].f[0]);
    EXPECT_LE(loss_rel, kTol) << path;
    EXPECT_LE(dl.rel, kTol) << path << ": logits";
    Diff worst;
    for (const TensorView& t : model.tensors()) {
      ASSERT_TRUE(fx.count("grad/" + t.name)) << t.name;
      const Diff d = diff(grads.data() + t.offset, fx["grad/" + t.name].f);
      EXPECT_LE(d.rel, kTol) << path << ": grad " << t.name;
      worst.abs = std::max(worst.abs, d.abs);
      worst.rel = std::max(worst.rel, d.rel);
    }
    std::printf(
        "parity %-40s: loss rel %.2e | logits max abs %.2e rel %.2e | grads max abs "
        "%.2e rel %.2e\n",
        path.c_str(), loss_rel, dl.abs, dl.rel, worst.abs, worst.rel);
  }
}

// The six files hold the same numbers in six encodings: they import to the same bits. (Were
// a Conv1D weight left untransposed, or an llm.c layer slice misplaced, this names the file.)
TEST(Import, EveryFixtureImportsToTheSameParameters) {
  StatusOr<std::vector<float>> ref = import_params(kDir + "/hf_f32", 9);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  for (const std::string& path : fixtures()) {
    StatusOr<std::vector<float>> p = import_params(path, 9);
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_TRUE(*p == *ref) << path;
  }
  // and they are not trivially equal: nothing is zero but the alignment padding
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(kDir + "/hf_f32");
  Model m(config_for(w->shape(), 9));
  ASSERT_TRUE(w->load_into(m).ok());
  for (const TensorView& t : m.tensors())
    for (size_t i = 0; i < t.size; ++i) ASSERT_NE(m.params()[t.offset + i], 0.0f) << t.name;
}

TEST(Import, ShorterSeqLenTakesTheFirstRowsOfWpe) {
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(kDir + "/gpt2_tiny_v3.bin");
  ASSERT_TRUE(w.ok());
  Model full(config_for(w->shape(), 9)), cut(config_for(w->shape(), 4));
  ASSERT_TRUE(w->load_into(full).ok());
  ASSERT_TRUE(w->load_into(cut).ok());
  const TensorView &a = full.tensor("wpe"), &b = cut.tensor("wpe");
  ASSERT_EQ(b.shape, (std::vector<int>{4, 12}));
  EXPECT_EQ(0, std::memcmp(full.params() + a.offset, cut.params() + b.offset, b.size * 4));
  Model longer(config_for(w->shape(), 10));
  EXPECT_FALSE(w->load_into(longer).ok());
  Model other({53, 9, 2, 3, 24});
  EXPECT_NE(w->load_into(other).message().find("is not the file's"), std::string::npos);
}

TEST(Import, FormatChecksumAndRecord) {
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(kDir + "/hf_f16");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->format(), "safetensors, F16");
  EXPECT_EQ(w->path(), kDir + "/hf_f16/model.safetensors");
  EXPECT_EQ(w->crc32c(), *file_crc32c(kDir + "/hf_f16/model.safetensors"));
  EXPECT_EQ(w->config_crc32c(), *file_crc32c(kDir + "/hf_f16/config.json"));
  const proto::InitSource r = init_source_record(*w);
  EXPECT_EQ(r.path(), fs::absolute(kDir + "/hf_f16/model.safetensors").lexically_normal());
  EXPECT_EQ(r.config_path(), fs::absolute(kDir + "/hf_f16/config.json").lexically_normal());
  EXPECT_EQ(r.crc32c(), w->crc32c());
  StatusOr<PretrainedWeights> l = PretrainedWeights::open(kDir + "/gpt2_tiny_v5.bin");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->format(), "llm.c model file, version 5 (bf16)");
  EXPECT_FALSE(init_source_record(*l).has_config_path());
  EXPECT_EQ(PretrainedWeights::open(kDir + "/hf_bf16")->format(), "safetensors, BF16");
  EXPECT_EQ(PretrainedWeights::open(kDir + "/gpt2_tiny_v3.bin")->format(),
            "llm.c model file, version 3 (fp32)");
}

TEST(Import, TheShapeFillsTheConfigAndAConflictNamesEachField) {
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(kDir + "/gpt2_tiny_v5.bin");
  ASSERT_TRUE(w.ok());
  proto::ModelConfig m;
  m.set_init_from("x.bin");
  ASSERT_TRUE(apply_pretrained_shape(*w, &m).ok());
  EXPECT_EQ(m.vocab_size(), 53);
  EXPECT_EQ(m.seq_len(), 9);
  EXPECT_EQ(m.n_layer(), 2);
  EXPECT_EQ(m.n_head(), 3);
  EXPECT_EQ(m.d_model(), 12);

  proto::ModelConfig same;  // the same values stated, and a shorter seq_len: fine
  same.set_vocab_size(53);
  same.set_n_layer(2);
  same.set_seq_len(5);
  ASSERT_TRUE(apply_pretrained_shape(*w, &same).ok());
  EXPECT_EQ(same.seq_len(), 5);

  proto::ModelConfig bad;
  bad.set_init_from("x.bin");
  bad.set_vocab_size(256);
  bad.set_n_layer(6);
  bad.set_d_model(12);
  bad.set_seq_len(10);
  const Status s = apply_pretrained_shape(*w, &bad);
  ASSERT_FALSE(s.ok());
  const std::string& e = s.message();
  EXPECT_NE(e.find("model.vocab_size = 256, but the weights have 53 tokens"), std::string::npos)
      << e;
  EXPECT_NE(e.find("model.n_layer = 6, but the weights have 2 layers"), std::string::npos) << e;
  EXPECT_EQ(e.find("model.d_model"), std::string::npos) << e;  // that one agrees
  EXPECT_NE(e.find("model.seq_len = 10 is longer than the weights' context, 9"), std::string::npos)
      << e;
  EXPECT_NE(e.find("gpt2_tiny_v5.bin"), std::string::npos) << e;
}

// model.init_from in the config: the shape checks wait for the file (the defaults of n_head and
// d_model need not divide), and another path on resume is a note, not an incompatible change.
TEST(Import, ConfigFieldInitFrom) {
  StatusOr<proto::Config> c = parse_config_text(
      "model { init_from: \"gpt2\" d_model: 64 } data { dir: \"d\" }", "c.textproto");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(validate_config(*c).ok());  // 64 % 6 != 0: the file decides
  c->mutable_model()->clear_init_from();
  EXPECT_FALSE(validate_config(*c).ok());
  proto::Config a, b;
  a.mutable_model()->set_init_from("one.bin");
  b.mutable_model()->set_init_from("two.bin");
  std::vector<std::string> notes;
  EXPECT_TRUE(incompatible_changes(a, b, &notes).empty());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "model.init_from: \"one.bin\" -> \"two.bin\"");
  b.mutable_model()->set_n_layer(3);
  EXPECT_EQ(incompatible_changes(a, b, nullptr).size(), 1u);
}

// ---- malformed files ----

class ImportErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("skein_import_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string st = read_bytes(kDir + "/hf_f32/model.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, st.data(), 8);
    header_ = json::parse(st.substr(8, n));
    data_ = st.substr(8 + n);
    config_ = json::parse(read_bytes(kDir + "/hf_f32/config.json"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a safetensors folder from a header, data and config.json; returns the folder.
  std::string write_hf(const std::string& header_text, const std::string& data,
                       const json& config) {
    const std::string folder = (dir_ / ("hf" + std::to_string(n_++))).string();
    fs::create_directories(folder);
    const uint64_t n = header_text.size();
    write_bytes(folder + "/model.safetensors",
                std::string(reinterpret_cast<const char*>(&n), 8) + header_text + data);
    write_bytes(folder + "/config.json", config.dump());
    return folder;
  }
  std::string write_hf(const json& header) { return write_hf(header.dump(), data_, config_); }
  std::string write_config(const json& config) { return write_hf(header_.dump(), data_, config); }
  std::string error_of_header(const json& header) { return import_error(write_hf(header)); }
  std::string error_of_config(const json& config) { return import_error(write_config(config)); }

  // The byte offset in data_ of element i of a tensor (F32 in hf_f32).
  size_t element(const std::string& name, size_t i) const {
    return header_[name]["data_offsets"][0].get<size_t>() + 4 * i;
  }
  std::string put_float(std::string data, size_t at, float v) const {
    std::memcpy(data.data() + at, &v, 4);
    return data;
  }
  std::string file(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    write_bytes(p, bytes);
    return p;
  }

  fs::path dir_;
  json header_, config_;
  std::string data_;
  int n_ = 0;
};

#define EXPECT_HAS(text, needle)                                                             \
  EXPECT_NE((text).find(needle), std::string::npos) << "expected '" << (needle) << "' in:\n" \
                                                    << (text)

TEST_F(ImportErrors, TruncatedSafetensorsNamesTheFileAndWhere) {
  const std::string whole = read_bytes(kDir + "/hf_f32/model.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, whole.data(), 8);
  struct Cut {
    size_t keep;
    std::string message;
  };
  for (const Cut& c : {Cut{0, "truncated: 0 bytes"}, Cut{5, "truncated: 5 bytes"},
                       Cut{8 + header_len / 2, "bytes follow them (truncated"},
                       Cut{whole.size() - 1, "reach past the end of the data"}}) {
    fs::create_directories(dir_ / "cut");
    std::filesystem::copy_file(kDir + "/hf_f32/config.json", dir_ / "cut/config.json",
                               fs::copy_options::overwrite_existing);
    write_bytes((dir_ / "cut/model.safetensors").string(), whole.substr(0, c.keep));
    const std::string e = import_error((dir_ / "cut").string());
    EXPECT_HAS(e, c.message);
    EXPECT_HAS(e, "cut/model.safetensors");
  }
  // cut by one byte (the last case), the last tensor in the data is the one named
  std::string last;
  uint64_t last_end = 0;
  for (const auto& [name, v] : header_.items())
    if (name != "__metadata__" && v["data_offsets"][1].get<uint64_t>() > last_end)
      last_end = v["data_offsets"][1].get<uint64_t>(), last = name;
  EXPECT_HAS(import_error((dir_ / "cut").string()), "tensor " + last + ":");
}

TEST_F(ImportErrors, HeaderLengthPastTheEnd) {
  std::string bytes = read_bytes(kDir + "/hf_f32/model.safetensors");
  const uint64_t huge = uint64_t(1) << 40;
  std::memcpy(bytes.data(), &huge, 8);
  const std::string folder = write_hf(header_.dump(), data_, config_);
  write_bytes(folder + "/model.safetensors", bytes);
  const std::string e = import_error(folder);
  EXPECT_HAS(e, "give a header of 1099511627776 bytes, but only");
}

TEST_F(ImportErrors, HeaderThatIsNotJson) {
  std::string text = header_.dump();
  text[text.find("\"dtype\"")] = 'x';  // an unquoted key
  EXPECT_HAS(import_error(write_hf(text, data_, config_)), "is not valid JSON");
  EXPECT_HAS(import_error(write_hf("[1, 2]", data_, config_)), "does not start with '{'");
  EXPECT_HAS(import_error(write_hf("{\"a\": 1}", data_, config_)), "tensor a: its header entry");
  // a name given twice: the parser would keep one silently
  text = header_.dump();
  text.pop_back();
  text += ",\"transformer.ln_f.bias\":" + header_["transformer.ln_f.bias"].dump() + "}";
  EXPECT_HAS(import_error(write_hf(text, data_, config_)), "names \"transformer.ln_f.bias\" twice");
}

TEST_F(ImportErrors, OffsetsOutOfRangeOrOverlapping) {
  json h = header_;
  h["transformer.h.0.mlp.c_fc.bias"]["data_offsets"][1] = data_.size() + 4;
  std::string e = error_of_header(h);
  EXPECT_HAS(e, "tensor transformer.h.0.mlp.c_fc.bias: data_offsets");
  EXPECT_HAS(e, "reach past the end of the data");
  h = header_;
  h["transformer.h.0.mlp.c_fc.bias"]["data_offsets"][0] =
      h["transformer.h.0.mlp.c_fc.bias"]["data_offsets"][0].get<uint64_t>() + 4;
  EXPECT_HAS(error_of_header(h), "takes 192 bytes, but data_offsets");
  h = header_;  // ln_f.bias moved onto ln_f.weight's bytes (same size)
  h["transformer.ln_f.bias"]["data_offsets"] = h["transformer.ln_f.weight"]["data_offsets"];
  e = error_of_header(h);
  EXPECT_HAS(e, "tensors transformer.ln_f.bias and transformer.ln_f.weight overlap");
  h = header_;
  h["transformer.ln_f.bias"]["data_offsets"] = {8, 4};
  EXPECT_HAS(error_of_header(h), "end before they begin");
  h = header_;
  h["transformer.ln_f.bias"]["shape"] = {-12};
  EXPECT_HAS(error_of_header(h), "holds something other than non-negative integers");
}

TEST_F(ImportErrors, WrongShapeMissingTensorUnknownTensorDtype) {
  json h = header_;
  h["transformer.h.1.attn.c_attn.weight"]["shape"] = {36, 12};  // nn.Linear's layout
  std::string e = error_of_header(h);
  EXPECT_HAS(e,
             "tensor transformer.h.1.attn.c_attn.weight has shape [36, 12], but this model "
             "needs [12, 36]");
  EXPECT_HAS(e, "stores Conv1D weights [in, out]");
  h = header_;
  h.erase("transformer.h.1.ln_2.bias");
  EXPECT_HAS(error_of_header(h), "has no tensor h.1.ln_2.bias (nor transformer.h.1.ln_2.bias)");
  h.erase("transformer.wpe.weight");
  EXPECT_HAS(error_of_header(h),
             "has no tensor wpe.weight (nor transformer.wpe.weight), nor 1 "
             "other");
  h = header_;
  h["transformer.h.0.attn.lora_A"] = h["transformer.ln_f.bias"];
  h.erase("transformer.ln_f.bias");
  EXPECT_HAS(error_of_header(h), "tensor transformer.h.0.attn.lora_A has no place in a GPT-2");
  h = header_;
  h["transformer.h.2.ln_1.weight"] = h["transformer.ln_f.bias"];  // a third layer
  h.erase("transformer.ln_f.bias");
  EXPECT_HAS(error_of_header(h), "transformer.h.2.ln_1.weight has no place");
  h = header_;
  h["transformer.h.0.ln_1.bias"]["dtype"] = "I32";
  EXPECT_HAS(error_of_header(h),
             "tensor transformer.h.0.ln_1.bias has dtype I32, which skein "
             "does not read (F32, F16 or BF16)");
  h["transformer.h.0.ln_1.bias"]["dtype"] = "Q4_K";
  EXPECT_HAS(error_of_header(h), "dtype \"Q4_K\" is not one that skein knows");
  h = header_;  // the same tensor under both of its names
  h["h.0.ln_1.bias"] = h["transformer.h.0.ln_1.bias"];
  h["h.0.ln_1.bias"]["data_offsets"] = {data_.size(), data_.size() + 48};
  EXPECT_HAS(import_error(write_hf(h.dump(), data_ + std::string(48, '\0'), config_)),
             "holds both h.0.ln_1.bias and transformer.h.0.ln_1.bias");
  // the mask buffers are ignored, whatever their dtype
  h = header_;
  h["transformer.h.0.attn.masked_bias"]["dtype"] = "I32";
  EXPECT_EQ(error_of_header(h), "");
}

TEST_F(ImportErrors, NonFiniteValuesNameTheTensorAndElement) {
  const std::string name = "transformer.h.1.mlp.c_fc.weight";  // stored [12, 48]
  std::string e =
      import_error(write_hf(header_.dump(), put_float(data_, element(name, 50), NAN), config_));
  EXPECT_HAS(e,
             "tensor h.1.mlp.c_fc.weight (transformer.h.1.mlp.c_fc.weight in the file) "
             "holds NaN at [1, 2]");
  e = import_error(write_hf(header_.dump(),
                            put_float(data_, element("transformer.wpe.weight", 8 * 12), -INFINITY),
                            config_));
  EXPECT_HAS(e, "holds -inf at [8, 0]");  // a row past a shorter seq_len counts too
  // F16: the exponent bits all ones
  const std::string f16 = read_bytes(kDir + "/hf_f16/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, f16.data(), 8);
  const json h16 = json::parse(f16.substr(8, n));
  std::string d16 = f16.substr(8 + n);
  const uint16_t inf16 = 0x7c00;
  std::memcpy(d16.data() + h16["ln_f.bias"]["data_offsets"][0].get<size_t>() + 6, &inf16, 2);
  EXPECT_HAS(import_error(write_hf(h16.dump(), d16, config_)),
             "tensor ln_f.bias holds +inf at [3]");
}

TEST_F(ImportErrors, AnUntiedLmHeadIsRefused) {
  const std::string e = import_error(
      write_hf(header_.dump(), put_float(data_, element("lm_head.weight", 13), 0.5f), config_));
  EXPECT_HAS(e, "lm_head.weight differs from transformer.wte.weight (at [1, 1]");
  EXPECT_HAS(e, "ties the output layer to the token embedding");
  json h = header_;
  h["lm_head.weight"]["shape"] = {12, 53};
  EXPECT_HAS(error_of_header(h), "tensor lm_head.weight has shape [12, 53]");
}

// A hostile header or config.json nested a million levels deep is refused with a message, not
// a crash (a recursive dump() for the message would exhaust the stack).
TEST_F(ImportErrors, DeeplyNestedJsonIsRefused) {
  const int depth = 1000000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  std::string text = header_.dump();
  text.pop_back();
  text += ",\"x\":{\"dtype\":\"F32\",\"shape\":" + deep + ",\"data_offsets\":[0,0]}}";
  EXPECT_HAS(import_error(write_hf(text, data_, config_)), "nests deeper than");
  const std::string folder = write_hf(header_.dump(), data_, config_);
  std::string cfg = config_.dump();
  cfg.pop_back();
  write_bytes(folder + "/config.json", cfg + ",\"n_embd\":" + deep + "}");
  EXPECT_HAS(import_error(folder), "nested deeper than");
}

TEST_F(ImportErrors, ConfigJsonThatIsNotGpt2) {
  struct Case {
    const char* key;
    json value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"n_embd", 24,
       "tensor lm_head.weight has shape [53, 12], but the output layer of this "
       "model is [53, 24]"},
      {"n_head", 5, "n_head = 5 does not divide n_embd = 12"},
      {"n_layer", 3, "has no tensor h.2.ln_1.weight"},
      {"n_layer", 1, "transformer.h.1.attn.c_attn.bias has no place"},
      {"vocab_size", "53", "vocab_size is \"53\", not an integer"},
      {"n_positions", 0, "n_positions is 0, not an integer in 1.."},
      {"layer_norm_epsilon", 1e-6, "layer_norm_epsilon is 1e-06, but skein's LayerNorm uses"},
      {"activation_function", "relu", "activation_function is \"relu\""},
      {"model_type", "mistral", "model_type is \"mistral\", not \"gpt2\" or \"llama\""},
      // a Llama's config.json is read as LlamaConfig's: GPT-2's keys are not its
      {"model_type", "llama", "config.json: no \"max_position_embeddings\""},
      {"n_inner", 24, "n_inner is 24, but skein's MLP is 4 x n_embd = 48 wide"},
      {"tie_word_embeddings", false, "tie_word_embeddings is false"},
      {"scale_attn_by_inverse_layer_idx", true, "scale_attn_by_inverse_layer_idx is true"},
  };
  for (const Case& c : cases) {
    json cfg = config_;
    cfg[c.key] = c.value;
    const std::string e = error_of_config(cfg);
    EXPECT_HAS(e, c.message);
  }
  json cfg = config_;
  cfg.erase("n_embd");
  EXPECT_HAS(error_of_config(cfg), "config.json: no \"n_embd\"");
  cfg = config_;
  cfg.erase("n_positions");  // older files: n_ctx
  EXPECT_EQ(error_of_config(cfg), "");
  const std::string folder = write_config(config_);
  write_bytes(folder + "/config.json", "{\"n_embd\": 12,");
  EXPECT_HAS(import_error(folder), "config.json is not valid JSON");
  fs::remove(folder + "/config.json");
  EXPECT_HAS(import_error(folder), "model.safetensors: no config.json next to it");
}

// A Llama's config.json and tensors, each broken in one way (from llama_f32).
TEST_F(ImportErrors, LlamaConfigAndTensors) {
  const std::string st = read_bytes(kDir + "/llama_f32/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  const json header = json::parse(st.substr(8, n));
  const std::string data = st.substr(8 + n);
  const json config = json::parse(read_bytes(kDir + "/llama_f32/config.json"));
  EXPECT_EQ(import_error(write_hf(header.dump(), data, config)), "");
  struct Case {
    const char* key;
    json value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"rope_scaling", json{{"rope_type", "llama3"}, {"factor", 8.0}},
       "rope_scaling is {\"factor\":8.0,\"rope_type\":\"llama3\"}, which skein does not apply"},
      {"hidden_act", "gelu", "hidden_act is \"gelu\", but skein's SwiGLU uses \"silu\""},
      {"attention_bias", true, "attention_bias is true, but skein's Llama has no biases"},
      {"num_key_value_heads", 3, "num_key_value_heads = 3 does not divide num_attention_heads = 4"},
      {"num_key_value_heads", 1,
       "tensor model.layers.0.self_attn.k_proj.weight has shape [12, 24], "
       "but this model needs [6, 24]"},
      {"head_dim", 8, "head_dim is 8, but skein's heads are hidden_size / num_attention_heads = 6"},
      {"intermediate_size", 0, "intermediate_size is 0, not an integer in 1.."},
      {"rms_norm_eps", -1, "rms_norm_eps is -1, not a positive number"},
      {"tie_word_embeddings", true, "lm_head.weight differs from model.embed_tokens.weight"},
  };
  for (const Case& c : cases) {
    json cfg = config;
    cfg[c.key] = c.value;
    EXPECT_HAS(import_error(write_hf(header.dump(), data, cfg)), c.message);
  }
  json h = header;
  h.erase("model.layers.1.mlp.up_proj.weight");
  EXPECT_HAS(import_error(write_hf(h.dump(), data, config)),
             "has no tensor layers.1.mlp.up_proj.weight (nor model.layers.1.mlp.up_proj.weight)");
  h = header;
  h["model.norm.bias"] = h["model.norm.weight"];  // renamed: a part skein's Llama has not
  h.erase("model.norm.weight");
  EXPECT_HAS(import_error(write_hf(h.dump(), data, config)),
             "tensor model.norm.bias has no place in a Llama of this shape");
}

TEST_F(ImportErrors, PathsThatHoldNoModel) {
  EXPECT_HAS(import_error((dir_ / "nothing").string()), "no such file or folder");
  EXPECT_HAS(import_error(dir_.string()), "is a folder without model.safetensors");
  fs::create_directories(dir_ / "pt");
  write_bytes((dir_ / "pt/pytorch_model.bin").string(), "x");
  EXPECT_HAS(import_error((dir_ / "pt").string()), "pytorch_model.bin, a pickle");
  fs::create_directories(dir_ / "sharded");
  write_bytes((dir_ / "sharded/model.safetensors.index.json").string(), "{}");
  EXPECT_HAS(import_error((dir_ / "sharded").string()), "sharded over several");
  std::string shard(1024, '\0');
  const int32_t magic = 20240520;
  std::memcpy(shard.data(), &magic, 4);
  EXPECT_HAS(import_error(file("train_000000.bin", shard)),
             "its first int32 is 20240520, a token shard's magic");
  EXPECT_HAS(import_error(file("empty.bin", "")), "it has 0 bytes");
}

// llm.c's header: the i-th int32 replaced.
std::string with_header_int(std::string bytes, int i, int32_t v) {
  std::memcpy(bytes.data() + 4 * i, &v, 4);
  return bytes;
}

TEST_F(ImportErrors, LlmcMagicVersionHeaderAndSize) {
  const std::string v3 = read_bytes(kDir + "/gpt2_tiny_v3.bin");
  EXPECT_HAS(import_error(file("magic.bin", with_header_int(v3, 0, 20240325))),
             "its first int32 is 20240325, where an llm.c model file starts with 20240326");
  StatusOr<PretrainedWeights> w =
      PretrainedWeights::from_llmc(reinterpret_cast<const uint8_t*>(v3.data()), 1000, "m.bin");
  EXPECT_HAS(w.status().message(),
             "m.bin: truncated: 1000 bytes, but an llm.c model file's "
             "header alone is 1024");
  EXPECT_HAS(import_error(file("v4.bin", with_header_int(v3, 1, 4))),
             "llm.c model file version 4, which skein does not read (3: fp32, 5: bf16");
  EXPECT_HAS(import_error(file("v1.bin", with_header_int(v3, 1, 1))), "version 1");
  EXPECT_HAS(import_error(file("nh.bin", with_header_int(v3, 5, 5))), "NH does not divide C");
  EXPECT_HAS(import_error(file("vp.bin", with_header_int(v3, 7, 50))),
             "the padded vocabulary Vp is smaller than V");
  EXPECT_HAS(import_error(file("zero.bin", with_header_int(v3, 4, 0))), "L is not in 1..");
  std::string e = import_error(file("cut.bin", v3.substr(0, v3.size() - 4)));
  EXPECT_HAS(e,
             "cut.bin: its header (maxT 9, V 53, L 2, NH 3, C 12, Vp 64) needs 19696 bytes "
             "(fp32), but the file has 19692: truncated");
  e = import_error(file("long.bin", v3 + "xxxx"));
  EXPECT_HAS(e, "not the layout its header describes");
  // the same bytes read as bf16 (version 5) are half the size the header asks for
  EXPECT_HAS(import_error(file("as5.bin", with_header_int(v3, 1, 5))),
             "needs 10360 bytes (bf16), but the file has 19696");
}

TEST_F(ImportErrors, LlmcValuesNameTheTensorAndLayer) {
  std::string v3 = read_bytes(kDir + "/gpt2_tiny_v3.bin");
  const size_t C = 12, V = 53, Vp = 64, T = 9;
  // qkvw of layer 1: after the header, wte, wpe, ln1w, ln1b, and qkvw of layer 0
  const size_t qkvw1 = 1024 + 4 * (Vp * C + T * C + 2 * C + 2 * C + 3 * C * C);
  std::string bad = v3;
  const float nan = NAN, one = 1.0f;
  std::memcpy(bad.data() + qkvw1 + 4 * (C + 5), &nan, 4);
  EXPECT_HAS(import_error(file("nan.bin", bad)),
             "tensor h.1.attn.c_attn.weight (qkvw, layer 1 in the file) holds NaN at [1, 5]");
  bad = v3;
  std::memcpy(bad.data() + 1024 + 4 * ((V + 2) * C + 3), &one, 4);
  EXPECT_HAS(import_error(file("pad.bin", bad)),
             "tensor wte: its padding rows (53 and up, past the vocabulary) should be zero, but "
             "[55, 3] is not");
}

}  // namespace
}  // namespace skein
