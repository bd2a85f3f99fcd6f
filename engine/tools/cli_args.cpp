#include "cli_args.h"

#include <charconv>

#include "cli_commands.h"

namespace peregrine::cli {

std::optional<std::string> ParsedArgs::value(const std::string& option) const {
  auto it = values.find(option);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

const std::string& ParsedArgs::required(const std::string& command, const std::string& option) const {
  auto it = values.find(option);
  if (it == values.end()) throw UsageError(command + ": missing required option " + option);
  return it->second;
}

ParsedArgs parse_args(const std::string& command, const std::vector<std::string>& args,
                      const std::set<std::string>& flags, const std::set<std::string>& options) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      parsed.help = true;
      continue;
    }
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      parsed.positionals.push_back(a);
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    if (flags.count(name)) {
      if (inline_value) throw UsageError(command + ": option " + name + " takes no value");
      parsed.flags.insert(name);
    } else if (options.count(name)) {
      if (parsed.values.count(name)) throw UsageError(command + ": option " + name + " given twice");
      if (inline_value) {
        parsed.values[name] = *inline_value;
      } else {
        if (i + 1 >= args.size()) throw UsageError(command + ": option " + name + " needs a value");
        parsed.values[name] = args[++i];
      }
    } else {
      throw UsageError(command + ": unknown option '" + a + "'");
    }
  }
  return parsed;
}

uint64_t parse_u64(const std::string& option, const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw UsageError(option + ": expected a non-negative integer, found '" + text + "'");
  return v;
}

}  // namespace peregrine::cli
