// Weights out: a trained model in the formats other programs read. GPT-2 models go to all three;
// Llama-family models to Hugging Face (LlamaForCausalLM) and GGUF (llm.c refuses them).
//   - Hugging Face: a folder with model.safetensors (GPT2LMHeadModel's names and layout: Conv1D
//     weights stored [in, out], no lm_head tensor, the embedding being tied) + config.json, and
//     the tokenizer's files when there is a GPT-2 tokenizer (vocab.json + merges.txt +
//     tokenizer.json);
//   - llm.c: its model file, version 3 (fp32) or 5 (bf16), vocabulary padded to a multiple of 128
//     with zero rows;
//   - GGUF version 3 for llama.cpp, architecture gpt2 or llama, with the tokenizer in
//     tokenizer.ggml.*.
// Every output is written as checkpoints are (data/file_util.h: temporary name, fsync, rename):
// a failure (unwritable path, full disk) leaves nothing half-written and says why.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "data/tokenizer.h"
#include "engine/model.h"

namespace skein {

enum class ExportDtype { kF32, kF16, kBf16 };
// "f32", "f16", "bf16"
const char* export_dtype_name(ExportDtype d);
StatusOr<ExportDtype> parse_export_dtype(const std::string& name);

// float32 -> the bits of float16 / bfloat16, rounded to nearest with ties to even (as PyTorch's
// .half() and .bfloat16()); float16's subnormals included. Past the largest finite value
// (65504 for float16) a value becomes infinity; a NaN stays a (quiet) NaN.
uint16_t f32_to_f16_rne(float x);
uint16_t f32_to_bf16_rne(float x);

// Whether every parameter can be written in dtype: finite, and (f16, bf16) within its range once
// rounded. The error names the tensor, the element and its value. Every export checks this first.
Status check_exportable(const Model& model, ExportDtype dtype);

// Hugging Face folder out_dir (created if missing; files replaced one by one, each atomically).
// tokenizer may be null (no tokenizer files then); only a GPT-2 tokenizer has HF files here.
Status export_hf(const Model& model, const Tokenizer* tokenizer, ExportDtype dtype,
                 const std::string& out_dir);

// llm.c model file: kF32 -> version 3, kBf16 -> version 5; kF16 is refused (llm.c has none).
Status export_llmc(const Model& model, ExportDtype dtype, const std::string& path);

// GGUF file (engine/export_gguf.cc). The tokenizer is required: llama.cpp needs one to run.
Status export_gguf(const Model& model, const Tokenizer& tokenizer, ExportDtype dtype,
                   const std::string& path);
// Whether export_gguf takes this tokenizer for a model with model_vocab embedding rows: a byte or
// GPT-2 tokenizer of exactly that many tokens. skein's BPE is refused (llama.cpp has no
// pre-tokenizer that cuts text as skein's does; the message says how they differ). export_gguf
// checks this itself; an app calls it first to tell bad input from a failed write.
Status check_gguf_tokenizer(const Tokenizer& tokenizer, int model_vocab);

}  // namespace skein
