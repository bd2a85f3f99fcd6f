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

BackendKind parse_backend(const std::string& command, const ParsedArgs& args) {
  std::optional<std::string> text = args.value("--backend");
  std::string source = "--backend";
  if (!text) {
    const char* env = std::getenv("PEREGRINE_BACKEND");  // a machine-wide default, e.g. cpu
    if (!env || !*env) return BackendKind::Auto;
    text = env;
    source = "PEREGRINE_BACKEND";
  }
  if (auto kind = parse_backend_kind(*text)) return *kind;
  throw UsageError(command + ": " + source + ": expected cpu, cuda or auto, found '" + *text + "'");
}

MtpSetting parse_mtp(const std::string& option, const std::string& text) {
  if (auto setting = parse_mtp_setting(text)) return *setting;
  throw UsageError(option + ": expected auto, off or a draft length 1.." + std::to_string(kMaxMtpDraftLength) +
                   ", found '" + text + "'");
}

std::vector<double> parse_acceptance(const std::string& option, const std::string& text) {
  std::vector<double> rates;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    // Parsed as double (not parse_float) so 0.8 stays 0.8 in the report.
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v))
      throw UsageError(option + ": expected a number, found '" + item + "'");
    if (v < 0.0 || v > 1.0) throw UsageError(option + ": acceptance " + item + " is not in [0, 1]");
    rates.push_back(v);
    pos = comma + 1;
  }
  if (rates.size() > static_cast<size_t>(kMaxMtpDraftLength))
    throw UsageError(option + ": at most " + std::to_string(kMaxMtpDraftLength) + " positions");
  return rates;
}

}  // namespace peregrine::cli
