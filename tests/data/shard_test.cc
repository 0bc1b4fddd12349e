#include "data/shard.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/data/data_test_util.h"

namespace skein {
namespace {

using testing::make_shard;
using testing::random_tokens;
using testing::raw_header;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::string tokens_as_bytes(const std::vector<uint16_t>& t) {
  return std::string(reinterpret_cast<const char*>(t.data()), t.size() * 2);
}

size_t files_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(Shard, WriteThenOpenRoundTripsWithLlmcHeader) {
  TempDir dir;
  const auto tokens = random_tokens(5000, 65536, 1);
  const std::string path = make_shard(dir, "a.bin", tokens);
  const std::string bytes = read_bytes(path);
  ASSERT_EQ(bytes.size(), 1024 + 2 * tokens.size());
  EXPECT_EQ(bytes.substr(0, 1024), raw_header(20240520, 1, 5000));
  EXPECT_EQ(bytes.substr(1024), tokens_as_bytes(tokens));
  EXPECT_EQ(files_in(dir.path()), 1u) << "the temporary file must be gone";

  auto shard = Shard::open(path, 65536);
  ASSERT_TRUE(shard.ok()) << shard.status().message();
  ASSERT_EQ(shard->size(), 5000);
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), shard->tokens()));
}

TEST(Shard, ReadsAFileLaidOutByHandLikeLlmc) {
  TempDir dir;
  const std::vector<uint16_t> tokens = {50256, 15496, 11, 995, 0, 65535};
  write_bytes(dir.file("llmc.bin"), raw_header(20240520, 1, 6) + tokens_as_bytes(tokens));
  auto shard = Shard::open(dir.file("llmc.bin"), 65536);
  ASSERT_TRUE(shard.ok()) << shard.status().message();
  EXPECT_EQ(std::vector<uint16_t>(shard->tokens(), shard->tokens() + 6), tokens);
}

TEST(Shard, StreamingWriterEqualsWholeWrite) {
  TempDir dir;
  const auto tokens = random_tokens(3001, 1000, 2);
  make_shard(dir, "whole.bin", tokens);
  auto w = ShardWriter::create(dir.file("parts.bin"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->append({tokens.data(), 1000}).ok());
  ASSERT_TRUE(w->append({tokens.data() + 1000, 0}).ok());
  ASSERT_TRUE(w->append({tokens.data() + 1000, 2001}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.file("parts.bin"))) << "visible before commit";
  ASSERT_TRUE(w->commit().ok());
  EXPECT_EQ(read_bytes(dir.file("parts.bin")), read_bytes(dir.file("whole.bin")));
}

TEST(Shard, AbandonedWriterLeavesNothingAndOldFileSurvives) {
  TempDir dir;
  const auto old_tokens = random_tokens(100, 256, 3);
  const std::string path = make_shard(dir, "s.bin", old_tokens);
  const std::string before = read_bytes(path);
  {
    auto w = ShardWriter::create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->append(random_tokens(50, 256, 4)).ok());
    EXPECT_EQ(files_in(dir.path()), 2u);  // the old shard and the temporary
  }                                       // never committed
  EXPECT_EQ(files_in(dir.path()), 1u);
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Shard, WriteIntoMissingDirectoryFailsWithHint) {
  TempDir dir;
  Status s = write_shard(dir.file("no/such/dir/s.bin"), random_tokens(10, 256, 5));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no/such/dir/s.bin"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("HINT"), std::string::npos) << s.message();
}

TEST(Shard, MissingFileIsNamed) {
  TempDir dir;
  auto s = Shard::open(dir.file("absent.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("absent.bin"), std::string::npos);
  EXPECT_NE(s.status().message().find("No such file"), std::string::npos) << s.status().message();
}

TEST(Shard, BadMagicIsRefused) {
  TempDir dir;
  write_bytes(dir.file("m.bin"), raw_header(12345, 1, 2) + std::string(4, '\0'));
  auto s = Shard::open(dir.file("m.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("magic number 12345, expected 20240520"), std::string::npos)
      << s.status().message();
}

TEST(Shard, WrongVersionIsRefused) {
  TempDir dir;
  write_bytes(dir.file("v.bin"), raw_header(20240520, 2, 2) + std::string(4, '\0'));
  auto s = Shard::open(dir.file("v.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("version 2, expected 1"), std::string::npos)
      << s.status().message();
}

TEST(Shard, TruncatedOrPaddedBodyIsRefusedWithSizes) {
  TempDir dir;
  write_bytes(dir.file("t.bin"), raw_header(20240520, 1, 100) + std::string(199, '\0'));
  auto s = Shard::open(dir.file("t.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("should be 1224 bytes, found 1223"), std::string::npos)
      << s.status().message();

  write_bytes(dir.file("p.bin"), raw_header(20240520, 1, 100) + std::string(202, '\0'));
  s = Shard::open(dir.file("p.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("found 1226"), std::string::npos) << s.status().message();
}

TEST(Shard, FileShorterThanHeaderIsTruncated) {
  TempDir dir;
  write_bytes(dir.file("h.bin"), raw_header(20240520, 1, 0).substr(0, 100));
  auto s = Shard::open(dir.file("h.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("truncated"), std::string::npos) << s.status().message();
}

TEST(Shard, NegativeCountIsCorrupt) {
  TempDir dir;
  write_bytes(dir.file("n.bin"), raw_header(20240520, 1, -4));
  auto s = Shard::open(dir.file("n.bin"), 256);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("negative"), std::string::npos) << s.status().message();
}

TEST(Shard, ShorterThanOneSequenceIsRefused) {
  TempDir dir;
  const std::string path = make_shard(dir, "short.bin", random_tokens(256, 256, 6));
  EXPECT_TRUE(Shard::open(path, 256, 256).ok());
  auto s = Shard::open(path, 256, 257);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("holds 256 tokens, fewer than the 257"), std::string::npos)
      << s.status().message();
}

// The scan works in blocks of 65536 tokens: put the offender in the middle of a later block,
// at the very start, and at the very end.
TEST(Shard, TokenOutsideVocabularyIsNamedWithItsOffset) {
  TempDir dir;
  for (size_t offset : {size_t(0), size_t(70001), size_t(199999)}) {
    auto tokens = random_tokens(200000, 500, 7);
    tokens[offset] = 500;
    if (offset != 199999) tokens[199999] = 600;  // a later offender must not be the one named
    const std::string path = make_shard(dir, "bad.bin", tokens);
    auto s = Shard::open(path, 500);
    ASSERT_FALSE(s.ok());
    const std::string want = "token id 500 at token offset " + std::to_string(offset) +
                             " (byte offset " + std::to_string(1024 + 2 * offset) +
                             "), but the model's vocabulary has 500 tokens";
    EXPECT_NE(s.status().message().find(want), std::string::npos) << s.status().message();
    EXPECT_TRUE(Shard::open(path, 601).ok());
  }
}

TEST(Shard, VocabularyAbove65536IsRefused) {
  TempDir dir;
  const std::string path = make_shard(dir, "s.bin", random_tokens(10, 256, 8));
  EXPECT_TRUE(Shard::open(path, 65536).ok());
  auto s = Shard::open(path, 65537);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("vocabulary size 65537 is out of range"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("uint16"), std::string::npos);
  EXPECT_FALSE(check_vocab_size(0, "x").ok());
}

}  // namespace
}  // namespace skein
