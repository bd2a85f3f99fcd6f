// Option parsing shared by run / logits / bench.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cmath>
#include <thread>

#include "cli_commands.h"
#include "cli_decode_commands.h"

namespace peregrine::cli {

float parse_float(const std::string& option, const std::string& text) {
  // std::from_chars for float is not in every libstdc++ this builds with; strtof with full-match check.
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw UsageError(option + ": expected a number, found '" + text + "'");
  return v;
}

std::vector<int32_t> parse_id_list(const std::string& option, const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    const uint64_t v = parse_u64(option, item);
    if (v > static_cast<uint64_t>(INT32_MAX)) throw UsageError(option + ": token id " + item + " is too large");
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  if (ids.empty()) throw UsageError(option + ": expected comma-separated token ids, e.g. 1,2,3");
  return ids;
}

int parse_threads(const std::string& command, const ParsedArgs& args) {
  if (auto threads = args.value("--threads")) {
    const uint64_t n = parse_u64("--threads", *threads);
    if (n == 0 || n > 1024) throw UsageError(command + ": --threads must be between 1 and 1024");
    return static_cast<int>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace peregrine::cli
