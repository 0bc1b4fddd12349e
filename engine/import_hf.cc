// Hugging Face GPT-2: model.safetensors with config.json beside it.
//
// config.json: n_embd (C), n_layer (L), n_head (NH), n_positions (n_ctx; older files: n_ctx),
// vocab_size (V), layer_norm_epsilon, and the switches that would change the architecture
// (activation_function, n_inner, scale_attn_*, tie_word_embeddings, add_cross_attention), which
// must have GPT-2's values.
//
// Tensors, named with or without GPT2LMHeadModel's "transformer." prefix: wte.weight (V,C),
// wpe.weight (n_ctx,C), h.N.ln_1.weight/bias (C), h.N.attn.c_attn.weight (C,3C) / bias (3C),
// h.N.attn.c_proj.weight (C,C) / bias, h.N.ln_2.*, h.N.mlp.c_fc.weight (C,4C) / bias (4C),
// h.N.mlp.c_proj.weight (4C,C) / bias (C), ln_f.weight/bias (C). The four weights above are
// Conv1D's [in, out], the transpose of skein's [out, in]. h.N.attn.bias and h.N.attn.masked_bias
// are the causal mask buffers: ignored. lm_head.weight, where present, must equal wte (tied).
#include <nlohmann/json.hpp>
#include <set>

#include "engine/import.h"
#include "engine/import_detail.h"
#include "engine/safetensors.h"
#include "kernels/layernorm.h"

namespace skein {

namespace {

using nlohmann::json;

const char* const kConv1D[] = {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight",
                               ".mlp.c_proj.weight"};

bool is_conv1d(const std::string& name) {
  for (const char* s : kConv1D)
    if (name.ends_with(s)) return true;
  return false;
}

// "h.<digits>.attn.bias" or "h.<digits>.attn.masked_bias": the attention mask buffers.
bool is_mask_buffer(const std::string& name) {
  if (!name.starts_with("h.")) return false;
  size_t i = 2;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == 2) return false;
  const std::string rest = name.substr(i);
  return rest == ".attn.bias" || rest == ".attn.masked_bias";
}

// config.json's shape, checked: GPT-2's architecture, with numbers skein can build.
StatusOr<PretrainedShape> read_config(const std::string& text, const std::string& cpath) {
  StatusOr<json> parsed = import_detail::parse_config_json(text, cpath);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Status::error(cpath + " is not a JSON object");
  auto fail = [&](const std::string& what) {
    return Status::error(cpath + ": " + what +
                         "\nHINT: skein reads GPT-2 models (model_type \"gpt2\") as "
                         "transformers' GPT2Config writes them, and Llama-family models "
                         "(model_type \"llama\") as LlamaConfig does");
  };
  if (j.contains("model_type") && j["model_type"] != "gpt2")
    return fail("model_type is " + j["model_type"].dump() + ", not \"gpt2\" or \"llama\"");
  PretrainedShape s;
  struct Field {
    const char* key;
    int* out;
    int64_t max;
  };
  const char* ctx_key = j.contains("n_positions") ? "n_positions" : "n_ctx";
  for (const Field& f : {Field{"vocab_size", &s.vocab_size, import_detail::kMaxVocab},
                         Field{ctx_key, &s.n_ctx, import_detail::kMaxContext},
                         Field{"n_layer", &s.n_layer, import_detail::kMaxLayers},
                         Field{"n_head", &s.n_head, import_detail::kMaxChannels},
                         Field{"n_embd", &s.d_model, import_detail::kMaxChannels}}) {
    if (!j.contains(f.key)) return fail(std::string("no \"") + f.key + "\"");
    const json& v = j[f.key];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > f.max)
      return fail(std::string(f.key) + " is " + v.dump() + ", not an integer in 1.." +
                  std::to_string(f.max));
    *f.out = static_cast<int>(v.get<int64_t>());
  }
  if (s.d_model % s.n_head != 0)
    return fail("n_head = " + std::to_string(s.n_head) +
                " does not divide n_embd = " + std::to_string(s.d_model));
  if (j.contains("layer_norm_epsilon")) {
    const json& e = j["layer_norm_epsilon"];
    if (!e.is_number() || std::abs(e.get<double>() - kLayerNormEps) > 1e-12)
      return fail("layer_norm_epsilon is " + e.dump() + ", but skein's LayerNorm uses " +
                  "GPT-2's 1e-5");
  }
  if (j.contains("activation_function") && j["activation_function"] != "gelu_new" &&
      j["activation_function"] != "gelu_pytorch_tanh")
    return fail("activation_function is " + j["activation_function"].dump() +
                ", but skein's MLP uses GELU's tanh approximation (\"gelu_new\")");
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * s.d_model)
    return fail("n_inner is " + j["n_inner"].dump() +
                ", but skein's MLP is 4 x n_embd = " + std::to_string(4 * s.d_model) + " wide");
  struct Switch {
    const char* key;
    bool gpt2;
  };
  for (const Switch& sw :
       {Switch{"scale_attn_weights", true}, Switch{"scale_attn_by_inverse_layer_idx", false},
        Switch{"tie_word_embeddings", true}, Switch{"add_cross_attention", false}}) {
    if (j.contains(sw.key) && j[sw.key] != sw.gpt2)
      return fail(std::string(sw.key) + " is " + j[sw.key].dump() + ", but skein's GPT-2 has " +
                  (sw.gpt2 ? "true" : "false"));
  }
  return s;
}

}  // namespace

namespace import_detail {

StatusOr<json> parse_config_json(const std::string& text, const std::string& cpath) {
  // config.json nests a few levels (task_specific_params, id2label); deeper values are dropped
  // while parsing and refused, so that no recursion over the document (dump(), for a message)
  // can exhaust the stack on a hostile file.
  constexpr int kMaxDepth = 16;
  bool too_deep = false;
  const json::parser_callback_t shallow = [&](int depth, json::parse_event_t, json&) {
    if (depth <= kMaxDepth) return true;
    too_deep = true;
    return false;
  };
  json j;
  try {
    j = json::parse(text, shallow);
  } catch (const json::exception& e) {
    return Status::error(cpath + " is not valid JSON: " + e.what());
  }
  if (too_deep)
    return Status::error(cpath + ": JSON nested deeper than " + std::to_string(kMaxDepth) +
                         " levels, which no config.json is");
  if (!j.is_object()) return Status::error(cpath + " is not a JSON object");
  return j;
}

StatusOr<WireType> wire_type(const SafetensorsTensor& t, const std::string& path) {
  if (t.dtype == "F32") return WireType::kF32;
  if (t.dtype == "F16") return WireType::kF16;
  if (t.dtype == "BF16") return WireType::kBF16;
  return Status::error(path + ": tensor " + t.name + " has dtype " + t.dtype +
                       ", which skein does not read (F32, F16 or BF16)\nHINT: convert the "
                       "model, e.g. model.float() or model.half(), and save it again");
}

Status missing_tensors(const std::string& path, const std::vector<std::string>& missing,
                       const std::string& prefix, const std::string& family,
                       const std::string& config_shape) {
  std::string msg = path + ": has no tensor " + missing[0] + " (nor " + prefix + missing[0] + ")";
  if (missing.size() > 1)
    msg += ", nor " + std::to_string(missing.size() - 1) + " other" +
           (missing.size() > 2 ? "s" : "") + " that a " + family + " of this shape has";
  return Status::error(msg + config_shape +
                       "\nHINT: the file is incomplete, or config.json is another model's");
}

std::string dtypes_text(const std::set<std::string>& dtypes) {
  std::string out;
  for (const std::string& d : dtypes) out += (out.empty() ? "" : "+") + d;
  return out;
}

}  // namespace import_detail

StatusOr<PretrainedWeights> PretrainedWeights::from_safetensors(const uint8_t* data, size_t n,
                                                                const std::string& config_json,
                                                                const std::string& path,
                                                                const std::string& config_path) {
  {  // a Llama's config.json goes to its own reader
    StatusOr<json> j = import_detail::parse_config_json(config_json, config_path);
    if (j.ok() && j->contains("model_type") && (*j)["model_type"] == "llama")
      return from_llama_safetensors(data, n, config_json, path, config_path);
  }
  StatusOr<PretrainedShape> shape = read_config(config_json, config_path);
  if (!shape.ok()) return shape.status();
  StatusOr<SafetensorsHeader> h = parse_safetensors(data, n, path);
  if (!h.ok()) return h.status();
  PretrainedWeights w;
  w.shape_ = *shape;
  w.path_ = path;
  w.config_path_ = config_path;
  const PretrainedShape& s = w.shape_;
  const std::string config_shape =
      " (" + config_path + ": vocab_size " + std::to_string(s.vocab_size) + ", n_positions " +
      std::to_string(s.n_ctx) + ", n_layer " + std::to_string(s.n_layer) + ", n_embd " +
      std::to_string(s.d_model) + ")";
  std::map<std::string, SourceTensor> found;  // by skein's name
  std::set<std::string> dtypes;
  const std::vector<import_detail::Gpt2Tensor> expected = import_detail::gpt2_tensors(s);
  std::map<std::string, const import_detail::Gpt2Tensor*> by_name;
  for (const auto& e : expected) by_name[e.name] = &e;
  for (const SafetensorsTensor& t : h->tensors) {
    const bool prefixed = t.name.starts_with("transformer.");
    const std::string bare = prefixed ? t.name.substr(12) : t.name;
    if (is_mask_buffer(bare)) continue;
    if (bare == "lm_head.weight" && !prefixed) {
      StatusOr<WireType> type = import_detail::wire_type(t, path);
      if (!type.ok()) return type.status();
      const std::vector<int64_t> want = {s.vocab_size, s.d_model};
      if (t.shape != want)
        return Status::error(path + ": tensor lm_head.weight has shape " + shape_text(t.shape) +
                             ", but the output layer of this model is " + shape_text(want) +
                             config_shape);
      w.tied_.push_back({"lm_head", t.name, *type, data + t.begin, t.shape, false, -1});
      continue;
    }
    // skein's names are Hugging Face's, but for the embeddings' ".weight"
    std::string name;
    if (bare == "wte.weight" || bare == "wpe.weight")
      name = bare.substr(0, 3);
    else if (bare != "wte" && bare != "wpe")
      name = bare;
    auto e = by_name.find(name);
    if (e == by_name.end())
      return Status::error(path + ": tensor " + t.name + " has no place in a GPT-2 of this " +
                           "shape" + config_shape +
                           "\nHINT: skein reads GPT2Model and GPT2LMHeadModel weights; a model "
                           "with other parts (adapters, another architecture) is not one");
    if (found.count(name))
      return Status::error(path + ": holds both " + found[name].file_name + " and " + t.name +
                           ": which one is meant is unclear");
    StatusOr<WireType> type = import_detail::wire_type(t, path);
    if (!type.ok()) return type.status();
    std::vector<int64_t> want = e->second->shape;
    const bool conv = is_conv1d(name);
    if (conv) std::swap(want[0], want[1]);
    if (t.shape != want) {
      std::string why = ", but this model needs " + shape_text(want) + config_shape;
      if (conv && t.shape == e->second->shape)
        why +=
            "\nHINT: that is nn.Linear's [out, in]; Hugging Face's GPT-2 stores Conv1D "
            "weights [in, out]";
      return Status::error(path + ": tensor " + t.name + " has shape " + shape_text(t.shape) + why);
    }
    dtypes.insert(t.dtype);
    found[name] = {name, t.name, *type, data + t.begin, t.shape, conv, -1};
  }
  std::vector<std::string> missing;
  for (const auto& e : expected) {
    if (found.count(e.name)) {
      w.tensors_.push_back(found[e.name]);
      continue;
    }
    const std::string hf = e.name == "wte" || e.name == "wpe" ? e.name + ".weight" : e.name;
    missing.push_back(hf);
  }
  if (!missing.empty())
    return import_detail::missing_tensors(path, missing, "transformer.", "GPT-2", config_shape);
  w.format_ = "safetensors, " + import_detail::dtypes_text(dtypes);
  return w;
}

}  // namespace skein
