#include "data/prepare.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <set>

#include "base/rng.h"
#include "data/gpt2_pretokenize.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "tests/data/data_test_util.h"
#include "tests/data/gpt2_test_util.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::string some_text(size_t n, uint64_t seed) {
  static const char* kWords[] = {"alpha", "beta", "gamma", "delta", "\xce\xbb", "x", "42", "!"};
  Rng rng(seed);
  std::string s;
  while (s.size() < n) {
    s += kWords[rng.below(std::size(kWords))];
    s += rng.below(8) ? " " : "\n";
  }
  return s;
}

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  SKEIN_CHECK(f && gzwrite(f, text.data(), static_cast<unsigned>(text.size())) ==
                       static_cast<int>(text.size()));
  gzclose(f);
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::vector<uint16_t> shard_tokens(const std::string& path) {
  auto s = Shard::open(path, 65536);
  SKEIN_CHECK(s.ok(), "a shard written by prepare_corpus does not open");
  return {s->tokens(), s->tokens() + s->size()};
}

// With one validation stretch (V <= 65536), the corpus is train[0, g0) + val + train[g0, ...).
std::vector<uint16_t> reassemble(const std::string& dir, const PrepareStats& st) {
  std::vector<uint16_t> train, val;
  for (int i = 0; i < st.train_shards; ++i) {
    auto t = shard_tokens(dir + "/train_00000" + std::to_string(i) + ".bin");
    train.insert(train.end(), t.begin(), t.end());
  }
  for (int i = 0; i < st.val_shards; ++i) {
    auto t = shard_tokens(dir + "/val_00000" + std::to_string(i) + ".bin");
    val.insert(val.end(), t.begin(), t.end());
  }
  EXPECT_EQ(int64_t(train.size()), st.train_tokens);
  EXPECT_EQ(int64_t(val.size()), st.val_tokens);
  const size_t g0 = train.size() / 2;  // the first of two equal gaps (rounded down)
  std::vector<uint16_t> all(train.begin(), train.begin() + g0);
  all.insert(all.end(), val.begin(), val.end());
  all.insert(all.end(), train.begin() + g0, train.end());
  return all;
}

StatusOr<PrepareStats> run(const PrepareOptions& o) {
  return prepare_corpus(o, nullptr);
}

TEST(Prepare, ShardSizesCutAndMergeTheTail) {
  EXPECT_EQ(shard_sizes(0, 100, 10), std::vector<int64_t>{});
  EXPECT_EQ(shard_sizes(250, 100, 10), (std::vector<int64_t>{100, 100, 50}));
  EXPECT_EQ(shard_sizes(205, 100, 10), (std::vector<int64_t>{100, 105}));
  EXPECT_EQ(shard_sizes(5, 100, 10), (std::vector<int64_t>{5}));
  EXPECT_EQ(shard_sizes(200, 100, 10), (std::vector<int64_t>{100, 100}));
}

TEST(Prepare, ByteTokenizerKeepsEveryByteOfPlainAndGzipInputs) {
  TempDir dir;
  std::string a = some_text(300000, 1), b = some_text(200000, 2);
  a.resize(300000);
  b.resize(200000);
  write_bytes(dir.file("a.txt"), a);
  write_gz(dir.file("b.txt.gz"), b);
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("a.txt"), dir.file("b.txt.gz")};
  o.shard_tokens = 100000;
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->text_bytes, a.size() + b.size());
  EXPECT_EQ(st->tokens, int64_t(a.size() + b.size()));
  EXPECT_EQ(st->vocab_size, 256);
  EXPECT_EQ(st->val_tokens, int64_t(std::ceil(0.005 * st->tokens)));
  EXPECT_EQ(st->val_tokens, 2500);
  EXPECT_EQ(st->train_shards, 5);  // 497500 train tokens: 4 x 100000 + 97500
  EXPECT_EQ(st->val_shards, 1);
  const auto all = reassemble(o.out_dir, *st);
  EXPECT_EQ(std::string(all.begin(), all.end()), a + b);
  EXPECT_EQ(files_in(o.out_dir),
            (std::set<std::string>{"tokenizer.bin", "val_000000.bin", "train_000000.bin",
                                   "train_000001.bin", "train_000002.bin", "train_000003.bin",
                                   "train_000004.bin"}));
  auto tok = Tokenizer::load(o.out_dir + "/tokenizer.bin");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->kind(), Tokenizer::Kind::kByte);
}

TEST(Prepare, BpeShardsDecodeToTheCorpusAndLoad) {
  TempDir dir;
  const std::string text = some_text(400000, 3);
  write_bytes(dir.file("c.txt"), text);
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("c.txt")};
  o.tokenizer = "bpe";
  o.vocab_size = 270;  // this corpus supports about 280
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->vocab_size, 270);
  EXPECT_LT(st->tokens, int64_t(text.size()) * 2 / 3);
  auto tok = Tokenizer::load(o.out_dir + "/tokenizer.bin");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->vocab_size(), 270);
  EXPECT_EQ(tok->bpe_pieces(), BpePieces::kGpt2);  // the default
  const auto all = reassemble(o.out_dir, *st);
  EXPECT_EQ(*tok->decode(std::vector<int32_t>(all.begin(), all.end())), text);
  EXPECT_EQ(std::vector<int32_t>(all.begin(), all.end()), tok->encode(text));

  // skein's pieces, on request: another tokenizer, which also round-trips
  o.out_dir = dir.file("skein");
  o.bpe_pieces = "skein";
  st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  tok = Tokenizer::load(o.out_dir + "/tokenizer.bin");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->bpe_pieces(), BpePieces::kSkein);
  const auto skein_all = reassemble(o.out_dir, *st);
  EXPECT_EQ(*tok->decode(std::vector<int32_t>(skein_all.begin(), skein_all.end())), text);

  LoaderOptions lo;
  lo.shards = {o.out_dir + "/train_000000.bin"};
  lo.vocab_size = 270;
  auto loader = Loader::open(lo);
  EXPECT_TRUE(loader.ok()) << loader.status().message();
  lo.vocab_size = 269;
  EXPECT_FALSE(Loader::open(lo).ok()) << "a token 269 should be in the shard";
  EXPECT_TRUE(ValIterator::open({o.out_dir + "/val_000000.bin"}, 1, 1024, 270).ok());
}

TEST(Prepare, SameInputsGiveIdenticalFiles) {
  TempDir dir;
  write_bytes(dir.file("c.txt"), some_text(200000, 4));
  PrepareOptions o;
  o.inputs = {dir.file("c.txt")};
  o.tokenizer = "bpe";
  o.vocab_size = 400;
  o.out_dir = dir.file("one");
  ASSERT_TRUE(run(o).ok());
  o.out_dir = dir.file("two");
  ASSERT_TRUE(run(o).ok());
  for (const auto& name : files_in(dir.file("one"))) {
    EXPECT_EQ(read_bytes(dir.file("one/" + name)), read_bytes(dir.file("two/" + name))) << name;
  }
}

TEST(Prepare, LargeValidationSplitIsSpreadOverTheCorpus) {
  TempDir dir;
  std::string text = some_text(1'000'000, 5);
  text.resize(1'000'000);
  write_bytes(dir.file("c.txt"), text);
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("c.txt")};
  o.val_fraction = 0.2;  // 200000 tokens: four stretches of 50000
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  ASSERT_EQ(st->val_tokens, 200000);
  const auto val = shard_tokens(o.out_dir + "/val_000000.bin");
  // Gaps of 160000 train tokens between stretches: stretch j starts at 160000 (j+1) + 50000 j.
  for (int j = 0; j < 4; ++j) {
    const size_t at = 160000 * (j + 1) + 50000 * j;
    EXPECT_EQ(std::string(val.begin() + 50000 * j, val.begin() + 50000 * (j + 1)),
              text.substr(at, 50000))
        << "stretch " << j;
  }
}

TEST(Prepare, ZeroValFractionWritesNoValidationShards) {
  TempDir dir;
  write_bytes(dir.file("c.txt"), some_text(5000, 6));
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("c.txt")};
  o.val_fraction = 0;
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->val_shards, 0);
  EXPECT_EQ(files_in(o.out_dir), (std::set<std::string>{"tokenizer.bin", "train_000000.bin"}));
}

TEST(Prepare, TooSmallCorpusIsRefusedAndWritesNothing) {
  TempDir dir;
  write_bytes(dir.file("c.txt"), some_text(2000, 7));  // needs 1025 val + 1025 train
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("c.txt")};
  auto st = run(o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("too small"), std::string::npos) << st.status().message();
  EXPECT_NE(st.status().message().find("HINT"), std::string::npos);
  EXPECT_TRUE(files_in(o.out_dir).empty()) << "no shard, tokenizer or temporary file left";
}

TEST(Prepare, ExistingShardsNeedOverwriteAndStaleOnesGo) {
  TempDir dir;
  std::string text = some_text(60000, 8);
  text.resize(60000);  // 1025 val tokens (the minimum), 58975 train
  write_bytes(dir.file("c.txt"), text);
  PrepareOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("c.txt")};
  o.shard_tokens = 10000;
  auto st = run(o);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->train_shards, 6);  // 5 x 10000 + 8975
  write_bytes(dir.file("out/notes.txt"), "keep me");

  auto again = run(o);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("--overwrite"), std::string::npos);

  o.overwrite = true;
  o.shard_tokens = 30000;
  st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->train_shards, 2);  // 30000 + 28975
  EXPECT_EQ(files_in(o.out_dir),
            (std::set<std::string>{"notes.txt", "tokenizer.bin", "val_000000.bin",
                                   "train_000000.bin", "train_000001.bin"}));
}

TEST(Prepare, BadInputsAndOptionsAreNamed) {
  TempDir dir;
  write_bytes(dir.file("c.txt"), some_text(10000, 9));
  PrepareOptions good;
  good.out_dir = dir.file("out");
  good.inputs = {dir.file("c.txt")};
  auto expect_error = [&](PrepareOptions o, const std::string& want) {
    auto st = run(o);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.status().message().find(want), std::string::npos) << st.status().message();
  };
  PrepareOptions o = good;
  o.inputs.push_back(dir.file("absent.txt"));
  expect_error(o, "absent.txt");
  o = good;
  o.inputs.clear();
  expect_error(o, "no input files");
  o = good;
  o.tokenizer = "wordpiece";
  expect_error(o, "'wordpiece' is unknown");
  o = good;
  o.tokenizer = "bpe";
  o.vocab_size = 70000;
  expect_error(o, "vocabulary size 70000 is out of range");
  o = good;
  o.vocab_size = 512;
  expect_error(o, "does not fit the byte tokenizer");
  o = good;
  o.val_fraction = 1.0;
  expect_error(o, "--val_fraction");
  o = good;
  o.shard_tokens = 10;
  expect_error(o, "--shard_tokens 10");
  o = good;
  write_bytes(dir.file("file"), "x");
  o.out_dir = dir.file("file/out");  // a path below a regular file
  expect_error(o, "file/out");
  o = good;
  write_gz(dir.file("cut.gz"), some_text(100000, 10));
  const std::string gz = read_bytes(dir.file("cut.gz"));
  write_bytes(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  o.inputs = {dir.file("cut.gz")};
  expect_error(o, "cut.gz");
  EXPECT_FALSE(fs::exists(good.out_dir) && !files_in(good.out_dir).empty());
}

// GPT-2: a folder with the vocabulary files, the tokenizer they make, and text with blank lines.
struct Gpt2Setup {
  TempDir dir;
  Tokenizer tok;
  Gpt2Setup() {
    const auto mini = testing::trained_mini_gpt2(400);
    std::filesystem::create_directories(dir.file("gpt2"));
    mini.write_openai(dir.file("gpt2"));
    auto v = mini.parse();
    SKEIN_CHECK(v.ok());
    auto t = Tokenizer::from_gpt2(std::move(*v));
    SKEIN_CHECK(t.ok());
    tok = std::move(*t);
  }
  PrepareOptions options(const std::vector<std::string>& inputs) const {
    PrepareOptions o;
    o.out_dir = dir.file("out");
    o.inputs = inputs;
    o.tokenizer = "gpt2";
    o.tokenizer_files = dir.file("gpt2");
    o.val_fraction = 0;
    return o;
  }
};

TEST(Prepare, Gpt2PutsEndOfTextBeforeEachFile) {
  Gpt2Setup g;
  const std::string a = testing::gpt2_texty(300000, 1), b = testing::gpt2_texty(100000, 2);
  write_bytes(g.dir.file("a.txt"), a);
  write_gz(g.dir.file("b.txt.gz"), b);
  const auto o = g.options({g.dir.file("a.txt"), g.dir.file("b.txt.gz")});
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->documents, 2);
  EXPECT_EQ(st->invalid_utf8, 0u);
  EXPECT_EQ(st->vocab_checksum, g.tok.vocab_checksum());
  EXPECT_NE(st->tokenizer_source.find("encoder.json"), std::string::npos);
  std::vector<uint16_t> want = {uint16_t(g.tok.eot_id())};
  for (int32_t id : g.tok.encode(a)) want.push_back(uint16_t(id));
  want.push_back(uint16_t(g.tok.eot_id()));
  for (int32_t id : g.tok.encode(b)) want.push_back(uint16_t(id));
  EXPECT_EQ(shard_tokens(o.out_dir + "/train_000000.bin"), want);
  auto tok = Tokenizer::load(o.out_dir + "/tokenizer.bin");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->kind(), Tokenizer::Kind::kGpt2);
  EXPECT_EQ(tok->serialize(), g.tok.serialize());
}

// llm.c's tinyshakespeare.py: "<|endoftext|>" + text.replace("\n\n", "\n\n<|endoftext|>"), each
// document encoded alone; over more than one 4 MB block, with invalid UTF-8 in it.
TEST(Prepare, Gpt2BlankLineDocumentsAcrossBlocks) {
  Gpt2Setup g;
  std::string text = testing::gpt2_texty(6'000'000, 3) + "\n\n\n\n\n";
  text.insert(4'500'000, "\xC3(\xFF");
  write_bytes(g.dir.file("c.txt"), text);
  auto o = g.options({g.dir.file("c.txt")});
  o.doc_separator = "blank_line";
  auto st = run(o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  std::vector<uint16_t> want;
  int64_t docs = 0;
  for (size_t at = 0;;) {
    size_t cut = text.find("\n\n", at);
    const size_t end = cut == std::string::npos ? text.size() : cut + 2;
    want.push_back(uint16_t(g.tok.eot_id()));
    ++docs;
    for (int32_t id : g.tok.encode(text.substr(at, end - at))) want.push_back(uint16_t(id));
    if (cut == std::string::npos) break;
    at = end;
  }
  EXPECT_EQ(st->documents, docs);
  EXPECT_GT(docs, 10000);
  std::string clean;
  EXPECT_EQ(st->invalid_utf8,
            sanitize_utf8(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &clean));
  EXPECT_GE(st->invalid_utf8, 2u);
  EXPECT_EQ(st->invalid_utf8_files, 1);
  EXPECT_EQ(shard_tokens(o.out_dir + "/train_000000.bin"), want);
}

TEST(Prepare, Gpt2OptionsAndFilesAreChecked) {
  Gpt2Setup g;
  write_bytes(g.dir.file("c.txt"), some_text(10000, 9));
  auto expect_error = [&](PrepareOptions o, const std::string& want) {
    auto st = run(o);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.status().message().find(want), std::string::npos) << st.status().message();
  };
  const PrepareOptions good = g.options({g.dir.file("c.txt")});
  PrepareOptions o = good;
  o.tokenizer_files.clear();
  expect_error(o, "--tokenizer gpt2 needs --tokenizer_files DIR");
  o = good;
  o.vocab_size = 50257;
  expect_error(o, "does not apply to --tokenizer gpt2");
  o = good;
  o.doc_separator = "paragraph";
  expect_error(o, "--doc_separator 'paragraph' is unknown");
  o = good;
  o.tokenizer = "bpe";
  expect_error(o, "--tokenizer_files is for --tokenizer gpt2");
  o = good;
  o.tokenizer = "byte";
  o.tokenizer_files.clear();
  o.doc_separator = "file";
  expect_error(o, "needs a tokenizer with an end-of-text token");
  o = good;
  o.tokenizer_files = g.dir.file("out");
  std::filesystem::create_directories(o.tokenizer_files);
  expect_error(o, "missing vocab.json and merges.txt");
  write_bytes(g.dir.file("gpt2/vocab.bpe"), "#version: 0.2\nq q q\n");
  o = good;
  expect_error(o, "vocab.bpe line 2: expected two tokens");
  EXPECT_FALSE(std::filesystem::exists(good.out_dir + "/tokenizer.bin"));
}

}  // namespace
}  // namespace skein
