#include "data/gpt2_vocab.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "data/file_util.h"

namespace skein {

namespace {

namespace fs = std::filesystem;

// bytes_to_unicode() of OpenAI's encoder.py, both ways.
struct ByteChars {
  std::array<uint32_t, 256> to_char{};
  std::array<int16_t, 512> to_byte{};  // every byte character is below U+0200
  ByteChars() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? uint32_t(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteChars& byte_chars() {
  static const ByteChars c;
  return c;
}

std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%0*X", digits, v);
  return buf;
}

// A token for messages: the text as the file has it, in quotes, cut when long.
std::string shown(std::string_view s) {
  if (s.size() > 40) return "\"" + std::string(s.substr(0, 37)) + "...\"";
  return "\"" + std::string(s) + "\"";
}

// Decodes one code point of valid-looking UTF-8 at s[*i]; -1 when malformed.
int32_t next_code_point(std::string_view s, size_t* i) {
  const auto b = static_cast<uint8_t>(s[*i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0 || *i + len > s.size()) return -1;
  uint32_t cp = len == 1 ? b : b & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<uint8_t>(s[*i + k]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = cp << 6 | (c & 0x3F);
  }
  *i += len;
  return static_cast<int32_t>(cp);
}

// A token as written in the files (byte characters) -> its bytes; an error describes the
// offending character.
bool token_bytes(std::string_view text, std::string* bytes, std::string* error) {
  bytes->clear();
  for (size_t i = 0; i < text.size();) {
    const int32_t cp = next_code_point(text, &i);
    if (cp < 0) {
      *error = "is not valid UTF-8";
      return false;
    }
    const int b = gpt2_char_byte(static_cast<uint32_t>(cp));
    if (b < 0) {
      *error = "holds the character U+" + hex(cp, 4) +
               ", which is not one of GPT-2's 256 byte characters";
      return false;
    }
    bytes->push_back(static_cast<char>(b));
  }
  if (bytes->empty()) {
    *error = "is empty";
    return false;
  }
  return true;
}

// SAX handler for the vocabulary: one flat object of token -> integer id, nothing else.
struct VocabSax {
  using json = nlohmann::json;
  std::vector<std::pair<std::string, int64_t>> entries;
  std::string key_, error;
  int depth = 0;
  bool done = false;

  bool fail(const std::string& what) {
    if (error.empty()) error = what;
    return false;
  }
  bool value(int64_t v) {
    if (depth != 1) return fail("expected one JSON object from token to id, found a number");
    entries.emplace_back(std::move(key_), v);
    return true;
  }
  bool not_id(const std::string& what) {
    if (depth != 1) return fail("expected one JSON object from token to id, found " + what);
    return fail("the id of token " + shown(key_) + " is " + what + ", expected an integer");
  }
  bool null() { return not_id("null"); }
  bool boolean(bool) { return not_id("a boolean"); }
  bool number_integer(json::number_integer_t v) { return value(v); }
  bool number_unsigned(json::number_unsigned_t v) {
    return value(v > uint64_t(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
  }
  bool number_float(json::number_float_t, const json::string_t& s) { return not_id(s); }
  bool string(json::string_t& s) { return not_id("the string " + shown(s)); }
  bool binary(json::binary_t&) { return not_id("binary data"); }
  bool start_object(std::size_t) {
    if (depth == 0 && !done) {
      depth = 1;
      return true;
    }
    return not_id("an object");
  }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    depth = 0;
    done = true;
    return true;
  }
  bool start_array(std::size_t) { return not_id("an array"); }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    std::string what = e.what();
    if (what.starts_with("[json.exception.")) what = what.substr(what.find(']') + 2);
    return fail(what);
  }
};

// Ids of all tokens, by their bytes.
using TokenIds = std::unordered_map<std::string, int32_t>;

constexpr char kVocabHint[] =
    "use GPT-2's vocab.json (Hugging Face) or encoder.json (OpenAI) as published; the file may "
    "be truncated or edited";

// A vocabulary as its file writes it: each token (in GPT-2's byte characters) and its id.
using VocabEntries = std::vector<std::pair<std::string, int64_t>>;

// Checks the entries (ids 0..n-1, each once; every token of byte characters, not too long, and
// none twice) and fills tokens (bytes by id) and ids (id by bytes).
Status index_vocab(const VocabEntries& entries, const std::string& name, const char* hint,
                   std::vector<std::string>* tokens, TokenIds* ids) {
  auto bad = [&](const std::string& what) {
    return Status::error(name + ": " + what + ". HINT: " + hint);
  };
  const size_t n = entries.size();
  if (n == 0) return bad("the vocabulary is empty");
  if (n > 65536) {
    return bad("holds " + std::to_string(n) +
               " tokens, more than the 65536 that uint16 token shards can hold");
  }
  tokens->assign(n, std::string());
  std::vector<const std::string*> text_of(n, nullptr);
  ids->reserve(n);
  std::string bytes, error;
  for (const auto& [text, id] : entries) {
    if (id < 0 || id >= static_cast<int64_t>(n)) {
      return bad("token " + shown(text) + " has id " + std::to_string(id) + ", but the " +
                 std::to_string(n) + " tokens need the ids 0.." + std::to_string(n - 1));
    }
    if (text_of[id]) {
      return bad("id " + std::to_string(id) + " is given to both " + shown(*text_of[id]) + " and " +
                 shown(text));
    }
    if (!token_bytes(text, &bytes, &error)) return bad("token " + shown(text) + " " + error);
    if (bytes.size() > kMaxGpt2TokenBytes) {
      return bad("token " + shown(text) + " is " + std::to_string(bytes.size()) +
                 " bytes long, more than the " + std::to_string(kMaxGpt2TokenBytes) + " allowed");
    }
    auto [it, fresh] = ids->emplace(bytes, static_cast<int32_t>(id));
    if (!fresh) {
      return bad("token " + shown(text) + " appears twice (ids " + std::to_string(it->second) +
                 " and " + std::to_string(id) + ")");
    }
    text_of[id] = &text;
    (*tokens)[id] = bytes;
  }
  return {};
}

// vocab.json / encoder.json: one flat JSON object from token to id.
Status parse_json(std::string_view json, const std::string& name, std::vector<std::string>* tokens,
                  TokenIds* ids) {
  VocabSax sax;
  const bool ok = nlohmann::json::sax_parse(json.begin(), json.end(), &sax);
  if (!ok || !sax.error.empty()) {
    return Status::error(name + ": " +
                         (sax.error.empty() ? std::string("not valid JSON") : sax.error) +
                         ". HINT: " + kVocabHint);
  }
  return index_vocab(sax.entries, name, kVocabHint, tokens, ids);
}

// One merge as the file writes it ("left right"), and where it is, for messages.
struct MergeEntry {
  std::string_view text;
  std::string where;  // "line N" (merges.txt) or "model.merges[K]" (tokenizer.json)
};

std::string cut_text(std::string_view s) {
  return std::string(s.substr(0, std::min<size_t>(s.size(), 60)));
}

// The merges of merges.txt / vocab.bpe: one per line after an optional "#version" line.
Status merge_lines(std::string_view merges, const std::string& name, std::vector<MergeEntry>* out) {
  size_t line = 0;
  for (size_t at = 0; at < merges.size();) {
    size_t nl = merges.find('\n', at);
    if (nl == std::string_view::npos) nl = merges.size();
    size_t end = nl;
    if (end > at && merges[end - 1] == '\r') --end;
    ++line;
    const size_t begin = at;
    at = nl + 1;
    const std::string_view text = merges.substr(begin, end - begin);
    if (line == 1 && text.starts_with("#version")) continue;
    if (text.empty()) {
      if (at >= merges.size()) break;  // the newline at the end of the file
      return Status::error(name + " line " + std::to_string(line) +
                           ": the line is empty, expected a merge \"left right\"");
    }
    out->push_back({text, "line " + std::to_string(line)});
  }
  return {};
}

// Resolves the merges against the vocabulary (ids: by bytes) into v->merges, then sorts the
// tokens that no merge makes: special when is_special(id) says so, an error otherwise.
template <typename IsSpecial>
Status add_merges(const std::vector<MergeEntry>& entries, const std::string& name,
                  const std::string& json_name, const std::string& hint, const TokenIds& ids,
                  IsSpecial is_special, const std::string& special_rule, Gpt2Vocab* v) {
  // made_at[id]: 0 for the single bytes, 1 + the index of the merge that makes the token, or -1.
  std::vector<int64_t> made_at(v->tokens.size(), -1);
  for (int b = 0; b < 256; ++b) made_at[v->byte_ids[b]] = 0;
  std::string left, right, error;
  for (size_t e = 0; e < entries.size(); ++e) {
    const std::string_view text = entries[e].text;
    auto bad = [&](const std::string& what) {
      return Status::error(name + " " + entries[e].where + ": " + what + ". HINT: " + hint);
    };
    if (text.empty()) return bad("the merge is empty, expected \"left right\"");
    const size_t space = text.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == text.size() ||
        text.find(' ', space + 1) != std::string_view::npos) {
      return bad("expected two tokens separated by one space, found " + shown(cut_text(text)));
    }
    const std::string_view l = text.substr(0, space), r = text.substr(space + 1);
    if (!token_bytes(l, &left, &error)) return bad("token " + shown(l) + " " + error);
    if (!token_bytes(r, &right, &error)) return bad("token " + shown(r) + " " + error);
    int32_t operand[2];
    for (int k = 0; k < 2; ++k) {
      const std::string_view t = k == 0 ? l : r;
      auto it = ids.find(k == 0 ? left : right);
      if (it == ids.end()) return bad("token " + shown(t) + " is not in " + json_name);
      operand[k] = it->second;
      if (made_at[operand[k]] < 0) {
        return bad("token " + shown(t) +
                   " is neither a single byte nor made by an earlier "
                   "merge (a merge may only join bytes and tokens of earlier merges)");
      }
    }
    const std::string joined = left + right;
    auto it = ids.find(joined);
    if (it == ids.end()) {
      return bad("the merge makes " + shown(std::string(l) + std::string(r)) + ", which " +
                 json_name + " lacks");
    }
    if (made_at[it->second] >= 0) {
      return bad("the merge makes " + shown(std::string(l) + std::string(r)) + ", which " +
                 entries[made_at[it->second] - 1].where + " makes already");
    }
    made_at[it->second] = static_cast<int64_t>(e) + 1;
    v->merges.push_back({operand[0], operand[1], it->second});
  }
  // The rest must be special tokens; an ordinary one means merges are missing.
  size_t unmade = 0;
  int32_t first = -1;
  for (size_t id = 0; id < v->tokens.size(); ++id) {
    if (made_at[id] >= 0) continue;
    if (is_special(static_cast<int32_t>(id))) {
      v->specials.push_back(static_cast<int32_t>(id));
    } else if (unmade++ == 0) {
      first = static_cast<int32_t>(id);
    }
  }
  if (unmade > 0) {
    return Status::error(json_name + " has " + std::to_string(unmade) +
                         " token(s) that no merge of " + name + " makes, the first id " +
                         std::to_string(first) + " (only single bytes, merges and " + special_rule +
                         " may be in the vocabulary). HINT: " + name + " (" +
                         std::to_string(v->merges.size()) +
                         " merges) may be truncated, or belongs to another vocabulary");
  }
  return {};
}

// The single-byte tokens' ids (byte b is token bytes "b"), all 256 required.
Status find_byte_ids(const TokenIds& ids, const std::string& json_name, Gpt2Vocab* v) {
  for (int b = 0; b < 256; ++b) {
    auto it = ids.find(std::string(1, static_cast<char>(b)));
    if (it == ids.end()) {
      const std::string ch = gpt2_spelling(std::string(1, static_cast<char>(b)));
      return Status::error(json_name + ": the single-byte token of byte 0x" + hex(b, 2) + " (" +
                           shown(ch) + ") is missing. HINT: a byte-level BPE has all 256");
    }
    v->byte_ids[b] = it->second;
  }
  return {};
}

Status find_eot(const TokenIds& ids, const std::string& json_name, Gpt2Vocab* v) {
  auto eot = ids.find(kGpt2EndOfText);
  if (eot == ids.end()) {
    return Status::error(json_name + " has no token " + std::string(kGpt2EndOfText) +
                         ", which separates documents. HINT: use GPT-2's vocabulary, or a "
                         "byte-level BPE that has it (SmolLM's does)");
  }
  v->eot = eot->second;
  return {};
}

StatusOr<std::string> read_whole(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    int e = errno;
    return Status::error("cannot read " + path + ": " + errno_text(e));
  }
  std::string s;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, got);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return Status::error("reading " + path + " failed");
  return s;
}

void put32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

uint32_t gpt2_byte_char(uint8_t b) {
  return byte_chars().to_char[b];
}

int gpt2_char_byte(uint32_t code_point) {
  return code_point < 512 ? byte_chars().to_byte[code_point] : -1;
}

std::string gpt2_spelling(std::string_view bytes) {
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    const uint32_t cp = gpt2_byte_char(b);
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {  // every byte character is below U+0800: two bytes of UTF-8
      s.push_back(static_cast<char>(0xC0 | cp >> 6));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return s;
}

StatusOr<Gpt2Vocab> parse_gpt2_vocab(std::string_view json, const std::string& json_name,
                                     std::string_view merges, const std::string& merges_name) {
  Gpt2Vocab v;
  v.source = json_name + " + " + merges_name;
  TokenIds ids;
  SKEIN_RETURN_IF_ERROR(parse_json(json, json_name, &v.tokens, &ids));
  SKEIN_RETURN_IF_ERROR(find_byte_ids(ids, json_name, &v));
  std::vector<MergeEntry> entries;
  SKEIN_RETURN_IF_ERROR(merge_lines(merges, merges_name, &entries));
  const std::string hint = "use the merges file that belongs to " + json_name +
                           " (merges.txt with vocab.json, vocab.bpe with encoder.json)";
  auto written_special = [&](int32_t id) {
    const std::string& t = v.tokens[id];
    return t.size() >= 2 && t.front() == '<' && t.back() == '>';
  };
  SKEIN_RETURN_IF_ERROR(add_merges(entries, merges_name, json_name, hint, ids, written_special,
                                   "special tokens written <...>", &v));
  SKEIN_RETURN_IF_ERROR(find_eot(ids, json_name, &v));
  SKEIN_RETURN_IF_ERROR(check_gpt2_vocab(v, v.source));
  return v;
}

namespace {

using nlohmann::json;

constexpr char kTokenizerJsonHint[] =
    "use the tokenizer.json of the model as published (a byte-level BPE such as GPT-2's or "
    "SmolLM's); the file may be truncated or edited (for vocab.json + merges.txt, name their "
    "folder)";

// A JSON value for messages, cut when long (at a character's start).
std::string json_text(const json& j) {
  std::string s = j.dump();
  if (s.size() <= 80) return s;
  size_t cut = 77;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

// Deeper than any tokenizer.json nests (4 levels for SmolLM's): copying and printing a JSON value
// recurse, so a file nested thousands deep is refused before anything touches it.
constexpr int kMaxJsonDepth = 64;

// True when obj has no `key`, or it is null or equals `want` (e.g. false or "").
bool absent_or(const json& obj, const char* key, const json& want) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || *it == want;
}

// The ByteLevel pre-tokenizer that GPT-2's regex gives: use_regex true, no prefix space.
Status check_byte_level(const json& p, const std::string& where) {
  if (!absent_or(p, "add_prefix_space", false)) {
    return Status::error(where + ": add_prefix_space is " + json_text(p["add_prefix_space"]) +
                         "; skein reads byte-level BPE without a prefix space only (GPT-2's "
                         "and SmolLM's are false)");
  }
  if (!absent_or(p, "use_regex", true)) {
    return Status::error(where + ": use_regex is " + json_text(p["use_regex"]) +
                         "; skein cuts text with GPT-2's pattern, which use_regex true means");
  }
  return {};
}

Status read_pre_tokenizer(const json& root, const std::string& name, Gpt2Pieces* pieces) {
  const std::string where = name + " pre_tokenizer";
  auto unsupported = [&](const json& p) {
    return Status::error(where + " " + json_text(p) +
                         " is not one skein reads. HINT: skein reads byte-level BPE cut by "
                         "ByteLevel (GPT-2) or Sequence[Digits with individual_digits, "
                         "ByteLevel] (SmolLM, StarCoder)");
  };
  auto it = root.find("pre_tokenizer");
  if (it == root.end() || !it->is_object()) {
    return Status::error(where + " is missing or not an object. HINT: " + kTokenizerJsonHint);
  }
  const json& p = *it;
  const json type = p.value("type", json());
  if (type == "ByteLevel") {
    *pieces = Gpt2Pieces::kGpt2;
    return check_byte_level(p, where);
  }
  if (type != "Sequence") return unsupported(p);
  auto list = p.find("pretokenizers");
  if (list == p.end() || !list->is_array() || list->size() != 2 || !(*list)[0].is_object() ||
      !(*list)[1].is_object()) {
    return unsupported(p);
  }
  const json& digits = (*list)[0];
  if (digits.value("type", json()) != "Digits" ||
      digits.value("individual_digits", json()) != true ||
      (*list)[1].value("type", json()) != "ByteLevel") {
    return unsupported(p);
  }
  *pieces = Gpt2Pieces::kDigits;
  return check_byte_level((*list)[1], where + ".pretokenizers[1]");
}

// The model's settings that change what BPE makes, each required to be off.
Status check_bpe_model(const json& model, const std::string& where) {
  if (model.value("type", json()) != "BPE") {
    return Status::error(where + ".type is " + json_text(model.value("type", json())) +
                         ", expected \"BPE\". HINT: skein reads byte-level BPE tokenizers only");
  }
  struct Off {
    const char* key;
    json off;
  };
  for (const Off& o :
       {Off{"dropout", json()}, Off{"byte_fallback", false}, Off{"ignore_merges", false},
        Off{"continuing_subword_prefix", ""}, Off{"end_of_word_suffix", ""}}) {
    if (!absent_or(model, o.key, o.off)) {
      return Status::error(where + "." + o.key + " is " + json_text(model[o.key]) +
                           ", which skein does not implement (expected " +
                           (o.off.is_null() ? std::string("null") : o.off.dump()) + ")");
    }
  }
  return {};
}

}  // namespace

StatusOr<Gpt2Vocab> parse_hf_tokenizer_json(std::string_view text, const std::string& name) {
  auto bad = [&](const std::string& what) {
    return Status::error(name + ": " + what + ". HINT: " + kTokenizerJsonHint);
  };
  bool too_deep = false;
  const json::parser_callback_t depth_limit = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return depth <= kMaxJsonDepth;  // a deeper value is dropped, not built
  };
  const json root = json::parse(text.begin(), text.end(), depth_limit, /*allow_exceptions=*/false);
  if (too_deep) {
    return bad("the JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
               " levels, which no tokenizer.json does");
  }
  if (root.is_discarded()) return bad("not valid JSON");
  if (!root.is_object()) return bad("expected a JSON object");
  if (auto n = root.find("normalizer"); n != root.end() && !n->is_null()) {
    return Status::error(name + " normalizer " + json_text(*n) +
                         ": skein reads tokenizers without a normalizer only (GPT-2's and "
                         "SmolLM's have none)");
  }
  Gpt2Vocab v;
  v.source = name;
  v.rules = Gpt2Rules::kMergeList;
  SKEIN_RETURN_IF_ERROR(read_pre_tokenizer(root, name, &v.pieces));
  auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) return bad("model is missing");
  const json& model = *model_it;
  SKEIN_RETURN_IF_ERROR(check_bpe_model(model, name + " model"));
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) return bad("model.vocab is missing");
  const json& vocab = *vocab_it;
  VocabEntries tokens;
  tokens.reserve(vocab.size());
  std::unordered_map<int64_t, std::string> spelled;  // id -> token in model.vocab's spelling
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer()) {
      return bad("model.vocab: the id of token " + shown(token) + " is " + json_text(id) +
                 ", expected an integer");
    }
    tokens.emplace_back(token, id.get<int64_t>());
    spelled.emplace(id.get<int64_t>(), token);
  }

  // Added tokens: written as text, not in byte characters; one missing from model.vocab joins it.
  std::unordered_set<int64_t> added;
  if (auto a = root.find("added_tokens"); a != root.end() && !a->is_null()) {
    if (!a->is_array()) return bad("added_tokens is not an array");
    for (size_t k = 0; k < a->size(); ++k) {
      const json& t = (*a)[k];
      const std::string where = "added_tokens[" + std::to_string(k) + "]";
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string()) {
        return bad(where + " is not an object with an integer id and a string content");
      }
      const int64_t id = t["id"].get<int64_t>();
      const std::string content = t["content"].get<std::string>();
      if (content.empty()) return bad(where + " has an empty content");
      const std::string spelling = gpt2_spelling(content);
      auto [it, fresh] = spelled.emplace(id, spelling);
      if (fresh) {
        if (vocab.contains(spelling)) {
          return bad(where + " " + shown(content) + " has id " + std::to_string(id) +
                     ", model.vocab another");
        }
        tokens.emplace_back(spelling, id);
      } else if (it->second != spelling) {
        return bad(where + " " + shown(content) + " has id " + std::to_string(id) +
                   ", which model.vocab gives to " + shown(it->second));
      }
      added.insert(id);
    }
  }
  TokenIds ids;
  SKEIN_RETURN_IF_ERROR(
      index_vocab(tokens, name + " model.vocab", kTokenizerJsonHint, &v.tokens, &ids));
  SKEIN_RETURN_IF_ERROR(find_byte_ids(ids, name + " model.vocab", &v));

  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) return bad("model.merges is missing");
  const json& merges = *merges_it;
  std::vector<std::string> joined(merges.size());  // "left right", as merges.txt has them
  std::vector<MergeEntry> entries(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const json& m = merges[k];
    entries[k].where = "model.merges[" + std::to_string(k) + "]";
    if (m.is_string()) {
      joined[k] = m.get<std::string>();
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string l = m[0].get<std::string>(), r = m[1].get<std::string>();
      if (l.find(' ') != std::string::npos || r.find(' ') != std::string::npos) {
        return bad("model.merges[" + std::to_string(k) + "] " + json_text(m) +
                   " has a space in a token (byte-level tokens spell it \"\u0120\")");
      }
      joined[k] = l + " " + r;
    } else {
      return bad("model.merges[" + std::to_string(k) + "] is " + json_text(m) +
                 ", expected \"left right\" or [\"left\", \"right\"]");
    }
    entries[k].text = joined[k];
  }
  auto is_added = [&](int32_t id) { return added.count(id) > 0; };
  SKEIN_RETURN_IF_ERROR(add_merges(entries, name, name + " model.vocab", kTokenizerJsonHint, ids,
                                   is_added, "added_tokens", &v));
  SKEIN_RETURN_IF_ERROR(find_eot(ids, name, &v));
  SKEIN_RETURN_IF_ERROR(check_gpt2_vocab(v, v.source));
  return v;
}

StatusOr<Gpt2Vocab> read_gpt2_vocab_dir(const std::string& dir) {
  std::error_code ec;
  auto read_tokenizer_json = [](const std::string& path) -> StatusOr<Gpt2Vocab> {
    auto text = read_whole(path);
    if (!text.ok()) return text.status();
    return parse_hf_tokenizer_json(*text, path);
  };
  if (fs::is_regular_file(dir, ec) && dir.ends_with(".json")) return read_tokenizer_json(dir);
  if (!fs::is_directory(dir, ec)) {
    return Status::error("tokenizer folder " + dir +
                         " does not exist or is not a folder. HINT: --tokenizer_files DIR names a "
                         "folder with tokenizer.json, vocab.json + merges.txt or encoder.json + "
                         "vocab.bpe (or a tokenizer.json itself)");
  }
  const std::string base = dir.ends_with('/') ? dir : dir + "/";
  // tokenizer.json says how the text is cut (GPT-2's pattern or digits alone); the other pairs
  // do not, and mean GPT-2's.
  if (fs::is_regular_file(base + "tokenizer.json", ec)) {
    return read_tokenizer_json(base + "tokenizer.json");
  }
  auto missing = [&](const char* a, const char* b) {
    std::vector<std::string> m;
    for (const char* f : {a, b}) {
      if (!fs::is_regular_file(base + f, ec)) m.push_back(f);
    }
    return m;
  };
  const auto hf = missing("vocab.json", "merges.txt");
  const auto oa = missing("encoder.json", "vocab.bpe");
  const char* json_file = "vocab.json";
  const char* merges_file = "merges.txt";
  if (!hf.empty()) {
    if (!oa.empty()) {
      auto list = [](const std::vector<std::string>& m) {
        return m.size() == 2 ? m[0] + " and " + m[1] : m[0];
      };
      return Status::error(
          "tokenizer folder " + dir +
          " holds no tokenizer.json and neither pair of GPT-2's tokenizer files: Hugging "
          "Face's vocab.json + merges.txt (missing " +
          list(hf) + ") or OpenAI's encoder.json + vocab.bpe (missing " + list(oa) +
          "). HINT: download both files of one pair, e.g. from a GPT-2 repository on the "
          "Hugging Face Hub, into " +
          dir);
    }
    json_file = "encoder.json";
    merges_file = "vocab.bpe";
  }
  auto json = read_whole(base + json_file);
  if (!json.ok()) return json.status();
  auto merges = read_whole(base + merges_file);
  if (!merges.ok()) return merges.status();
  return parse_gpt2_vocab(*json, base + json_file, *merges, base + merges_file);
}

Status check_gpt2_vocab(const Gpt2Vocab& v, const std::string& where) {
  auto bad = [&](const std::string& what) { return Status::error(where + ": " + what); };
  if (v.pieces != Gpt2Pieces::kGpt2 && v.pieces != Gpt2Pieces::kDigits) {
    return bad("pieces " + std::to_string(static_cast<int32_t>(v.pieces)) + ", expected 0 or 1");
  }
  if (v.rules != Gpt2Rules::kTiktoken && v.rules != Gpt2Rules::kMergeList) {
    return bad("rules " + std::to_string(static_cast<int32_t>(v.rules)) + ", expected 0 or 1");
  }
  const size_t n = v.tokens.size();
  if (n < 257 || n > 65536) {
    return bad(std::to_string(n) + " tokens, expected 257..65536 (256 bytes, " +
               std::string(kGpt2EndOfText) + " and merges)");
  }
  // What makes each token: 0 unset, 1 byte, 2 merge, 3 special.
  std::vector<uint8_t> made(n, 0);
  for (int b = 0; b < 256; ++b) {
    const int32_t id = v.byte_ids[b];
    if (id < 0 || size_t(id) >= n || made[id] != 0 || v.tokens[id] != std::string(1, char(b))) {
      return bad("the single-byte token of byte " + std::to_string(b) + " is wrong");
    }
    made[id] = 1;
  }
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const Gpt2Merge& m = v.merges[i];
    auto usable = [&](int32_t id) { return id >= 0 && size_t(id) < n && made[id] != 0; };
    if (!usable(m.left) || !usable(m.right) || m.result < 0 || size_t(m.result) >= n ||
        made[m.result] != 0 || v.tokens[m.result] != v.tokens[m.left] + v.tokens[m.right]) {
      return bad("merge " + std::to_string(i) + " is inconsistent");
    }
    made[m.result] = 2;
  }
  for (size_t i = 0; i < v.specials.size(); ++i) {
    const int32_t id = v.specials[i];
    if (id < 0 || size_t(id) >= n || made[id] != 0 || (i > 0 && id <= v.specials[i - 1])) {
      return bad("special token " + std::to_string(i) + " is inconsistent");
    }
    made[id] = 3;
  }
  for (size_t id = 0; id < n; ++id) {
    if (made[id] == 0) return bad("token " + std::to_string(id) + " is made by nothing");
  }
  if (v.eot < 0 || size_t(v.eot) >= n || made[v.eot] != 3 || v.tokens[v.eot] != kGpt2EndOfText) {
    return bad("no special token " + std::string(kGpt2EndOfText));
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (v.tokens[id].size() > kMaxGpt2TokenBytes) {
      return bad("token " + std::to_string(id) + " is " + std::to_string(v.tokens[id].size()) +
                 " bytes long, more than the " + std::to_string(kMaxGpt2TokenBytes) + " allowed");
    }
    if (!seen.insert(v.tokens[id]).second) return bad("two tokens have the same bytes");
  }
  return {};
}

uint64_t gpt2_vocab_checksum(const Gpt2Vocab& v) {
  std::string s;
  put32(&s, static_cast<uint32_t>(v.tokens.size()));
  for (const auto& t : v.tokens) {
    put32(&s, static_cast<uint32_t>(t.size()));
    s += t;
  }
  put32(&s, static_cast<uint32_t>(v.merges.size()));
  for (const auto& m : v.merges) {
    put32(&s, m.left);
    put32(&s, m.right);
    put32(&s, m.result);
  }
  put32(&s, static_cast<uint32_t>(v.specials.size()));
  for (int32_t id : v.specials) put32(&s, id);
  put32(&s, v.eot);
  // GPT-2's own files hash as they always did; another cut or merging is another vocabulary.
  if (v.pieces != Gpt2Pieces::kGpt2 || v.rules != Gpt2Rules::kTiktoken) {
    put32(&s, static_cast<uint32_t>(v.pieces));
    put32(&s, static_cast<uint32_t>(v.rules));
  }
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

}  // namespace skein
