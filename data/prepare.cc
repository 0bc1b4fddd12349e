#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string_view>

#include "data/bpe_trainer.h"
#include "data/file_util.h"
#include "data/pretokenize.h"
#include "data/shard.h"
#include "data/text_reader.h"
#include "data/tokenizer.h"

namespace skein {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using ProgressFn = std::function<void(const PrepareProgress&)>;

constexpr size_t kBlockBytes = 4 << 20;       // text read per step
constexpr int64_t kValStretchTokens = 65536;  // validation stretches are at most about this long
constexpr int kDefaultBpeVocab = 1024;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool is_output_name(const std::string& name) {
  if (name == "tokenizer.bin") return true;
  for (std::string_view prefix : {"train_", "val_"}) {
    if (name.size() == prefix.size() + 6 + 4 && name.starts_with(prefix) &&
        name.ends_with(".bin") &&
        std::all_of(name.begin() + prefix.size(), name.end() - 4,
                    [](char c) { return c >= '0' && c <= '9'; })) {
      return true;
    }
  }
  return false;
}

std::string shard_path(const std::string& dir, const char* split, int index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%s_%06d.bin", split, index);
  return dir + "/" + name;
}

Status validate(const PrepareOptions& o, int* vocab) {
  if (o.inputs.empty()) {
    return Status::error("no input files given. HINT: list one or more text files (or .gz)");
  }
  if (o.out_dir.empty()) return Status::error("no output directory given. HINT: pass --out DIR");
  if (o.tokenizer == "byte") {
    if (o.vocab_size != 0 && o.vocab_size != 256) {
      return Status::error("--vocab " + std::to_string(o.vocab_size) +
                           " does not fit the byte tokenizer, whose vocabulary is 256. HINT: "
                           "drop --vocab, or use --tokenizer bpe");
    }
    *vocab = 256;
  } else if (o.tokenizer == "bpe") {
    *vocab = o.vocab_size == 0 ? kDefaultBpeVocab : o.vocab_size;
    SKEIN_RETURN_IF_ERROR(check_vocab_size(*vocab, "--vocab"));
    if (*vocab <= 256) {
      return Status::error("--vocab " + std::to_string(*vocab) +
                           " leaves no room for BPE merges: expected more than 256. HINT: use "
                           "e.g. --vocab 1024, or --tokenizer byte");
    }
  } else if (o.tokenizer == "gpt2") {
    if (o.vocab_size != 0) {
      return Status::error(
          "--vocab " + std::to_string(o.vocab_size) +
          " does not apply to --tokenizer gpt2, whose vocabulary (GPT-2's has 50257 "
          "tokens) comes from --tokenizer_files. HINT: drop --vocab");
    }
    if (o.tokenizer_files.empty()) {
      return Status::error(
          "--tokenizer gpt2 needs --tokenizer_files DIR: a folder with GPT-2's "
          "vocab.json + merges.txt (Hugging Face) or encoder.json + vocab.bpe "
          "(OpenAI)");
    }
  } else {
    return Status::error("--tokenizer '" + o.tokenizer +
                         "' is unknown: expected 'byte', 'bpe' or 'gpt2'. HINT: --tokenizer byte");
  }
  if (o.tokenizer == "bpe" && o.bpe_pieces != "" && o.bpe_pieces != "gpt2" &&
      o.bpe_pieces != "skein") {
    return Status::error("--bpe_pieces '" + o.bpe_pieces +
                         "' is unknown: expected 'gpt2' (GPT-2's pattern, exportable to "
                         "llama.cpp) or 'skein' (the first BPE tokenizers' byte classes)");
  }
  if (o.tokenizer != "bpe" && !o.bpe_pieces.empty()) {
    return Status::error("--bpe_pieces is for --tokenizer bpe, not " + o.tokenizer +
                         ". HINT: drop --bpe_pieces, or pass --tokenizer bpe");
  }
  if (o.tokenizer != "gpt2" && !o.tokenizer_files.empty()) {
    return Status::error("--tokenizer_files is for --tokenizer gpt2; the " + o.tokenizer +
                         " tokenizer is made here. HINT: drop --tokenizer_files, or pass "
                         "--tokenizer gpt2");
  }
  const std::string& sep = o.doc_separator;
  if (sep != "" && sep != "file" && sep != "blank_line" && sep != "none") {
    return Status::error("--doc_separator '" + sep +
                         "' is unknown: expected 'file', 'blank_line' or 'none'");
  }
  if (o.tokenizer != "gpt2" && sep != "" && sep != "none") {
    return Status::error("--doc_separator " + sep + " needs a tokenizer with an end-of-text " +
                         "token; the " + o.tokenizer +
                         " tokenizer has none. HINT: use "
                         "--tokenizer gpt2, or drop --doc_separator");
  }
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) {
    return Status::error("--val_fraction " + std::to_string(o.val_fraction) +
                         " is outside [0, 1). HINT: e.g. --val_fraction 0.005");
  }
  if (o.shard_tokens < o.min_split_tokens ||
      o.shard_tokens > kMaxShardTokens - o.min_split_tokens) {
    return Status::error("--shard_tokens " + std::to_string(o.shard_tokens) + " is outside " +
                         std::to_string(o.min_split_tokens) + ".." +
                         std::to_string(kMaxShardTokens - o.min_split_tokens) +
                         ". HINT: the default 100000000 suits most corpora");
  }
  return {};
}

// Checks the inputs and out_dir before any long work; returns the inputs' total file size.
StatusOr<uint64_t> check_files(const PrepareOptions& o) {
  uint64_t total = 0;
  for (const auto& path : o.inputs) {
    auto r = TextReader::open(path);
    if (!r.ok()) return r.status();
    total += r->file_size();
  }
  SKEIN_RETURN_IF_ERROR(make_dirs(o.out_dir));
  {
    auto probe = AtomicFile::create(o.out_dir + "/.prepare_data_probe");  // removed at scope end
    if (!probe.ok()) {
      return Status::error("output directory " + o.out_dir +
                           " is not writable: " + probe.status().message());
    }
  }
  if (!o.overwrite) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(o.out_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (is_output_name(name)) {
        return Status::error("output directory " + o.out_dir + " already holds " + name +
                             ". HINT: choose an empty directory, or pass --overwrite to replace "
                             "its shards and tokenizer");
      }
    }
  }
  return total;
}

// One block of an input: buf[0, end) is text whose pieces are final, the rest of buf is
// look-ahead (see stable_prefix).
struct Block {
  std::string_view buf;
  size_t end;
  bool file_begins, file_ends;  // the first and the last block of input `file`
  size_t file;
};

// Feeds every input, in order, to f in blocks, cut where cut(buffer) says. Each file ends a text.
Status stream_inputs(const std::vector<std::string>& inputs, uint64_t total_file_bytes,
                     const char* phase, const ProgressFn& progress,
                     const std::function<size_t(std::string_view)>& cut,
                     const std::function<Status(const Block&)>& f, uint64_t* text_bytes) {
  const auto t0 = Clock::now();
  uint64_t files_done = 0;
  std::string buf;
  *text_bytes = 0;
  for (size_t file = 0; file < inputs.size(); ++file) {
    auto reader = TextReader::open(inputs[file]);
    if (!reader.ok()) return reader.status();
    size_t carry = 0;
    for (bool first = true;; first = false) {
      buf.resize(carry + kBlockBytes);
      auto got = reader->read(buf.data() + carry, kBlockBytes);
      if (!got.ok()) return got.status();
      *text_bytes += *got;
      const size_t len = carry + *got;
      const bool last = *got < kBlockBytes;
      const std::string_view block(buf.data(), len);
      const size_t end = last ? len : cut(block);
      SKEIN_RETURN_IF_ERROR(f({block, end, first, last, file}));
      carry = len - end;
      std::copy(buf.begin() + end, buf.begin() + len, buf.begin());
      if (progress) {
        progress({phase, files_done + reader->file_offset(), total_file_bytes, since(t0)});
      }
      if (last) break;
    }
    files_done += reader->file_size();
  }
  return {};
}

struct Stretch {
  int64_t begin, end;  // token range [begin, end)
};

// Writes the tokens of `stretches` (in order, back to back) as shards of the given sizes.
Status write_split(const uint16_t* tokens, const std::vector<Stretch>& stretches,
                   const std::vector<int64_t>& sizes, const std::string& dir, const char* split,
                   int64_t* written, int64_t total, const ProgressFn& progress,
                   Clock::time_point t0) {
  size_t s = 0;
  int64_t at = stretches.empty() ? 0 : stretches[0].begin;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto w = ShardWriter::create(shard_path(dir, split, static_cast<int>(i)));
    if (!w.ok()) return w.status();
    int64_t need = sizes[i];
    while (need > 0) {
      SKEIN_CHECK(s < stretches.size());
      const int64_t take = std::min(need, stretches[s].end - at);
      SKEIN_RETURN_IF_ERROR(w->append({tokens + at, static_cast<size_t>(take)}));
      need -= take;
      at += take;
      *written += take;
      if (at == stretches[s].end && ++s < stretches.size()) at = stretches[s].begin;
      if (progress) progress({"writing", uint64_t(*written), uint64_t(total), since(t0)});
    }
    SKEIN_RETURN_IF_ERROR(w->commit());
  }
  return {};
}

}  // namespace

std::vector<int64_t> shard_sizes(int64_t total, int64_t shard_tokens, int64_t min_tokens) {
  SKEIN_CHECK(shard_tokens > 0 && total >= 0);
  std::vector<int64_t> sizes(total / shard_tokens, shard_tokens);
  const int64_t rest = total % shard_tokens;
  if (rest > 0) {
    if (rest < min_tokens && !sizes.empty()) {
      sizes.back() += rest;
    } else {
      sizes.push_back(rest);
    }
  }
  return sizes;
}

StatusOr<PrepareStats> prepare_corpus(const PrepareOptions& o, const ProgressFn& progress) {
  const auto t_start = Clock::now();
  PrepareStats stats;
  int vocab = 0;
  SKEIN_RETURN_IF_ERROR(validate(o, &vocab));
  auto file_bytes = check_files(o);
  if (!file_bytes.ok()) return file_bytes.status();

  // 1. Tokenizer.
  Tokenizer tokenizer;
  if (o.tokenizer == "bpe") {
    auto t0 = Clock::now();
    BpeTrainer trainer(o.bpe_pieces == "skein" ? BpePieces::kSkein : BpePieces::kGpt2);
    SKEIN_RETURN_IF_ERROR(stream_inputs(
        o.inputs, *file_bytes, "counting", progress,
        [&](std::string_view b) { return trainer.stable_prefix(b); },
        [&](const Block& b) {
          trainer.add_text(b.buf, b.end);
          return Status();
        },
        &stats.text_bytes));
    stats.count_seconds = since(t0);
    stats.distinct_pieces = trainer.distinct_pieces();
    t0 = Clock::now();
    auto trained = trainer.train(vocab);
    if (!trained.ok()) return trained.status();
    tokenizer = std::move(*trained);
    stats.train_seconds = since(t0);
  } else if (o.tokenizer == "gpt2") {
    auto vocab = read_gpt2_vocab_dir(o.tokenizer_files);
    if (!vocab.ok()) return vocab.status();
    stats.tokenizer_source = vocab->source;
    stats.gpt2_pieces = vocab->pieces;
    stats.gpt2_rules = vocab->rules;
    auto t = Tokenizer::from_gpt2(std::move(*vocab));
    if (!t.ok()) return t.status();
    tokenizer = std::move(*t);
    stats.vocab_checksum = tokenizer.vocab_checksum();
  }
  stats.vocab_size = tokenizer.vocab_size();

  // 2. Encode everything into a temporary token file (removed when `tmp` goes out of scope).
  auto t0 = Clock::now();
  auto tmp = AtomicFile::create(o.out_dir + "/.prepare_data_tokens");
  if (!tmp.ok()) return tmp.status();
  std::vector<uint16_t> tokens;
  const std::string sep = o.doc_separator.empty() && tokenizer.eot_id() >= 0 ? "file"
                          : o.doc_separator.empty()                          ? "none"
                                                                             : o.doc_separator;
  std::vector<size_t> doc_starts;
  bool file_start_pending = false;  // the file's first document starts at its first text
  int last_invalid_file = -1;
  SKEIN_RETURN_IF_ERROR(stream_inputs(
      o.inputs, *file_bytes, "encoding", progress,
      [&](std::string_view b) { return tokenizer.stable_prefix(b); },
      [&](const Block& b) {
        doc_starts.clear();
        if (b.file_begins) file_start_pending = sep != "none";
        if (file_start_pending && (b.end > 0 || b.file_ends)) {
          doc_starts.push_back(0);
          file_start_pending = false;
        }
        if (sep == "blank_line") {
          // Blocks start at a safe cut, never on a newline, so no "\n\n" spans two blocks.
          for (size_t i = 0; i + 1 < b.end;) {
            if (b.buf[i] == '\n' && b.buf[i + 1] == '\n') {
              doc_starts.push_back(i + 2);
              i += 2;
            } else {
              ++i;
            }
          }
        }
        tokens.clear();
        const size_t bad = tokenizer.encode_prefix(b.buf, b.end, &tokens, doc_starts);
        stats.documents += static_cast<int64_t>(doc_starts.size());
        if (bad > 0) {
          stats.invalid_utf8 += bad;
          if (last_invalid_file != static_cast<int>(b.file)) {
            if (stats.invalid_utf8_files++ == 0) stats.first_invalid_utf8_file = o.inputs[b.file];
            last_invalid_file = static_cast<int>(b.file);
          }
        }
        return tmp->write(tokens.data(), tokens.size() * sizeof(uint16_t));
      },
      &stats.text_bytes));
  stats.encode_seconds = since(t0);
  const int64_t n = static_cast<int64_t>(tmp->size() / sizeof(uint16_t));
  stats.tokens = n;

  // 3. Split.
  int64_t v = 0;
  if (o.val_fraction > 0) {
    v = std::max(static_cast<int64_t>(std::ceil(o.val_fraction * double(n))), o.min_split_tokens);
  }
  if (n - v < o.min_split_tokens) {
    return Status::error(
        "the corpus is too small: " + std::to_string(stats.text_bytes) + " bytes gave " +
        std::to_string(n) + " tokens, but " + std::to_string(v) + " validation plus " +
        std::to_string(o.min_split_tokens) + " training tokens (one sequence of 1024 each) are " +
        "needed. HINT: add more text, or pass --val_fraction 0 to skip the validation split");
  }
  std::vector<Stretch> val, train;
  const int64_t m = v == 0 ? 0 : (v + kValStretchTokens - 1) / kValStretchTokens;
  const int64_t gap_total = n - v;
  int64_t at = 0;
  for (int64_t j = 0; j <= m; ++j) {  // train gap j, then (j < m) val stretch j
    const int64_t gap = gap_total * (j + 1) / (m + 1) - gap_total * j / (m + 1);
    if (gap > 0) train.push_back({at, at + gap});
    at += gap;
    if (j < m) {
      const int64_t len = v / m + (j < v % m ? 1 : 0);
      val.push_back({at, at + len});
      at += len;
    }
  }
  SKEIN_CHECK(at == n);
  stats.val_tokens = v;
  stats.train_tokens = n - v;

  // 4. Write shards, then the tokenizer, then drop shards of an older run that were not replaced.
  t0 = Clock::now();
  auto mapped = MappedFile::open(tmp->temp_path());
  if (!mapped.ok()) return mapped.status();
  const auto* all = reinterpret_cast<const uint16_t*>(mapped->data());
  const auto val_sizes = shard_sizes(v, o.shard_tokens, o.min_split_tokens);
  const auto train_sizes = shard_sizes(n - v, o.shard_tokens, o.min_split_tokens);
  int64_t written = 0;
  SKEIN_RETURN_IF_ERROR(
      write_split(all, val, val_sizes, o.out_dir, "val", &written, n, progress, t0));
  SKEIN_RETURN_IF_ERROR(
      write_split(all, train, train_sizes, o.out_dir, "train", &written, n, progress, t0));
  SKEIN_RETURN_IF_ERROR(tokenizer.save(o.out_dir + "/tokenizer.bin"));
  stats.val_shards = static_cast<int>(val_sizes.size());
  stats.train_shards = static_cast<int>(train_sizes.size());
  std::set<std::string> fresh{"tokenizer.bin"};
  for (int i = 0; i < stats.val_shards; ++i) fresh.insert(shard_path("", "val", i).substr(1));
  for (int i = 0; i < stats.train_shards; ++i) fresh.insert(shard_path("", "train", i).substr(1));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(o.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_output_name(name) && !fresh.count(name)) fs::remove(entry.path(), ec);
  }
  stats.write_seconds = since(t0);
  stats.total_seconds = since(t_start);
  return stats;
}

}  // namespace skein
