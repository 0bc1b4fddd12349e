// prepare_data: text files -> token shards and tokenizer.bin (see data/prepare.h).
#include <omp.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "data/prepare.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kHelp = R"(usage: prepare_data --out DIR [options] FILE...

Turns text files (plain, or gzip-compressed .gz) into token shards for training:
  DIR/train_000000.bin ...   training tokens
  DIR/val_000000.bin ...     validation tokens
  DIR/tokenizer.bin          the tokenizer, for decoding samples later
Every file is written to a temporary name and renamed into place when complete.

options:
  --out DIR            output directory (created if missing)
  --tokenizer KIND     byte (vocabulary 256, the default), bpe (byte-level BPE learned
                       from these files) or gpt2 (OpenAI's GPT-2 BPE, vocabulary 50257,
                       from --tokenizer_files; the ids are tiktoken's "gpt2" encoding; or
                       another model's byte-level BPE from its tokenizer.json, e.g. SmolLM's)
  --vocab N            BPE vocabulary size, 257..65536 (default 1024)
  --bpe_pieces P       BPE: how text is cut into pieces before merging: gpt2 (GPT-2's
                       pattern, the default; llama.cpp tokenizes such a model's text exactly,
                       so it exports to GGUF; invalid UTF-8 becomes U+FFFD) or skein (the
                       first BPE tokenizers' byte classes; every byte string round-trips)
  --tokenizer_files DIR
                       gpt2: a folder with Hugging Face's tokenizer.json (used first when
                       there: it says how text is cut), vocab.json + merges.txt (as in every
                       GPT-2 repository on the Hub) or OpenAI's encoder.json + vocab.bpe; or
                       the path of a tokenizer.json
  --doc_separator S    gpt2: where <|endoftext|> (id 50256) starts a document: file (before
                       each input file, the default), blank_line (also after every "\n\n",
                       as llm.c's tinyshakespeare.py) or none
                       GPT-2 (and BPE with GPT-2's pieces) replaces invalid UTF-8 in the
                       input by U+FFFD (as Python's errors="replace" does) and says how many
                       sequences it replaced
  --val_fraction F     share of tokens for validation, in [0, 1) (default 0.005); at least
                       1025 tokens (one sequence of 1024) when above 0; 0 = no validation split
  --shard_tokens N     tokens per shard (default 100000000)
  --threads N          OpenMP threads (default: OMP_NUM_THREADS, else every core)
  --overwrite          replace shards and tokenizer.bin already in DIR
  --quiet              no progress line
  --help               this text

Progress goes to stderr, the summary to stdout.

exit codes:
  0  success
  1  the data could not be prepared: missing or unreadable input, corrupt .gz, output
     directory not writable or already holding shards, corpus too small, disk full,
     missing or invalid GPT-2 tokenizer files
  2  usage error: unknown flag, missing or malformed value, no input files
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "prepare_data: %s\nrun prepare_data --help for usage\n", msg.c_str());
  return kExitUsage;
}

template <typename T>
bool parse_int(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e9) {
    std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  } else if (b >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.2f MB", b / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  }
  return buf;
}

// One progress line on stderr, rewritten in place, at most 4 times a second.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(const skein::PrepareProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool new_phase = phase_ != p.phase;
    if (!new_phase && p.done < p.total && now - last_ < std::chrono::milliseconds(250)) return;
    if (new_phase && !phase_.empty()) std::fputc('\n', stderr);
    phase_ = p.phase;
    last_ = now;
    const double rate = p.seconds > 0 ? p.done / p.seconds : 0;
    const double eta = rate > 0 && p.total > p.done ? (p.total - p.done) / rate : 0;
    const double pct = p.total ? 100.0 * p.done / p.total : 100.0;
    if (phase_ == "writing") {
      std::fprintf(stderr, "\rprepare_data: %-8s %5.1f%%  %.1f M tokens/s  ETA %.0f s   ", p.phase,
                   pct, rate / 1e6, eta);
    } else {
      std::fprintf(stderr, "\rprepare_data: %-8s %5.1f%%  %s/s  ETA %.0f s   ", p.phase, pct,
                   human_bytes(rate).c_str(), eta);
    }
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && !phase_.empty()) std::fputc('\n', stderr);
    phase_.clear();
  }

 private:
  bool enabled_;
  std::string phase_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int main(int argc, char** argv) {
  skein::PrepareOptions o;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return kExitOk;
    }
    if (arg == "--overwrite") {
      o.overwrite = true;
      continue;
    }
    if (arg == "--quiet") {
      quiet = true;
      continue;
    }
    if (arg.size() < 2 || arg.substr(0, 2) != "--") {
      o.inputs.push_back(arg);
      continue;
    }
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    static const char* kValued[] = {
        "--out",     "--tokenizer",       "--vocab",         "--val_fraction", "--shard_tokens",
        "--threads", "--tokenizer_files", "--doc_separator", "--bpe_pieces"};
    bool known = false;
    for (const char* k : kValued) known |= arg == k;
    if (!known) return usage_error("unknown flag " + arg);
    if (!has_value) {
      if (i + 1 >= argc) return usage_error(arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "--out") {
      o.out_dir = value;
    } else if (arg == "--tokenizer") {
      o.tokenizer = value;
    } else if (arg == "--tokenizer_files") {
      o.tokenizer_files = value;
    } else if (arg == "--bpe_pieces") {
      o.bpe_pieces = value;
    } else if (arg == "--doc_separator") {
      o.doc_separator = value;
    } else if (arg == "--vocab") {
      if (!parse_int(value, &o.vocab_size))
        return usage_error("--vocab wants an integer, got '" + value + "'");
    } else if (arg == "--val_fraction") {
      if (!parse_double(value, &o.val_fraction)) {
        return usage_error("--val_fraction wants a number, got '" + value + "'");
      }
    } else if (arg == "--shard_tokens") {
      if (!parse_int(value, &o.shard_tokens)) {
        return usage_error("--shard_tokens wants an integer, got '" + value + "'");
      }
    } else if (arg == "--threads") {
      int threads = 0;
      if (!parse_int(value, &threads) || threads < 1) {
        return usage_error("--threads wants a positive integer, got '" + value + "'");
      }
      omp_set_num_threads(threads);
    }
  }
  if (o.out_dir.empty()) return usage_error("--out DIR is required");
  if (o.inputs.empty()) return usage_error("no input files given");

  ProgressLine line(!quiet);
  auto stats = skein::prepare_corpus(o, [&](const skein::PrepareProgress& p) { line.update(p); });
  line.finish();
  if (!stats.ok()) {
    std::fprintf(stderr, "prepare_data: error: %s\n", stats.status().message().c_str());
    return kExitFailed;
  }
  const auto& s = *stats;
  std::printf(
      "prepare_data: %s of text -> %lld tokens (%s tokenizer, vocab %d), %.3f bytes/token\n",
      human_bytes(double(s.text_bytes)).c_str(), static_cast<long long>(s.tokens),
      o.tokenizer.c_str(), s.vocab_size, s.tokens ? double(s.text_bytes) / double(s.tokens) : 0.0);
  std::printf("  train: %lld tokens in %d shard(s); val: %lld tokens in %d shard(s); in %s\n",
              static_cast<long long>(s.train_tokens), s.train_shards,
              static_cast<long long>(s.val_tokens), s.val_shards, o.out_dir.c_str());
  if (o.tokenizer == "bpe") {
    std::printf("  BPE (%s pieces): %zu distinct pieces; counting %.2f s, learning merges %.2f s\n",
                o.bpe_pieces == "skein" ? "skein's" : "GPT-2's", s.distinct_pieces, s.count_seconds,
                s.train_seconds);
  }
  if (o.tokenizer == "gpt2") {
    std::printf(
        "  GPT-2: vocabulary from %s (checksum %016llx); %lld document(s), each after "
        "<|endoftext|>\n",
        s.tokenizer_source.c_str(), static_cast<unsigned long long>(s.vocab_checksum),
        static_cast<long long>(s.documents));
    std::printf("  text cut by %s, merged by %s\n",
                s.gpt2_pieces == skein::Gpt2Pieces::kDigits
                    ? "every digit alone, then GPT-2's pattern (SmolLM's pre-tokenizer)"
                    : "GPT-2's pattern",
                s.gpt2_rules == skein::Gpt2Rules::kMergeList ? "the merge list (Hugging Face's BPE)"
                                                             : "tiktoken's rules");
  }
  if (s.invalid_utf8 > 0) {
    std::printf(
        "  note: %llu invalid UTF-8 sequence(s) in %d file(s) (the first: %s) were "
        "replaced by U+FFFD\n",
        static_cast<unsigned long long>(s.invalid_utf8), s.invalid_utf8_files,
        s.first_invalid_utf8_file.c_str());
  }
  std::printf(
      "  time: %.2f s in all (encoding %.2f s: %.1f MB/s on %d thread(s), writing %.2f "
      "s); %.1f MB/s of text\n",
      s.total_seconds, s.encode_seconds,
      s.encode_seconds > 0 ? s.text_bytes / s.encode_seconds / 1e6 : 0.0, omp_get_max_threads(),
      s.write_seconds, s.total_seconds > 0 ? s.text_bytes / s.total_seconds / 1e6 : 0.0);
  return kExitOk;
}
