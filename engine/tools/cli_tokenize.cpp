// peregrine-cli tokenize / detokenize: text <-> token ids with a model's (or a tokenizer.json's) vocabulary.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_output.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/tokenizer.h"

namespace peregrine::cli {
namespace {

Tokenizer load_tokenizer(const std::string& cmd, const ParsedArgs& a) {
  auto model = a.value("--model");
  auto json = a.value("--tokenizer");
  if (model && json) throw UsageError(cmd + ": give either --model or --tokenizer, not both");
  if (model) return Tokenizer::from_gguf(GgufFile::open(*model));
  if (json) return Tokenizer::from_hf_json(*json);
  throw UsageError(cmd + ": missing --model MODEL.gguf or --tokenizer tokenizer.json");
}

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

// The ids of a JSON array, each checked against the vocabulary as written: a number past the
// int64 range is neither wrapped nor truncated.
std::vector<int32_t> parse_token_ids(const nlohmann::json& j, int32_t vocab_size) {
  if (!j.is_array()) throw Error("not an array");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& e = j[i];
    const std::string where = "element " + std::to_string(i) + ": ";
    if (!e.is_number_integer()) throw Error(where + e.dump() + " is not an integer token id");
    const bool in_range = e.is_number_unsigned() ? e.get<uint64_t>() < static_cast<uint64_t>(vocab_size)
                                                 : e.get<int64_t>() >= 0 && e.get<int64_t>() < vocab_size;
    if (!in_range)
      throw Error(where + "id " + e.dump() + " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
  }
  return ids;
}

}  // namespace

int run_tokenize(const std::vector<std::string>& args) {
  const std::string cmd = "tokenize";
  const ParsedArgs a = parse_args(cmd, args, {"--no-special"}, {"--model", "--tokenizer"});
  if (a.help) {
    std::fputs(
        "usage: peregrine-cli tokenize (--model M.gguf | --tokenizer tokenizer.json) [--no-special] < text\n"
        "prints a JSON array of token ids; --no-special spells control tokens out as text\n",
        stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const Tokenizer tok = load_tokenizer(cmd, a);
  EncodeOptions options;
  options.special = a.has("--no-special") ? SpecialTokens::UserDefinedOnly : SpecialTokens::All;
  const std::vector<int32_t> ids = tok.encode(read_stdin(), options);
  write_stdout(nlohmann::json(ids).dump() + "\n");
  return 0;
}

int run_detokenize(const std::vector<std::string>& args) {
  const std::string cmd = "detokenize";
  const ParsedArgs a = parse_args(cmd, args, {}, {"--model", "--tokenizer"});
  if (a.help) {
    std::fputs("usage: peregrine-cli detokenize (--model M.gguf | --tokenizer tokenizer.json) < ids.json\n", stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const Tokenizer tok = load_tokenizer(cmd, a);
  std::vector<int32_t> ids;
  try {
    ids = parse_token_ids(nlohmann::json::parse(read_stdin()), tok.vocab_size());
  } catch (const std::exception& e) {
    throw Error(std::string("stdin: expected a JSON array of token ids: ") + e.what());
  }
  write_stdout(tok.decode(ids));
  return 0;
}

}  // namespace peregrine::cli
