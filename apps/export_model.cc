// export_model: writes a checkpoint's weights for other programs (engine/export.h): a Hugging
// Face folder, an llm.c model file or a GGUF file. Argument parsing and wiring only.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "data/file_util.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/export.h"
#include "engine/import.h"
#include "engine/safetensors.h"
#include "engine/training_run.h"  // the exit codes

namespace {

namespace fs = std::filesystem;

const char kHelp[] =
    R"(usage: export_model --checkpoint PATH --format hf|llmc|gguf --out PATH [--dtype f32|f16|bf16]
                    [--tokenizer FILE]

Writes a trained model in a format that other programs load (README.md, "Use your model
elsewhere"). Every file is written to a temporary name and renamed into place when complete.

  --checkpoint PATH  a checkpoint folder (RUN/checkpoints/step_NNNNNNNN), or a run folder, which
                     means its newest checkpoint that verifies
  --format F         hf:   a Hugging Face folder PATH (created if missing): model.safetensors and
                           config.json for transformers' GPT2LMHeadModel (LlamaForCausalLM
                           for model.arch: LLAMA), and, with a GPT-2 tokenizer, its vocab.json
                           and merges.txt
                     llmc: an llm.c model file PATH: version 3 (f32) for train_gpt2.c and
                           train_gpt2cu PRECISION=FP32, version 5 (bf16) for train_gpt2cu
                           (GPT-2 models only)
                     gguf: a GGUF file PATH for llama.cpp (architecture gpt2, or llama for
                           model.arch: LLAMA; tokenizer inside)
  --out PATH         the folder (hf) or file (llmc, gguf) to write; existing files are replaced
  --dtype D          f32 (default), f16 or bf16, rounded to nearest even (llmc: f32 or bf16)
  --tokenizer FILE   the tokenizer.bin of the model's data (default: tokenizer.bin in the data.dir
                     that the checkpoint's config names, as sample reads it). gguf needs one; hf
                     writes tokenizer files for a GPT-2 tokenizer only (optional); llmc ignores it
  --help             this text

exit codes:
  0  written
  1  writing failed (I/O error, disk full); nothing half-written is left
  2  bad flags, checkpoint, tokenizer, weights or output path; nothing was written
)";

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return code;
}
int usage_error(const std::string& msg) {
  return fail(skein::kExitBadInput, msg + "\nrun 'export_model --help' for usage");
}

std::string size_text(uint64_t bytes) {
  char buf[64];
  if (bytes < (1u << 20))
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024);
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return std::to_string(bytes) + " bytes (" + buf + ")";
}

std::string hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

// The nearest folder of `path` (itself included) that exists; "" when a file stands in the way.
std::string existing_ancestor(const fs::path& path) {
  std::error_code ec;
  for (fs::path p = fs::absolute(path, ec).lexically_normal(); !p.empty(); p = p.parent_path()) {
    if (fs::exists(p, ec)) return fs::is_directory(p, ec) ? p.string() : "";
    if (p == p.parent_path()) break;
  }
  return "";
}

// The checks of --out that need no model: a folder for hf (created if missing), a file name in
// an existing folder for llmc and gguf, writable. "" when fine.
std::string check_out(const std::string& out, bool folder) {
  std::error_code ec;
  const fs::path p(out);
  const fs::path name = p.filename();
  if (folder) {
    if (fs::exists(p, ec) && !fs::is_directory(p, ec))
      return "--out " + out + " is a file, but a Hugging Face model is a folder\nHINT: choose a " +
             "folder (it is created if missing)";
    const std::string base = existing_ancestor(p);
    if (base.empty())
      return "--out " + out + ": a file stands where a folder of its path should be\nHINT: " +
             "choose another folder";
    if (::access(base.c_str(), W_OK) != 0)
      return "--out " + out + ": cannot write into " + base + ": " + skein::errno_text(errno) +
             "\nHINT: choose a folder you can write to";
    return "";
  }
  if (name.empty() || name == "." || name == ".." || fs::is_directory(p, ec))
    return "--out " + out + " is a folder, but this format is one file\nHINT: name the file, " +
           "e.g. --out " + (p / "model.bin").string();
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    return "--out " + out + ": " +
           (fs::exists(dir, ec) ? dir.string() + " is a file, not a folder"
                                : "the folder " + dir.string() + " does not exist") +
           "\nHINT: name a file in an existing folder";
  if (::access(dir.c_str(), W_OK) != 0)
    return "--out " + out + ": cannot write into " + dir.string() + ": " +
           skein::errno_text(errno) + "\nHINT: choose a folder you can write to";
  return "";
}

// The tensor count of what was written, read back from the file.
long tensors_in(const std::string& format, const std::string& path) {
  if (format == "gguf") {  // magic, version (uint32 each), tensor count (uint64)
    std::ifstream in(path, std::ios::binary);
    char h[16] = {};
    if (!in.read(h, sizeof(h)) || std::memcmp(h, "GGUF", 4) != 0) return -1;
    uint64_t n;
    std::memcpy(&n, h + 8, 8);
    return static_cast<long>(n);
  }
  if (format == "hf") {  // the safetensors header's entries (GPT-2's or Llama's names)
    skein::StatusOr<skein::MappedFile> f = skein::MappedFile::open(path);
    if (!f.ok()) return -1;
    skein::StatusOr<skein::SafetensorsHeader> h =
        skein::parse_safetensors(f->data(), f->size(), path);
    return h.ok() ? static_cast<long>(h->tensors.size()) : -1;
  }
  skein::StatusOr<skein::PretrainedWeights> w = skein::PretrainedWeights::open(path);
  return w.ok() ? static_cast<long>(w->tensors().size()) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // in order with stderr in a log file
  std::string ckpt, format, out, dtype_name = "f32", tok_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return skein::kExitOk;
    }
    std::string* target = a == "--checkpoint"  ? &ckpt
                          : a == "--format"    ? &format
                          : a == "--out"       ? &out
                          : a == "--dtype"     ? &dtype_name
                          : a == "--tokenizer" ? &tok_path
                                               : nullptr;
    if (!target) return usage_error("unknown argument '" + a + "'");
    if (i + 1 >= argc) return usage_error("missing value after " + a);
    *target = argv[++i];
  }
  if (ckpt.empty()) return usage_error("--checkpoint PATH is required");
  if (format.empty()) return usage_error("--format hf|llmc|gguf is required");
  if (out.empty()) return usage_error("--out PATH is required");
  if (format != "hf" && format != "llmc" && format != "gguf")
    return usage_error("--format " + format + ": unknown format, expected hf, llmc or gguf");
  skein::StatusOr<skein::ExportDtype> dtype = skein::parse_export_dtype(dtype_name);
  if (!dtype.ok()) return usage_error("--dtype: " + dtype.status().message());
  if (format == "llmc" && *dtype == skein::ExportDtype::kF16)
    return usage_error(
        "--dtype f16: llm.c has no float16 model file (version 3 is f32, version 5 bf16)\nHINT: "
        "--dtype f32 for train_gpt2.c, bf16 for train_gpt2cu");
  if (const std::string bad = check_out(out, format == "hf"); !bad.empty())
    return fail(skein::kExitBadInput, bad);

  // the checkpoint: a folder, or a run folder's newest that verifies
  std::error_code ec;
  if (!fs::exists(ckpt, ec))
    return fail(skein::kExitBadInput, "--checkpoint " + ckpt +
                                          ": no such checkpoint or run folder\nHINT: pass " +
                                          "RUN (a run folder) or RUN/checkpoints/step_NNNNNNNN");
  if (fs::is_directory(fs::path(ckpt) / "checkpoints", ec)) {
    std::vector<std::string> skipped;
    const std::string found =
        skein::find_latest_valid_checkpoint((fs::path(ckpt) / "checkpoints").string(), &skipped);
    if (found.empty()) {
      std::string msg = ckpt + " holds no checkpoint that verifies";
      for (const std::string& s : skipped) msg += "\n  skipped " + s;
      return fail(skein::kExitBadInput, msg);
    }
    for (const std::string& s : skipped) std::printf("skipped %s\n", s.c_str());
    ckpt = found;
  }
  // the manifest for the model's shape; load_checkpoint verifies every tensor as it loads them
  auto manifest = skein::read_checkpoint_manifest(ckpt);
  if (!manifest.ok()) return fail(skein::kExitBadInput, manifest.status().message());
  skein::Model model(skein::gpt_config(manifest->config().model()));
  auto loaded = skein::load_checkpoint(ckpt, model, {{"param/", model.params()}});
  if (!loaded.ok()) return fail(skein::kExitBadInput, loaded.status().message());
  const skein::GptConfig& c = model.config();
  const bool llama = c.arch == skein::Arch::kLlama;
  size_t params = 0;
  for (const skein::TensorView& t : model.tensors()) params += t.size;
  std::printf("checkpoint: %s (step %ld; %s, V %d, T %d, L %d, NH %d, C %d: %zu parameters)\n",
              ckpt.c_str(), long(manifest->step()), llama ? "Llama" : "GPT-2", c.vocab_size,
              c.seq_len, c.n_layer, c.n_head, c.d_model, params);
  if (llama && format == "llmc")
    return fail(skein::kExitBadInput,
                "llm.c's model file holds GPT-2 models only, and this one is of the Llama family "
                "(model.arch: LLAMA)\nHINT: --format gguf runs it in llama.cpp, --format hf in "
                "transformers (LlamaForCausalLM)");

  // the tokenizer: given, or the data's, as recorded in the checkpoint's config
  std::optional<skein::Tokenizer> tok;
  if (format == "llmc" && !tok_path.empty())
    std::printf("tokenizer: %s not used: llm.c's model file holds none\n", tok_path.c_str());
  if (format != "llmc") {
    const bool given = !tok_path.empty();
    if (!given) tok_path = manifest->config().data().dir() + "/tokenizer.bin";
    if (given || fs::exists(tok_path, ec)) {
      skein::StatusOr<skein::Tokenizer> loaded_tok = skein::Tokenizer::load(tok_path);
      if (!loaded_tok.ok())
        return fail(skein::kExitBadInput,
                    loaded_tok.status().message() +
                        "\nHINT: pass the data's tokenizer with --tokenizer FILE");
      tok.emplace(std::move(*loaded_tok));
      skein::StatusOr<uint32_t> crc = skein::file_crc32c(tok_path);
      if (!crc.ok()) return fail(skein::kExitBadInput, crc.status().message());
      const uint32_t trained = manifest->tokenizer_crc32c();
      if (trained != 0 && *crc != trained) {
        const std::string what = tok_path +
                                 " is not the tokenizer file the model was trained with (CRC-32C " +
                                 hex8(*crc) + "; the checkpoint records " + hex8(trained) + ")";
        if (!given)
          return fail(skein::kExitBadInput,
                      what + "\nHINT: the data was prepared again since; pass the original " +
                          "tokenizer.bin with --tokenizer FILE");
        std::printf("warning: %s; exporting with it as --tokenizer asks\n", what.c_str());
      }
      if (tok->vocab_size() > c.vocab_size)
        return fail(skein::kExitBadInput, "the tokenizer " + tok_path + " has a vocabulary of " +
                                              std::to_string(tok->vocab_size()) +
                                              ", more than the model's " +
                                              std::to_string(c.vocab_size));
      std::printf("tokenizer: %s (%s, %d tokens)\n", tok_path.c_str(), tok->kind_name(),
                  tok->vocab_size());
    } else if (format == "gguf") {
      return fail(skein::kExitBadInput,
                  "no tokenizer: " + tok_path +
                      " does not exist, and a GGUF file must hold one for llama.cpp to run it" +
                      "\nHINT: pass the data's tokenizer.bin with --tokenizer FILE");
    } else {
      std::printf("tokenizer: none (%s does not exist): the model's files only\n",
                  tok_path.c_str());
    }
    if (format == "hf" && tok && tok->kind() != skein::Tokenizer::Kind::kGpt2)
      std::printf(
          "tokenizer: of kind %s: Hugging Face has no files for it, so only the model's are "
          "written (encode text as skein's tokenizer does)\n",
          tok->kind_name());
  }

  // weights that the dtype cannot hold are bad input, found before anything is written
  if (skein::Status s = skein::check_exportable(model, *dtype); !s.ok())
    return fail(skein::kExitBadInput, s.message());
  // and so is a tokenizer that llama.cpp would not reproduce (skein's own BPE)
  if (format == "gguf")
    if (skein::Status s = skein::check_gguf_tokenizer(*tok, model.config().vocab_size); !s.ok())
      return fail(skein::kExitBadInput, s.message());
  skein::Status written;
  if (format == "hf")
    written = skein::export_hf(model, tok ? &*tok : nullptr, *dtype, out);
  else if (format == "llmc")
    written = skein::export_llmc(model, *dtype, out);
  else
    written = skein::export_gguf(model, *tok, *dtype, out);
  if (!written.ok()) return fail(skein::kExitRuntime, written.message());

  const std::string main_file =
      format == "hf" ? (fs::path(out) / "model.safetensors").string() : out;
  const char* what =
      format == "hf" ? (llama ? "Hugging Face LlamaForCausalLM" : "Hugging Face GPT2LMHeadModel")
      : format == "llmc" ? "llm.c model file"
                         : "GGUF (llama.cpp)";
  std::printf("wrote %s: %s, %s, %s, %ld tensors\n", main_file.c_str(), what,
              skein::export_dtype_name(*dtype), size_text(fs::file_size(main_file, ec)).c_str(),
              tensors_in(format, main_file));
  if (format == "hf") {
    std::vector<std::string> extra = {"config.json"};
    if (tok && tok->kind() == skein::Tokenizer::Kind::kGpt2)
      extra.insert(extra.end(), {"vocab.json", "merges.txt"});
    for (const std::string& f : extra) {
      const std::string p = (fs::path(out) / f).string();
      std::printf("wrote %s: %s\n", p.c_str(), size_text(fs::file_size(p, ec)).c_str());
    }
  }
  return skein::kExitOk;
}
