#include "tokenizer/hf_json_reader.h"

#include <algorithm>
#include <cstdint>

#include "peregrine/error.h"

namespace peregrine::tokenizer_detail {
namespace {

using nlohmann::json;

class Reader {
 public:
  explicit Reader(HfTokenizerJson& out) : out_(out) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == Mode::Vocab) return vocab_entry(v);
    return value(json(v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (mode_ == Mode::Vocab) return vocab_entry(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));  // no wrap
    return value(json(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    if (mode_ == Mode::Vocab) return problem("model.vocab." + key_, "expected an integer id");
    return value(json(v));
  }
  bool binary(json::binary_t&) { return value(json()); }

  bool string(json::string_t& v) {
    switch (mode_) {
      case Mode::Vocab: return problem("model.vocab." + key_, "expected an integer id");
      case Mode::Merges: return string_merge(v);
      case Mode::MergePair:
        pair_.push_back(std::move(v));
        return true;
      case Mode::Tree: return value(json(std::move(v)));
    }
    return true;
  }

  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) {
    if (mode_ != Mode::Tree) return problem(region(), "unexpected object");
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      out_.vocab.reserve(160'000);
      return true;
    }
    return open(json::object());
  }

  bool end_object() {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Tree;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  bool start_array(std::size_t) {
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::Tree) return problem(region(), "unexpected array");
    if (in_model() && key_ == "merges") {
      mode_ = Mode::Merges;
      out_.has_merges = true;
      out_.merges.reserve(160'000);
      return true;
    }
    return open(json::array());
  }

  bool end_array() {
    if (mode_ == Mode::MergePair) {
      if (pair_.size() != 2) {
        return problem("model.merges[" + std::to_string(out_.merges.size()) + "]", "expected [\"left\", \"right\"]");
      }
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Tree;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

  const std::string& syntax_error() const { return syntax_error_; }

 private:
  enum class Mode { Tree, Vocab, Merges, MergePair };

  // Directly inside the top-level "model" object.
  bool in_model() const { return keys_.size() == 2 && keys_[1] == "model"; }
  std::string region() const {
    return mode_ == Mode::Vocab ? "model.vocab" : "model.merges[" + std::to_string(out_.merges.size()) + "]";
  }

  bool problem(std::string where, const std::string& what) {
    if (!out_.problem) out_.problem = where + ": " + what;
    return false;  // stop: the state machine cannot follow a document of another shape
  }

  bool vocab_entry(int64_t id) {
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }

  bool string_merge(const std::string& s) {
    const size_t space = s.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
        s.find(' ', space + 1) != std::string::npos) {
      return problem("model.merges[" + std::to_string(out_.merges.size()) + "]",
                     "expected \"left right\", got '" + s + "'");
    }
    out_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    return true;
  }

  // Places a value in the tree: at the root, appended to an array, or under the last key.
  json* place(json&& v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  bool value(json&& v) {
    if (mode_ == Mode::Vocab) return problem("model.vocab." + key_, "expected an integer id");
    if (mode_ == Mode::Merges) {
      return problem("model.merges[" + std::to_string(out_.merges.size()) + "]", "expected a string or a pair");
    }
    if (mode_ == Mode::MergePair) {
      pair_.push_back("");  // wrong element type: makes the pair check fail with its index
      pair_.resize(3);
      return true;
    }
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    const std::string name = stack_.empty() ? "" : (stack_.back()->is_array() ? "[]" : key_);
    stack_.push_back(place(std::move(container)));
    keys_.push_back(name);
    return true;
  }

  HfTokenizerJson& out_;
  Mode mode_ = Mode::Tree;
  std::vector<json*> stack_;       // open containers of the tree
  std::vector<std::string> keys_;  // the key each open container sits under ("" root, "[]" in array)
  std::string key_;
  std::vector<std::string> pair_;
  std::string syntax_error_;
};

}  // namespace

HfTokenizerJson read_hf_tokenizer_json(const std::string& text, const std::string& source) {
  HfTokenizerJson out;
  Reader reader(out);
  const bool ok = json::sax_parse(text, &reader);
  if (out.problem) throw Error(source + ": " + *out.problem);
  if (!ok) throw Error(source + ": invalid JSON: " + reader.syntax_error());
  if (!out.rest.is_object()) throw Error(source + ": expected a JSON object at the top level");
  return out;
}

}  // namespace peregrine::tokenizer_detail
