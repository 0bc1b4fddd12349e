#include "data/tokenizer.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <filesystem>

#include "base/rng.h"
#include "data/pretokenize.h"
#include "tests/data/data_test_util.h"

namespace skein {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::vector<std::string> pieces_of(const std::string& s) {
  std::vector<std::string> out;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for_each_piece(p, s.size(), 0, s.size(),
                 [&](size_t b, size_t e) { out.push_back(s.substr(b, e - b)); });
  return out;
}

std::string random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// Text-like bytes: words, spaces, punctuation, newlines, a little UTF-8 and long runs.
std::string texty(size_t n, uint64_t seed) {
  static const char* kParts[] = {"the",  " cat",  "  ",       " sat", ",",
                                 "\n",   "\n\n",  " 1234567", "---",  "\xc3\xa9t\xc3\xa9",
                                 "  on", " mat.", "\t",       " ",    "a"};
  Rng rng(seed);
  std::string s;
  while (s.size() < n) {
    if (rng.below(200) == 0) {
      s += std::string(rng.below(300), "xz= "[rng.below(4)]);
    } else {
      s += kParts[rng.below(std::size(kParts))];
    }
  }
  return s;
}

TEST(Pretokenize, SplitsWordsSpacesAndPunctuation) {
  EXPECT_EQ(pieces_of("Hello,  world 42!\n\n  x"),
            (std::vector<std::string>{"Hello", ",", " ", " world", " 42", "!", "\n\n", " ", " x"}));
  EXPECT_EQ(pieces_of("caf\xc3\xa9 ok"), (std::vector<std::string>{"caf\xc3\xa9", " ok"}));
  EXPECT_EQ(pieces_of("a  \n"), (std::vector<std::string>{"a", "  ", "\n"}));
  EXPECT_EQ(pieces_of(" "), (std::vector<std::string>{" "}));
}

TEST(Pretokenize, LongRunsAreCutEvery64Bytes) {
  auto p = pieces_of("x" + std::string(150, 'a') + "!");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].size(), 64u);
  EXPECT_EQ(p[1].size(), 64u);
  EXPECT_EQ(p[2].size(), 23u);
  EXPECT_EQ(p[3], "!");
}

// Streaming in blocks cut by stable_prefix, and chunking for threads, give the pieces of the
// whole text, for texts with long runs and for random bytes.
TEST(Pretokenize, BlocksAndChunksGiveTheWholeTextsPieces) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const std::string s = seed % 2 ? texty(20000, seed) : random_bytes(20000, seed);
    const auto whole = pieces_of(s);
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());

    std::vector<std::string> chunked;
    const auto cuts = chunk_bounds(p, s.size(), s.size(), 997);
    EXPECT_GT(cuts.size(), 10u);
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      for_each_piece(p, s.size(), cuts[c], cuts[c + 1],
                     [&](size_t b, size_t e) { chunked.push_back(s.substr(b, e - b)); });
    }
    EXPECT_EQ(chunked, whole) << "seed " << seed;

    std::vector<std::string> streamed;
    Rng rng(seed);
    std::string buf;
    size_t read = 0;
    while (read < s.size()) {
      const size_t take = std::min<size_t>(1 + rng.below(700), s.size() - read);
      buf += s.substr(read, take);
      read += take;
      const bool last = read == s.size();
      const auto* b = reinterpret_cast<const uint8_t*>(buf.data());
      const size_t end = last ? buf.size() : stable_prefix(b, buf.size());
      for_each_piece(b, buf.size(), 0, end,
                     [&](size_t x, size_t y) { streamed.push_back(buf.substr(x, y - x)); });
      buf.erase(0, end);
      EXPECT_LT(buf.size(), 2 + 2 * kMaxPieceBytes);
    }
    EXPECT_EQ(streamed, whole) << "seed " << seed;
  }
}

TEST(Tokenizer, ByteLevelIsTheBytes) {
  Tokenizer t;
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kByte);
  EXPECT_EQ(t.vocab_size(), 256);
  EXPECT_EQ(t.encode(std::string("A\xff\x00z", 4)), (std::vector<int32_t>{65, 255, 0, 122}));
}

TEST(Tokenizer, BpeAppliesEarliestMergeFirstWithinPieces) {
  // 256 = "ab", 257 = "abc", 258 = " a", 259 = "bc" (would win over "ab" if rank were ignored)
  auto t = Tokenizer::from_merges({{'a', 'b'}, {256, 'c'}, {' ', 'a'}, {'b', 'c'}});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->vocab_size(), 260);
  EXPECT_EQ(t->token_bytes(257), "abc");
  EXPECT_EQ(t->encode("abc abx"), (std::vector<int32_t>{257, 32, 256, 'x'}));
  // " a" never merges across the piece boundary between "x" and " abc".
  EXPECT_EQ(t->encode("x abc"), (std::vector<int32_t>{'x', 32, 257}));
}

TEST(Tokenizer, InvalidMergesAreRefused) {
  auto t = Tokenizer::from_merges({{'a', 'b'}, {256, 257}});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("merge 1 joins tokens 256 and 257, expected ids below 257"),
            std::string::npos)
      << t.status().message();
  t = Tokenizer::from_merges({{'a', 'b'}, {'a', 'b'}});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("repeats"), std::string::npos);
  t = Tokenizer::from_merges(std::vector<Merge>(65536 - 255, Merge{1, 2}));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("65536"), std::string::npos);
}

TEST(Tokenizer, DecodeOfEncodeIsIdentityOnRandomBytes) {
  std::vector<Merge> merges;
  Rng rng(3);
  for (int i = 0; i < 700; ++i) {  // random merges, each over earlier tokens
    Merge m{static_cast<int32_t>(rng.below(256 + i)), static_cast<int32_t>(rng.below(256 + i))};
    bool dup = false;
    for (const auto& x : merges) dup |= x == m;
    if (!dup) merges.push_back(m);
  }
  auto bpe = Tokenizer::from_merges(merges);
  ASSERT_TRUE(bpe.ok());
  const Tokenizer byte;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::string s = seed % 2 ? random_bytes(rng.below(300000), seed) : texty(100000, seed);
    for (const Tokenizer* t : {&byte, static_cast<const Tokenizer*>(&*bpe)}) {
      const auto ids = t->encode(s);
      auto back = t->decode(ids);
      ASSERT_TRUE(back.ok());
      ASSERT_EQ(*back, s) << "seed " << seed;
    }
  }
  EXPECT_EQ(*bpe->decode(bpe->encode("")), "");
}

TEST(Tokenizer, EncodeDoesNotDependOnThreadsOrBlocks) {
  auto t = Tokenizer::from_merges({{'t', 'h'}, {256, 'e'}, {' ', 'c'}, {'a', 't'}, {259, 's'}});
  ASSERT_TRUE(t.ok());
  const std::string s = texty(600000, 9);  // several parallel chunks
  omp_set_num_threads(1);
  const auto one = t->encode(s);
  omp_set_num_threads(3);
  const auto three = t->encode(s);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(one, three);
  EXPECT_LT(one.size(), s.size());

  std::vector<uint16_t> streamed;
  std::string buf;
  for (size_t at = 0; at < s.size(); at += 4099) {
    buf += s.substr(at, 4099);
    const bool last = at + 4099 >= s.size();
    const size_t end =
        last ? buf.size() : stable_prefix(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    t->encode_prefix(buf, end, &streamed);
    buf.erase(0, end);
  }
  EXPECT_TRUE(std::equal(one.begin(), one.end(), streamed.begin(), streamed.end()));
}

TEST(Tokenizer, DecodeNamesAnIdOutsideTheVocabulary) {
  Tokenizer t;
  auto s = t.decode(std::vector<int32_t>{1, 2, 300});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("token id 300 at position 2"), std::string::npos)
      << s.status().message();
  EXPECT_FALSE(t.decode(std::vector<int32_t>{-1}).ok());
}

TEST(Tokenizer, SaveLoadRoundTrip) {
  TempDir dir;
  auto t = Tokenizer::from_merges({{'a', 'b'}, {256, 'c'}, {' ', 256}});
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->save(dir.file("tokenizer.bin")).ok());
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  auto u = Tokenizer::load(dir.file("tokenizer.bin"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->kind(), Tokenizer::Kind::kBpe);
  EXPECT_EQ(u->merges(), t->merges());
  EXPECT_EQ(u->encode("abc ab"), t->encode("abc ab"));

  ASSERT_TRUE(Tokenizer().save(dir.file("byte.bin")).ok());
  auto b = Tokenizer::load(dir.file("byte.bin"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->kind(), Tokenizer::Kind::kByte);
  EXPECT_EQ(b->vocab_size(), 256);
}

TEST(Tokenizer, LoadRefusesBadFiles) {
  TempDir dir;
  const std::string good_path = dir.file("good.bin");
  ASSERT_TRUE(Tokenizer::from_merges({{'a', 'b'}, {256, 'c'}})->save(good_path).ok());
  const std::string good = read_bytes(good_path);
  auto expect_error = [&](const std::string& bytes, const std::string& want) {
    write_bytes(dir.file("bad.bin"), bytes);
    auto t = Tokenizer::load(dir.file("bad.bin"));
    ASSERT_FALSE(t.ok()) << want;
    EXPECT_NE(t.status().message().find(want), std::string::npos) << t.status().message();
    EXPECT_NE(t.status().message().find("bad.bin"), std::string::npos);
  };
  expect_error(good.substr(0, good.size() - 1), "truncated");
  expect_error(good.substr(0, 10), "too short");
  std::string bad = good;
  bad[0] ^= 1;
  expect_error(bad, "magic number");
  bad = good;
  bad[4] = 9;
  expect_error(bad, "version is 9, expected 1");
  bad = good;
  bad[32] ^= 1;  // first merge's left id
  expect_error(bad, "hash does not match");
  auto missing = Tokenizer::load(dir.file("none.bin"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("none.bin"), std::string::npos);
}

}  // namespace
}  // namespace skein
