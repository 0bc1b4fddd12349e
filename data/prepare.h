// The corpus pipeline behind apps/prepare_data: text files (plain or .gz) -> tokenizer.bin, train
// and val token shards in one directory.
//
//  1. BPE: read every input and count its pieces; learn the merges. GPT-2: read its vocabulary
//     files (data/gpt2_vocab.h).
//  2. Read every input again and encode it into a temporary token file in the output directory
//     (files are encoded one after the other; no piece spans two files). GPT-2: <|endoftext|>
//     (50256) goes before every document, as in llm.c's data scripts. A document is a file
//     ("file", the default), or (with "blank_line") a file is cut after every "\n\n" (two
//     newlines; the first cut from the left, as Python's str.replace finds them), which is
//     llm.c's tinyshakespeare.py: "<|endoftext|>" + text.replace("\n\n", "\n\n<|endoftext|>").
//  3. Split the N tokens: V = max(ceil(val_fraction * N), min_split_tokens) go to validation
//     (none when val_fraction is 0), the rest to training; refuse a corpus where either side
//     would get fewer than min_split_tokens. The validation tokens are m = ceil(V / 65536)
//     stretches spread evenly over the corpus (so a corpus ordered by topic still gets a
//     representative val set), the training tokens are what lies between them, in order.
//  4. Write val_000000.bin ... and train_000000.bin ... of shard_tokens tokens each (a last
//     shard shorter than min_split_tokens is merged into the one before), then tokenizer.bin,
//     each atomically; with overwrite, remove older shards that the new set does not replace.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/gpt2_vocab.h"

namespace skein {

struct PrepareOptions {
  std::string out_dir;
  std::vector<std::string> inputs;
  std::string tokenizer = "byte";  // "byte", "bpe" or "gpt2"
  int vocab_size = 0;              // BPE: 257..65536 (0 = 1024); byte: 0 or 256; gpt2: 0
  std::string bpe_pieces;          // BPE: "gpt2" (the default, "" too) or "skein" (BpePieces)
  std::string tokenizer_files;     // gpt2: folder with vocab.json + merges.txt or encoder.json +
                                   // vocab.bpe
  std::string doc_separator;       // gpt2: "file" (the default), "blank_line" or "none"
  double val_fraction = 0.005;     // in [0, 1)
  int64_t shard_tokens = 100'000'000;
  bool overwrite = false;           // replace shards and tokenizer.bin already in out_dir
  int64_t min_split_tokens = 1025;  // least tokens of each split: one sequence of T = 1024
};

struct PrepareProgress {
  const char* phase;     // "counting" (BPE pass), "encoding", "writing"
  uint64_t done, total;  // input file bytes (compressed for .gz) or, when writing, tokens
  double seconds;        // since the phase began
};

struct PrepareStats {
  uint64_t text_bytes = 0;  // uncompressed
  int64_t tokens = 0, train_tokens = 0, val_tokens = 0;
  int train_shards = 0, val_shards = 0;
  int vocab_size = 0;
  size_t distinct_pieces = 0;           // BPE: distinct pre-tokenized pieces in the corpus
  int64_t documents = 0;                // gpt2: <|endoftext|> tokens written
  uint64_t invalid_utf8 = 0;            // ill-formed UTF-8 sequences replaced by U+FFFD (gpt2,
                                        // BPE with GPT-2's pieces)
  int invalid_utf8_files = 0;           // ... in this many files,
  std::string first_invalid_utf8_file;  // the first of them
  uint64_t vocab_checksum = 0;          // gpt2: of the vocabulary (gpt2_vocab_checksum)
  std::string tokenizer_source;         // gpt2: the files the vocabulary came from
  Gpt2Pieces gpt2_pieces = Gpt2Pieces::kGpt2;   // gpt2: how its text is cut
  Gpt2Rules gpt2_rules = Gpt2Rules::kTiktoken;  // gpt2: which pairs merge
  double count_seconds = 0, train_seconds = 0, encode_seconds = 0, write_seconds = 0;
  double total_seconds = 0;
};

StatusOr<PrepareStats> prepare_corpus(const PrepareOptions& o,
                                      const std::function<void(const PrepareProgress&)>& progress);

// Token counts of the shards a split of `total` tokens is cut into (see step 4).
std::vector<int64_t> shard_sizes(int64_t total, int64_t shard_tokens, int64_t min_tokens);

}  // namespace skein
