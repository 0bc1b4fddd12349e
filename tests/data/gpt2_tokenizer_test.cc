// GPT-2's tokenizer: the vocabulary readers (both pairs of files, and their errors), the
// pre-tokenizer on tricky text, the BPE rules against a naive twin of tiktoken's loop, round
// trips, U+FFFD for invalid UTF-8, document starts, tokenizer.bin, and determinism under threads
// and streaming. The real vocabulary against the JavaScript encoders: gpt2_js_test.sh.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "base/rng.h"
#include "data/bpe_trainer.h"
#include "data/gpt2_encoder.h"
#include "data/gpt2_pretokenize.h"
#include "data/gpt2_vocab.h"
#include "data/tokenizer.h"
#include "tests/data/data_test_util.h"
#include "tests/data/gpt2_test_util.h"

namespace skein {
namespace {

using testing::gpt2_chars;
using testing::gpt2_texty;
using testing::MiniGpt2;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

const MiniGpt2& trained() {
  static const MiniGpt2 v = testing::trained_mini_gpt2(600);
  return v;
}

Tokenizer make(const MiniGpt2& m) {
  auto v = m.parse();
  SKEIN_CHECK(v.ok(), "the test vocabulary does not parse");
  auto t = Tokenizer::from_gpt2(std::move(*v));
  SKEIN_CHECK(t.ok(), "the test vocabulary makes no tokenizer");
  return std::move(*t);
}

const Tokenizer& trained_tokenizer() {
  static const Tokenizer t = make(trained());
  return t;
}

// tiktoken's _byte_pair_merge, literally: parts are byte ranges; join the adjacent pair whose
// bytes have the lowest rank (the leftmost of equal ones) until none has one. The naive twin.
std::vector<int32_t> reference_encode(const Tokenizer& t, const std::string& text) {
  std::map<std::string, int32_t> ranks;  // id = rank in GPT-2's files and in MiniGpt2
  for (int id = 0; id < t.vocab_size(); ++id) {
    if (id != t.eot_id()) ranks[t.token_bytes(id)] = id;
  }
  std::vector<int32_t> out;
  for (const std::string& piece : gpt2_pieces(text)) {
    if (auto it = ranks.find(piece); it != ranks.end()) {
      out.push_back(it->second);
      continue;
    }
    std::vector<std::pair<size_t, size_t>> parts;
    for (size_t i = 0; i < piece.size(); ++i) parts.push_back({i, i + 1});
    while (parts.size() > 1) {
      int32_t best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = ranks.find(piece.substr(parts[i].first, parts[i + 1].second - parts[i].first));
        if (it != ranks.end() && (best < 0 || it->second < best)) best = it->second, at = i;
      }
      if (best < 0) break;
      parts[at].second = parts[at + 1].second;
      parts.erase(parts.begin() + at + 1);
    }
    for (auto [b, e] : parts) out.push_back(ranks.at(piece.substr(b, e - b)));
  }
  return out;
}

std::string sanitized(const std::string& s) {
  std::string out;
  sanitize_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
  return out;
}

std::string random_unicode(size_t n, uint64_t seed) {
  static const uint32_t kRanges[][2] = {{0x20, 0x7E},     {0x09, 0x0D},     {0xA0, 0x24F},
                                        {0x300, 0x36F},   {0x400, 0x4FF},   {0x2000, 0x206F},
                                        {0x3000, 0x30FF}, {0x4E00, 0x4FFF}, {0x1F300, 0x1F64F},
                                        {0x85, 0x85},     {0xFEFF, 0xFEFF}};
  Rng rng(seed);
  std::string s;
  while (s.size() < n) {
    const auto& r = kRanges[rng.below(std::size(kRanges))];
    const uint32_t cp = r[0] + static_cast<uint32_t>(rng.below(r[1] - r[0] + 1));
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s += {char(0xC0 | cp >> 6), char(0x80 | (cp & 0x3F))};
    } else if (cp < 0x10000) {
      s += {char(0xE0 | cp >> 12), char(0x80 | (cp >> 6 & 0x3F)), char(0x80 | (cp & 0x3F))};
    } else {
      s += {char(0xF0 | cp >> 18), char(0x80 | (cp >> 12 & 0x3F)), char(0x80 | (cp >> 6 & 0x3F)),
            char(0x80 | (cp & 0x3F))};
    }
  }
  return s;
}

std::string random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// Text for the naive twins: GPT-2-like text or random Unicode, then long pieces for the heap
// path (more than kSmallPiece bytes).
std::string twin_text(uint64_t seed) {
  std::string s = seed % 3 ? gpt2_texty(20000, seed) : random_unicode(15000, seed);
  s += " " + std::string(500, 'a') + "tthe" + std::string(300, 'e') + " " + std::string(2000, ' ') +
       "x";
  return s;
}

// The tokens of s fed in blocks of `block` bytes, each buffer encoded up to its stable prefix.
std::vector<uint16_t> streamed_encode(const Tokenizer& t, const std::string& s, size_t block) {
  std::vector<uint16_t> streamed;
  std::string buf;
  for (size_t at = 0; at < s.size(); at += block) {
    buf += s.substr(at, block);
    const bool last = at + block >= s.size();
    const size_t end = last ? buf.size() : t.stable_prefix(buf);
    t.encode_prefix(buf, end, &streamed);
    buf.erase(0, end);
  }
  return streamed;
}

// A tokenizer file with its trailing FNV-1a hash made to match again.
std::string fix_hash(std::string s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i + 8 < s.size(); ++i) h = (h ^ uint8_t(s[i])) * 0x100000001B3ull;
  for (int i = 0; i < 8; ++i) s[s.size() - 8 + i] = static_cast<char>(h >> (8 * i));
  return s;
}

// Writes bytes to DIR/bad.bin; loading it must fail with a message holding `want` and the name.
void expect_load_error(const TempDir& dir, const std::string& bytes, const std::string& want) {
  write_bytes(dir.file("bad.bin"), bytes);
  auto t = Tokenizer::load(dir.file("bad.bin"));
  ASSERT_FALSE(t.ok()) << want;
  EXPECT_NE(t.status().message().find(want), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("bad.bin"), std::string::npos);
}

// ---- the pre-tokenizer ----

// Expected pieces from Python's `regex` module with OpenAI's pattern (encoder.py).
TEST(Gpt2Pretokenize, MatchesOpenAIsPatternOnTrickyText) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"Hello, world! It's 2024.", {"Hello", ",", " world", "!", " It", "'s", " 2024", "."}},
      {"don't DON'T I'll we'd you're they've I'm 'S 'T",
       {"don", "'t", " DON", "'", "T", " I", "'ll", " we", "'d", " you", "'re", " they", "'ve",
        " I", "'m", " '", "S", " '", "T"}},
      {"a  b   c", {"a", " ", " b", "  ", " c"}},
      {"trailing spaces   ", {"trailing", " spaces", "   "}},
      {"x \n\n  y\t\tz\r\n", {"x", " \n\n ", " y", "\t", "\t", "z", "\r\n"}},
      {"  \n", {"  \n"}},
      {"abc123def 42 3.14 -7", {"abc", "123", "def", " 42", " 3", ".", "14", " -", "7"}},
      {"caf\u00E9 na\u00EFve \u00FCber", {"caf\u00E9", " na\u00EFve", " \u00FCber"}},
      {"e\u0301 cafe\u0301", {"e", "\u0301", " cafe", "\u0301"}},  // marks are not letters
      {"\u4F60\u597D\u4E16\u754C\uFF0C\u6211\u662F\u3002",
       {"\u4F60\u597D\u4E16\u754C", "\uFF0C", "\u6211\u662F", "\u3002"}},
      {"\U0001F44D\U0001F3FD ok \U0001F600\U0001F600!",
       {"\U0001F44D\U0001F3FD", " ok", " \U0001F600\U0001F600!"}},
      {"\u0663\u0664 \u216B \u00B2 \u2460", {"\u0663\u0664", " \u216B", " \u00B2", " \u2460"}},
      // U+0085 and U+00A0 and U+3000 are \s; U+FEFF and U+180E are not (JavaScript differs)
      {"a\u0085b \u00A0x \u3000y \uFEFFz \u180Ew",
       {"a", "\u0085", "b", " ", "\u00A0", "x", " ", "\u3000", "y", " \uFEFF", "z", " \u180E",
        "w"}},
      {"''s ''ll x'll", {"''", "s", " ''", "ll", " x", "'ll"}},
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(gpt2_pieces(text), want) << text;
}

TEST(Gpt2Pretokenize, InvalidUtf8BecomesReplacementCharacters) {
  // One U+FFFD per maximal ill-formed subpart, as Python's errors="replace" and WHATWG's decoder.
  const std::string r = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\x80"
       "b",
       "a" + r + "b"},
      {"\xC3(", r + "("},
      {"\xE2\x82(", r + "("},
      {"\xE2\x82", r},
      {"\xF0\x9F\x98", r},
      {"\xF0\x9F\x98"
       "A",
       r + "A"},
      {"\xED\xA0\x80", r + r + r},  // a surrogate
      {"\xC0\x80", r + r},          // overlong
      {"\xF4\x90\x80\x80", r + r + r + r},
      {"\xFF\xFE", r + r},
      {"\xE0\x80\x80", r + r + r},
      {"ok \xC3\xA9 \xF0\x9F\x98\x80", "ok \xC3\xA9 \xF0\x9F\x98\x80"},
  };
  for (const auto& [in, want] : cases) {
    std::string out;
    const size_t n = sanitize_utf8(reinterpret_cast<const uint8_t*>(in.data()), in.size(), &out);
    EXPECT_EQ(out, want);
    size_t marks = 0;
    for (size_t i = want.find(r); i != std::string::npos; i = want.find(r, i + 3)) ++marks;
    EXPECT_EQ(n, marks) << in;
  }
}

// A safe cut is a piece boundary of the whole text, so pieces never depend on the chunking.
TEST(Gpt2Pretokenize, SafeCutsArePieceBoundaries) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const std::string s = seed % 2 ? gpt2_texty(20000, seed) : random_unicode(20000, seed);
    std::vector<bool> boundary(s.size() + 1, false);
    size_t at = 0;
    for (const auto& p : gpt2_pieces(s)) boundary[at += p.size()] = true;
    ASSERT_EQ(at, s.size());
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    size_t cuts = 0;
    for (size_t i = 1; i < s.size(); ++i) {
      if (!gpt2_safe_cut(p, i)) continue;
      ++cuts;
      ASSERT_TRUE(boundary[i]) << "seed " << seed << " at " << i;
    }
    EXPECT_GT(cuts, s.size() / 50) << "seed " << seed;
  }
}

// ---- the vocabulary files ----

TEST(Gpt2Vocab, BothPairsOfFilesGiveTheSameTokenizer) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("hf"));
  std::filesystem::create_directories(dir.file("openai"));
  trained().write_hf(dir.file("hf"));
  trained().write_openai(dir.file("openai"));
  EXPECT_NE(read_bytes(dir.file("hf/vocab.json")), read_bytes(dir.file("openai/encoder.json")));
  auto a = read_gpt2_vocab_dir(dir.file("hf"));
  auto b = read_gpt2_vocab_dir(dir.file("openai"));
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_NE(a->source.find("vocab.json"), std::string::npos);
  EXPECT_NE(b->source.find("encoder.json"), std::string::npos);
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->merges, b->merges);
  EXPECT_EQ(a->eot, int32_t(a->tokens.size()) - 1);
  EXPECT_EQ(a->tokens[a->byte_ids[' ']], " ");
  EXPECT_EQ(a->byte_ids['!'], 0);  // GPT-2's order: printable bytes first
  EXPECT_EQ(gpt2_vocab_checksum(*a), gpt2_vocab_checksum(*b));
  auto ta = Tokenizer::from_gpt2(std::move(*a)), tb = Tokenizer::from_gpt2(std::move(*b));
  ASSERT_TRUE(ta.ok() && tb.ok());
  EXPECT_EQ(ta->kind(), Tokenizer::Kind::kGpt2);
  EXPECT_STREQ(ta->kind_name(), "gpt2");
  // The same tokenizer.bin, byte for byte: a run prepared from either pair resumes on the other.
  EXPECT_EQ(ta->serialize(), tb->serialize());
  const std::string text = gpt2_texty(5000, 3);
  EXPECT_EQ(ta->encode(text), tb->encode(text));
}

TEST(Gpt2Vocab, MissingFilesAreListed) {
  TempDir dir;
  auto r = read_gpt2_vocab_dir(dir.file("absent"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("absent does not exist"), std::string::npos);
  write_bytes(dir.file("vocab.json"), trained().json(false));
  write_bytes(dir.file("vocab.bpe"), trained().merges_text(true));
  r = read_gpt2_vocab_dir(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("(missing merges.txt)"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("(missing encoder.json)"), std::string::npos);
  std::filesystem::remove(dir.file("vocab.bpe"));
  r = read_gpt2_vocab_dir(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing encoder.json and vocab.bpe"), std::string::npos)
      << r.status().message();
  write_bytes(dir.file("merges.txt"), trained().merges_text(false));
  EXPECT_TRUE(read_gpt2_vocab_dir(dir.path()).ok());
}

TEST(Gpt2Vocab, BadFilesGetAnErrorNamingTheFileAndTheProblem) {
  MiniGpt2 m;
  m.merges = {{"t", "h"}, {"th", "e"}, {" ", "t"}, {" ", "the"}};
  const std::string json = m.json(false), merges = m.merges_text(true);
  auto expect = [](const std::string& j, const std::string& mg, const std::string& file,
                   const std::string& want) {
    auto v = parse_gpt2_vocab(j, "dir/vocab.json", mg, "dir/merges.txt");
    ASSERT_FALSE(v.ok()) << want;
    EXPECT_NE(v.status().message().find(file), std::string::npos) << v.status().message();
    EXPECT_NE(v.status().message().find(want), std::string::npos) << v.status().message();
  };
  ASSERT_TRUE(parse_gpt2_vocab(json, "v", merges, "m").ok());
  const std::string eot = "\"<|endoftext|>\":260";
  const size_t at_eot = json.find(eot);
  // vocab.json
  expect(json.substr(0, json.size() / 2), merges, "dir/vocab.json", "parse error");
  expect("", merges, "dir/vocab.json", "parse error");
  expect("[1, 2]", merges, "dir/vocab.json", "expected one JSON object");
  expect(json + "{}", merges, "dir/vocab.json", "parse error");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":2.5}", merges, "dir/vocab.json",
         "is 2.5, expected an integer");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":\"x\"}", merges, "dir/vocab.json",
         "expected an integer");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":{}}", merges, "dir/vocab.json",
         "is an object");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":-1}", merges, "dir/vocab.json", "has id -1");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":900}", merges, "dir/vocab.json",
         "need the ids 0..260");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":259}", merges, "dir/vocab.json",
         "id 259 is given to both");
  expect(json.substr(0, at_eot) + "\"<|endoftext|>\":260,\"<|endoftext|>\":261}", merges,
         "dir/vocab.json", "appears twice");
  expect(json.substr(0, at_eot) + "\"\u2603\":260}", merges, "dir/vocab.json",
         "U+2603, which is not one of GPT-2's 256 byte characters");
  expect(json.substr(0, at_eot) + "\"a\xff\":260}", merges, "dir/vocab.json", "UTF-8");
  expect(json.substr(0, at_eot) + "\"<pad>\":260}", merges, "dir/vocab.json",
         "no token <|endoftext|>");
  // merges.txt
  const std::string head = "#version: 0.2\n";
  expect(json, head + "t h\nth e x\n", "dir/merges.txt", "line 3: expected two tokens");
  expect(json, head + "t h\nthe\n", "dir/merges.txt", "line 3: expected two tokens");
  expect(json, head + "t  h\n", "dir/merges.txt", "line 2: expected two tokens");
  expect(json, head + "t h\n\nth e\n", "dir/merges.txt", "line 3: the line is empty");
  expect(json, head + "t h\nth \u2603\n", "dir/merges.txt", "U+2603");
  expect(json, head + "t h\nth q\n", "dir/merges.txt", "makes \"thq\", which dir/vocab.json lacks");
  expect(json, head + "t h\nth ĠthX\n", "dir/merges.txt", "ĠthX\" is not in dir/vocab.json");
  expect(json, head + "th e\nt h\n", "dir/merges.txt",
         "line 2: token \"th\" is neither a single byte nor made by an earlier merge");
  expect(json, head + "t h\nt h\n", "dir/merges.txt",
         "line 3: the merge makes \"th\", which line 2");
  expect(json, head + "t h\nth e\nĠ t\n", "dir/vocab.json",
         "1 token(s) that no merge of dir/merges.txt makes");
  expect(json, head + "t h\nth e\nĠ t\n", "dir/vocab.json", "may be truncated");
  expect(json,
         head +
             "t h\nth \xff"
             "e\n",
         "dir/merges.txt", "UTF-8");
  // a vocabulary without a single-byte token
  std::string no_byte = json;
  no_byte.erase(no_byte.find("\"!\":0,"), 6);
  expect(no_byte, merges, "dir/vocab.json", "");
}

// ---- encoding ----

TEST(Gpt2Encoder, FollowsTiktokensRulesNotOnlyTheMergeList) {
  MiniGpt2 m;
  // 256 = "bc", 257 = "ab", 258 = "abc" (made as "ab" + "c"), 259 = "cd"
  m.merges = {{"b", "c"}, {"a", "b"}, {"ab", "c"}, {"c", "d"}};
  const Tokenizer t = make(m);
  // "abc" is a token: rule 2. encoder.py would give "a" "bc".
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{258}));
  // "abcx": b+c first (rank 0), then "a" + "bc" join into "abc" (rank 2) by their bytes.
  EXPECT_EQ(t.encode("abcx"), (std::vector<int32_t>{258, 'x' - '!'}));
  // "abcd": "bc" (0) beats "cd" (3); then "a"+"bc" -> "abc" (2); "abc" + "d" is nothing.
  EXPECT_EQ(t.encode("abcd"), (std::vector<int32_t>{258, 'd' - '!'}));
  EXPECT_EQ(reference_encode(t, "abcd"), t.encode("abcd"));
  EXPECT_EQ(t.eot_id(), 260);
  EXPECT_EQ(*t.decode(std::vector<int32_t>{260}), "<|endoftext|>");
  EXPECT_TRUE(t.encode("").empty());
  // the text "<|endoftext|>" is ordinary text (tiktoken's encode_ordinary)
  for (int32_t id : t.encode("<|endoftext|>")) EXPECT_NE(id, t.eot_id());
}

TEST(Gpt2Encoder, MatchesTheNaiveTwinOnTextAndLongPieces) {
  const Tokenizer& t = trained_tokenizer();
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const std::string s = twin_text(seed);
    const auto ids = t.encode(s);
    EXPECT_EQ(ids, reference_encode(t, s)) << "seed " << seed;
    if (seed % 3) {
      EXPECT_LT(ids.size(), s.size() * 2 / 3);
    }
  }
}

TEST(Gpt2Encoder, DecodeOfEncodeIsTheTextOrItsReplacement) {
  const Tokenizer& t = trained_tokenizer();
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    const std::string s = seed % 3 == 0   ? gpt2_texty(50000, seed)
                          : seed % 3 == 1 ? random_unicode(50000, seed)
                                          : random_bytes(20000, seed);
    const auto ids = t.encode(s);
    auto back = t.decode(ids);
    ASSERT_TRUE(back.ok());
    if (seed % 3 == 2) {
      EXPECT_EQ(*back, sanitized(s)) << "seed " << seed;
      EXPECT_NE(*back, s);
    } else {
      EXPECT_EQ(*back, s) << "seed " << seed;
    }
  }
}

TEST(Gpt2Encoder, DocumentStartsEndTheTextBeforeThem) {
  const Tokenizer& t = trained_tokenizer();
  const std::string a = "one  \n", b = "Two   ", c = "\n\nthree";
  const std::string all = a + b + c;
  std::vector<uint16_t> out;
  const std::vector<size_t> starts = {0, a.size(), a.size() + b.size(), all.size()};
  EXPECT_EQ(t.encode_prefix(all, all.size(), &out, starts), 0u);
  std::vector<int32_t> want = {t.eot_id()};
  for (const auto* part : {&a, &b, &c}) {
    for (int32_t id : t.encode(*part)) want.push_back(id);
    want.push_back(t.eot_id());
  }
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.end()), want);
  // "one  \n" alone ends in one whitespace piece; followed by "T" it would be two
  EXPECT_EQ(gpt2_pieces(a), (std::vector<std::string>{"one", "  \n"}));
  EXPECT_EQ(gpt2_pieces(a + "T"), (std::vector<std::string>{"one", "  ", "\n", "T"}));
}

// Chunks for threads, blocks for streaming and document starts on a large text: the same tokens
// for any thread count and block size.
TEST(Gpt2Encoder, EncodeDoesNotDependOnThreadsOrBlocks) {
  const Tokenizer& t = trained_tokenizer();
  std::string s = gpt2_texty(700000, 9) + random_unicode(100000, 9);
  s.insert(300000, "\xC3(\xF0\x9F\x98 \xFF");  // invalid UTF-8 inside a chunk
  omp_set_num_threads(1);
  const auto one = t.encode(s);
  omp_set_num_threads(3);
  const auto three = t.encode(s);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(one, three);
  EXPECT_EQ(*t.decode(one), sanitized(s));

  for (size_t block : {4099, 65536 + 7}) {
    std::vector<uint16_t> streamed;
    std::string buf;
    size_t replaced = 0;
    for (size_t at = 0; at < s.size(); at += block) {
      buf += s.substr(at, block);
      const bool last = at + block >= s.size();
      const size_t end = last ? buf.size() : t.stable_prefix(buf);
      replaced += t.encode_prefix(buf, end, &streamed);
      buf.erase(0, end);
    }
    EXPECT_TRUE(std::equal(one.begin(), one.end(), streamed.begin(), streamed.end()))
        << "block " << block;
    std::string clean;
    EXPECT_EQ(replaced,
              sanitize_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &clean));
    EXPECT_GE(replaced, 3u);  // C3, F0 9F 98, FF
  }
}

// ---- tokenizer.bin ----

TEST(Gpt2TokenizerFile, SaveLoadRoundTripAndOldFilesStillLoad) {
  TempDir dir;
  const Tokenizer& t = trained_tokenizer();
  ASSERT_TRUE(t.save(dir.file("tokenizer.bin")).ok());
  auto u = Tokenizer::load(dir.file("tokenizer.bin"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->kind(), Tokenizer::Kind::kGpt2);
  EXPECT_EQ(u->vocab_size(), t.vocab_size());
  EXPECT_EQ(u->eot_id(), t.eot_id());
  EXPECT_EQ(u->vocab_checksum(), t.vocab_checksum());
  EXPECT_EQ(u->serialize(), t.serialize());
  const std::string text = gpt2_texty(20000, 5);
  EXPECT_EQ(u->encode(text), t.encode(text));
  // a version 1 file (BPE) still loads next to it
  ASSERT_TRUE(Tokenizer::from_merges({{'a', 'b'}})->save(dir.file("v1.bin")).ok());
  EXPECT_EQ(read_bytes(dir.file("v1.bin"))[4], 1);
  EXPECT_TRUE(Tokenizer::load(dir.file("v1.bin")).ok());
}

TEST(Gpt2TokenizerFile, AnotherVocabularyGivesAnotherFile) {
  MiniGpt2 m = trained();
  m.merges.pop_back();
  const Tokenizer other = make(m);
  EXPECT_NE(other.vocab_checksum(), trained_tokenizer().vocab_checksum());
  EXPECT_NE(other.serialize(), trained_tokenizer().serialize());  // so its CRC-32C differs
}

TEST(Gpt2TokenizerFile, BadFilesAreRefused) {
  TempDir dir;
  const std::string good = trained_tokenizer().serialize();
  expect_load_error(dir, good.substr(0, good.size() - 1), "hash does not match");
  expect_load_error(dir, fix_hash(good.substr(0, good.size() - 100)), "truncated");
  std::string bad = good;
  bad[8] = 1;  // kind
  expect_load_error(dir, fix_hash(bad), "kind 1 in a version 2 file");
  bad = good;
  bad[24] ^= 1;  // the vocabulary checksum
  expect_load_error(dir, fix_hash(bad), "checksum");
  bad = good;
  bad[32 + 4 * 256] ^= 1;  // the first merge's left id
  expect_load_error(dir, fix_hash(bad), "");
  expect_load_error(
      dir, fix_hash(good.substr(0, good.size() - 8) + "xxxx" + good.substr(good.size() - 8)),
      "trailing bytes");
}

// ---- skein's BPE with GPT-2's pieces (tokenizer.bin version 3) ----

// Hugging Face's BPE (and llama.cpp's llm_tokenizer_bpe) on pieces, naively: from the bytes'
// tokens, join the leftmost adjacent pair that is a listed merge of the lowest rank, until none
// is.
std::vector<int32_t> hf_twin_encode(const Tokenizer& t, const std::vector<std::string>& pieces) {
  std::map<std::pair<int32_t, int32_t>, int32_t> rank;
  for (size_t i = 0; i < t.merges().size(); ++i) {
    rank[{t.merges()[i].left, t.merges()[i].right}] = static_cast<int32_t>(i);
  }
  std::map<std::string, int32_t> id_of;
  for (int id = 0; id < t.vocab_size(); ++id) id_of[t.token_bytes(id)] = id;
  std::vector<int32_t> out;
  for (const std::string& piece : pieces) {
    std::vector<int32_t> ids;
    for (char c : piece) ids.push_back(id_of.at(std::string(1, c)));
    for (;;) {
      int32_t best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        auto it = rank.find({ids[i], ids[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best)) best = it->second, at = i;
      }
      if (best < 0) break;
      ids[at] = id_of.at(t.token_bytes(ids[at]) + t.token_bytes(ids[at + 1]));
      ids.erase(ids.begin() + at + 1);
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

// llama.cpp's BPE on GPT-2's pieces: skein's BPE with GPT-2's pieces must give its ids.
std::vector<int32_t> merge_list_encode(const Tokenizer& t, const std::string& text) {
  return hf_twin_encode(t, gpt2_pieces(text));
}

const Tokenizer& gpt2_pieces_bpe() {
  static const Tokenizer t = [] {
    BpeTrainer trainer(BpePieces::kGpt2);
    trainer.add_text(gpt2_texty(200000, 78) + random_unicode(20000, 78) + " " +
                     std::string(700, 'a') + " " + std::string(600, ' ') + "z");
    auto trained = trainer.train(256 + 700);
    SKEIN_CHECK(trained.ok(), "training the test BPE failed");
    return std::move(*trained);
  }();
  return t;
}

TEST(BpeGpt2Pieces, MatchesLlamaCppsMergeLoopOnTextAndLongPieces) {
  const Tokenizer& t = gpt2_pieces_bpe();
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kBpe);
  EXPECT_EQ(t.bpe_pieces(), BpePieces::kGpt2);
  EXPECT_TRUE(t.replaces_invalid_utf8());
  EXPECT_EQ(t.vocab_size(), 956);
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const std::string s = twin_text(seed);
    const auto ids = t.encode(s);
    EXPECT_EQ(ids, merge_list_encode(t, s)) << "seed " << seed;
    EXPECT_EQ(*t.decode(ids), s);
    if (seed % 3) {
      EXPECT_LT(ids.size(), s.size() / 2);
    }
  }
  // merges never cross GPT-2's pieces: "'t" is a piece of "'tis", " don" one of " don't"
  for (const std::string& text : {std::string("'tis"), std::string(" don't"), std::string("a1")}) {
    std::vector<std::string> from_tokens;
    size_t joined = 0;
    const auto pieces = gpt2_pieces(text);
    for (int32_t id : t.encode(text)) {
      const std::string& b = t.token_bytes(id);
      // each token lies inside one piece
      size_t start = 0;
      bool inside = false;
      for (const std::string& p : pieces) {
        inside |= joined >= start && joined + b.size() <= start + p.size();
        start += p.size();
      }
      EXPECT_TRUE(inside) << "token '" << b << "' of '" << text << "' crosses a piece";
      joined += b.size();
    }
  }
}

TEST(BpeGpt2Pieces, AppliesOnlyTheListedMerges) {
  // 256 = "bc", 257 = "ab", 258 = "abc" (made as "ab" + "c")
  auto t = Tokenizer::from_merges({{'b', 'c'}, {'a', 'b'}, {257, 'c'}}, BpePieces::kGpt2);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // b+c first (rank 0); "a" + "bc" is no listed merge. tiktoken's rules would give "abc".
  EXPECT_EQ(t->encode("abc"), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(t->encode("abd"), (std::vector<int32_t>{257, 'd'}));
  EXPECT_EQ(t->encode("abc"), merge_list_encode(*t, "abc"));
}

TEST(BpeGpt2Pieces, TwoTokensWithTheSameBytesAreRefused) {
  // 256 = "ab", 257 = "abc", 258 = "bc", 259 = "a" + "bc" = "abc" again
  const std::vector<Merge> merges = {{'a', 'b'}, {256, 'c'}, {'b', 'c'}, {'a', 258}};
  auto t = Tokenizer::from_merges(merges, BpePieces::kGpt2);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("merge 3 makes token 259 with the same bytes as token 257"),
            std::string::npos)
      << t.status().message();
  EXPECT_TRUE(Tokenizer::from_merges(merges, BpePieces::kSkein).ok());
  // the trainer never makes such a pair of tokens
  const Tokenizer& trained = gpt2_pieces_bpe();
  std::set<std::string> seen;
  for (int id = 0; id < trained.vocab_size(); ++id) {
    EXPECT_TRUE(seen.insert(trained.token_bytes(id)).second) << "token " << id;
  }
}

TEST(BpeGpt2Pieces, InvalidUtf8IsReplacedAsGpt2Does) {
  const Tokenizer& t = gpt2_pieces_bpe();
  const std::string s = "caf\xC3 \xFF\xFEok \xF0\x9F\x98 end";
  std::vector<uint16_t> out;
  EXPECT_EQ(t.encode_prefix(s, s.size(), &out), 4u);
  EXPECT_EQ(*t.decode(t.encode(s)), sanitized(s));
  EXPECT_EQ(std::vector<int32_t>(out.begin(), out.end()), t.encode(s));
}

TEST(BpeGpt2Pieces, EncodeDoesNotDependOnThreadsOrBlocks) {
  const Tokenizer& t = gpt2_pieces_bpe();
  std::string s = gpt2_texty(500000, 10) + random_unicode(100000, 10);
  s.insert(200000, "\xC3(\xF0\x9F\x98 \xFF");
  omp_set_num_threads(1);
  const auto one = t.encode(s);
  omp_set_num_threads(3);
  const auto three = t.encode(s);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(one, three);
  std::vector<uint16_t> streamed;
  std::string buf;
  for (size_t at = 0; at < s.size(); at += 4099) {
    buf += s.substr(at, 4099);
    const bool last = at + 4099 >= s.size();
    const size_t end = last ? buf.size() : t.stable_prefix(buf);
    t.encode_prefix(buf, end, &streamed);
    buf.erase(0, end);
  }
  EXPECT_TRUE(std::equal(one.begin(), one.end(), streamed.begin(), streamed.end()));
}

TEST(BpeGpt2Pieces, FileIsVersion3AndVersion1FilesStillLoad) {
  TempDir dir;
  const Tokenizer& t = gpt2_pieces_bpe();
  ASSERT_TRUE(t.save(dir.file("v3.bin")).ok());
  const std::string good = read_bytes(dir.file("v3.bin"));
  EXPECT_EQ(good[4], 3);
  EXPECT_EQ(good[20], 1);  // pieces: GPT-2's
  auto u = Tokenizer::load(dir.file("v3.bin"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->bpe_pieces(), BpePieces::kGpt2);
  EXPECT_EQ(u->merges(), t.merges());
  const std::string text = gpt2_texty(20000, 6);
  EXPECT_EQ(u->encode(text), t.encode(text));
  // version 1 (skein's pieces) next to it
  auto old = Tokenizer::from_merges(t.merges(), BpePieces::kSkein);
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(old->save(dir.file("v1.bin")).ok());
  EXPECT_EQ(read_bytes(dir.file("v1.bin"))[4], 1);
  auto v1 = Tokenizer::load(dir.file("v1.bin"));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->bpe_pieces(), BpePieces::kSkein);
  EXPECT_NE(v1->encode(" it's"), u->encode(" it's"));  // "'s" is a piece of GPT-2's only

  std::string bad = good;
  bad[20] = 0;
  expect_load_error(dir, fix_hash(bad), "pieces 0 in a version 3 file");
  bad = good;
  bad[8] = 0;  // kind byte
  expect_load_error(dir, fix_hash(bad), "version 3 file of kind 0");
  bad = good;
  bad[28] = 1;
  expect_load_error(dir, fix_hash(bad), "reserved header words");
  bad = read_bytes(dir.file("v1.bin"));
  bad[20] = 1;
  expect_load_error(dir, fix_hash(bad), "pieces 1 in a version 1 file");
  // a merge that repeats a token's bytes: 256 + 1 = "a" + token 256's second half
  auto dup = Tokenizer::from_merges({{'a', 'b'}, {256, 'c'}, {'b', 'c'}, {'a', 258}});
  bad = dup->serialize();
  bad[4] = 3;
  bad[20] = 1;
  expect_load_error(dir, fix_hash(bad), "same bytes as token 257");
}

// ---- Hugging Face's tokenizer.json (version 4 files when not GPT-2's own) ----

StatusOr<Gpt2Vocab> parse_tj(const std::string& json) {
  return parse_hf_tokenizer_json(json, "dir/tokenizer.json");
}

Tokenizer make_tj(const MiniGpt2& m, bool digits) {
  auto v = parse_tj(m.tokenizer_json(digits, digits));
  SKEIN_CHECK(v.ok(), "the test tokenizer.json does not parse");
  auto t = Tokenizer::from_gpt2(std::move(*v));
  SKEIN_CHECK(t.ok(), "the test tokenizer.json makes no tokenizer");
  return std::move(*t);
}

// The \p{N} characters that digits_texty uses beyond ASCII: Arabic-Indic three, one half,
// Roman numeral twelve, superscript two, circled one.
const char* const kWideDigits[] = {"\u0663", "\u00BD", "\u216B", "\u00B2", "\u2460"};

// Text where digits meet spaces, newlines, letters and punctuation, with non-ASCII digits too.
std::string digits_texty(size_t n, uint64_t seed) {
  static const char* kParts[] = {
      "12",           " 3",      "  45",   "\n6",     "\n\n7",    "\t8 ",    "x9",        "0y",
      ".5",           " ,1",     "'s2",    "  ",      " ",        "\n",      "a",         " b",
      "\u0663\u0663", " \u00BD", "\u216B", "\u00B2 ", " \u2460x", "\u00A01", " \u3000 2", "!"};
  Rng rng(seed);
  std::string s = gpt2_texty(n / 2, seed);
  while (s.size() < n) s += kParts[rng.below(std::size(kParts))];
  return s;
}

// Hugging Face's Sequence[Digits(individual_digits), ByteLevel], literally: cut at every digit
// (ASCII or one of kWideDigits), keep it alone, cut each stretch between with GPT-2's pattern.
std::vector<std::string> digits_twin(const std::string& text) {
  std::vector<std::string> out;
  std::string stretch;
  auto flush = [&] {
    for (const std::string& p : gpt2_pieces(stretch)) out.push_back(p);
    stretch.clear();
  };
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    if (text[i] >= '0' && text[i] <= '9') len = 1;
    for (const char* d : kWideDigits) {
      if (text.compare(i, std::strlen(d), d) == 0) len = std::strlen(d);
    }
    if (len > 0) {
      flush();
      out.push_back(text.substr(i, len));
      i += len;
    } else {
      stretch.push_back(text[i++]);
    }
  }
  flush();
  return out;
}

TEST(HfTokenizerJson, DigitsAloneCutAsHuggingFacesSequence) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"a  12", {"a", "  ", "1", "2"}},
      {"x \t 3", {"x", " \t ", "3"}},
      {"\n\n45 6", {"\n\n", "4", "5", " ", "6"}},
      {"abc123def 42 3.14", {"abc", "1", "2", "3", "def", " ", "4", "2", " ", "3", ".", "1", "4"}},
      {"it's 2 u\u00A01", {"it", "'s", " ", "2", " u", "\u00A0", "1"}},
      {"\u0663\u0664 \u00BDx \u216B", {"\u0663", "\u0664", " ", "\u00BD", "x", " ", "\u216B"}},
      {"  x  7  ", {" ", " x", "  ", "7", "  "}},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(gpt2_pieces(text, Gpt2Pieces::kDigits), want) << text;
    EXPECT_EQ(digits_twin(text), want) << text;
  }
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const std::string s = digits_texty(30000, seed);
    EXPECT_EQ(gpt2_pieces(s, Gpt2Pieces::kDigits), digits_twin(s)) << "seed " << seed;
  }
}

TEST(HfTokenizerJson, SafeCutsArePieceBoundariesWithDigitsAlone) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const std::string s = seed % 2 ? digits_texty(20000, seed) : random_unicode(20000, seed);
    std::vector<bool> boundary(s.size() + 1, false);
    size_t at = 0;
    for (const auto& p : gpt2_pieces(s, Gpt2Pieces::kDigits)) boundary[at += p.size()] = true;
    ASSERT_EQ(at, s.size());
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    for (size_t i = 1; i < s.size(); ++i) {
      if (gpt2_safe_cut(p, i)) {
        ASSERT_TRUE(boundary[i]) << "seed " << seed << " at " << i;
      }
    }
  }
}

TEST(HfTokenizerJson, GivesTheVocabularyOfVocabJsonWithItsOwnCutAndRules) {
  auto plain = trained().parse();
  auto bl = parse_tj(trained().tokenizer_json(false, false));
  auto dg = parse_tj(trained().tokenizer_json(true, true));
  ASSERT_TRUE(plain.ok() && bl.ok() && dg.ok()) << bl.status().message() << dg.status().message();
  EXPECT_EQ(bl->tokens, plain->tokens);
  EXPECT_EQ(bl->merges, plain->merges);
  EXPECT_EQ(dg->merges, plain->merges);
  EXPECT_EQ(bl->eot, plain->eot);
  EXPECT_EQ(bl->pieces, Gpt2Pieces::kGpt2);
  EXPECT_EQ(dg->pieces, Gpt2Pieces::kDigits);
  EXPECT_EQ(bl->rules, Gpt2Rules::kMergeList);
  EXPECT_EQ(plain->rules, Gpt2Rules::kTiktoken);
  // three ways to cut or merge, three vocabularies for a resume
  const uint64_t a = gpt2_vocab_checksum(*plain), b = gpt2_vocab_checksum(*bl),
                 c = gpt2_vocab_checksum(*dg);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST(HfTokenizerJson, EncodesAsHuggingFacesBpeOnDigitsAlone) {
  const Tokenizer t = make_tj(trained(), true);
  EXPECT_EQ(t.gpt2_pieces(), Gpt2Pieces::kDigits);
  EXPECT_EQ(t.gpt2_rules(), Gpt2Rules::kMergeList);
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::string s = digits_texty(20000, seed);
    s += " " + std::string(500, 'a') + "tthe" + std::string(300, 'e') + " 1234";  // heap path
    const auto ids = t.encode(s);
    EXPECT_EQ(ids, hf_twin_encode(t, digits_twin(s))) << "seed " << seed;
    EXPECT_EQ(*t.decode(ids), s);
  }
  // the same text by GPT-2's cut gives other ids
  const Tokenizer g = make_tj(trained(), false);
  EXPECT_NE(t.encode("a  12 345"), g.encode("a  12 345"));
}

TEST(HfTokenizerJson, EncodeDoesNotDependOnThreadsOrBlocks) {
  const Tokenizer t = make_tj(trained(), true);
  const std::string s = digits_texty(600000, 11) + random_unicode(100000, 11);
  omp_set_num_threads(1);
  const auto one = t.encode(s);
  omp_set_num_threads(3);
  const auto three = t.encode(s);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(one, three);
  for (size_t block : {4099, 65536 + 7}) {
    const std::vector<uint16_t> streamed = streamed_encode(t, s, block);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), streamed.begin(), streamed.end()))
        << "block " << block;
  }
}

// A white-space run before a non-ASCII digit is cut by whether that is a digit: streaming must
// not cut where only the digit's lead byte is in the buffer (it would read as U+FFFD).
TEST(HfTokenizerJson, StreamingNeverCutsBeforeHalfACharacter) {
  const Tokenizer t = make_tj(trained(), true);
  const std::string s = "a \n\u0663 b\t\n\u0663x \r\u00B2  \u2460\n\n\u216B end \n\u0663";
  const auto whole = t.encode(s);
  for (size_t block = 1; block <= s.size(); ++block) {
    const std::vector<uint16_t> streamed = streamed_encode(t, s, block);
    ASSERT_TRUE(std::equal(whole.begin(), whole.end(), streamed.begin(), streamed.end()))
        << "block " << block;
  }
}

TEST(HfTokenizerJson, FolderWithTokenizerJsonUsesItAndTheFileItselfWorks) {
  TempDir dir;
  trained().write_hf(dir.path());  // vocab.json + merges.txt beside it, as on the Hub
  write_bytes(dir.file("tokenizer.json"), trained().tokenizer_json(true, false));
  auto v = read_gpt2_vocab_dir(dir.path());
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_NE(v->source.find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(v->pieces, Gpt2Pieces::kDigits);
  auto f = read_gpt2_vocab_dir(dir.file("tokenizer.json"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(gpt2_vocab_checksum(*f), gpt2_vocab_checksum(*v));
  write_bytes(dir.file("tokenizer.json"), "{");
  auto bad = read_gpt2_vocab_dir(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokenizer.json: not valid JSON"), std::string::npos)
      << bad.status().message();
}

TEST(HfTokenizerJson, BadFilesNameTheField) {
  MiniGpt2 m;
  m.merges = {{"t", "h"}, {"th", "e"}, {" ", "t"}, {" ", "the"}};
  const std::string good = m.tokenizer_json(true, false);
  ASSERT_TRUE(parse_tj(good).ok()) << parse_tj(good).status().message();
  auto expect = [](const std::string& json, const std::string& want) {
    auto v = parse_tj(json);
    ASSERT_FALSE(v.ok()) << want;
    EXPECT_NE(v.status().message().find("dir/tokenizer.json"), std::string::npos)
        << v.status().message();
    EXPECT_NE(v.status().message().find(want), std::string::npos) << v.status().message();
  };
  auto swap = [&](const std::string& from, const std::string& to) {
    const size_t at = good.find(from);
    SKEIN_CHECK(at != std::string::npos, "the test's tokenizer.json lacks the text to replace");
    return good.substr(0, at) + to + good.substr(at + from.size());
  };
  expect(good.substr(0, good.size() / 2), "not valid JSON");
  expect("[1]", "expected a JSON object");
  expect(swap(R"("normalizer":null)", R"("normalizer":{"type":"NFC"})"), "normalizer");
  expect(swap(R"("individual_digits":true)", R"("individual_digits":false)"),
         "pre_tokenizer {\"pretokenizers\"");
  expect(
      swap(
          R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},)"
          R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]})",
          R"({"type":"Metaspace"})"),
      "is not one skein reads");
  expect(swap(R"("pre_tokenizer":{"type":"Sequence")",
              R"("pre_tokenizer":null,"x":{"type":"Sequence")"),
         "pre_tokenizer is missing");
  expect(swap(R"("add_prefix_space":false,"trim_offsets":true,"use_regex":true}])",
              R"("add_prefix_space":true,"trim_offsets":true,"use_regex":true}])"),
         "pretokenizers[1]: add_prefix_space is true");
  expect(swap(R"("add_prefix_space":false,"trim_offsets":true,"use_regex":true}])",
              R"("add_prefix_space":false,"trim_offsets":true,"use_regex":false}])"),
         "use_regex is false");
  expect(swap(R"("type":"BPE")", R"("type":"WordPiece")"), "model.type is \"WordPiece\"");
  expect(swap(R"("byte_fallback":false)", R"("byte_fallback":true)"),
         "model.byte_fallback is true");
  expect(swap(R"("ignore_merges":false)", R"("ignore_merges":true)"),
         "model.ignore_merges is true");
  expect(swap(R"("dropout":null)", R"("dropout":0.1)"), "model.dropout is 0.1");
  expect(swap(R"("continuing_subword_prefix":"")", R"("continuing_subword_prefix":"##")"),
         "model.continuing_subword_prefix");
  expect(swap(R"("merges":[)", R"("merges":7,"x":[)"), "model.merges is missing");
  expect(swap(R"("merges":[)", R"("merges":[3,)"), "model.merges[0] is 3");
  expect(swap(R"("merges":[)", R"("merges":[["t h","x"],)"), "model.merges[0] [\"t h\"");
  expect(swap(R"("merges":[)", R"("merges":["t q",)"), "model.merges[0]: the merge makes \"tq\"");
  expect(swap(R"("merges":[)", R"("merges":["t h",)"),
         "model.merges[1]: the merge makes \"th\", which model.merges[0] makes already");
  // a merge missing: its token is made by nothing, and is no added token
  expect(swap(R"(,"Ġ the"])", "]"), "1 token(s) that no merge of dir/tokenizer.json makes");
  expect(swap(R"(,"Ġ the"])", "]"), "added_tokens");
  expect(swap(R"("added_tokens":[{"id":260,)", R"("added_tokens":[{"id":259,)"),
         "added_tokens[0] \"<|endoftext|>\" has id 259, which model.vocab gives to \"Ġthe\"");
  expect(swap(R"("added_tokens":[{"id":260,)", R"("added_tokens":[{"id":"x",)"),
         "added_tokens[0] is not an object with an integer id");
  expect(swap(R"("<|endoftext|>":260)", R"("<pad>":260)"), "which model.vocab gives to \"<pad>\"");
  expect(swap(R"("added_tokens":[{"id":260,)", R"("added_tokens":[{"id":261,)"),
         "has id 261, model.vocab another");
  expect(swap(R"({"!":0)", R"({"\u2603":0)"),
         "model.vocab: token \"\u2603\" holds the character U+2603");
  expect(swap(R"("model":{)", R"("x":{)"), "model is missing");
  // nested deeper than any tokenizer.json: refused before anything copies or prints it
  expect(
      swap(R"("type":"BPE")", R"("type":)" + std::string(100000, '[') + std::string(100000, ']')),
      "nests deeper than 64 levels");
  // an added token that model.vocab lacks joins it, with its own id
  auto extra = parse_tj(swap(R"("added_tokens":[)",
                             R"("added_tokens":[{"id":261,"content":"<a b>","special":true},)"));
  ASSERT_TRUE(extra.ok()) << extra.status().message();
  EXPECT_EQ(extra->tokens.at(261), "<a b>");
  EXPECT_EQ(extra->specials, (std::vector<int32_t>{260, 261}));
}

TEST(HfTokenizerJson, FileIsVersion4AndLoadsBack) {
  TempDir dir;
  const Tokenizer t = make_tj(trained(), true);
  const std::string good = t.serialize();
  EXPECT_EQ(good[4], 4);
  EXPECT_EQ(trained_tokenizer().serialize()[4], 2);        // GPT-2's own files stay version 2
  EXPECT_EQ(make_tj(trained(), false).serialize()[4], 4);  // the merge-list rule
  write_bytes(dir.file("tokenizer.bin"), good);
  auto u = Tokenizer::load(dir.file("tokenizer.bin"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->serialize(), good);
  EXPECT_EQ(u->gpt2_pieces(), Gpt2Pieces::kDigits);
  EXPECT_EQ(u->gpt2_rules(), Gpt2Rules::kMergeList);
  const std::string text = digits_texty(5000, 2);
  EXPECT_EQ(u->encode(text), t.encode(text));
  std::string bad = good;
  bad[bad.size() - 16] = 7;  // pieces
  expect_load_error(dir, fix_hash(bad), "pieces 7");
  bad = good;
  bad[bad.size() - 12] = 5;  // rules
  expect_load_error(dir, fix_hash(bad), "rules 5");
  bad = good;
  bad[bad.size() - 16] = 0;  // GPT-2's pieces and tiktoken's rules in a version 4 file
  bad[bad.size() - 12] = 0;
  expect_load_error(dir, fix_hash(bad), "version 2 holds those");
  expect_load_error(dir, fix_hash(good.substr(0, good.size() - 12) + good.substr(good.size() - 8)),
                    "");
}

}  // namespace
}  // namespace skein
