#include "data/bpe_trainer.h"

#include <gtest/gtest.h>
#include <omp.h>

#include "base/rng.h"
#include "data/pretokenize.h"

namespace skein {
namespace {

// Pseudo-English: words of one to four syllables (a few thousand distinct words, the early
// syllables more common), "the" very often, punctuation and newlines.
std::string corpus(size_t n, uint64_t seed) {
  static const char* kSyllables[] = {
      "the", "an", "re",  "in",   "ter", "con", "ing", "al", "er", "ly",       "pro", "st",  "ou",
      "ca",  "mi", "ble", "tion", "o",   "di",  "ver", "sa", "ke", "\xc3\xa9", "ph",  "qua", "zo"};
  Rng rng(seed);
  std::string s;
  const size_t k = std::size(kSyllables);
  while (s.size() < n) {
    if (rng.below(5) == 0) {
      s += "the";
    } else {
      for (uint64_t i = 0, len = 1 + rng.below(4); i < len; ++i) {
        s += kSyllables[rng.below(k) * rng.below(k) / k];
      }
    }
    const uint64_t r = rng.below(20);
    s += r == 0 ? ".\n" : r == 1 ? ", " : r == 2 ? "  " : " ";
  }
  return s;
}

TEST(BpeTrainer, LearnsTheMostFrequentPairsWithDeterministicTies) {
  BpeTrainer trainer;
  trainer.add_text("ab ab ab cd");  // pieces "ab", " ab" x2, " cd"
  EXPECT_EQ(trainer.distinct_pieces(), 3u);
  auto t = trainer.train(259);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // (a,b) 3 times; then (' ', ab) twice; then a tie of (' ', c) and (c, d): the smaller pair.
  EXPECT_EQ(t->merges(), (std::vector<Merge>{{'a', 'b'}, {' ', 256}, {' ', 'c'}}));
  EXPECT_EQ(t->encode("ab ab cd"), (std::vector<int32_t>{256, 257, 258, 'd'}));
}

TEST(BpeTrainer, StopsWhenNoPairIsLeft) {
  BpeTrainer trainer;
  trainer.add_text("abab");
  auto t = trainer.train(1000);
  ASSERT_TRUE(t.ok());
  // "abab" -> (a,b) -> [Z Z] -> (Z,Z) -> one token; nothing left after two merges.
  EXPECT_EQ(t->vocab_size(), 258);
  EXPECT_EQ(t->encode("abab"), (std::vector<int32_t>{257}));
}

TEST(BpeTrainer, RefusesVocabularyOutOfRange) {
  BpeTrainer trainer;
  trainer.add_text("hello");
  auto t = trainer.train(256);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("more than 256"), std::string::npos);
  t = trainer.train(65537);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("65537"), std::string::npos);
}

TEST(BpeTrainer, CompressesItsCorpusAndRoundTrips) {
  const std::string text = corpus(300000, 1);
  BpeTrainer trainer;
  trainer.add_text(text);
  EXPECT_EQ(trainer.bytes(), text.size());
  auto t = trainer.train(600);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->vocab_size(), 600);
  const auto ids = t->encode(text);
  EXPECT_GT(double(text.size()) / ids.size(), 2.0) << "BPE should find the words";
  EXPECT_EQ(*t->decode(ids), text);
  // Frequent whole words became single tokens.
  EXPECT_EQ(t->encode(" the").size(), 1u);
}

// Same corpus and vocabulary -> the same merges, whatever the thread count and however the text
// was fed in.
class BpeTrainerPieces : public ::testing::TestWithParam<BpePieces> {};

TEST_P(BpeTrainerPieces, MergesDoNotDependOnThreadsOrBlocks) {
  const std::string text = corpus(3'000'000, 2);  // several parallel chunks
  auto train = [&](int threads, size_t block) {
    omp_set_num_threads(threads);
    BpeTrainer trainer(GetParam());
    std::string buf;
    for (size_t at = 0; at < text.size(); at += block) {
      buf += text.substr(at, block);
      const bool last = at + block >= text.size();
      const size_t end = last ? buf.size() : trainer.stable_prefix(buf);
      trainer.add_text(buf, end);
      buf.erase(0, end);
    }
    auto t = trainer.train(1024);
    SKEIN_CHECK(t.ok());
    return t->merges();
  };
  const auto reference = train(1, text.size());
  EXPECT_EQ(reference.size(), 1024u - 256u);
  EXPECT_EQ(train(2, text.size()), reference);
  EXPECT_EQ(train(3, 1'000'003), reference);
  EXPECT_EQ(train(1, 77'777), reference);
  omp_set_num_threads(omp_get_num_procs());
}

INSTANTIATE_TEST_SUITE_P(Pieces, BpeTrainerPieces,
                         ::testing::Values(BpePieces::kSkein, BpePieces::kGpt2),
                         [](const auto& info) {
                           return info.param == BpePieces::kGpt2 ? "Gpt2" : "Skein";
                         });

// With GPT-2's pieces: contractions, Unicode letters and whitespace runs are cut as GPT-2 cuts
// them, so no token spans two of its pieces.
TEST(BpeTrainer, Gpt2PiecesAreCountedAfterGpt2sPattern) {
  BpeTrainer trainer(BpePieces::kGpt2);
  trainer.add_text("it's it's it's  x");  // "it", "'s", " it", "'s", " it", "'s", " ", " x"
  EXPECT_EQ(trainer.distinct_pieces(), 5u);
  auto t = trainer.train(300);
  ASSERT_TRUE(t.ok());
  for (int id = 256; id < t->vocab_size(); ++id) {
    const std::string& b = t->token_bytes(id);
    EXPECT_TRUE(b == "it" || b == "'s" || b == " i" || b == " it" || b == " x") << b;
  }
  BpeTrainer skein;
  skein.add_text("it's it's it's  x");  // "it", "'", "s", " it", ...: "'s" is no piece
  EXPECT_NE(skein.distinct_pieces(), 5u);
}

}  // namespace
}  // namespace skein
