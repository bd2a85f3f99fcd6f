// A small command-line option parser shared by the sub-commands. Misuse throws UsageError.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace peregrine::cli {

struct ParsedArgs {
  std::set<std::string> flags;                   // present flags, e.g. "--json"
  std::map<std::string, std::string> values;     // options with a value, e.g. "--out" -> "m.gguf"
  std::vector<std::string> positionals;
  bool help = false;                             // --help / -h was given

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::optional<std::string> value(const std::string& option) const;
  // The value of a required option; throws UsageError naming the command when absent.
  const std::string& required(const std::string& command, const std::string& option) const;
};

// Accepts `--opt VALUE` and `--opt=VALUE` for `options`, bare `flags`, and positionals.
// Unknown options, repeated options and missing values throw UsageError.
ParsedArgs parse_args(const std::string& command, const std::vector<std::string>& args,
                      const std::set<std::string>& flags, const std::set<std::string>& options);

// Parses a non-negative integer option value; throws UsageError naming the option.
uint64_t parse_u64(const std::string& option, const std::string& text);

}  // namespace peregrine::cli
